"""``src_ip`` (keepalived's unicast_src_ip / mcast_src_ip, issue 15 part 2): adverts leave from
a configured address of the host instead of the interface's primary one, multicast and
unicast; the peer sees that address as the master's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.daemons import Vrrpd, wait_for
from lab.netns import Topology

VIP = "192.0.2.100/24"
SECOND = "192.0.2.21"  # lb1's second address, its adverts' source


@pytest.mark.parametrize("unicast", [False, True], ids=["multicast", "unicast"])
def test_adverts_leave_from_src_ip(two_nodes: Topology, tmp_path: Path, unicast: bool) -> None:
    two_nodes.nodes["lb1"].ns.run(f"ip addr add {SECOND}/24 dev eth0")
    peers = {"unicast_peers": ["192.0.2.12"]} if unicast else {}
    lb1 = Vrrpd(two_nodes.nodes["lb1"], tmp_path, [{
        "name": "web", "interface": "eth0", "vrid": 51, "priority": 150,
        "advert_interval": 0.1, "vips": [VIP], "src_ip": SECOND, **peers}])
    lb2 = Vrrpd(two_nodes.nodes["lb2"], tmp_path, [{
        "name": "web", "interface": "eth0", "vrid": 51, "priority": 100,
        "advert_interval": 0.1, "vips": [VIP],
        **({"unicast_peers": [SECOND]} if unicast else {})}])
    try:
        lb1.start().wait_state("web", "MASTER")
        lb2.start().wait_state("web", "BACKUP")
        wait_for(lambda: lb2.instance("web")["master"] == SECOND, 5,
                 f"lb2 to see {SECOND} as the master")
        assert lb1.instance("web")["counters"].get("send_errors", 0) == 0
        assert lb2.instance("web")["dropped"] == {}
    finally:
        lb1.stop()
        lb2.stop()
