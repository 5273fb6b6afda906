"""What the interop tests with another VRRP implementation share (keepalived:
tests/lab/test_interop_keepalived.py, FRR: tests/lab/test_interop_frr.py): the protocol
variants, the priorities and the allowance on top of the RFC 5798 §6.4.2 timers."""

from __future__ import annotations

from dataclasses import dataclass

SLACK = 0.1  # the allowance on top of the RFC timers
HIGH, LOW = 150, 100
VRID = 51


@dataclass(frozen=True)
class Flavour:
    """One protocol variant: VRRP version, address family, interval and VIP list."""

    name: str
    version: int
    interval: float
    vips: tuple[str, ...]

    @property
    def interval_cs(self) -> int:
        return round(self.interval * 100)

    @property
    def probe_vip(self) -> str:
        return self.vips[-1]


FLAVOURS = [
    Flavour("v2-ipv4", 2, 1.0, ("192.0.2.100/24",)),
    Flavour("v3-ipv4", 3, 0.1, ("192.0.2.100/24",)),
    # RFC 5798 §5.2.9: the first IPv6 address is the link-local one.
    Flavour("v3-ipv6", 3, 0.1, ("fe80::100/64", "2001:db8::100/64")),
]
