"""keepalived's virtual_routes / virtual_rules (issue 15 part 2): the master adds them after its
VIPs and removes them before its VIPs; a start removes what an earlier run left; the loader
refuses a broken entry with file:line:key.

Two daemons on an in-memory link (kernel fakes, as tests/test_vips_excluded.py); the
netlink side is tests/lab/test_virtual_routes_lab.py.
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import Node, until, write_config

from vrrpd.config.errors import ConfigError
from vrrpd.config.loader import parse_config
from vrrpd.config.model import MAIN_TABLE, VirtualRoute, VirtualRule
from vrrpd.kernel.fakes import FakeLink
from vrrpd.proto.events import State

ROUTES = [{"to": "198.51.100.0/24", "via": "192.0.2.1", "table": 100, "metric": 5},
          {"to": "203.0.113.0/24", "type": "blackhole"}]
RULES = [{"from": "192.0.2.100", "table": 100, "priority": 100}, {"fwmark": 7, "table": 100}]
ROUTE = VirtualRoute(ip_network("198.51.100.0/24"), via=ip_address("192.0.2.1"), metric=5,
                     table=100)
BLACKHOLE = VirtualRoute(ip_network("203.0.113.0/24"), table=MAIN_TABLE, type="blackhole")
RULE = VirtualRule(100, 4, source=ip_network("192.0.2.100/32"), priority=100)
MARK = VirtualRule(100, 4, fwmark=7)


def _log_routes(node: Node) -> None:
    """Record route changes in ``node.log`` beside the VIP changes."""
    add, remove = node.routes.add, node.routes.remove

    async def logged_add(routes: Any, rules: Any) -> None:
        await add(routes, rules)
        node.log.append((node.name, "routes added"))

    async def logged_remove(routes: Any, rules: Any) -> None:
        node.log.append((node.name, "routes removed"))
        await remove(routes, rules)

    node.routes.add = logged_add  # type: ignore[method-assign]
    node.routes.remove = logged_remove  # type: ignore[method-assign]


def test_routes_and_rules_follow_mastership(tmp_path: Path) -> None:
    async def main() -> None:
        link = FakeLink()
        log: list[tuple[str, str]] = []
        lb1 = Node(link, tmp_path, "lb1", "192.0.2.11", 150, log, virtual_routes=ROUTES,
                   virtual_rules=RULES)
        lb2 = Node(link, tmp_path, "lb2", "192.0.2.12", 100, log, virtual_routes=ROUTES,
                   virtual_rules=RULES)
        lb1.routes.routes.add(ROUTE)  # a crashed earlier run's leftovers
        lb2.routes.rules.add(MARK)
        for node in (lb1, lb2):
            _log_routes(node)
        try:
            await lb1.start()
            await lb2.start()
            assert lb1.routes.calls[0][0] == "flush" and lb2.routes.calls[0][0] == "flush"
            assert not lb2.routes.routes and not lb2.routes.rules
            await until(lambda: lb1.state() is State.MASTER and lb2.state() is State.BACKUP
                        and lb1.routes.routes == {ROUTE, BLACKHOLE})
            assert lb1.routes.rules == {RULE, MARK}
            assert not lb2.routes.routes and not lb2.routes.rules
            await lb1.daemon.stop()  # lb2 takes over the routes, lb1 keeps none
            await until(lambda: lb2.routes.routes == {ROUTE, BLACKHOLE})
            assert lb2.routes.rules == {RULE, MARK}
            assert not lb1.routes.routes and not lb1.routes.rules
            lb1_log = [event for node, event in log if node == "lb1"]
            assert lb1_log == ["add", "routes added", "routes removed", "remove"], lb1_log
        finally:
            for n in (lb1, lb2):
                if n.daemon is not None and n.daemon.control is not None:
                    await n.daemon.stop()

    asyncio.run(main())


def test_loader_reads_keepalived_words(tmp_path: Path) -> None:
    path = write_config(tmp_path, "lb1", 100, virtual_routes=ROUTES, virtual_rules=RULES)
    cfg = parse_config(path.read_text(), path, host=False).instances[0]
    assert cfg.routes == (ROUTE, BLACKHOLE)
    assert cfg.rules == (RULE, MARK)


@pytest.mark.parametrize(("key", "entry", "reason"), [
    ("virtual_routes", {"to": "198.51.100.1/24", "via": "192.0.2.1"}, "host bits"),
    ("virtual_routes", {"to": "198.51.100.0/24"}, r"instances\[0\].virtual_routes\[0\].to: "
                                                  "route to 198.51.100.0/24 needs 'via'"),
    ("virtual_routes", {"to": "198.51.100.0/24", "via": "2001:db8::1"}, "is IPv6, but"),
    ("virtual_routes", {"to": "198.51.100.0/24", "type": "blackhole", "dev": "eth1"},
     "goes nowhere"),
    ("virtual_routes", {"to": "198.51.100.0/24", "dev": "eth1", "tabel": 100},
     "did you mean 'table'"),
    ("virtual_routes", {"to": "198.51.100.0/24", "dev": "eth1", "table": 0}, "outside"),
    ("virtual_rules", {"table": 100}, "would send all traffic"),
    ("virtual_rules", {"from": "192.0.2.100"}, "table: is required"),
    ("virtual_rules", {"from": "192.0.2.100", "to": "2001:db8::/32", "table": 100},
     "is IPv6, but"),
])
def test_broken_entries_are_refused_with_their_line(tmp_path: Path, key: str,
                                                    entry: dict[str, Any], reason: str) -> None:
    path = write_config(tmp_path, "lb1", 100, **{key: [entry]})
    with pytest.raises(ConfigError, match=reason) as info:
        parse_config(path.read_text(), path, host=False)
    assert str(info.value).startswith(f"{path}:")
