"""Virtual routes and rules (keepalived's ``virtual_routes`` / ``virtual_rules``) on and off the
routing tables, with pyroute2's asyncio netlink API.

The master holds them with its VIPs: :class:`RouteManager` adds them after the VIPs and removes
them before the VIPs (a route with ``src`` a VIP, or via a VIP's subnet, needs the VIP).
Like :mod:`vrrpd.kernel.addresses`, changes are idempotent -- adding a route or rule that is
there, or removing one that is gone, is not an error -- and confirmed by one dump afterwards,
otherwise :class:`RouteError` says what is missing or left.

Every route and rule vrrpd adds carries the routing protocol number :data:`RTPROT_VRRPD`
(RTA ``rtm_protocol``, and ``FRA_PROTOCOL`` for rules, Linux 4.17+), shown by ``ip route show
proto 112`` / ``ip rule``.  No other program uses it, so at start :meth:`RouteManager.flush`
removes every route and rule with it: what a crashed (SIGKILLed) earlier run left behind.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from vrrpd.config.model import VirtualRoute, VirtualRule
from vrrpd.kernel.link import RtnlClient, ifindex

# The routing protocol number of vrrpd's routes and rules: 112, VRRP's IP protocol number
# (RFC 5798 §5.1.1.4), unassigned in iproute2's rt_protos (keepalived's is 18).
RTPROT_VRRPD = 112

RT_SCOPE_HOST = 254  # rtnetlink.h

_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
_RTN_TYPE = {"unicast": 1, "local": 2, "blackhole": 6, "unreachable": 7,
             "prohibit": 8}  # rtnetlink.h

RouteKey = tuple[int, int, str]  # family, table, destination
RuleKey = tuple[int, int, str | None, str | None, int | None]  # family, table, from, to, fwmark


class RouteError(OSError):
    """A route or rule change the kernel refused or did not show afterwards."""


def route_key(route: VirtualRoute) -> RouteKey:
    return (_FAMILY[route.to.version], route.table, str(route.to))


def rule_key(rule: VirtualRule) -> RuleKey:
    return (_FAMILY[rule.family], rule.table, _str(rule.source), _str(rule.destination),
            rule.fwmark)


def _str(value: object | None) -> str | None:
    return None if value is None else str(value)


def describe_route(route: VirtualRoute) -> str:
    """``192.0.2.0/24 via 198.51.100.1 dev eth1 table 100``, as ``ip route`` words it."""
    words = [] if route.type == "unicast" else [route.type]
    words.append(str(route.to))
    for word, value in (("via", route.via), ("dev", route.dev), ("src", route.src),
                        ("metric", route.metric), ("table", route.table)):
        if value is not None:
            words += [word, str(value)]
    return " ".join(words)


def describe_rule(rule: VirtualRule) -> str:
    """``from 192.0.2.100/32 table 100 priority 100``, as ``ip rule`` words it."""
    words = []
    for word, value in (("from", rule.source), ("to", rule.destination),
                        ("fwmark", rule.fwmark), ("table", rule.table),
                        ("priority", rule.priority)):
        if value is not None:
            words += [word, str(value)]
    return " ".join(words)


class RouteManager(RtnlClient):
    """Adds and removes virtual routes and rules over one netlink socket; ``open()`` first."""

    async def add(self, routes: Iterable[VirtualRoute], rules: Iterable[VirtualRule]) -> None:
        """Add ``routes``, then ``rules``; raise :class:`RouteError` unless all are there."""
        routes, rules = tuple(routes), tuple(rules)
        for route in routes:
            await self._request("route", "add", self._route_spec(route, full=True),
                                errno.EEXIST, describe_route(route))
        for rule in rules:
            await self._request("rule", "add", self._rule_spec(rule), errno.EEXIST,
                                describe_rule(rule))
        routes_seen, rules_seen = await self._dump()
        missing = ([describe_route(r) for r in routes if route_key(r) not in routes_seen]
                   + [describe_rule(r) for r in rules if rule_key(r) not in rules_seen])
        if missing:
            raise RouteError(errno.ENOENT, "added but not there: " + "; ".join(missing))

    async def remove(self, routes: Iterable[VirtualRoute],
                     rules: Iterable[VirtualRule]) -> None:
        """Remove ``rules``, then ``routes``; raise :class:`RouteError` if any is still there."""
        routes, rules = tuple(routes), tuple(rules)
        for rule in rules:
            await self._request("rule", "del", self._rule_spec(rule), errno.ENOENT,
                                describe_rule(rule))
        for route in routes:
            await self._request("route", "del", self._route_spec(route, full=False),
                                errno.ESRCH, describe_route(route))
        routes_seen, rules_seen = await self._dump()
        left = ([describe_route(r) for r in routes if route_key(r) in routes_seen]
                + [describe_rule(r) for r in rules if rule_key(r) in rules_seen])
        if left:
            raise RouteError(errno.EEXIST, "removed but still there: " + "; ".join(left))

    async def flush(self) -> list[str]:
        """Remove every route and rule with :data:`RTPROT_VRRPD`; what was removed, as
        ``ip`` words it.  For the start, when no instance is master yet."""
        removed = []
        for msg in await self._rules():
            spec = {k: msg.get(k) for k in ("table", "priority", "src", "dst", "fwmark")
                    if msg.get(k) is not None}
            spec.update(family=msg["family"], src_len=msg["src_len"], dst_len=msg["dst_len"],
                        protocol=RTPROT_VRRPD)
            words = " ".join(f"{k} {v}" for k, v in spec.items() if k in ("src", "dst",
                                                                             "fwmark", "table"))
            await self._request("rule", "del", spec, errno.ENOENT, words)
            removed.append(f"rule {words}")
        for family, dst, msg in await self._routes():
            spec = {"family": family, "dst": dst, "table": msg.get("table"),
                    "proto": RTPROT_VRRPD, "type": msg["type"], "scope": msg["scope"]}
            if msg.get("priority") is not None:
                spec["priority"] = msg.get("priority")
            await self._request("route", "del", spec, errno.ESRCH, dst)
            removed.append(f"route {dst} table {msg.get('table')}")
        return removed

    @staticmethod
    def _route_spec(route: VirtualRoute, full: bool) -> dict[str, Any]:
        """The netlink request; ``full`` adds how to get there (not needed to remove it)."""
        spec: dict[str, Any] = {"family": _FAMILY[route.to.version], "dst": str(route.to),
                                "table": route.table, "proto": RTPROT_VRRPD,
                                "type": _RTN_TYPE[route.type]}
        if route.metric is not None:
            spec["priority"] = route.metric
        if route.type == "local":
            spec["scope"] = RT_SCOPE_HOST  # the kernel refuses a local route of wider scope
        if full:
            if route.via is not None:
                spec["gateway"] = str(route.via)
            if route.dev is not None:
                spec["oif"] = ifindex(route.dev)
            if route.src is not None:
                spec["prefsrc"] = str(route.src)
        return spec

    @staticmethod
    def _rule_spec(rule: VirtualRule) -> dict[str, Any]:
        spec: dict[str, Any] = {"family": _FAMILY[rule.family], "table": rule.table,
                                "protocol": RTPROT_VRRPD}
        for key, net in (("src", rule.source), ("dst", rule.destination)):
            if net is not None:
                spec[key], spec[f"{key}_len"] = str(net.network_address), net.prefixlen
        if rule.fwmark is not None:
            spec["fwmark"] = rule.fwmark
        if rule.priority is not None:
            spec["priority"] = rule.priority
        return spec

    async def _request(self, kind: str, command: str, spec: dict[str, Any], benign: int,
                       what: str) -> None:
        try:
            await getattr(self.rtnl, kind)(command, **spec)
        except NetlinkError as exc:
            if exc.code != benign:
                raise RouteError(exc.code, f"{kind} {command} {what}: "
                                 f"{errno.errorcode.get(exc.code, exc.code)}") from exc

    async def _routes(self) -> list[tuple[int, str, Any]]:
        """(family, destination, message) of every route with :data:`RTPROT_VRRPD`, in every
        table."""
        found: list[tuple[int, str, Any]] = []
        for family in _FAMILY.values():
            async for msg in await self.rtnl.route("dump", family=family, proto=RTPROT_VRRPD):
                dst = msg.get("dst") or ("::", "0.0.0.0")[family == socket.AF_INET]
                found.append((family, f"{dst}/{msg['dst_len']}", msg))
        return found

    async def _rules(self) -> list[Any]:
        """Every rule with :data:`RTPROT_VRRPD` (the dump cannot filter by protocol)."""
        return [msg async for msg in await self.rtnl.rule("dump")
                if msg.get("protocol") == RTPROT_VRRPD]

    async def _dump(self) -> tuple[set[RouteKey], set[RuleKey]]:
        """The keys of every route and rule with :data:`RTPROT_VRRPD` now."""
        routes = {(family, msg.get("table"), dst) for family, dst, msg in await self._routes()}
        rules = set()
        for msg in await self._rules():
            nets = [None if msg.get(k) is None else f"{msg.get(k)}/{msg[f'{k}_len']}"
                    for k in ("src", "dst")]
            rules.add((msg["family"], msg.get("table"), nets[0], nets[1], msg.get("fwmark")))
        return routes, rules
