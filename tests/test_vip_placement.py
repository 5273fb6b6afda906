"""keepalived's per-VIP ``dev`` and ``label`` (issue 15 part 2): a VIP can live on another
interface than the instance's, with an IPv4 address label; it is added, announced (on its own
interface) and removed with mastership, and a start removes it there if a crash left it.

Two daemons on an in-memory link (kernel fakes, as tests/test_vips_excluded.py); the kernel side
is tests/lab/test_vip_placement_lab.py.
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_interface
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import VIP, Node, until, write_config

from vrrpd.config.errors import ConfigError
from vrrpd.config.loader import parse_config
from vrrpd.config.model import VipPlacement
from vrrpd.kernel.fakes import FakeLink
from vrrpd.proto.events import State

OTHER = "198.51.100.100/24"  # on eth2, labelled
VIPS = [VIP, {"address": OTHER, "dev": "eth2", "label": "eth2:pacs"}]
LABELLED = "203.0.113.5/32"  # on the instance's interface, labelled
EXCLUDED = [{"address": LABELLED, "label": "lo:svc"}]


def test_vips_on_their_dev_with_labels(tmp_path: Path) -> None:
    async def main() -> None:
        link = FakeLink()
        lb1 = Node(link, tmp_path, "lb1", "192.0.2.11", 150, vips=VIPS, vips_excluded=EXCLUDED)
        lb2 = Node(link, tmp_path, "lb2", "192.0.2.12", 100, vips=VIPS, vips_excluded=EXCLUDED)
        other, labelled = ip_interface(OTHER), ip_interface(LABELLED)
        lb2.addresses.addresses["eth2"].add(other)  # a crashed earlier run's leftover
        try:
            await lb1.start()
            await lb2.start()
            assert other not in lb2.addresses.addresses["eth2"]  # reconciled on its dev
            await until(lambda: lb1.state() is State.MASTER and lb2.state() is State.BACKUP
                        and other in lb1.addresses.addresses["eth2"])
            assert lb1.addresses.addresses["lo"] == {ip_interface(VIP), labelled}
            assert lb1.addresses.labels == {other: "eth2:pacs", labelled: "lo:svc"}
            await until(lambda: lb1.announcers["eth2"].bursts and lb1.announcers["lo"].bursts)
            assert lb1.announcers["eth2"].bursts[0][0] == (other,)
            assert set(lb1.announcers["lo"].bursts[0][0]) == {ip_interface(VIP), labelled}
            await lb1.daemon.stop()  # lb2 takes over on both interfaces; lb1 keeps nothing
            await until(lambda: other in lb2.addresses.addresses["eth2"])
            assert not lb1.addresses.addresses["eth2"] and not lb1.addresses.addresses["lo"]
        finally:
            for n in (lb1, lb2):
                if n.daemon is not None and n.daemon.control is not None:
                    await n.daemon.stop()

    asyncio.run(main())


def test_loader_reads_placement(tmp_path: Path) -> None:
    path = write_config(tmp_path, "lb1", 100, vips=VIPS, vips_excluded=EXCLUDED)
    cfg = parse_config(path.read_text(), path, host=False).instances[0]
    assert cfg.vips == (ip_interface(VIP), ip_interface(OTHER))
    assert cfg.vip_placement == {ip_interface(OTHER): VipPlacement("eth2", "eth2:pacs"),
                                 ip_interface(LABELLED): VipPlacement(None, "lo:svc")}
    assert cfg.by_interface(cfg.held, "eth0") == {
        "eth0": (ip_interface(VIP), ip_interface(LABELLED)), "eth2": (ip_interface(OTHER),)}


@pytest.mark.parametrize(("vips", "reason"), [
    ([VIP, {"address": OTHER, "dev": "eth/2"}], r"vips\[1\].dev: 'eth/2' is not a valid"),
    ([VIP, {"address": OTHER, "label": "a-label-too-long"}], "not a valid address label"),
    ([VIP, {"address": OTHER, "device": "eth2"}], "did you mean 'dev'"),
    ([VIP, {"dev": "eth2"}], r"vips\[1\].address: is required"),
    ([VIP, {"address": VIP, "dev": "eth2"}], "is listed twice"),
    (["fe80::51/64", {"address": "2001:db8::100/64", "dev": "eth2"}],
     "dev and label are for IPv4 VIPs only"),
])
def test_broken_placement_is_refused_with_its_line(tmp_path: Path, vips: list[Any],
                                                   reason: str) -> None:
    path = write_config(tmp_path, "lb1", 100, vips=vips)
    with pytest.raises(ConfigError, match=reason) as info:
        parse_config(path.read_text(), path, host=False)
    assert str(info.value).startswith(f"{path}:")
