"""The virtual router MAC (RFC 5798 §7.3) and the name of the macvlan link that carries it
(:mod:`vrrpd.kernel.vmac`), and the configuration check that refuses an interface that cannot
carry one."""

from __future__ import annotations

from pathlib import Path

import pytest

from vrrpd.config.loader import ConfigError, parse_config
from vrrpd.kernel.vmac import IFNAMSIZ, link_name
from vrrpd.proto.announce import virtual_router_mac


@pytest.mark.parametrize(("family", "vrid", "mac"), [
    (4, 1, "00:00:5e:00:01:01"), (4, 51, "00:00:5e:00:01:33"), (4, 255, "00:00:5e:00:01:ff"),
    (6, 1, "00:00:5e:00:02:01"), (6, 53, "00:00:5e:00:02:35"),
])
def test_virtual_router_mac(family: int, vrid: int, mac: str) -> None:
    """RFC 5798 §7.3: "IPv4 case: 00-00-5E-00-01-{VRID}", "IPv6 case: 00-00-5E-00-02-{VRID}"
    (the VRID in hex, the last octet)."""
    assert virtual_router_mac(family, vrid).hex(":") == mac


@pytest.mark.parametrize(("family", "vrid"), [(4, 0), (4, 256), (5, 1)])
def test_no_virtual_router_mac_outside_the_rfc(family: int, vrid: int) -> None:
    with pytest.raises(ValueError):
        virtual_router_mac(family, vrid)


@pytest.mark.parametrize(("ifindex", "family", "vrid", "name"), [
    (2, 4, 51, "vrrp4-2-51"),
    (99999, 6, 255, "vrrp6-99999-255"),  # 15 characters: still the readable form
    (100000, 4, 255, "vr4.186a0.ff"),
    (2**31 - 1, 6, 255, "vr6.7fffffff.ff"),  # the largest ifindex still fits
])
def test_link_name(ifindex: int, family: int, vrid: int, name: str) -> None:
    """Interface names have at most 15 characters (IFNAMSIZ - 1)."""
    assert link_name(ifindex, family, vrid) == name
    assert len(name) <= IFNAMSIZ


def test_virtual_mac_on_a_non_ethernet_interface_is_refused() -> None:
    """``lo`` cannot carry a macvlan: refused with file, line, key and the reason."""
    text = ("instances:\n  - name: web\n    interface: lo\n    vrid: 51\n"
            "    vips: [192.0.2.100/24]\n    virtual_mac: true\n")
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("/etc/vrrpd/vrrpd.yaml"))
    assert "vrrpd.yaml:6" in str(err.value) and "instances[0].virtual_mac" in str(err.value)
    assert "not an Ethernet interface" in str(err.value)
    parse_config(text, Path("/etc/vrrpd/vrrpd.yaml"), host=False)  # another host's file
