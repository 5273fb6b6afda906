"""Which address VRRP adverts (and NAs) come from: :func:`vrrpd.kernel.link.source_address`,
a pure choice over the interface's addresses in kernel order."""

from __future__ import annotations

from ipaddress import ip_address, ip_interface

import pytest

from vrrpd.kernel.link import (
    IFA_F_NODAD,
    IFA_F_SECONDARY,
    IFA_F_TENTATIVE,
    AddressInfo,
    source_address,
)


def info(text: str, flags: int = 0) -> AddressInfo:
    return AddressInfo(ip_interface(text), flags)


OWN_LL = info("fe80::ff:fe00:b11/64")
VIP_LL = info("fe80::51/64", IFA_F_NODAD)
GLOBAL = info("2001:db8::11/64")
PRIMARY = info("192.0.2.11/24")
VIP4 = info("192.0.2.100/24", IFA_F_SECONDARY)


@pytest.mark.parametrize(("infos", "family", "exclude", "expected"), [
    ([PRIMARY, VIP4], 4, (), "192.0.2.11"),
    ([VIP4, PRIMARY], 4, (), "192.0.2.11"),  # a secondary is never the primary
    ([info("192.0.2.100/24"), PRIMARY], 4, ("192.0.2.100",), "192.0.2.11"),
    ([GLOBAL, OWN_LL], 6, (), "fe80::ff:fe00:b11"),
    ([VIP_LL, OWN_LL], 6, ("fe80::51",), "fe80::ff:fe00:b11"),  # a stale VIP first in line
    ([VIP_LL, GLOBAL], 6, ("fe80::51",), None),  # only the VIP: no source of our own
    ([info("fe80::1/64", IFA_F_TENTATIVE), OWN_LL], 6, (), "fe80::ff:fe00:b11"),
    ([info("fe80::1/64", IFA_F_TENTATIVE)], 6, (), None),
])
def test_source_address(infos: list[AddressInfo], family: int, exclude: tuple[str, ...],
                        expected: str | None) -> None:
    """RFC 5798 §5.1.1.1: IPv4 source "the primary IPv4 address of the interface"; §5.1.2.1:
    IPv6 source "the IPv6 link-local address of the interface" - the interface's own, so
    never a VIP (an instance's first IPv6 VIP is link-local too, §5.2.9, and one left by a
    crash would otherwise be picked), and never a tentative one (RFC 4862 §5.4)."""
    exclusions = [ip_address(a) for a in exclude]
    got = source_address(infos, family, exclusions)
    assert got == (ip_address(expected) if expected else None)
