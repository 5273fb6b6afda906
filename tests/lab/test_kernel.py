"""The kernel layer against the real kernel: two nodes on a bridge (the ``two_nodes`` fixture).

Sockets are opened inside ``node.ns.entered()`` and keep working in their namespace after the
block, so one test drives both nodes.
"""

from __future__ import annotations

import asyncio
import select
import socket
import time
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from lab.netns import Node, Topology
from vrrpd.kernel import conntrack, link
from vrrpd.kernel.addresses import AddressManager
from vrrpd.kernel.announcer import Announcer
from vrrpd.kernel.drain_forward import forget_unknown_flows
from vrrpd.kernel.link import InterfaceWatcher
from vrrpd.kernel.vrrp_socket import ReceivedPacket, VrrpSocket
from vrrpd.proto.numbers import VRRP_GROUP
from vrrpd.proto.packet import Advertisement, decode, encode

VIPS = {4: [ip_interface("192.0.2.100/24"), ip_interface("192.0.2.101/32")],
        6: [ip_interface("2001:db8::100/64")]}
ETH_P_ALL = 0x0003


def open_socket(node: Node, family: int) -> VrrpSocket:
    with node.ns.entered():
        return VrrpSocket(node.ifname, family)


def wait_packet(sock: VrrpSocket, timeout: float = 2.0) -> ReceivedPacket | None:
    """The next packet on ``sock`` within ``timeout`` seconds, else None."""
    if not select.select([sock], [], [], timeout)[0]:
        return None
    return sock.receive()


def advert(sock: VrrpSocket, family: int, dst: IPv4Address | IPv6Address) -> bytes:
    first = sock.primary_address if family == 6 else VIPS[4][0].ip
    addresses = (first, *(vip.ip for vip in VIPS[family]))
    return encode(Advertisement(3, 51, 200, 100, addresses), sock.primary_address, dst)


@pytest.mark.parametrize("family", [4, 6])
def test_advert_crosses_the_bridge_with_ttl_255(two_nodes: Topology, family: int) -> None:
    """RFC 5798 §5.1.1.3 / §5.1.2.3: sent with TTL / hop limit 255 to the VRRP group, from
    the primary IPv4 / link-local address (§5.1.1.1 / §5.1.2.1); received faithfully."""
    lb1, lb2 = two_nodes.nodes["lb1"], two_nodes.nodes["lb2"]
    tx, rx = open_socket(lb1, family), open_socket(lb2, family)
    try:
        group = VRRP_GROUP[family]
        expected_src = lb1.ipv4.ip if family == 4 else ip_address(lb1.link_local() or "")
        assert tx.primary_address == expected_src
        payload = advert(tx, family, group)
        tx.send(payload, group)
        packet = wait_packet(rx)
        assert packet == ReceivedPacket(payload, expected_src, group, 255)
        assert decode(packet.payload, packet.src, packet.dst).priority == 200
        assert rx.receive() is None  # exactly one; then EAGAIN
        assert wait_packet(tx, 0.3) is None  # IP(V6)_MULTICAST_LOOP off: no copy to ourselves
    finally:
        tx.close()
        rx.close()


@pytest.mark.parametrize("family", [4, 6])
def test_unicast_advert_to_a_peer(two_nodes: Topology, family: int) -> None:
    """Unicast mode: sent straight to the peer's address, still from our source, TTL 255."""
    lb1, lb2 = two_nodes.nodes["lb1"], two_nodes.nodes["lb2"]
    tx, rx = open_socket(lb1, family), open_socket(lb2, family)
    try:
        peer = lb2.ipv4.ip if family == 4 else lb2.ipv6.ip
        tx.send(advert(tx, family, peer), peer)
        packet = wait_packet(rx)
        assert packet is not None
        assert (packet.src, packet.dst, packet.ttl) == (tx.primary_address, peer, 255)
    finally:
        tx.close()
        rx.close()


def test_packets_from_own_address_are_dropped(two_nodes: Topology) -> None:
    """A packet with one of our own addresses as source never reaches the caller."""
    lb1 = two_nodes.nodes["lb1"]
    vrrp = open_socket(lb1, 4)
    with lb1.ns.entered():
        looping = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    try:
        looping.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        looping.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        looping.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
        looping.sendto(advert(vrrp, 4, VRRP_GROUP[4]), (str(VRRP_GROUP[4]), 0))
        assert wait_packet(vrrp) is None
        assert vrrp.own_source_dropped == 1
    finally:
        looping.close()
        vrrp.close()


