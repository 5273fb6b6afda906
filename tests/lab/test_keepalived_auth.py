"""VRRPv2 ``auth_type PASS`` against keepalived 2.2.7 (issue 15 part 2), for a keepalived v2
pair that uses it and is swapped one node at a time.

RFC 2338 §5.3.6.1 Simple Text Password, reserved by RFC 3768 §5.3.6 and weak by its §10 (a
clear-text password stops a misconfigured router, not an attacker): vrrpd with
``auth_pass: "1111"`` and keepalived with ``authentication { auth_type PASS; auth_pass 1111 }``
elect and take over from each other; with another password each drops the other's adverts
(vrrpd counts them under ``auth_data``).
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from lab.daemons import AddressProbe, Vrrpd, wait_for
from lab.haproxy_pair import KeepalivedNode
from lab.netns import Topology
from vrrpd.proto.timers import master_down_interval

VIP = "192.0.2.100/24"


def keepalived_conf(password: str, priority: int) -> str:
    return f"""\
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    version 2
    authentication {{
        auth_type PASS
        auth_pass {password}
    }}
    virtual_ipaddress {{
        {VIP} dev eth0
    }}
}}
"""


def states(keepalived: KeepalivedNode) -> list[str]:
    return re.findall(r"\(VI_1\) Entering (\w+) STATE", keepalived.log())


@pytest.mark.parametrize("password", ["1111", "2222"], ids=["same-password", "other-password"])
def test_simple_text_password_with_keepalived(two_nodes: Topology, tmp_path: Path,
                                              password: str) -> None:
    vrrpd = Vrrpd(two_nodes.nodes["lb1"], tmp_path, [{
        "name": "web", "interface": "eth0", "vrid": 51, "version": 2, "priority": 150,
        "advert_interval": 1, "vips": [VIP], "auth_pass": "1111"}])
    keepalived = KeepalivedNode(two_nodes.nodes["lb2"], tmp_path / "keepalived",
                                keepalived_conf(password, 100))
    probes = {n: AddressProbe(two_nodes.nodes[n]) for n in ("lb1", "lb2")}
    try:
        vrrpd.start().wait_state("web", "MASTER")
        keepalived.start()
        if password != "1111":  # neither hears the other: both are master
            wait_for(lambda: states(keepalived)[-1:] == ["MASTER"], 10, "keepalived MASTER")
            wait_for(lambda: vrrpd.instance("web")["dropped"].get("auth_data", 0) >= 1, 10,
                     "vrrpd to drop keepalived's adverts as auth_data")
            assert vrrpd.state("web") == "MASTER"
            assert "received an invalid passwd" in keepalived.log()  # keepalived drops ours
            return
        wait_for(lambda: states(keepalived)[-1:] == ["BACKUP"], 10, "keepalived BACKUP")
        time.sleep(4)  # longer than keepalived's Master_Down_Interval: it hears vrrpd
        assert states(keepalived)[-1] == "BACKUP"
        assert probes["lb1"].has(VIP) and not probes["lb2"].has(VIP)
        assert vrrpd.instance("web")["dropped"] == {}
        # vrrpd stops: its priority-0 advert carries the password, so keepalived takes over
        # after Skew_Time (RFC 3768 §6.4.2, 0.61 s), not after Master_Down_Interval (3.6 s)
        # as it would if it had dropped that advert
        start = time.monotonic()
        vrrpd.send_signal(signal.SIGTERM)
        wait_for(lambda: probes["lb2"].has(VIP), 5, "keepalived to take the VIP")
        took = time.monotonic() - start
        print(f"AUTH keepalived took over {took * 1000:.0f} ms after vrrpd's priority 0")
        assert took < master_down_interval(2, 100, 100) - 1
        vrrpd.stop()
        # vrrpd comes back with the higher priority and preempts keepalived
        vrrpd.start().wait_state("web", "MASTER", timeout=10)
        wait_for(lambda: states(keepalived)[-1:] == ["BACKUP"], 10, "keepalived BACKUP again")
        assert vrrpd.instance("web")["dropped"] == {}
    finally:
        print(keepalived.log()[-2000:])
        print(vrrpd.log()[-2000:])
        keepalived.stop()
        vrrpd.stop()
        for p in probes.values():
            p.close()
