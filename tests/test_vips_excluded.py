"""keepalived's virtual_ipaddress_excluded (issue 15 part 2): ``vips_excluded`` are added,
announced and removed with mastership like the VIPs, but never carried in adverts (so a router
with hundreds of addresses keeps its adverts short).

Two daemons on an in-memory link (kernel fakes, as tests/test_daemon.py).
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_address, ip_interface
from pathlib import Path

import pytest
import yaml
from daemon_helpers import VIP, Node, ctl, until, write_config

from vrrpd.config.errors import ConfigError
from vrrpd.config.loader import parse_config
from vrrpd.kernel.fakes import FakeLink
from vrrpd.proto.events import State
from vrrpd.proto.packet import decode

EXCLUDED = ["192.0.2.101/24", "198.51.100.7/32"]


def test_excluded_vips_follow_mastership_outside_the_adverts(tmp_path: Path) -> None:
    async def main() -> None:
        link = FakeLink()
        lb1 = Node(link, tmp_path, "lb1", "192.0.2.11", 150, vips_excluded=EXCLUDED)
        lb2 = Node(link, tmp_path, "lb2", "192.0.2.12", 100, vips_excluded=EXCLUDED)
        held = {ip_interface(v) for v in [VIP, *EXCLUDED]}
        try:
            await lb1.start()
            await lb2.start()
            await until(lambda: lb1.state() is State.MASTER and lb2.state() is State.BACKUP
                        and held <= lb1.addresses.addresses["lo"])
            assert not held & lb2.addresses.addresses["lo"]
            # the actions run on the driver's worker: wait for an advert and a burst
            await until(lambda: any(src == lb1.address for src, _, _ in link.sent)
                        and lb1.announcers["lo"].bursts)
            adverts = [decode(p, src, dst) for src, dst, p in link.sent if src == lb1.address]
            assert {a.addresses for a in adverts} == {(ip_address("192.0.2.100"),)}
            announced = {v for vips, _count, _ in lb1.announcers["lo"].bursts for v in vips}
            assert announced == held
            # a reload adding an excluded address applies it in place
            doc = yaml.safe_load(lb1.path.read_text())
            doc["instances"][0]["vips_excluded"] = [*EXCLUDED, "203.0.113.9/32"]
            lb1.path.write_text(yaml.safe_dump(doc))
            reply = await ctl(lb1, "reload")
            assert reply["ok"] and reply["result"]["updated"] == ["web"], reply
            await until(lambda: ip_interface("203.0.113.9/32") in lb1.addresses.addresses["lo"])
            await lb1.daemon.stop()  # lb2 takes over everything, lb1 keeps nothing
            await until(lambda: held <= lb2.addresses.addresses["lo"])
            assert not held & lb1.addresses.addresses["lo"]
        finally:
            for n in (lb1, lb2):
                if n.daemon is not None and n.daemon.control is not None:
                    await n.daemon.stop()

    asyncio.run(main())


@pytest.mark.parametrize(("excluded", "reason"), [
    (["192.0.2.100/24"], "is listed twice"),
    (["2001:db8::5/64"], "the VIPs are IPv4: make a second instance"),
])
def test_excluded_vips_are_checked(tmp_path: Path, excluded: list[str], reason: str) -> None:
    path = write_config(tmp_path, "lb1", 100, vips_excluded=excluded)
    with pytest.raises(ConfigError, match=reason):
        parse_config(path.read_text(), path, host=False)