def test_socket_on_missing_interface_says_so(two_nodes: Topology) -> None:
    with two_nodes.nodes["lb1"].ns.entered(), pytest.raises(OSError, match="nope0"):
        VrrpSocket("nope0", 4)


@pytest.mark.parametrize("family", [4, 6])
def test_address_manager_is_idempotent_and_confirmed(two_nodes: Topology,
                                                     family: int) -> None:
    """Design seam 4: adding twice / removing twice is fine; each change is visible after."""
    lb1 = two_nodes.nodes["lb1"]
    lb1.ns.sysctl("net.ipv6.conf.eth0.accept_dad", 1)  # so that only IFA_F_NODAD avoids DAD
    vips = VIPS[family]

    async def scenario() -> None:
        async with AddressManager() as manager:
            before = await manager.present("eth0")
            await manager.add("eth0", vips)
            await manager.add("eth0", vips)
            assert await manager.present("eth0") == before | set(vips)
            kernel = {f"{a['local']}/{a['prefixlen']}": a for a in lb1.ns.addresses("eth0")}
            for vip in vips:
                assert not kernel[str(vip)].get("tentative")
                if family == 6:
                    assert kernel[str(vip)].get("nodad")
                elif vip.network.prefixlen == 24:
                    assert kernel[str(vip)]["broadcast"] == "192.0.2.255"
            await manager.remove("eth0", vips)
            await manager.remove("eth0", vips)
            assert await manager.present("eth0") == before

    with lb1.ns.entered():
        asyncio.run(scenario())


def sniff(node: Node) -> socket.socket:
    """An AF_PACKET socket seeing every frame arriving on ``node``'s interface."""
    with node.ns.entered():
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind((node.ifname, 0))
    sock.settimeout(2.0)
    return sock


def frames(sniffer: socket.socket, wanted: int) -> list[Ether]:
    """Collect ``wanted`` ARP / neighbor-advertisement frames (others are skipped)."""
    found: list[Ether] = []
    while len(found) < wanted:
        frame = Ether(sniffer.recv(2048))
        if ARP in frame or ICMPv6ND_NA in frame:
            found.append(frame)
    return found


def test_announcer_frames_reach_the_other_node(two_nodes: Topology) -> None:
    """RFC 5798 §6.4.2: every VIP announced ``count`` times; lb2 sees lb1's frames."""
    lb1, lb2 = two_nodes.nodes["lb1"], two_nodes.nodes["lb2"]
    sniffer = sniff(lb2)
    with lb1.ns.entered():
        announcer = Announcer("eth0")
        announcer.refresh_addresses()  # the daemon does this once eth0 is usable
        mac = link.mac("eth0").hex(":")
    vips = [VIPS[4][0], VIPS[6][0]]
    try:
        asyncio.run(announcer.send_burst(vips, count=3, interval=0.01,
                                         na_source=ip_address(lb1.link_local() or "")))
        seen = frames(sniffer, 6)
    finally:
        announcer.close()
        sniffer.close()
    arps = [f for f in seen if ARP in f]
    nas = [f for f in seen if ICMPv6ND_NA in f]
    assert len(arps) == len(nas) == 3
    for frame in arps:
        assert (frame.src, frame[ARP].op, frame[ARP].psrc, frame[ARP].pdst) == (
            mac, 1, "192.0.2.100", "192.0.2.100")
    for frame in nas:
        assert (frame.src, frame[IPv6].src, frame[IPv6].hlim) == (mac, lb1.link_local(), 255)
        assert frame[ICMPv6ND_NA].R == 1  # RFC 5798 §6.4.2
        assert (frame[ICMPv6ND_NA].tgt, frame[ICMPv6NDOptDstLLAddr].lladdr) == (
            "2001:db8::100", mac)


def test_interface_watcher_follows_carrier_and_addresses(two_nodes: Topology) -> None:
    """lb1's eth0: cable pulled, replugged, IPv4 address removed, added back: one IPv4 event
    each, with the reason; IPv6 (watched too) stays usable without its IPv4 address."""
    node = two_nodes.nodes["lb1"]

    async def scenario() -> list[str | None]:
        async with InterfaceWatcher() as watcher:
            assert watcher.watch("eth0", 4, frozenset()).source == IPv4Address("192.0.2.11")
            assert watcher.watch("eth0", 6, frozenset()).problem is None
            events = watcher.events()
            seen = []
            for change in (lambda: two_nodes.set_link("lb1", up=False),
                           lambda: two_nodes.set_link("lb1", up=True),
                           lambda: node.ns.run(["ip", "addr", "del", str(node.ipv4), "dev",
                                                "eth0"]),
                           lambda: node.ns.run(["ip", "addr", "add", str(node.ipv4), "dev",
                                                "eth0"])):
                change()
                while True:  # carrier changes concern both families; wait for IPv4's
                    state = await asyncio.wait_for(anext(events), 5)
                    if state.family == 4:
                        seen.append(state.problem)
                        break
            assert watcher.states[("eth0", 6)].problem is None
            return seen

    with node.ns.entered():
        seen = asyncio.run(scenario())
    assert seen == ["eth0 has no carrier (cable, switch port or peer link down)", None,
                    link.NO_SOURCE[4].format(ifname="eth0"), None]


