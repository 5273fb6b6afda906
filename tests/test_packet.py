"""Codec ring: golden vectors, scapy cross-checks, every DecodeError reason, fuzzing.

Golden vectors are hex of the VRRP message (the IP payload).  scapy's ``VRRP`` / ``VRRPv3``
layers are an independent implementation; where both agree the bytes are very likely right.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Packet

from vrrpd.proto.checksum import inet_checksum, pseudo_header
from vrrpd.proto.numbers import IPPROTO_VRRP
from vrrpd.proto.packet import (
    AUTH_SIMPLE_TEXT,
    Advertisement,
    ChecksumForm,
    DecodeError,
    DropReason,
    IPAddress,
    decode,
    encode,
    simple_text_auth,
)

SRC4, DST4 = IPv4Address("192.168.100.1"), IPv4Address("224.0.0.18")
SRC6, DST6 = IPv6Address("fe80::1"), IPv6Address("ff02::12")
VIP4 = IPv4Address("192.168.100.254")
VIPS6 = (IPv6Address("fe80::51"), IPv6Address("2001:db8::100"))

V3_IPV4 = Advertisement(3, 1, 100, 100, (VIP4,))
V2_IPV4 = Advertisement(2, 1, 100, 100, (VIP4,))
V3_IPV6 = Advertisement(3, 1, 100, 100, VIPS6, checksum_form=ChecksumForm.PSEUDO_HEADER)

V3_PSEUDO_HEX = "3101640100643fb9c0a864fe"
V3_RFC9568_HEX = "31016401006444f2c0a864fe"
V2_HEX = "2101640100015555c0a864fe0000000000000000"
V3_IPV6_HEX = ("3101640200643ede"
               "fe800000000000000000000000000051"
               "20010db8000000000000000000000100")


def _with_checksum(msg: bytes, src: IPAddress, dst: IPAddress, pseudo: bool) -> bytes:
    """``msg`` with its checksum field recomputed (message only, or with the pseudo-header)."""
    zeroed = msg[:6] + b"\x00\x00" + msg[8:]
    prefix = pseudo_header(src, dst, len(msg), IPPROTO_VRRP) if pseudo else b""
    return zeroed[:6] + struct.pack("!H", inet_checksum(prefix + zeroed)) + zeroed[8:]


# ---- golden vectors --------------------------------------------------------------------------


@pytest.mark.parametrize(("form", "hexstr"), [
    (ChecksumForm.PSEUDO_HEADER, V3_PSEUDO_HEX),
    (ChecksumForm.RFC9568, V3_RFC9568_HEX),
])
def test_v3_ipv4_golden(form: ChecksumForm, hexstr: str) -> None:
    """RFC 5798 §5.2.8: "the checksum is the 16-bit one's complement of the one's complement
    sum of the entire VRRP message starting with the version field and a 'pseudo-header'";
    RFC 9568 §5.2.8: "the pseudo-header is not included" for IPv4.  Both forms are produced,
    and decode() reports which one it saw in ``checksum_form``."""
    data = encode(V3_IPV4, SRC4, DST4, form)
    assert data.hex() == hexstr
    assert decode(data, SRC4, DST4) == replace(V3_IPV4, checksum_form=form)


def test_v2_golden() -> None:
    """RFC 3768 §5.3.7/§5.3.8: Adver Int is in seconds; the checksum covers the VRRP message
    only; auth type 0 carries eight zero bytes of Authentication Data (§5.3.10)."""
    data = encode(V2_IPV4, SRC4, DST4)
    assert data.hex() == V2_HEX
    assert decode(data, SRC4, DST4) == V2_IPV4


V2_PASS_HEX = "210164010101f1f2c0a864fe3131313100000000"  # scapy's VRRP(authtype=1, ...) too


def test_v2_simple_text_password_golden() -> None:
    """RFC 2338 §5.3.6.1 / §5.3.10 (reserved by RFC 3768 §5.3.6, weak by its §10): auth type 1,
    the password in Authentication Data, zero padded to 8 octets, inside the checksum.  The
    bytes match scapy's VRRP(authtype=1, auth1=b"1111") (keepalived's auth_pass 1111)."""
    adv = Advertisement(2, 1, 100, 100, (VIP4,), AUTH_SIMPLE_TEXT,
                        auth_data=simple_text_auth("1111"))
    data = encode(adv, SRC4, DST4)
    assert data.hex() == V2_PASS_HEX
    assert decode(data, SRC4, DST4) == adv
    scapy = _scapy_ip(SRC4, DST4, VRRP(vrid=1, priority=100, authtype=1, adv=1,
                                       addrlist=[str(VIP4)], auth1=0x31313131, auth2=0))
    assert bytes(scapy.payload) == data


@pytest.mark.parametrize("password", ["", "123456789", "pässwort"])
def test_simple_text_password_is_1_to_8_ascii(password: str) -> None:
    with pytest.raises(ValueError, match="1 to 8 ASCII characters"):
        simple_text_auth(password)


def test_v3_ipv6_golden() -> None:
    """RFC 5798 §5.2.8: over IPv6 the checksum includes the RFC 8200 §8.1 pseudo-header;
    §5.2.9: the first address is the link-local one."""
    data = encode(V3_IPV6, SRC6, DST6)
    assert data.hex() == V3_IPV6_HEX
    assert decode(data, SRC6, DST6) == V3_IPV6


# ---- scapy, an independent implementation ----------------------------------------------------


def _scapy_ip(src: IPAddress, dst: IPAddress, payload: Packet | bytes) -> Packet:
    """A scapy IPv4/IPv6 packet carrying ``payload`` as protocol 112, built then re-parsed."""
    if isinstance(src, IPv4Address):
        return IP(bytes(IP(src=str(src), dst=str(dst), proto=IPPROTO_VRRP, ttl=255) / payload))
    return IPv6(bytes(IPv6(src=str(src), dst=str(dst), nh=IPPROTO_VRRP, hlim=255) / payload))


SCAPY_CASES = [
    pytest.param(SRC4, DST4, VRRPv3(vrid=1, priority=100, adv=100, addrlist=[str(VIP4)]),
                 replace(V3_IPV4, checksum_form=ChecksumForm.PSEUDO_HEADER), id="v3-ipv4"),
    pytest.param(SRC6, DST6, VRRPv3(vrid=1, priority=100, adv=100,
                                    addrlist=list(map(str, VIPS6))), V3_IPV6, id="v3-ipv6"),
    pytest.param(SRC4, DST4, VRRP(vrid=1, priority=100, adv=1, addrlist=[str(VIP4)]),
                 V2_IPV4, id="v2"),
]


@pytest.mark.parametrize(("src", "dst", "layer", "expected"), SCAPY_CASES)
def test_decode_scapy_built(src: IPAddress, dst: IPAddress, layer: Packet,
                            expected: Advertisement) -> None:
    """scapy computes the v3 IPv4 checksum *with* the pseudo-header (RFC 5798 §5.2.8 as
    written, like keepalived 2.2 and FRR); we accept it and report it in ``checksum_form``."""
    assert decode(bytes(_scapy_ip(src, dst, layer).payload), src, dst) == expected


@pytest.mark.parametrize(("src", "dst", "layer", "expected"), SCAPY_CASES)
def test_scapy_parses_ours(src: IPAddress, dst: IPAddress, layer: Packet,
                           expected: Advertisement) -> None:
    """Our bytes, parsed by scapy, carry the same fields, and scapy's own recomputed checksum
    equals ours (in the pseudo-header form, the one scapy computes for v3 over IPv4)."""
    ours = encode(expected, src, dst, ChecksumForm.PSEUDO_HEADER)
    parsed = _scapy_ip(src, dst, ours)
    vrrp = parsed.payload
    assert isinstance(vrrp, type(layer))
    assert (vrrp.version, vrrp.type, vrrp.vrid, vrrp.priority) == (expected.version, 1, 1, 100)
    assert [ip_address(a) for a in vrrp.addrlist] == list(expected.addresses)
    assert vrrp.ipcount == len(expected.addresses)
    assert vrrp.adv * (1 if expected.version == 3 else 100) == expected.max_adver_int
    assert vrrp.chksum == struct.unpack_from("!H", ours, 6)[0]
    vrrp.chksum = None  # let scapy compute it
    assert _scapy_ip(src, dst, vrrp).payload.chksum == struct.unpack_from("!H", ours, 6)[0]


# ---- what decode() refuses -------------------------------------------------------------------

V3 = bytes.fromhex(V3_RFC9568_HEX)
V2 = bytes.fromhex(V2_HEX)
V6 = bytes.fromhex(V3_IPV6_HEX)


def _patched(msg: bytes, offset: int, value: bytes, src: IPAddress = SRC4,
             dst: IPAddress = DST4, *, pseudo: bool = False) -> bytes:
    """``msg`` with ``value`` written at ``offset`` and a checksum that is valid again."""
    return _with_checksum(msg[:offset] + value + msg[offset + len(value):], src, dst, pseudo)


DECODE_ERRORS = [
    pytest.param(V3[:7], SRC4, DropReason.TRUNCATED, id="shorter-than-header"),
    pytest.param(V3[:-1], SRC4, DropReason.TRUNCATED, id="address-cut"),
    pytest.param(V2[:-8], SRC4, DropReason.TRUNCATED, id="v2-auth-data-missing"),
    pytest.param(V2, SRC6, DropReason.VERSION, id="v2-over-ipv6"),
    pytest.param(_patched(V3, 0, b"\x41"), SRC4, DropReason.VERSION, id="version-4"),
    pytest.param(_patched(V3, 0, b"\x11"), SRC4, DropReason.VERSION, id="version-1"),
    pytest.param(_patched(V3, 0, b"\x32"), SRC4, DropReason.TYPE, id="type-2"),
    pytest.param(V3 + bytes(4), SRC4, DropReason.LENGTH, id="extra-bytes"),
    pytest.param(V2 + bytes(1), SRC4, DropReason.LENGTH, id="v2-extra-byte"),
    pytest.param(_patched(V3, 3, b"\x02"), SRC4, DropReason.TRUNCATED, id="count-exceeds-data"),
    pytest.param(V3[:4] + V3[4:6] + b"\x00\x00" + V3[8:], SRC4, DropReason.CHECKSUM,
                 id="checksum-zero"),
    pytest.param(V3[:-1] + b"\xff", SRC4, DropReason.CHECKSUM, id="payload-corrupted"),
    pytest.param(_patched(V6, 0, b"\x31", SRC6, DST6), SRC6, DropReason.CHECKSUM,
                 id="ipv6-without-pseudo-header"),
    pytest.param(_patched(V2, 0, b"\x21", pseudo=True), SRC4, DropReason.CHECKSUM,
                 id="v2-with-pseudo-header"),
    pytest.param(_patched(V3, 3, b"\x00")[:8], SRC4, DropReason.COUNT_ZERO, id="count-0"),
    pytest.param(_patched(V3, 4, b"\x00\x00"), SRC4, DropReason.INTERVAL_ZERO,
                 id="v3-interval-0"),
    pytest.param(_patched(V3, 4, b"\xf0\x00"), SRC4, DropReason.INTERVAL_ZERO,
                 id="v3-interval-0-reserved-bits-set"),
    pytest.param(_patched(V2, 5, b"\x00"), SRC4, DropReason.INTERVAL_ZERO, id="v2-interval-0"),
    pytest.param(_patched(V6, 8, V6[24:40] + V6[8:24], SRC6, DST6, pseudo=True), SRC6,
                 DropReason.NOT_LINK_LOCAL, id="ipv6-first-not-link-local"),
]


@pytest.mark.parametrize(("data", "src", "reason"), DECODE_ERRORS)
def test_decode_errors(data: bytes, src: IPAddress, reason: DropReason) -> None:
    """RFC 5798 §7.1: "The receiver MUST discard the packet" unless it "MUST verify that the
    VRRP version is 3 ... the VRRP checksum is correct ... the Max Adver Int" is usable, the
    length matches "Count IPvX Addrs"; §5.2.9: for IPv6 "the first address MUST be the IPv6
    link-local address"; RFC 3768 §7.1 likewise for v2, which exists only over IPv4."""
    dst = DST4 if isinstance(src, IPv4Address) else DST6
    with pytest.raises(DecodeError) as excinfo:
        decode(data, src, dst)
    assert excinfo.value.reason is reason


