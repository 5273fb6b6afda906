"""Put crafted VRRP frames on a lab switch from a node that is not a configured router.

:class:`Injector` holds an AF_PACKET socket on a node's ``eth0`` and sends whole Ethernet
frames built with scapy; :func:`rogue_advert` is a well-formed VRRP advert from that node (a
rogue router).  The hostile-input and rogue-peer lab tests and ``benchmarks/vrrp_flood.py``
use it.
"""

from __future__ import annotations

import socket
import time

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vrrp import VRRPv3
from scapy.packet import Packet

from lab.netns import Node

VRRP_TTL = 255  # RFC 5798 §5.1.1.3: anything else is dropped on receipt


class Injector:
    """An AF_PACKET socket on ``node``'s interface: sends whole Ethernet frames."""

    def __init__(self, node: Node) -> None:
        with node.ns.entered():
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            self.sock.bind((node.ifname, 0))
            self.mac = self.sock.getsockname()[4]
        self.src4 = str(node.ipv4.ip)
        self.src6 = node.link_local() or ""

    def ip(self, family: int, ttl: int = VRRP_TTL) -> Packet:
        """Ethernet + IP header of a VRRP packet to 224.0.0.18 / ff02::12 from this node."""
        if family == 4:
            return (Ether(src=self.mac, dst="01:00:5e:00:00:12")
                    / IP(src=self.src4, dst="224.0.0.18", ttl=ttl, proto=112))
        return (Ether(src=self.mac, dst="33:33:00:00:00:12")
                / IPv6(src=self.src6, dst="ff02::12", hlim=ttl, nh=112))

    def send(self, frames: list[bytes], pace: int = 200) -> None:
        """Send ``frames``, pausing 10 ms after every ``pace`` so the receivers' socket
        buffers keep up (the point is what the daemons do with packets, not kernel drops)."""
        for i, frame in enumerate(frames):
            self.sock.send(frame)
            if i % pace == pace - 1:
                time.sleep(0.01)

    def close(self) -> None:
        self.sock.close()


def rogue_advert(inj: Injector, vrid: int, addresses: list[str], priority: int = 254,
                 interval_cs: int = 10) -> bytes:
    """A well-formed VRRPv3 IPv4 advert for ``vrid`` from the injector's node."""
    return bytes(inj.ip(4) / VRRPv3(vrid=vrid, priority=priority, adv=interval_cs,
                                   addrlist=addresses))