def test_interface_watcher_ignores_its_vips(two_nodes: Topology,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding and removing the excluded addresses (the VIPs) re-reads nothing: they cannot
    change readiness, and a master of 255 instances moves 255 at once.  The interface's own
    address still counts, for its family only."""
    node = two_nodes.nodes["lb1"]
    vips = [ip_interface(f"192.0.2.{100 + i}/32") for i in range(20)]
    reads: list[tuple[str, int]] = []
    real = link.readiness

    def counting(name: str, family: int, exclude: frozenset[IPv4Address]) -> link.Readiness:
        reads.append((name, family))
        return real(name, family, exclude)

    monkeypatch.setattr(link, "readiness", counting)

    async def scenario() -> link.Readiness:
        async with InterfaceWatcher() as watcher:
            watcher.watch("eth0", 4, frozenset(v.ip for v in vips))
            watcher.watch("eth0", 6, frozenset())
            reads.clear()
            events = watcher.events()
            first = asyncio.ensure_future(anext(events))
            for op in ("add", "del"):
                for vip in vips:
                    node.ns.run(["ip", "addr", op, str(vip), "dev", "eth0"])
                await asyncio.sleep(0.5)  # the watcher reads these notifications
            assert not first.done() and reads == []
            node.ns.run(["ip", "addr", "del", str(node.ipv4), "dev", "eth0"])
            return await asyncio.wait_for(first, 5)

    with node.ns.entered():
        state = asyncio.run(scenario())
    assert state.problem == link.NO_SOURCE[4].format(ifname="eth0")
    assert reads == [("eth0", 4)]


@pytest.mark.parametrize("family", [4, 6])
def test_a_new_master_forgets_conntrack_entries_of_closed_flows(two_nodes: Topology,
                                                                family: int) -> None:
    """Before forwarding a drain (vrrpd.kernel.drain_forward), the new master deletes the
    conntrack entries of TCP flows to its VIPs that no socket of its own serves: those this
    host closed (TIME_WAIT) go, a live connection's stays.  IPv4 and IPv6, over ctnetlink."""
    lb1, lb2 = two_nodes.nodes["lb1"], two_nodes.nodes["lb2"]
    vip = VIPS[family][0]
    lb1.ns.run(["ip", "addr", "add", str(vip), "dev", lb1.ifname, *(["nodad"] * (family == 6))])
    # conntrack runs in a namespace only while a rule needs it (a host firewall's, here)
    lb1.ns.run(["nft", "add table inet vtfirewall; add chain inet vtfirewall input { type "
                "filter hook input priority 0 ; }; add rule inet vtfirewall input ct state "
                "established,related accept"])
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    with lb1.ns.entered():
        server = socket.socket(af, socket.SOCK_STREAM)
    server.bind((str(vip.ip), 8080))
    server.listen()
    kept: list[socket.socket] = []
    try:
        with lb2.ns.entered():
            clients = [socket.create_connection((str(vip.ip), 8080), timeout=5)
                       for _ in range(4)]
        accepted = [server.accept()[0] for _ in clients]
        for conn in accepted[:3]:  # this host closes first: TIME_WAIT here
            conn.close()
        for client in clients[:3]:
            assert client.recv(1) == b""
            client.close()
        kept = [accepted[3], clients[3]]  # a live connection
        live = (ip_address(clients[3].getsockname()[0]), clients[3].getsockname()[1], vip.ip,
                8080)
        with lb1.ns.entered():
            for _ in range(50):  # the last ACKs of the closes reach lb1
                if len(conntrack.tcp_entries_to(af, [vip.ip])) == 4:
                    break
                time.sleep(0.02)
            assert len(conntrack.tcp_entries_to(af, [vip.ip])) == 4
            assert forget_unknown_flows((vip,)) == 3
            assert set(conntrack.tcp_entries_to(af, [vip.ip])) == {live}
    finally:
        for s in (server, *kept):
            s.close()