def test_reserved_bits_ignored() -> None:
    """RFC 5798 §5.2.6: the rsvd field "MUST be set to zero on transmission and ignored on
    reception"."""
    assert decode(_patched(V3, 4, b"\xf0\x64"), SRC4, DST4) == V3_IPV4


@pytest.mark.parametrize("adv", [
    replace(V3_IPV4, max_adver_int=0),
    replace(V3_IPV4, max_adver_int=4096),
    replace(V2_IPV4, max_adver_int=150),
    replace(V2_IPV4, max_adver_int=25600),
    replace(V3_IPV4, version=4),
    replace(V3_IPV4, addresses=VIPS6),
])
def test_encode_refuses_unrepresentable(adv: Advertisement) -> None:
    """RFC 5798 §5.2.7: Max Adver Int is 12 bits of centiseconds; RFC 3768 §5.3.7: Adver Int is
    whole seconds in one byte.  An interval we cannot carry must fail loudly, not wrap."""
    with pytest.raises(ValueError, match=r"interval|version|family"):
        encode(adv, SRC4, DST4)


def test_encode_refuses_v2_over_ipv6() -> None:
    """RFC 3768 is IPv4 only and RFC 5798 §5.2.9 puts one family in an advert: bytes that
    decode() would refuse (VERSION) must not be produced in the first place."""
    with pytest.raises(ValueError, match="IPv4 only"):
        encode(replace(V2_IPV4, addresses=VIPS6), SRC6, DST6)


