"""Internet checksum (RFC 1071) and the pseudo-headers VRRP and ICMPv6 use.

RFC 5798 §5.2.8: the VRRPv3 checksum covers the VRRP message and, per RFC 8200 §8.1 (IPv6) or
the IPv4 pseudo-header, the addresses, protocol and length.  RFC 9568 §5.2.8 clarifies that for
IPv4 the pseudo-header is *not* included; keepalived 2.2.x and FRR include it by default, which
is why the codec can produce and accept both forms.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

IPPROTO_ICMPV6 = 58


def inet_checksum(data: bytes) -> int:
    """One's-complement sum of 16-bit words, complemented (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address,
                  length: int, proto: int) -> bytes:
    """The IPv4 (RFC 791) or IPv6 (RFC 8200 §8.1) pseudo-header for upper-layer checksums."""
    if isinstance(src, IPv4Address):
        return src.packed + dst.packed + struct.pack("!BBH", 0, proto, length)
    return src.packed + dst.packed + struct.pack("!I3xB", length, proto)
