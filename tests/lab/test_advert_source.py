"""The IPv6 advert source is the interface's own link-local address, never a VIP (RFC 5798
§5.1.2.1; §5.2.9 makes the first IPv6 VIP a link-local address too, so a VIP left on the
interface by a crash looks just like one).  Without a link-local of its own the instance waits
in FAULT, saying why."""

from __future__ import annotations

from pathlib import Path

from lab.daemons import Vrrpd, wait_for
from lab.netns import Topology

VIPS = ["fe80::100/64", "2001:db8::100/64"]


def test_stale_link_local_vip_is_never_the_source(two_nodes: Topology,
                                                  tmp_path: Path) -> None:
    lb1 = two_nodes.nodes["lb1"]
    own = lb1.link_local()
    lb1.ns.run(["ip", "addr", "add", VIPS[0], "dev", "eth0", "nodad"])  # left by a crash
    listed = [a["local"] for a in lb1.ns.addresses("eth0") if a["family"] == "inet6"]
    assert listed.index("fe80::100") < listed.index(own)  # the kernel lists it first
    daemon = Vrrpd(lb1, tmp_path, [{"name": "web6", "interface": "eth0", "vrid": 53,
                                    "priority": 150, "advert_interval": 0.1, "vips": VIPS}])
    try:
        daemon.start().wait_state("web6", "MASTER")
        endpoint = next(e for e in daemon.ctl("status")["endpoints"] if e["family"] == 6)
        assert endpoint["primary_address"] == own
        # Take the interface's own link-local away: only the VIP is left, which does not count.
        lb1.ns.run(["ip", "addr", "del", f"{own}/64", "dev", "eth0"])
        daemon.wait_state("web6", "FAULT")
        endpoint = next(e for e in daemon.ctl("status")["endpoints"] if e["family"] == 6)
        assert "link-local address of its own" in endpoint["problem"], endpoint
        assert "a link-local VIP does not count" in endpoint["problem"]
        wait_for(lambda: "link-local VIP does not count" in daemon.log(), 3, "the log line")
    finally:
        daemon.stop()
        print(daemon.log()[-3000:])