# ---- property tests --------------------------------------------------------------------------

ipv4s = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
ipv6s = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
link_locals = st.builds(IPv6Address, st.integers(0, 2**64 - 1).map(lambda n: (0xFE80 << 112) | n))
endpoints = st.one_of(st.tuples(ipv4s, ipv4s), st.tuples(ipv6s, ipv6s))


@st.composite
def garbage(draw: st.DrawFn) -> tuple[bytes, IPAddress, IPAddress]:
    """Bytes that often get far into decode(): a plausible header and a valid checksum."""
    src, dst = draw(endpoints)
    body = draw(st.binary(max_size=80))
    if draw(st.booleans()):
        first = bytes([draw(st.sampled_from([0x21, 0x31, 0x30, 0x41])), draw(st.integers(0, 255)),
                       draw(st.integers(0, 255)), draw(st.integers(0, 5))])
        body = _with_checksum(first + body.ljust(4, b"\x00"), src, dst, draw(st.booleans()))
    return body, src, dst


@given(garbage())
def test_decode_only_raises_decode_error(case: tuple[bytes, IPAddress, IPAddress]) -> None:
    """Whatever arrives on the socket, decode() returns an Advertisement or raises DecodeError,
    never IndexError, struct.error or ipaddress's ValueError: the receive loop relies on it."""
    data, src, dst = case
    try:
        adv = decode(data, src, dst)
    except DecodeError as exc:
        assert type(exc) is DecodeError
    else:
        assert adv.addresses


