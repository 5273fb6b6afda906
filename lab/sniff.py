"""A packet sniffer for lab nodes: VRRP adverts, gratuitous ARPs and unsolicited NAs.

:class:`Sniffer` opens an ``AF_PACKET`` socket *inside* a node's namespace and records, in a
background thread, every frame of interest with the kernel's receive timestamp
(``SO_TIMESTAMPNS``), so the timing does not depend on how promptly Python reads the socket.
The benchmarks use it for advert spacing per VRID, the chaos tests to see the winner of a
healed partition re-announce its VIPs::

    with Sniffer(lab.nodes["lb2"]) as sniff:
        time.sleep(5)
    gaps = spacing(sniff.frames(), source="192.0.2.11")

Only what the lab needs is parsed: IPv4 / IPv6 VRRP (protocol / next header 112, no IPv6
extension headers, as RFC 5798 §5.1.2 sends them), ARP with sender == target IP (gratuitous),
and ICMPv6 Neighbor Advertisements (type 136).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import threading
from collections import defaultdict
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address

from lab.netns import Node

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>; missing from Python's socket module
PACKET_OUTGOING = 4  # sll_pkttype of frames this host sent
IPPROTO_VRRP = 112
ICMPV6 = 58
ND_NEIGHBOR_ADVERT = 136


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of interest.  ``kind`` is ``vrrp``, ``garp`` or ``na``.

    ``at`` is the kernel receive time (seconds, wall clock); ``src`` the IP source (for a
    gratuitous ARP its sender address); ``vrid``/``priority`` are set for VRRP only;
    ``target`` is the announced address of a GARP / NA; ``mac`` the Ethernet source
    (``aa:bb:...``): which node sent it; ``dst`` the IP destination of VRRP and NA frames
    (multicast, or a unicast peer); ``sent`` whether the sniffed node sent it itself (with
    ``outgoing``; two routers on one virtual MAC differ only in this).
    """

    at: float
    kind: str
    src: str
    vrid: int = 0
    priority: int = 0
    target: str = ""
    mac: str = ""
    dst: str = ""
    sent: bool = False


def parse(ethertype: int, data: bytes, at: float, mac: str = "") -> Frame | None:
    """The :class:`Frame` for a network-layer packet of ``ethertype``, or None if uninteresting."""
    if ethertype == ETH_P_IP and len(data) >= 20 and data[9] == IPPROTO_VRRP:
        ihl = (data[0] & 0x0F) * 4
        if len(data) >= ihl + 3:
            return Frame(at, "vrrp", str(IPv4Address(data[12:16])), data[ihl + 1],
                         data[ihl + 2], mac=mac, dst=str(IPv4Address(data[16:20])))
    elif ethertype == ETH_P_IPV6 and len(data) >= 43:
        src, dst = str(IPv6Address(data[8:24])), str(IPv6Address(data[24:40]))
        if data[6] == IPPROTO_VRRP:
            return Frame(at, "vrrp", src, data[41], data[42], mac=mac, dst=dst)
        if data[6] == ICMPV6 and data[40] == ND_NEIGHBOR_ADVERT and len(data) >= 64:
            return Frame(at, "na", src, target=str(IPv6Address(data[48:64])), mac=mac,
                         dst=dst)
    elif ethertype == ETH_P_ARP and len(data) >= 28 and data[14:18] == data[24:28]:
        sender = str(IPv4Address(data[14:18]))
        return Frame(at, "garp", sender, target=sender, mac=mac)
    return None


class Sniffer:
    """Records VRRP / GARP / NA frames arriving on ``node``'s interface until :meth:`stop`.

    Frames the node sends itself are skipped unless ``outgoing`` is true.  A context manager;
    the thread and socket are gone after ``with``.
    """

    def __init__(self, node: Node, outgoing: bool = False) -> None:
        self.node = node
        self.outgoing = outgoing
        with node.ns.entered():
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                                       socket.htons(ETH_P_ALL))
            self._sock.bind((node.ifname, ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._sock.settimeout(0.1)
        self._frames: list[Frame] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sniff-{node.name}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, anc, _flags, addr = self._sock.recvmsg(2048, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            if addr[2] == PACKET_OUTGOING and not self.outgoing:
                continue
            at = 0.0
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", raw[:16])
                    at = sec + nsec / 1e9
            frame = parse(addr[1], data, at, addr[4].hex(":"))
            if frame is not None and addr[2] == PACKET_OUTGOING:
                frame = replace(frame, sent=True)
            if frame is not None:
                with self._lock:
                    self._frames.append(frame)

    def frames(self, kind: str | None = None, since: float = 0.0) -> list[Frame]:
        """The frames recorded so far (of ``kind``, received at or after ``since``)."""
        with self._lock:
            return [f for f in self._frames
                    if (kind is None or f.kind == kind) and f.at >= since]

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> Sniffer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def spacing(frames: list[Frame], sources: set[str]) -> dict[int, list[float]]:
    """Gaps in seconds between consecutive adverts of each VRID sent from ``sources``."""
    stamps: dict[int, list[float]] = defaultdict(list)
    for f in frames:
        if f.kind == "vrrp" and f.src in sources:
            stamps[f.vrid].append(f.at)
    return {vrid: [b - a for a, b in itertools.pairwise(sorted(at))]
            for vrid, at in stamps.items()}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
