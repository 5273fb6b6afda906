"""VRRP advertisement codec, sans I/O: bytes <-> :class:`Advertisement`.

VRRPv3, RFC 5798 §5.1 (clarified by RFC 9568)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |(rsvd) |     Max Adver Int     |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                       IPvX Address(es)                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

VRRPv2, RFC 3768 §5.1 (IPv4 only)::

    |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
    |   Auth Type   |   Adver Int   |          Checksum             |
    |                         IP Address(es)                        |
    |                     Authentication Data (1)                   |
    |                     Authentication Data (2)                   |

Units: the v3 Max Adver Int is in centiseconds; the v2 Adver Int is in seconds and is converted
to centiseconds here, at the codec edge, so everything above this module speaks centiseconds.

This module checks form only (version, type, length, count, checksum).  What a well-formed
advert *means* (VRID, priority, interval) is the state machine's business
(:mod:`vrrpd.proto.router`); TTL / hop limit is checked by the socket adapter, which alone sees
the IP header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address, ip_address

from vrrpd.proto.checksum import inet_checksum, pseudo_header
from vrrpd.proto.numbers import IPPROTO_VRRP, V2_MAX_ADVER_SECONDS

IPAddress = IPv4Address | IPv6Address

VRRP_TYPE_ADVERTISEMENT = 1
V3_MAX_ADVER_INT_CS = 0x0FFF  # 12-bit field, RFC 5798 §5.2.7
V2_AUTH_DATA = bytes(8)  # RFC 3768 §5.3.10: auth type 0 carries eight zero bytes
AUTH_NONE = 0  # RFC 3768 §5.3.6
# RFC 2338 §5.3.6.1 Simple Text Password, which RFC 3768 §5.3.6 reserves and §10 explains away:
# a clear-text password on the LAN keeps a misconfigured router out, no attacker.  vrrpd speaks
# it for VRRPv2 peers that still send it (keepalived's auth_type PASS), see simple_text_auth.
AUTH_SIMPLE_TEXT = 1
_HEADER = struct.Struct("!BBBBHH")


class ChecksumForm(StrEnum):
    """Which bytes the VRRPv3 IPv4 checksum covers (see :mod:`vrrpd.proto.checksum`)."""

    RFC9568 = "rfc9568"  # VRRP message only (also the only form for VRRPv2)
    PSEUDO_HEADER = "pseudo-header"  # message plus IPv4 pseudo-header (keepalived 2.2, FRR)


class ChecksumMode(StrEnum):
    """``v3_checksum``: which VRRPv3 IPv4 checksum form to send and accept."""

    AUTO = "auto"  # accept both; send what the peer sends; RFC 9568 until a peer is heard
    RFC9568 = "rfc9568"
    PSEUDO_HEADER = "pseudo-header"

    def accepts(self, form: ChecksumForm) -> bool:
        return self is ChecksumMode.AUTO or self.value == form.value

    @property
    def first_form(self) -> ChecksumForm:
        """The form sent before any peer is heard."""
        return (ChecksumForm.PSEUDO_HEADER if self is ChecksumMode.PSEUDO_HEADER
                else ChecksumForm.RFC9568)


class DropReason(StrEnum):
    """Why a received packet was dropped.  One counter each, shown by ``vrrpctl status``."""

    TTL = "ttl"  # RFC 5798 §7.1: TTL / hop limit must be 255
    TRUNCATED = "truncated"
    VERSION = "version"
    TYPE = "type"
    LENGTH = "length"  # length does not match Count IPvX Addrs
    CHECKSUM = "checksum"
    COUNT_ZERO = "count_zero"
    INTERVAL_ZERO = "interval_zero"
    NOT_LINK_LOCAL = "not_link_local"  # RFC 5798 §5.2.9: first IPv6 address is link-local
    UNKNOWN_VRID = "unknown_vrid"
    AUTH_TYPE = "auth_type"  # RFC 3768 §7.1: not the instance's auth type (0, or 1 = PASS)
    AUTH_DATA = "auth_data"  # RFC 2338 §7.1: simple-text password differs from ours
    INTERVAL = "interval"  # RFC 3768 §7.1: v2 Adver Int must match ours
    CHECKSUM_FORM = "checksum_form"  # v3 IPv4 form excluded by the instance's v3_checksum
    ADDRESS_LIST = "address_list"  # RFC 3768 §7.1: v2 list mismatch from a non-owner
    CONFLICT = "conflict"  # a router that is not a listed peer uses our VRID with other VIPs
    OWNER = "owner"  # we are the address owner and another router claims priority 255
    UNKNOWN_PEER = "unknown_peer"  # strict_peers: the source is not a listed peer


class DecodeError(ValueError):
    """A packet that is not a well-formed VRRP advertisement; ``reason`` says why."""

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Advertisement:
    """One VRRP ADVERTISEMENT.  ``max_adver_int`` is in centiseconds for both versions."""

    version: int
    vrid: int
    priority: int
    max_adver_int: int
    addresses: tuple[IPAddress, ...]
    auth_type: int = AUTH_NONE
    checksum_form: ChecksumForm = ChecksumForm.RFC9568
    auth_data: bytes = V2_AUTH_DATA  # v2 only: the 8 Authentication Data bytes


def simple_text_auth(password: str) -> bytes:
    """The Authentication Data of a Simple Text Password (RFC 2338 §5.3.10): up to 8 octets,
    padded with zeros.  ValueError for a longer or non-ASCII password."""
    data = password.encode("ascii", errors="strict") if password.isascii() else b""
    if not 0 < len(data) <= 8:
        raise ValueError("a simple-text password is 1 to 8 ASCII characters (RFC 2338 "
                         "§5.3.10)")
    return data.ljust(8, b"\0")


def _checksum(msg: bytes, form: ChecksumForm, version: int,
              src: IPAddress, dst: IPAddress) -> int:
    """RFC 5798 §5.2.8 (v3), RFC 3768 §5.3.8 (v2: message only)."""
    if version == 3 and (isinstance(src, IPv6Address) or form is ChecksumForm.PSEUDO_HEADER):
        return inet_checksum(pseudo_header(src, dst, len(msg), IPPROTO_VRRP) + msg)
    return inet_checksum(msg)


def encode(adv: Advertisement, src: IPAddress, dst: IPAddress,
           form: ChecksumForm = ChecksumForm.RFC9568) -> bytes:
    """Serialize ``adv`` sent from ``src`` to ``dst`` (needed for the v3 pseudo-header).

    Raises ValueError for what the wire cannot carry, or what :func:`decode` would refuse:
    an interval out of range, VRRPv2 over IPv6, addresses of another family than ``src``.
    """
    if any(a.version != src.version for a in adv.addresses):
        raise ValueError(f"address family of {adv.addresses} differs from source {src}")
    if adv.version == 2 and src.version == 6:
        raise ValueError("VRRPv2 (RFC 3768) is IPv4 only; use version 3 over IPv6")
    if adv.version == 3:
        if not 0 < adv.max_adver_int <= V3_MAX_ADVER_INT_CS:
            raise ValueError(f"v3 interval {adv.max_adver_int} cs outside 1..4095")
        first = struct.pack("!BBBB", 0x31, adv.vrid, adv.priority, len(adv.addresses))
        word2 = struct.pack("!H", adv.max_adver_int)  # the 4 reserved bits stay zero
        trailer = b""
    elif adv.version == 2:
        seconds, rest = divmod(adv.max_adver_int, 100)
        if rest or not 0 < seconds <= V2_MAX_ADVER_SECONDS:
            raise ValueError(f"v2 interval {adv.max_adver_int} cs is not 1..255 whole seconds")
        first = struct.pack("!BBBB", 0x21, adv.vrid, adv.priority, len(adv.addresses))
        word2 = struct.pack("!BB", adv.auth_type, seconds)
        trailer = adv.auth_data
        if len(trailer) != len(V2_AUTH_DATA):
            raise ValueError(f"v2 Authentication Data is 8 bytes, got {len(trailer)}")
    else:
        raise ValueError(f"unsupported VRRP version {adv.version}")
    body = b"".join(a.packed for a in adv.addresses) + trailer
    csum = _checksum(first + word2 + b"\x00\x00" + body, form, adv.version, src, dst)
    return first + word2 + struct.pack("!H", csum) + body


def decode(data: bytes, src: IPAddress, dst: IPAddress) -> Advertisement:
    """Parse a VRRP message (the IP payload) received from ``src`` addressed to ``dst``.

    Raises :class:`DecodeError` for anything RFC 5798 §7.1 / RFC 3768 §7.1 say to discard on
    form alone.  For v3 over IPv4 either checksum form is accepted and reported in
    ``checksum_form``; the instance decides which forms it accepts.
    """
    if len(data) < _HEADER.size:
        raise DecodeError(DropReason.TRUNCATED, f"{len(data)} bytes, header needs 8")
    ver_type, vrid, priority, count, word2, _csum = _HEADER.unpack_from(data)
    version, ptype = ver_type >> 4, ver_type & 0x0F
    ipv6 = isinstance(src, IPv6Address)
    if version not in (2, 3) or (version == 2 and ipv6):
        raise DecodeError(DropReason.VERSION, f"version {version} over IPv{6 if ipv6 else 4}")
    if ptype != VRRP_TYPE_ADVERTISEMENT:
        raise DecodeError(DropReason.TYPE, f"type {ptype}")
    if count == 0:
        raise DecodeError(DropReason.COUNT_ZERO)
    addr_len = 16 if ipv6 else 4
    expected = _HEADER.size + count * addr_len + (8 if version == 2 else 0)
    if len(data) != expected:
        reason = DropReason.TRUNCATED if len(data) < expected else DropReason.LENGTH
        raise DecodeError(reason, f"{len(data)} bytes, count {count} needs {expected}")

    form = ChecksumForm.PSEUDO_HEADER if ipv6 else ChecksumForm.RFC9568
    if _checksum(data, form, version, src, dst) != 0:
        if version == 2 or ipv6 or _checksum(
                data, ChecksumForm.PSEUDO_HEADER, 3, src, dst) != 0:
            raise DecodeError(DropReason.CHECKSUM)
        form = ChecksumForm.PSEUDO_HEADER

    if version == 3:
        interval, auth_type, auth_data = word2 & 0x0FFF, AUTH_NONE, V2_AUTH_DATA
    else:
        auth_type, interval, auth_data = word2 >> 8, (word2 & 0xFF) * 100, data[-8:]
    if interval == 0:
        raise DecodeError(DropReason.INTERVAL_ZERO)
    raw = data[_HEADER.size:_HEADER.size + count * addr_len]
    addresses = tuple(ip_address(raw[i:i + addr_len]) for i in range(0, len(raw), addr_len))
    if ipv6 and not addresses[0].is_link_local:
        raise DecodeError(DropReason.NOT_LINK_LOCAL, f"first address {addresses[0]}")
    return Advertisement(version, vrid, priority, interval, addresses, auth_type, form,
                         auth_data)
