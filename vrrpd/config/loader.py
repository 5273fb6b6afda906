"""``vrrpd.yaml`` -> :class:`~vrrpd.config.model.Config`, validated; errors via ConfigError.

The schema is the public contract documented in README.md ("Configuration").  The first
mistake found is raised, naming file, line, key path and reason, e.g.
``/etc/vrrpd/vrrpd.yaml:12: instances[0].vrid: 300 is outside 1..255``.
"""

from __future__ import annotations

import re
import shlex
import socket
from collections.abc import Callable, Hashable
from ipaddress import ip_address, ip_interface, ip_network
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from vrrpd.config import anycast
from vrrpd.config import host as on_host
from vrrpd.config.errors import ConfigError
from vrrpd.config.model import (
    HOOK_STATES,
    REALTIME_PRIORITY_MAX,
    ROUTE_TYPES,
    AnnounceConfig,
    Config,
    ConfigSyncConfig,
    FileOptions,
    HAProxyOptions,
    HttpOptions,
    InstanceConfig,
    InterfaceOptions,
    IPAddress,
    IPInterface,
    IPNetwork,
    MetricsConfig,
    ProcessOptions,
    ScriptOptions,
    SyncGroupConfig,
    TcpOptions,
    TproxyConfig,
    TrackConfig,
    TrackOptions,
    TrackRef,
    TrackType,
    VipPlacement,
    VirtualRoute,
    VirtualRule,
    default,
)
from vrrpd.config.schema import (
    Section,
    Source,
    Value,
    absolute_path,
    check_name,
    endpoint,
    in_range,
    number,
    one_of,
    refuse_duplicates,
)
from vrrpd.proto.numbers import OWNER_PRIORITY, V2_MAX_ADVER_SECONDS, VRID_MAX
from vrrpd.proto.packet import ChecksumMode, simple_text_auth
from vrrpd.renames import deprecated

__all__ = ["ConfigError", "load_config", "parse_config"]

TRACK_FLOOR = 0.05  # seconds; the shortest tracker interval
DRAIN_TIMEOUT_MAX = 86400  # seconds; HAProxy's longest usual client timeout is well below
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "OPTIONS")
OPTIONAL_STR = (str, type(None))
T = TypeVar("T")
# `sync:` is the old spelling of `config_sync:` (vrrpd.renames)
TOP_LEVEL_KEYS = ("node", "control_socket", "control_socket_group", "state_dir", "log_format",
                  "realtime_priority", "instances", "tracks", "sync_groups", "config_sync",
                  "metrics", "bgp", "anycast", "sync")


