"""lab.rootns: the one lab node in the initial network namespace (keepalived's
vrrp_track_process needs it) touches only its own link, and the link always goes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lab.daemons import wait_for
from lab.netns import Topology
from lab.rootns import PREFIX, RootLink, RootNamespace, address, proc_connector
from lab.track_process_pair import TrackProcessPair


def _root_link(name: str) -> list[dict]:
    out = subprocess.run(["ip", "-j", "addr", "show", "dev", name], capture_output=True,
                         text=True)
    return json.loads(out.stdout) if out.returncode == 0 else []


def test_root_link_is_ipv6_only_and_removed(two_nodes: Topology) -> None:
    with RootLink(two_nodes, "lb9", "::19") as root:
        [link] = _root_link(root.link)
        assert root.link.startswith("vrbench")
        families = {a["family"] for a in link["addr_info"]}
        assert families == {"inet6"}  # never IPv4 in the root namespace
        assert {a["local"] for a in link["addr_info"] if a["scope"] == "global"} \
            == {address("::19")}
        assert address("::19").startswith(PREFIX.split("::")[0])
        # The root end is cabled to the lab's switch (and the lab's client reaches lb1's
        # HAProxy over it: the track_process test below).
        port = json.loads(two_nodes.switch.run(["ip", "-j", "link", "show", "lb9"]).stdout)
        assert port[0]["master"] == "br0"
    assert _root_link(root.link) == []


def test_root_namespace_refuses_host_wide_acts() -> None:
    ns = RootNamespace()
    for act in (ns.pids, ns.delete, lambda: ns.sysctl("net.ipv4.ip_forward", 1)):
        with pytest.raises(RuntimeError):
            act()


def test_proc_connector_only_in_the_initial_namespace(two_nodes: Topology) -> None:
    assert proc_connector() == "works"
    with two_nodes.nodes["lb1"].ns.entered():
        assert "errno 111" in proc_connector()


def test_keepalived_track_process_fails_over_in_the_root_namespace(tmp_path: Path) -> None:
    """The event-driven check sees HAProxy's master die: lb1 goes FAULT, lb2 takes the VIP."""
    with TrackProcessPair(tmp_path, daemon="keepalived", interval=0.1) as pair:
        link = pair.root.link if pair.root else ""
        assert pair.holders() == ["lb1"]
        pair.haproxy["lb1"].kill()
        wait_for(lambda: pair.holders() == ["lb2"], 5, "lb2 to hold the VIP", poll=0.01)
        assert "Quorum lost for tracked process" in pair.keepalived["lb1"].log()
    assert _root_link(link) == []
