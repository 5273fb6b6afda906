"""VRRP's protocol numbers (RFC 5798, RFC 3768), one home each.

The timer formulas that use them (Skew_Time, Master_Down_Interval) live in
:mod:`vrrpd.proto.timers`; the priorities an operator mode advertises in
:mod:`vrrpd.proto.router`.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

IPPROTO_VRRP = 112  # RFC 5798 §5.1.1.4 / §5.1.2.4: the IPv4 protocol / IPv6 next header
VRRP_TTL = 255  # RFC 5798 §5.1.1.3 / §5.1.2.3: TTL / hop limit sent, and required (§7.1)
VRRP_GROUP: dict[int, IPv4Address | IPv6Address] = {  # RFC 5798 §5.1.1.2 / §5.1.2.2
    4: IPv4Address("224.0.0.18"), 6: IPv6Address("ff02::12")}
VRID_MAX = 255  # RFC 5798 §5.2.3: VRIDs are 1..255
OWNER_PRIORITY = 255  # RFC 5798 §5.2.4: the router that owns the addresses
DEFAULT_PRIORITY = 100  # RFC 5798 §5.2.4: a backup's default
V2_MAX_ADVER_SECONDS = 255  # RFC 3768 §5.3.7: Adver Int is 8 bits of seconds