def load_config(path: Path | str, *, host: bool = True) -> Config:
    """Read and validate ``path``.  OSError (missing, unreadable) passes through.

    The daemon's start and reload and ``vrrpd --check-config`` all load through here.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, "", f"not UTF-8 text (byte {exc.start})") from None
    return parse_config(text, path, host=host)


def parse_config(text: str, path: Path, *, host: bool = True) -> Config:
    """Validate ``text`` (the contents of ``path``, which errors name).

    ``host`` also checks the file against this host (:mod:`vrrpd.config.host`: users and
    groups exist, notify hooks are executable, the sync certificate loads); False checks the
    file alone, for a file meant for another host.  Interfaces are never required to exist:
    an instance whose interface is missing waits in FAULT until it appears.
    """
    src = Source(text, path)
    top = Section(src.root())
    top.only(TOP_LEVEL_KEYS)  # first: a misspelt `tracks:` would confuse every later error
    tracks = _tracks(top.section("tracks"), host) if top.has("tracks") else {}
    items = top.items("instances", required=not top.has("anycast"))
    if not items and not top.has("anycast"):
        raise top.error("instances", "at least one instance is required (or an `anycast:` "
                                     "group)")
    instances = tuple(_instance(Section(v), tracks, host,
                                 top.has("config_sync") or top.has("sync")) for v in items)
    _refuse_clashes(items, instances)
    config = Config(
        path=path,
        node=top.take("node", str, socket.gethostname(), check_name),
        control_socket=top.take("control_socket", str, default(Config, "control_socket"),
                                absolute_path),
        control_socket_group=top.take("control_socket_group", OPTIONAL_STR, None,
                                      on_host.group if host else None),
        state_dir=top.take("state_dir", str, default(Config, "state_dir"), absolute_path),
        log_format=top.take("log_format", str, default(Config, "log_format"),
                            one_of("text", "json")),
        realtime_priority=top.take("realtime_priority", int,
                                   default(Config, "realtime_priority"),
                                   in_range(0, REALTIME_PRIORITY_MAX)),
        instances=instances,
        tracks=tracks,
        sync_groups=_sync_groups(top.section("sync_groups"), instances, host)
        if top.has("sync_groups") else (),
        config_sync=_config_sync_section(top, instances, host),
        metrics=_metrics(top.section("metrics")) if top.has("metrics") else None,
        bgp=anycast.speaker(top.section("bgp")) if top.has("bgp") else None,
        anycast=anycast.groups(top, "anycast", tracks,
                               lambda s: _track_refs(s, tracks, None))
        if top.has("anycast") else (),
    )
    if config.anycast and config.bgp is None:
        raise top.error("anycast", "anycast groups announce through a BGP speaker: add "
                                   "`bgp:` (e.g. `bgp: {engine: frr}`)")
    top.done()
    return config


# ---- instances --------------------------------------------------------------------------


def _hook(host: bool) -> Callable[[str], str]:
    """A notify hook: a command line (keepalived's: ``/path/to/script [args]``, quoted words
    as in sh) whose program is an absolute path, and on this host an executable file."""
    check = on_host.executable if host else absolute_path

    def hook(v: str) -> str:
        try:
            argv = shlex.split(v)
        except ValueError as exc:
            raise ValueError(f"{v!r}: {exc}") from None
        if not argv:
            raise ValueError("is empty; give the hook's path")
        check(argv[0])
        return v
    return hook


def _hooks(s: Section, host: bool) -> tuple[str | None, dict[str, str]]:
    """``notify``, and ``notify_master`` / ``_backup`` / ``_fault`` / ``_stop`` by state."""
    states = {state: s.take(f"notify_{state.lower()}", OPTIONAL_STR, None, _hook(host))
              for state in HOOK_STATES}
    return (s.take("notify", OPTIONAL_STR, None, _hook(host)),
            {k: v for k, v in states.items() if v is not None})


def _instance(s: Section, tracks: dict[str, TrackConfig], host: bool, has_sync: bool
              ) -> InstanceConfig:
    name = s.take("name", str, check=check_name)
    interface = s.take("interface", str, check=_interface_name)
    vrid = s.take("vrid", int, check=in_range(1, VRID_MAX))
    version = s.take("version", int, default(InstanceConfig, "version"), one_of(2, 3))
    priority = s.take("priority", int, default(InstanceConfig, "priority"),
                      in_range(1, OWNER_PRIORITY))
    interval_cs = s.take("advert_interval", float, default(InstanceConfig, "advert_interval_cs"),
                         lambda v: _interval_cs(v, version))
    placement: dict[IPInterface, VipPlacement] = {}
    vips = _vips(s, vrid, placement)
    vips_excluded = _vips_excluded(s, vips, placement)
    src_ip = s.take("src_ip", OPTIONAL_STR, None, _src_ip(vips[0].version))
    if src_ip is not None and src_ip in {v.ip for v in vips + vips_excluded}:
        raise s.error("src_ip", f"{src_ip} is one of the instance's VIPs, which the backup does "
                                "not hold: use an address of this host's own")
    if version == 2 and vips[0].version == 6:
        raise s.error("version", "VRRPv2 is IPv4-only (RFC 3768); use version 3 for IPv6")
    announce = AnnounceConfig()
    if s.has("announce"):
        a = s.section("announce")
        announce = AnnounceConfig(
            a.take("count", int, default(AnnounceConfig, "count"), in_range(1, 100)),
            a.take("interval", float, default(AnnounceConfig, "interval"), in_range(0, 1)),
            a.take("repeat_delay", float, default(AnnounceConfig, "repeat_delay"),
                   in_range(0, 60)),
            a.take("refresh", float, default(AnnounceConfig, "refresh"), _refresh),
            a.take("refresh_count", int, default(AnnounceConfig, "refresh_count"),
                   in_range(1, 100)))
        a.done()
    notify, notify_states = _hooks(s, host)
    auth_pass = s.take("auth_pass", OPTIONAL_STR, None, _auth_pass)
    if auth_pass is not None and version != 2:
        raise s.error("auth_pass", "authentication exists only in VRRPv2 (RFC 5798 §9 removed "
                                   "it); use version: 2 to talk to a keepalived auth_type PASS "
                                   "peer, or remove auth_pass")
    tproxy = _tproxy(s.section("tproxy")) if s.has("tproxy") else None
    if tproxy is not None and host:
        try:
            on_host.tproxy(vips[0].version)
        except ValueError as exc:
            raise s.error("tproxy", str(exc)) from None
    drain_timeout = s.take("drain_timeout", float, default(InstanceConfig, "drain_timeout"),
                           in_range(0, DRAIN_TIMEOUT_MAX))
    if s.has("drain_timeout") and drain_timeout and not has_sync:
        raise s.error("drain_timeout", "a draining hand-over tells the peer over the config "
                                       "sync channel: configure config_sync: (keys pinned on both "
                                       "nodes), or set drain_timeout: 0")
    config = InstanceConfig(
        name=name, interface=interface, vrid=vrid, version=version, priority=priority,
        advert_interval_cs=interval_cs,
        preempt=s.take("preempt", bool, default(InstanceConfig, "preempt")),
        preempt_delay=s.take("preempt_delay", float, default(InstanceConfig, "preempt_delay"),
                             in_range(0, 3600)),
        vips=vips,
        vips_excluded=vips_excluded,
        vip_placement=placement,
        src_ip=src_ip,
        **_peers(s, vips[0].version),
        v3_checksum=ChecksumMode(s.take("v3_checksum", str,
                                        default(InstanceConfig, "v3_checksum"),
                                        one_of(*(m.value for m in ChecksumMode)))),
        track=_track_refs(s, tracks, priority),
        notify=notify,
        notify_states=notify_states,
        auth_pass=auth_pass,
        announce=announce,
        na_router_flag=s.take("na_router_flag", bool, default(InstanceConfig, "na_router_flag")),
        accept_mode=s.take("accept_mode", bool, default(InstanceConfig, "accept_mode")),
        virtual_mac=s.take("virtual_mac", bool, default(InstanceConfig, "virtual_mac"),
                           on_host.virtual_mac(interface, vips[0].version, vrid)
                           if host else None),
        drain_timeout=drain_timeout,
        routes=tuple(_route(Section(v)) for v in s.items("virtual_routes", required=False)),
        rules=tuple(_rule(Section(v), vips[0].version)
                    for v in s.items("virtual_rules", required=False)),
        tproxy=tproxy,
    )
    s.done()
    return config


def _network(text: str) -> IPNetwork:
    """A network (``192.0.2.0/24``, ``2001:db8::/32``) or one address (a /32 or /128)."""
    try:
        return ip_network(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a network address/prefix (host bits must be 0) "
                         "or an address") from None


def _address(text: str) -> IPAddress:
    try:
        return ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def _same_family(s: Section, key: str, value: IPAddress | IPNetwork | None,
                 family: int) -> None:
    if value is not None and value.version != family:
        raise s.error(key, f"{value} is IPv{value.version}, but this entry is IPv{family}")


_TABLE = in_range(1, 2**32 - 1)  # 0 is RT_TABLE_UNSPEC; ids above 255 travel in RTA_TABLE


def _route(s: Section) -> VirtualRoute:
    """One ``virtual_routes`` entry (keepalived's ``to ... via ... dev ... table ...``)."""
    to = s.take("to", str, check=_network)
    route = VirtualRoute(
        to=to, via=s.take("via", OPTIONAL_STR, None, _address),
        dev=s.take("dev", OPTIONAL_STR, None, _interface_name),
        src=s.take("src", OPTIONAL_STR, None, _address),
        metric=s.take("metric", (int, type(None)), None, in_range(0, 2**32 - 1)),
        table=s.take("table", int, default(VirtualRoute, "table"), _TABLE),
        type=s.take("type", str, default(VirtualRoute, "type"), one_of(*ROUTE_TYPES)))
    _same_family(s, "via", route.via, to.version)
    _same_family(s, "src", route.src, to.version)
    if route.type in ("unicast", "local") and route.via is None and route.dev is None:
        raise s.error("to", f"route to {to} needs 'via' (a gateway) or 'dev' (an interface), "
                            "or a 'type' such as blackhole")
    if route.type == "local" and route.via is not None:
        raise s.error("via", "a local route delivers to this host: give 'dev' (e.g. lo), "
                             "not 'via'")
    if route.type not in ("unicast", "local") and (route.via is not None
                                                    or route.dev is not None):
        raise s.error("type", f"a {route.type} route goes nowhere: remove 'via' and 'dev'")
    s.done()
    return route


def _rule(s: Section, family: int) -> VirtualRule:
    """One ``virtual_rules`` entry (keepalived's ``from ... to ... fwmark ... table ...``)."""
    source = s.take("from", OPTIONAL_STR, None, _network)
    destination = s.take("to", OPTIONAL_STR, None, _network)
    family = (source or destination or ip_network(("::", "0.0.0.0")[family == 4])).version
    _same_family(s, "to", destination, family)
    rule = VirtualRule(
        table=s.take("table", int, check=_TABLE), family=family, source=source,
        destination=destination,
        fwmark=s.take("fwmark", (int, type(None)), None, in_range(0, 2**32 - 1)),
        priority=s.take("priority", (int, type(None)), None, in_range(1, 2**32 - 1)))
    if source is None and destination is None and rule.fwmark is None:
        raise s.error("table", "this rule would send all traffic to table "
                               f"{rule.table}: give 'from', 'to' or 'fwmark'")
    s.done()
    return rule


def _tproxy(s: Section) -> TproxyConfig:
    """``tproxy:`` ({} for the defaults): the mark, table and rule priority of the gateway
    instance's transparent-proxy routing (:class:`~vrrpd.config.model.TproxyConfig`)."""
    config = TproxyConfig(
        fwmark=s.take("fwmark", int, default(TproxyConfig, "fwmark"), in_range(1, 2**32 - 1)),
        table=s.take("table", int, default(TproxyConfig, "table"), _own_table),
        priority=s.take("priority", int, default(TproxyConfig, "priority"),
                        in_range(1, 32765)))
    s.done()
    return config


def _own_table(v: int) -> int:
    """A routing table only vrrpd uses: not default/main/local (253..255), whose routes a
    ``local default`` route would shadow."""
    _TABLE(v)
    if v in (253, 254, 255):
        raise ValueError(f"table {v} is one of the kernel's own (default/main/local); "
                         "give a table only vrrpd uses, e.g. 7470")
    return v


def entry_refusal(key: str, entry: dict[str, Any]) -> str | None:
    """Why ``entry`` is not a valid ``virtual_routes`` / ``virtual_rules`` (``key``) entry, or
    None: for the keepalived converter, which leaves out what vrrpd would refuse."""
    section = Section(Value(Source("{}", Path(key)), key, None, entry))
    try:
        _route(section) if key == "virtual_routes" else _rule(section, 4)
    except ConfigError as exc:
        return f"{exc.key}: {exc.reason}"
    return None


def _refresh(v: float) -> float:
    """``announce.refresh``: 0 (off) or 1..86400 seconds, so a typo cannot flood the LAN."""
    if v != 0 and not 1 <= v <= 86400:
        raise ValueError(f"{number(v)} must be 0 (no refresh) or 1..86400 seconds")
    return v


def _auth_pass(v: str) -> str:
    simple_text_auth(v)  # 1..8 ASCII characters
    return v


def _interface_name(name: str) -> str:
    """A name Linux could give an interface (IFNAMSIZ, no '/', ':' or blanks)."""
    if not 0 < len(name) < 16 or re.search(r"[/:\s]", name) or name in (".", ".."):
        raise ValueError(f"{name!r} is not a valid interface name (at most 15 characters, no "
                         "'/', ':' or blanks)")
    return name


def _interval_cs(seconds: float, version: int) -> int:
    """``advert_interval`` in seconds -> centiseconds, if the version can carry it."""
    cs = round(seconds * 100) if abs(seconds) < 1e9 else -1  # -1: out of range, no overflow
    if version == 2 and (seconds != round(seconds) or not 1 <= seconds <= V2_MAX_ADVER_SECONDS):
        raise ValueError(f"advert_interval {number(seconds)} is not allowed with version 2: VRRPv2 "
                         "advertises whole seconds 1..255; use version 3 for sub-second "
                         "intervals")
    if version == 3 and (abs(seconds * 100 - cs) > 1e-6 or not 1 <= cs <= 4095):
        raise ValueError(f"advert_interval {number(seconds)} is not allowed with version 3: VRRPv3 "
                         "advertises centiseconds (RFC 5798 §5.2.7), so use a multiple of 0.01 "
                         "in 0.01..40.95")
    return cs


def _vip(text: str) -> IPInterface:
    try:
        vip = ip_interface(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an address or address/prefix") from None
    if vip.ip.is_multicast or vip.ip.is_unspecified or vip.ip.is_loopback:
        raise ValueError(f"{vip.ip} cannot be a virtual address (multicast, unspecified "
                         "or loopback)")
    return vip


def _vip_entry(v: Value, placement: dict[IPInterface, VipPlacement]) -> IPInterface:
    """A VIP: ``192.0.2.100/24``, or ``{address: 192.0.2.100/24, dev: eth2, label: eth2:pacs}``
    (keepalived's ``dev`` and ``label``; IPv4 only), whose placement goes into ``placement``."""
    if not isinstance(v.raw, dict):
        return v.get(str, _vip)  # type: ignore[no-any-return]
    s = Section(v)
    vip: IPInterface = s.take("address", str, check=_vip)
    where = VipPlacement(s.take("dev", OPTIONAL_STR, None, _interface_name),
                         s.take("label", OPTIONAL_STR, None, _label))
    s.done()
    if vip.version == 6 and where != VipPlacement():
        raise v.error(f"{vip}: dev and label are for IPv4 VIPs only (IPv6 addresses have no "
                      "label, and vrrpd announces IPv6 VIPs from the instance's interface)")
    if where != VipPlacement():
        placement[vip] = where
    return vip


def _label(text: str) -> str:
    """An IPv4 address label (IFA_LABEL: at most 15 characters, no blanks)."""
    if not 0 < len(text) < 16 or re.search(r"\s", text):
        raise ValueError(f"{text!r} is not a valid address label (1..15 characters, no blanks, "
                         "e.g. eth1:pacs)")
    return text


def _vips(s: Section, vrid: int, placement: dict[IPInterface, VipPlacement]
          ) -> tuple[IPInterface, ...]:
    items = s.items("vips")
    if not items:
        raise s.error("vips", "at least one VIP is required")
    vips = [_vip_entry(v, placement) for v in items]
    refuse_duplicates((v, vip.ip) for v, vip in zip(items, vips, strict=True))
    for v, vip in zip(items, vips, strict=True):
        if vip.version != vips[0].version:
            raise v.error(f"{vip} is IPv{vip.version} but {vips[0]} is IPv{vips[0].version}: "
                          "one instance carries one address family; make two instances (and "
                          "a sync group if they must move together)")
    if vips[0].version == 6 and not vips[0].ip.is_link_local:
        raise items[0].error(f"the first IPv6 VIP must be link-local (RFC 5798 §5.2.9: "
                             f"adverts carry it as the router's address), got {vips[0]}; "
                             f"add e.g. fe80::{vrid}/64 first")
    return tuple(vips)


def _address_of(family: int) -> Callable[[str], IPAddress]:
    """An IP address of the VIPs' family."""
    def check(text: str) -> IPAddress:
        try:
            address = ip_address(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address") from None
        if address.version != family:
            raise ValueError(f"{address} is IPv{address.version}, the VIPs are IPv{family}")
        return address
    return check


def _src_ip(family: int) -> Callable[[str], IPAddress]:
    """``src_ip``: a unicast address of the VIPs' family (IPv6: link-local, RFC 5798 §5.1.2.1)."""
    def check(text: str) -> IPAddress:
        address = _address_of(family)(text)
        if address.is_multicast or address.is_unspecified or address.is_loopback:
            raise ValueError(f"{address} cannot be a source address")
        if family == 6 and not address.is_link_local:
            raise ValueError(f"{address}: VRRPv3 adverts over IPv6 come from a link-local "
                             "address (RFC 5798 §5.1.2.1)")
        return address
    return check


def _vips_excluded(s: Section, vips: tuple[IPInterface, ...],
                   placement: dict[IPInterface, VipPlacement]) -> tuple[IPInterface, ...]:
    """keepalived's virtual_ipaddress_excluded: the VIPs' family, none listed twice."""
    items = s.items("vips_excluded", required=False)
    excluded = [_vip_entry(v, placement) for v in items]
    refuse_duplicates([(s.value("vips"), vip.ip) for vip in vips]
                      + [(v, vip.ip) for v, vip in zip(items, excluded, strict=True)],
                      "; an address is either advertised (vips) or not (vips_excluded)")
    for v, vip in zip(items, excluded, strict=True):
        if vip.version != vips[0].version:
            raise v.error(f"{vip} is IPv{vip.version}, the VIPs are IPv{vips[0].version}: "
                          "make a second instance for the other family")
    return tuple(excluded)


def _peers(s: Section, family: int) -> dict[str, Any]:
    """``unicast_peers``, ``peers`` (which ``unicast_peers`` joins) and ``strict_peers``.

    ``strict_peers`` defaults to true in unicast mode (only the listed peers are heard, as
    before ``peers`` existed) and to false in multicast mode (unlisted sources are reported,
    and obeyed).
    """
    unicast = _addresses(s, "unicast_peers", family)
    listed = _addresses(s, "peers", family)
    peers = listed + tuple(a for a in unicast if a not in listed)
    strict = s.take("strict_peers", bool, bool(unicast))
    if strict and not peers:
        raise s.error("strict_peers", "strict_peers: true needs the legitimate routers of this "
                      "VRID listed in peers (or unicast_peers), else every advert is dropped")
    return {"unicast_peers": unicast, "peers": peers, "strict_peers": strict}


def _addresses(s: Section, key: str, family: int) -> tuple[IPAddress, ...]:
    items = s.items(key, required=False)
    peers = [v.get(str, _address_of(family)) for v in items]
    refuse_duplicates(zip(items, peers, strict=True))
    return tuple(peers)


def _track_refs(s: Section, tracks: dict[str, TrackConfig], priority: int | None
                ) -> tuple[TrackRef, ...]:
    items = s.items("track", required=False)
    refs = []
    for v in items:
        if isinstance(v.raw, dict):
            t = Section(v)
            ref = TrackRef(t.take("name", str), t.take("weight", int, None, in_range(-253, 253)))
            t.done()
        else:
            ref = TrackRef(v.get(str))
        if ref.name not in tracks:
            known = ", ".join(sorted(tracks)) or "(none; declare them under tracks:)"
            raise v.error(f"unknown tracker {ref.name!r}; defined trackers: {known}")
        weight = tracks[ref.name].weight if ref.weight is None else ref.weight
        if priority == OWNER_PRIORITY and weight != 0:
            raise v.error(f"tracker {ref.name!r} has weight {weight}, but priority 255 is the "
                          "address owner's fixed priority (RFC 5798 §5.2.4) and cannot be "
                          "adjusted; use weight 0 (FAULT on failure) or a priority below 255")
        refs.append(ref)
    refuse_duplicates((v, ref.name) for v, ref in zip(items, refs, strict=True))
    return tuple(refs)


def _refuse_clashes(items: list[Value], instances: tuple[InstanceConfig, ...]) -> None:
    """Instance names are unique; so is (interface, VRID, family)."""
    names: dict[str, str] = {}
    routers: dict[tuple[str, int, int], str] = {}
    for v, inst in zip(items, instances, strict=True):
        s = Section(v)
        if inst.name in names:
            raise s.error("name", f"instance name {inst.name!r} is already used by "
                                  f"{names[inst.name]}")
        key = (inst.interface, inst.vrid, inst.family)
        if key in routers:
            raise s.error("vrid", f"VRID {inst.vrid} is already used on {inst.interface} for "
                                  f"IPv{inst.family} by {routers[key]}")
        names[inst.name] = routers[key] = v.path
    gateways: dict[int, str] = {}
    for v, inst in zip(items, instances, strict=True):
        if inst.tproxy is not None:
            if inst.family in gateways:
                raise Section(v).error("tproxy", f"IPv{inst.family} transparent proxying is "
                                       f"already set on {gateways[inst.family]}; one gateway "
                                       "instance per address family holds its rule and table")
            gateways[inst.family] = v.path


# ---- trackers ---------------------------------------------------------------------------


def _tracks(s: Section, host: bool) -> dict[str, TrackConfig]:
    tracks = {}
    for name, value in s.entries():
        t = Section(value)
        kind = TrackType(t.take("type", str, check=one_of(*(k.value for k in TrackType))))
        interval = t.take("interval", float, default(TrackConfig, "interval"),
                          in_range(TRACK_FLOOR, 3600))
        tracks[name] = TrackConfig(
            name=name, type=kind, interval=interval,
            timeout=t.take("timeout", float, min(default(TrackConfig, "timeout"), interval),
                           _timeout),
            rise=t.take("rise", int, default(TrackConfig, "rise"), in_range(1, 100)),
            fall=t.take("fall", int, default(TrackConfig, "fall"), in_range(1, 100)),
            weight=t.take("weight", int, default(TrackConfig, "weight"), in_range(-253, 253)),
            options=_OPTIONS[kind](t, host))
        t.done()
    return tracks


def _timeout(v: float) -> float:
    if not 0 < v <= 60:
        raise ValueError(f"{number(v)} must be more than 0 and at most 60 seconds")
    return v


def _strings(t: Section, key: str) -> list[str]:
    items = t.items(key, required=False)
    strings = [v.get(str) for v in items]
    refuse_duplicates(zip(items, strings, strict=True))
    return strings


def _haproxy(t: Section, _: bool) -> HAProxyOptions:
    options = HAProxyOptions(
        pidfile=t.take("pidfile", OPTIONAL_STR, default(HAProxyOptions, "pidfile"),
                       absolute_path),
        socket=t.take("socket", OPTIONAL_STR, default(HAProxyOptions, "socket"), absolute_path),
        backends=tuple(_strings(t, "backends")))
    if options.pidfile is None and options.socket is None:
        raise t.error("pidfile", "required unless `socket:` is given (then HAProxy is found "
                                 "by the process listening on its stats socket)")
    if options.backends and options.socket is None:
        raise t.error("backends", "needs `socket:` (the stats socket to ask `show stat`)")
    return options


def _regex(v: str) -> str:
    try:
        re.compile(v)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return v


def _process(t: Section, _: bool) -> ProcessOptions:
    given = [k for k in t.data if k in ("pidfile", "name", "cmdline")]  # in file order
    if len(given) != 1:
        raise t.error(given[1] if given else "pidfile",
                      "give exactly one of pidfile, name, cmdline")
    checks = {"pidfile": absolute_path, "name": None, "cmdline": _regex}
    return ProcessOptions(**{given[0]: t.take(given[0], str, check=checks[given[0]])})


def _tcp(t: Section, _: bool) -> TcpOptions:
    return TcpOptions(t.take("host", str), t.take("port", int, check=in_range(1, 65535)))


def _url(v: str) -> str:
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{v!r} must be an http:// or https:// URL with a host")
    return v


def _status(v: str | int) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{3})\s*(?:-\s*(\d{3}))?\s*", str(v))
    lo, hi = (int(m[1]), int(m[2] or m[1])) if m else (0, 0)
    if not 100 <= lo <= hi <= 599:
        raise ValueError(f"{v!r} is not a status or range like 200-399 (within 100..599)")
    return lo, hi


def _http(t: Section, _: bool) -> HttpOptions:
    return HttpOptions(
        t.take("url", str, check=_url),
        t.take("method", str, default(HttpOptions, "method"),
               lambda v: one_of(*HTTP_METHODS)(v.upper())),
        t.take("status", (str, int), default(HttpOptions, "status"), _status))


def _script(t: Section, host: bool) -> ScriptOptions:
    return ScriptOptions(
        t.take("command", str),
        t.take("user", str, default(ScriptOptions, "user"), on_host.user if host else None),
        t.take("max_output", int, default(ScriptOptions, "max_output"), in_range(1, 1048576)))


def _interface(t: Section, _: bool) -> InterfaceOptions:
    return InterfaceOptions(t.take("interface", str, check=_interface_name))


def _file(t: Section, _: bool) -> FileOptions:
    return FileOptions(t.take("path", str, check=absolute_path))


# Type-specific tracker keys, converted (config.model's *Options; vrrpd.track uses them).
_OPTIONS: dict[TrackType, Callable[[Section, bool], TrackOptions]] = {
    TrackType.HAPROXY: _haproxy, TrackType.PROCESS: _process, TrackType.TCP: _tcp,
            TrackType.HTTP: _http, TrackType.SCRIPT: _script, TrackType.INTERFACE: _interface,
            TrackType.FILE: _file}


# ---- sync groups, config sync, metrics ---------------------------------------------------


def _sync_groups(s: Section, instances: tuple[InstanceConfig, ...], host: bool
                 ) -> tuple[SyncGroupConfig, ...]:
    known = {i.name for i in instances}
    taken: dict[str, str] = {}
    groups = []
    for name, value in s.entries():
        notify: str | None = None
        notify_states: dict[str, str] = {}
        if isinstance(value.raw, dict):
            g = Section(value)
            items = g.items("instances")
            notify, notify_states = _hooks(g, host)
            g.done()
        elif isinstance(value.raw, list):
            items = value.items()
        else:
            raise value.error("must be a list of instance names or {instances, notify, ...}")
        if len(items) < 2:
            raise value.error("a sync group needs at least 2 instances")
        members = [v.get(str) for v in items]
        for v, member in zip(items, members, strict=True):
            if member not in known:
                raise v.error(f"unknown instance {member!r}; instances: "
                              f"{', '.join(sorted(known))}")
            if member in taken:
                raise v.error(f"instance {member!r} is already in sync group "
                              f"{taken[member]!r}; an instance joins at most one group")
            taken[member] = name
        groups.append(SyncGroupConfig(name, tuple(members), notify, notify_states))
    return tuple(groups)


def _fingerprint(v: str) -> str:
    """``sha256:AB:CD:..`` (prefix and colons optional) -> lowercase hex without colons."""
    hexa = v.lower().removeprefix("sha256:").replace(":", "")
    if not re.fullmatch(r"[0-9a-f]{64}", hexa):
        raise ValueError(f"{v!r} is not sha256:<64 hex digits, colons optional>")
    if hexa == "0" * 64:
        raise ValueError("the all-zeros placeholder pins no certificate: run `vrrpd config-sync "
                         "keygen --cert /etc/vrrpd/sync/node.pem --name NODE` on the peer and "
                         "list the sha256:... it prints here")
    return hexa


def _listed(s: Section, key: str, check: Callable[[str], T],
            same: Callable[[T], Hashable] = lambda v: v, why: str = "") -> tuple[T, ...]:
    """A required, non-empty list of strings at ``key``, each checked, no two the ``same``."""
    items = s.items(key)
    if not items:
        raise s.error(key, "list at least one")
    values = [v.get(str, check) for v in items]
    refuse_duplicates(((v, same(value)) for v, value in zip(items, values, strict=True)), why)
    return tuple(values)


def _listen(v: str) -> tuple[str, int]:
    """A listening endpoint: ``host`` must be an IP address (what the socket binds)."""
    address, port = endpoint(v)
    try:
        ip_address(address)
    except ValueError:
        raise ValueError(f"{address!r} is not an IP address; a listener binds an address of "
                         "this host (or 0.0.0.0 / [::] for all), not a name") from None
    return address, port


def _config_sync_section(top: Section, instances: tuple[InstanceConfig, ...],
                         host: bool) -> ConfigSyncConfig | None:
    """``config_sync:``, or its old spelling ``config_sync:`` (with a deprecation warning)."""
    key = "config_sync"
    if top.has("sync"):
        if top.has(key):
            raise top.error("sync", "is the old spelling of `config_sync:`, which is also set; "
                                    "keep only `config_sync:`")
        deprecated("sync:", f"{top.src.file}:{top.src.line(top.data, 'sync')}")
        key = "sync"
    return _config_sync(top.section(key), instances, host) if top.has(key) else None


def _config_sync(s: Section, instances: tuple[InstanceConfig, ...],
                 host: bool) -> ConfigSyncConfig:
    known = {i.name for i in instances}

    def instance(v: str) -> str:
        if v not in known:
            raise ValueError(f"unknown instance {v!r}; instances: {', '.join(sorted(known))}")
        return v

    def template(v: str) -> str:
        if "{path}" not in v:
            raise ValueError("must contain {path} (where the staged file is)")
        return v

    config = ConfigSyncConfig(
        listen=s.take("listen", str, check=_listen),
        peers=_listed(s, "peers", endpoint),
        cert=s.take("cert", str, check=on_host.config_sync_identity if host else absolute_path),
        peer_fingerprints=_listed(s, "peer_fingerprints", _fingerprint),
        files=_listed(s, "files", absolute_path, lambda p: p.name,
                      "; files travel to the peer by name, so each needs its own"),
        validate=s.take("validate", str, check=template),
        reload=s.take("reload", str),
        source=s.take("source", str, default(ConfigSyncConfig, "source"), one_of("master")),
        instance=s.take("instance", str, check=instance),
        max_file_size=s.take("max_file_size", int, default(ConfigSyncConfig, "max_file_size"),
                             in_range(1, 1 << 30)),
        master_socket=s.take("master_socket", OPTIONAL_STR, None, absolute_path),
        stats_socket=s.take("stats_socket", OPTIONAL_STR, None, absolute_path),
        pidfile=s.take("pidfile", OPTIONAL_STR, None, absolute_path),
        allow_code=s.take("allow_code", bool, default(ConfigSyncConfig, "allow_code")),
    )
    if config.pidfile is not None and config.stats_socket is None:
        raise s.error("pidfile", "is checked together with `stats_socket:`; set that too")
    s.done()
    return config


def _metrics(s: Section) -> MetricsConfig:
    config = MetricsConfig(listen=s.take("listen", str, check=_listen))
    s.done()
    return config

