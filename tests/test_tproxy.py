"""``tproxy:`` (issue 17): the gateway instance's transparent-proxy routing follows mastership,
a start and a stop clear what a run left, the loader refuses what cannot work with
file:line:key, and a change restarts the instance.

Two daemons on an in-memory link (kernel fakes, as tests/test_virtual_routes.py); the kernel
side is tests/lab/test_tproxy_kernel.py, the whole path tests/lab/test_tproxy_lab.py.
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemon_helpers import Node, until, write_config

from vrrpd.config import host as on_host
from vrrpd.config.diff import diff_configs
from vrrpd.config.errors import ConfigError
from vrrpd.config.loader import parse_config
from vrrpd.config.model import TproxyConfig, VirtualRoute, VirtualRule
from vrrpd.daemon import privileges
from vrrpd.kernel.fakes import FakeLink
from vrrpd.kernel.tproxy import chain_rules
from vrrpd.proto.events import State

LOCAL = VirtualRoute(ip_network("0.0.0.0/0"), dev="lo", table=7470, type="local")
MARK = VirtualRule(7470, 4, fwmark=0x7470, priority=7470)


def test_defaults_spell_tp_and_derive_the_route_and_rule(tmp_path: Path) -> None:
    path = write_config(tmp_path, "lb1", 100, tproxy={})
    cfg = parse_config(path.read_text(), path, host=False).instances[0]
    assert cfg.tproxy == TproxyConfig(fwmark=0x7470, table=7470, priority=7470)
    assert (cfg.held_routes, cfg.held_rules) == ((LOCAL,), (MARK,))
    assert cfg.routes == () and cfg.rules == ()  # the operator's own lists stay apart
    six = TproxyConfig(fwmark=5, table=50, priority=60)
    assert six.routes(6)[0].to == ip_network("::/0")
    assert six.rules(6) == (VirtualRule(50, 6, fwmark=5, priority=60),)


def test_the_chain_marks_only_transparent_sockets_of_its_family() -> None:
    script = chain_rules("gw-a_b", 6, 0x7470)
    assert "add chain inet vrrpd_tproxy tp_gw_da__b { type filter hook prerouting " \
           "priority mangle" in script
    assert ("meta nfproto ipv6 meta l4proto tcp socket transparent 1 meta mark set 0x7470"
            in script)


def test_tproxy_follows_mastership_and_is_cleared_at_start_and_stop(tmp_path: Path) -> None:
    async def main() -> None:
        link = FakeLink()
        lb1 = Node(link, tmp_path, "lb1", "192.0.2.11", 150, tproxy={"fwmark": 9})
        lb2 = Node(link, tmp_path, "lb2", "192.0.2.12", 100, tproxy={"fwmark": 9})
        lb2.tproxy.chains["web"] = (4, 9)  # a crashed earlier run's leftover
        await lb1.start()
        await lb2.start()
        assert lb2.tproxy.chains == {} and lb2.tproxy.resets == 1
        await until(lambda: lb1.state() is State.MASTER and lb2.state() is State.BACKUP)
        rule = VirtualRule(7470, 4, fwmark=9, priority=7470)
        await until(lambda: lb1.tproxy.chains == {"web": (4, 9)})
        assert lb1.routes.rules == {rule} and lb1.routes.routes == {LOCAL}
        assert lb2.routes.rules == set() and lb2.tproxy.chains == {}
        assert lb1.daemon is not None and lb2.daemon is not None
        await lb1.daemon.stop()  # the chain goes first, then the rule and route, then the VIP
        assert lb1.tproxy.chains == {} and lb1.routes.rules == set()
        assert lb1.tproxy.resets == 2  # the stop deletes the whole table as well
        await until(lambda: lb2.tproxy.chains == {"web": (4, 9)})
        await lb2.daemon.stop()

    asyncio.run(main())


@pytest.mark.parametrize(("entry", "reason"), [
    ({"table": 254}, r"instances\[0\].tproxy.table: table 254 is one of the kernel's own"),
    ({"fwmark": 0}, r"tproxy.fwmark: .*outside"),
    ({"priority": 32766}, r"tproxy.priority: .*outside"),
    ({"mark": 1}, r"tproxy.mark: unknown key; did you mean 'fwmark'"),
])
def test_broken_tproxy_is_refused_with_its_line(tmp_path: Path, entry: dict[str, Any],
                                                reason: str) -> None:
    path = write_config(tmp_path, "lb1", 100, tproxy=entry)
    with pytest.raises(ConfigError, match=reason) as info:
        parse_config(path.read_text(), path, host=False)
    assert str(info.value).startswith(f"{path}:")


def test_one_gateway_per_family(tmp_path: Path) -> None:
    path = write_config(tmp_path, "lb1", 100, tproxy={}, name="web")
    doc = yaml.safe_load(path.read_text())
    doc["instances"].append({"name": "gw2", "interface": "lo", "vrid": 52,
                             "vips": ["198.51.100.1/24"], "tproxy": {}})
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"instances\[1\].tproxy: IPv4 transparent proxying "
                                          r"is already set on instances\[0\]"):
        parse_config(path.read_text(), path, host=False)


def test_local_route_takes_a_dev_not_a_via(tmp_path: Path) -> None:
    path = write_config(tmp_path, "lb1", 100, virtual_routes=[
        {"to": "0.0.0.0/0", "type": "local", "via": "192.0.2.1", "dev": "lo"}])
    with pytest.raises(ConfigError, match="a local route delivers to this host"):
        parse_config(path.read_text(), path, host=False)


def test_changing_tproxy_restarts_the_instance(tmp_path: Path) -> None:
    old = write_config(tmp_path, "old", 100, tproxy={})
    new = write_config(tmp_path, "new", 100, tproxy={"table": 99})
    diff = diff_configs(parse_config(old.read_text(), old, host=False),
                        parse_config(new.read_text(), new, host=False))
    assert diff.restarted == ("web",)


def test_host_check_asks_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """As root (the lab): this kernel has nft_socket and policy routing for both families.
    Without CAP_NET_ADMIN the check says how to run it instead of guessing."""
    on_host.tproxy(4)
    on_host.tproxy(6)
    monkeypatch.setattr(privileges, "capability_set", lambda: ["cap_net_raw"])
    with pytest.raises(ValueError, match="without CAP_NET_ADMIN: run `vrrpd --check-config` "
                                         "as root"):
        on_host.tproxy(4)


def test_check_config_warns_when_the_gateway_does_not_forward(tmp_path: Path) -> None:
    """The PACS routes everything through the gateway VIP: without forwarding, only replies
    to HAProxy get through (a warning, not an error: that may be all a site needs)."""
    path = write_config(tmp_path, "lb1", 100, tproxy={})
    config = parse_config(path.read_text(), path, host=False)
    sysctl = tmp_path / "sys"
    (sysctl / "net/ipv4").mkdir(parents=True)
    (sysctl / "net/ipv4/ip_forward").write_text("0\n")
    (warning,) = on_host.tproxy_warnings(config.instances, sysctl)
    assert warning.startswith("instances[0].tproxy: net.ipv4.ip_forward is 0: web's VIP is the "
                              "servers' default gateway")
    (sysctl / "net/ipv4/ip_forward").write_text("1\n")
    assert on_host.tproxy_warnings(config.instances, sysctl) == []
