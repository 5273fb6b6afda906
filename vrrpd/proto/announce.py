"""Gratuitous ARP and unsolicited Neighbor Advertisement frames, sans I/O.

RFC 5798 §6.4.2 (transition to Master): "for each IPv4 address associated with the virtual
router, broadcast a gratuitous ARP request containing the virtual router MAC address"; for IPv6,
"for each IPv6 address associated with the virtual router, send an unsolicited ND Neighbor
Advertisement with the Router Flag (R) set to 1, the Solicited Flag (S) unset, the Override
flag (O) set, the target address set to the IPv6 address of the virtual router, and the target
link-layer address set to the virtual router MAC address."  §6.4.1 repeats this on startup as
owner.

The MAC announced is the one the VIPs answer from: the virtual router MAC with
``virtual_mac: true``, else the interface's own (like keepalived without ``use_vmac``).  The
Router flag is set as the RFC says; ``na_router_flag: false`` clears it for VIPs that are no
router (hosts record the flag as the neighbour's IsRouter, RFC 4861 §7.2.5; it does not by
itself make them route through the VIP: only Router Advertisements do that).

The bytes built here are whole Ethernet frames for an AF_PACKET socket
(:mod:`vrrpd.kernel.announcer`).
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

from vrrpd.proto.checksum import IPPROTO_ICMPV6, inet_checksum, pseudo_header
from vrrpd.proto.numbers import VRID_MAX

ETH_BROADCAST = b"\xff" * 6
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_MIN_FRAME = 60  # IEEE 802.3 minimum frame size without the FCS
ALL_NODES = IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"  # RFC 2464 §7: 33:33 + low 32 bits of ff02::1

ARP_REQUEST = 1
ICMPV6_NEIGHBOR_ADVERTISEMENT = 136
NA_FLAG_ROUTER = 0x80000000  # RFC 4861 §4.4: R, S=0x40000000 (never set here), O
NA_FLAG_OVERRIDE = 0x20000000
ND_OPT_TARGET_LINKADDR = 2
ND_HOP_LIMIT = 255  # RFC 4861 §7.1.2: receivers drop NAs whose hop limit is not 255

_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_NA = struct.Struct("!BBHI16sBB6s")


def virtual_router_mac(family: int, vrid: int) -> bytes:
    """RFC 5798 §7.3: "00-00-5E-00-01-{VRID}" for IPv4 (RFC 3768 §7.3 alike), "00-00-5E-00-02-
    {VRID}" for IPv6 - the IANA block, the family, then the VRID in hex."""
    if not 1 <= vrid <= VRID_MAX or family not in (4, 6):
        raise ValueError(f"no virtual router MAC for IPv{family} VRID {vrid}")
    return bytes((0x00, 0x00, 0x5E, 0x00, 1 if family == 4 else 2, vrid))


def _ethernet(dst: bytes, src: bytes, ethertype: int) -> bytes:
    if len(src) != 6:
        raise ValueError(f"MAC address must be 6 bytes, got {len(src)}")
    return _ETH.pack(dst, src, ethertype)


def gratuitous_arp(mac: bytes, vip: IPv4Address) -> bytes:
    """A broadcast gratuitous ARP request announcing that ``vip`` is at ``mac``.

    RFC 5798 §6.4.2 asks for a gratuitous ARP *request*; RFC 5227 §3 (ARP Announcement) gives
    its form: sender and target protocol address both the VIP, target hardware address zero.
    That is also what keepalived sends.  Padded to the 60-byte Ethernet minimum.
    """
    arp = _ARP.pack(1, 0x0800, 6, 4, ARP_REQUEST, mac, vip.packed, bytes(6), vip.packed)
    frame = _ethernet(ETH_BROADCAST, mac, ETH_P_ARP) + arp
    return frame.ljust(ETH_MIN_FRAME, b"\x00")


def unsolicited_na(mac: bytes, src: IPv6Address, vip: IPv6Address, *,
                   router: bool = True) -> bytes:
    """An unsolicited Neighbor Advertisement for ``vip`` at ``mac``, sent to all nodes.

    RFC 4861 §7.2.6: unsolicited NAs go to ff02::1 with the Solicited flag clear and the
    Override flag set; RFC 5798 §6.4.2: "with the Router Flag (R) set to 1" (``router``).
    It carries a Target Link-Layer Address option (RFC 4861 §4.6.1).  RFC 4861 §4.4 gives
    the message layout; §7.1.2 requires hop limit 255.  ``src`` is the interface's own
    link-local address; the ICMPv6 checksum covers the RFC 8200 §8.1 pseudo-header.
    """
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_ROUTER if router else 0)
    icmp = _NA.pack(ICMPV6_NEIGHBOR_ADVERTISEMENT, 0, 0, flags, vip.packed,
                    ND_OPT_TARGET_LINKADDR, 1, mac)
    csum = inet_checksum(pseudo_header(src, ALL_NODES, len(icmp), IPPROTO_ICMPV6) + icmp)
    icmp = icmp[:2] + struct.pack("!H", csum) + icmp[4:]
    ipv6 = _IPV6.pack(6 << 28, len(icmp), IPPROTO_ICMPV6, ND_HOP_LIMIT, src.packed,
                      ALL_NODES.packed)
    return _ethernet(ALL_NODES_MAC, mac, ETH_P_IPV6) + ipv6 + icmp