@st.composite
def advertisements(draw: st.DrawFn) -> tuple[Advertisement, IPAddress, IPAddress]:
    """A valid advert with the source and destination it is sent between."""
    version = draw(st.sampled_from([2, 3]))
    src, dst = draw(st.tuples(ipv4s, ipv4s) if version == 2 else endpoints)
    ipv6 = isinstance(src, IPv6Address)
    family = ipv6s if ipv6 else ipv4s
    addresses = draw(st.lists(family, min_size=1, max_size=20 if ipv6 else 255))
    if ipv6:
        addresses[0] = draw(link_locals)
    interval = (draw(st.integers(1, 4095)) if version == 3
                else 100 * draw(st.integers(1, 255)))
    form = ChecksumForm.RFC9568 if version == 2 else draw(st.sampled_from(ChecksumForm))
    return (Advertisement(version, draw(st.integers(0, 255)), draw(st.integers(0, 255)),
                          interval, tuple(addresses),
                          draw(st.integers(0, 255)) if version == 2 else 0,
                          ChecksumForm.PSEUDO_HEADER if ipv6 else form), src, dst)


@given(advertisements())
def test_round_trip(case: tuple[Advertisement, IPAddress, IPAddress]) -> None:
    """decode(encode(a)) == a for every representable advert, including its checksum form."""
    adv, src, dst = case
    data = encode(adv, src, dst, adv.checksum_form)
    # A pseudo-header that sums to zero makes both forms valid; decode() then says RFC 9568.
    assume(inet_checksum(pseudo_header(src, dst, len(data), IPPROTO_VRRP)) != 0xFFFF
           or adv.checksum_form is ChecksumForm.RFC9568)
    assert decode(data, src, dst) == adv
