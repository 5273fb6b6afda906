"""Gratuitous ARP / unsolicited NA frames, cross-checked against scapy's dissectors."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6, in6_chksum
from scapy.layers.l2 import ARP, Ether

from vrrpd.proto.announce import gratuitous_arp, unsolicited_na

MAC = bytes.fromhex("020000000b11")
MAC_TEXT = "02:00:00:00:0b:11"
LINK_LOCAL = IPv6Address("fe80::ff:fe00:b11")


def test_gratuitous_arp_is_an_rfc5227_announcement() -> None:
    """RFC 5798 §6.4.2 + RFC 5227 §3: broadcast request, sender IP = target IP = VIP."""
    frame = gratuitous_arp(MAC, IPv4Address("192.0.2.100"))
    eth = Ether(frame)
    assert len(frame) == 60
    assert (eth.dst, eth.src, eth.type) == ("ff:ff:ff:ff:ff:ff", MAC_TEXT, 0x0806)
    arp = eth[ARP]
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op) == (1, 0x0800, 6, 4, 1)
    assert (arp.hwsrc, arp.psrc) == (MAC_TEXT, "192.0.2.100")
    assert (arp.hwdst, arp.pdst) == ("00:00:00:00:00:00", "192.0.2.100")


def test_gratuitous_arp_golden_bytes() -> None:
    """The 42 meaningful bytes, then zero padding to the Ethernet minimum."""
    frame = gratuitous_arp(MAC, IPv4Address("192.0.2.100"))
    assert frame.hex() == (
        "ffffffffffff" "020000000b11" "0806"
        "0001" "0800" "06" "04" "0001"
        "020000000b11" "c0000264" "000000000000" "c0000264"
    ) + "00" * 18


@pytest.mark.parametrize(("kwargs", "r_flag"), [({}, 1), ({"router": True}, 1),
                                                ({"router": False}, 0)])
def test_unsolicited_na_router_flag(kwargs: dict[str, bool], r_flag: int) -> None:
    """RFC 5798 §6.4.2: "send an unsolicited ND Neighbor Advertisement with the Router Flag
    (R) set to 1" - the default; ``na_router_flag: false`` clears it (and nothing else)."""
    frame = unsolicited_na(MAC, LINK_LOCAL, IPv6Address("2001:db8::100"), **kwargs)
    na = Ether(frame)[ICMPv6ND_NA]
    assert r_flag == na.R
    assert (na.S, na.O) == (0, 1)
    cksum = na.cksum
    na.cksum = 0
    assert in6_chksum(58, Ether(frame)[IPv6], bytes(na)) == cksum


def test_unsolicited_na_fields() -> None:
    """RFC 4861 §7.2.6 / RFC 5798 §6.4.2: to ff02::1, R and O set, S clear, TLLA = MAC."""
    frame = unsolicited_na(MAC, LINK_LOCAL, IPv6Address("2001:db8::100"))
    eth = Ether(frame)
    assert (eth.dst, eth.src, eth.type) == ("33:33:00:00:00:01", MAC_TEXT, 0x86DD)
    ip6 = eth[IPv6]
    assert (ip6.src, ip6.dst, ip6.hlim, ip6.nh, ip6.plen) == (
        str(LINK_LOCAL), "ff02::1", 255, 58, 32)
    na = eth[ICMPv6ND_NA]
    assert (na.type, na.code, na.R, na.S, na.O) == (136, 0, 1, 0, 1)
    assert na.tgt == "2001:db8::100"
    opt = eth[ICMPv6NDOptDstLLAddr]
    assert (opt.type, opt.len, opt.lladdr) == (2, 1, MAC_TEXT)


@pytest.mark.parametrize("vip", ["2001:db8::100", "2001:db8::ffff:1", "fe80::1"])
def test_unsolicited_na_checksum_matches_scapy(vip: str) -> None:
    """The ICMPv6 checksum covers the RFC 8200 §8.1 pseudo-header; scapy recomputes it."""
    frame = unsolicited_na(MAC, LINK_LOCAL, IPv6Address(vip))
    na = Ether(frame)[ICMPv6ND_NA]
    ours = na.cksum
    assert ours != 0
    na.cksum = 0
    assert in6_chksum(58, Ether(frame)[IPv6], bytes(na)) == ours


def test_corrupted_na_fails_the_checksum() -> None:
    """The cross-check can fail: flipping one target bit breaks the checksum."""
    frame = bytearray(unsolicited_na(MAC, LINK_LOCAL, IPv6Address("2001:db8::100")))
    frame[-9] ^= 1  # last byte of the target address
    na = Ether(bytes(frame))[ICMPv6ND_NA]
    ours = na.cksum
    na.cksum = 0
    assert in6_chksum(58, Ether(bytes(frame))[IPv6], bytes(na)) != ours


def test_bad_mac_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="6 bytes"):
        gratuitous_arp(b"\x02\x00", IPv4Address("192.0.2.100"))
