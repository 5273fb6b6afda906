"""``vrrpd.yaml`` -> :class:`~vrrpd.config.model.Config`, validated; errors via ConfigError.

The schema is the public contract documented in README.md ("Configuration").
"""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Interface, IPv6Interface, ip_address, ip_interface
from pathlib import Path
from typing import Any

from vrrpd.config.model import (
    AnnounceConfig,
    ChecksumMode,
    Config,
    InstanceConfig,
    MetricsConfig,
    SyncConfig,
    SyncGroupConfig,
    TrackConfig,
    TrackRef,
    TrackType,
)
from vrrpd.config.source import ConfigError, Section, Source, in_range

__all__ = ["ConfigError", "load_config", "parse_config"]

NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
TRACK_FLOOR = 0.05  # seconds; the shortest tracker interval


def _name(v: str) -> str | None:
    return None if NAME.match(v) else f"{v!r} may only use letters, digits, '_', '.', '-'"


def load_config(path: Path | str, *, check_interfaces: bool = True) -> Config:
    path = Path(path)
    return parse_config(path.read_text(), path, check_interfaces=check_interfaces)


def parse_config(text: str, path: Path, *, check_interfaces: bool = True) -> Config:
    src = Source(text, path)
    top = Section(src, src.data if src.data is not None else {}, "")
    node = top.take("node", str, socket.gethostname())
    control = Path(top.take("control_socket", str, "/run/vrrpd/vrrpd.sock"))
    group = top.take("control_socket_group", (str, type(None)), None)
    state_dir = Path(top.take("state_dir", str, "/var/lib/vrrpd"))
    log_format = top.take("log_format", str, "text",
                          lambda v: None if v in ("text", "json") else "must be text or json")
    tracks = _tracks(top.section("tracks")) if top.has("tracks") else {}
    instances = tuple(_instance(src, p, item, tracks, check_interfaces)
                      for p, item in top.items("instances"))
    if not instances:
        raise top.error("instances", "at least one instance is required")
    _unique(top, instances)
    groups = _sync_groups(top, instances) if top.has("sync_groups") else ()
    sync = _sync(top.section("sync"), instances) if top.has("sync") else None
    metrics = None
    if top.has("metrics"):
        m = top.section("metrics")
        metrics = MetricsConfig(_endpoint(m, "listen"))
        m.done()
    top.done()
    return Config(path=path, node=node, control_socket=control, control_socket_group=group,
                  state_dir=state_dir, log_format=log_format, instances=instances,
                  tracks=tracks, sync_groups=groups, sync=sync, metrics=metrics)


def _instance(src: Source, path: str, data: Any, tracks: dict[str, TrackConfig],
              check_interfaces: bool) -> InstanceConfig:
    s = Section(src, data, path)
    name = s.take("name", str, check=_name)
    interface = s.take("interface", str)
    if check_interfaces:
        try:
            socket.if_nametoindex(interface)
        except OSError:
            raise s.error("interface", f"interface {interface!r} does not exist on this "
                                       "host (check `ip link`)") from None
    vrid = s.take("vrid", int, check=in_range(1, 255))
    version = s.take("version", int, 3, lambda v: None if v in (2, 3) else "must be 2 or 3")
    priority = s.take("priority", int, 100, in_range(1, 255))
    interval = s.take("advert_interval", float, 1.0)
    cs = round(interval * 100)
    if version == 2 and (abs(interval - round(interval)) > 1e-9 or not 1 <= interval <= 255):
        raise s.error("advert_interval", f"{interval:g} is not allowed with version 2: VRRPv2 "
                      "advertises whole seconds 1..255; use version 3 for sub-second intervals")
    if version == 3 and (abs(interval * 100 - cs) > 1e-6 or not 1 <= cs <= 4095):
        raise s.error("advert_interval", f"{interval:g} is not allowed with version 3: "
                      "VRRPv3 advertises centiseconds, so use a multiple of 0.01 in 0.01..40.95")
    preempt = s.take("preempt", bool, True)
    preempt_delay = s.take("preempt_delay", float, 0.0, in_range(0, 3600))
    vips = _vips(s, version)
    peers = []
    for i, raw in enumerate(s.take("unicast_peers", list, [])):
        try:
            peer = ip_address(raw)
        except ValueError:
            raise s.error("unicast_peers", f"item {i}: {raw!r} is not an IP address") from None
        if peer.version != vips[0].version:
            raise s.error("unicast_peers", f"{peer} is IPv{peer.version}, the VIPs are "
                                           f"IPv{vips[0].version}")
        peers.append(peer)
    modes = [m.value for m in ChecksumMode]
    checksum = ChecksumMode(s.take("v3_checksum", str, "auto",
                                   lambda v: None if v in modes else f"must be one of {modes}"))
    track = _track_refs(s, tracks, priority)
    notify = s.take("notify", (str, type(None)), None)
    announce = AnnounceConfig()
    if s.has("announce"):
        a = s.section("announce")
        announce = AnnounceConfig(a.take("count", int, 3, in_range(1, 100)),
                                  a.take("interval", float, 0.01, in_range(0, 1)),
                                  a.take("repeat_delay", float, 2.0, in_range(0, 60)))
        a.done()
    s.done()
    return InstanceConfig(name, interface, vrid, version, priority, cs, preempt, preempt_delay,
                          vips, tuple(peers), checksum, track, notify, announce)


def _vips(s: Section, version: int) -> tuple[IPv4Interface | IPv6Interface, ...]:
    raw = s.take("vips", list)
    if not raw:
        raise s.error("vips", "at least one VIP is required")
    vips: list[IPv4Interface | IPv6Interface] = []
    for i, item in enumerate(raw):
        try:
            vip = ip_interface(str(item))
        except ValueError:
            raise s.error("vips", f"item {i}: {item!r} is not an address or address/prefix"
                          ) from None
        if vip in vips:
            raise s.error("vips", f"{vip} is listed twice")
        if vips and vip.version != vips[0].version:
            raise s.error("vips", f"mixes IPv{vips[0].version} and IPv{vip.version}: one "
                                  "instance carries one address family; make two instances "
                                  "(and a sync group if they must move together)")
        vips.append(vip)
    if version == 2 and vips[0].version == 6:
        raise s.error("version", "VRRPv2 is IPv4-only (RFC 3768); use version 3 for IPv6")
    if vips[0].version == 6 and not vips[0].ip.is_link_local:
        raise s.error("vips", f"the first IPv6 VIP must be link-local (RFC 5798 §5.2.9), "
                              f"got {vips[0]}; add e.g. fe80::{s.data['vrid']:x}/64 first")
    return tuple(vips)


def _track_refs(s: Section, tracks: dict[str, TrackConfig], priority: int
                ) -> tuple[TrackRef, ...]:
    refs = []
    for i, item in enumerate(s.take("track", list, [])):
        path = f"track[{i}]"
        if isinstance(item, str):
            ref = TrackRef(item)
        elif isinstance(item, dict):
            t = Section(s.src, item, s.key_path(path))
            ref = TrackRef(t.take("name", str), t.take("weight", int, None, in_range(-253, 253)))
            t.done()
        else:
            raise s.error("track", f"item {i} must be a tracker name or {{name, weight}}")
        if ref.name not in tracks:
            known = ", ".join(sorted(tracks)) or "(none; declare them under tracks:)"
            raise ConfigError(s.src.file, s.item_line("track", i), s.key_path(path),
                              f"unknown tracker {ref.name!r}; defined trackers: {known}")
        weight = tracks[ref.name].weight if ref.weight is None else ref.weight
        if priority == 255 and weight != 0:
            raise ConfigError(s.src.file, s.item_line("track", i), s.key_path(path),
                              "priority 255 (address owner) cannot use weighted trackers: its "
                              "priority is fixed by RFC 5798; use weight 0 (FAULT on failure)")
        refs.append(ref)
    return tuple(refs)


def _unique(top: Section, instances: tuple[InstanceConfig, ...]) -> None:
    names: set[str] = set()
    vrids: set[tuple[str, int, int]] = set()
    for i, inst in enumerate(instances):
        key = (inst.interface, inst.vrid, inst.family)
        if inst.name in names:
            raise ConfigError(top.src.file, top.item_line("instances", i),
                              f"instances[{i}].name", f"instance name {inst.name!r} is used twice")
        if key in vrids:
            raise ConfigError(top.src.file, top.item_line("instances", i),
                              f"instances[{i}].vrid", f"VRID {inst.vrid} is already used on "
                              f"{inst.interface} for IPv{inst.family}")
        names.add(inst.name)
        vrids.add(key)


# ---- trackers ---------------------------------------------------------------------------


def _path(v: str) -> str | None:
    return None if v.startswith("/") else "must be an absolute path"


def _status_range(v: Any) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{3})\s*(?:-\s*(\d{3}))?\s*", str(v))
    if not m:
        raise ValueError
    lo, hi = int(m[1]), int(m[2] or m[1])
    if not 100 <= lo <= hi <= 599:
        raise ValueError
    return lo, hi


def _options(t: Section, kind: TrackType) -> dict[str, object]:
    """Type-specific tracker keys, converted (see vrrpd.track for their meaning)."""
    o: dict[str, object] = {}
    if kind is TrackType.HAPROXY:
        o["pidfile"] = Path(t.take("pidfile", str, check=_path))
        sock = t.take("socket", (str, type(None)), None, lambda v: v and _path(v))
        o["socket"] = Path(sock) if sock else None
        o["backends"] = t.take("backends", list, [])
        if o["backends"] and not sock:
            raise t.error("backends", "needs `socket:` (the stats socket to ask `show stat`)")
    elif kind is TrackType.PROCESS:
        given = [k for k in ("pidfile", "name", "cmdline") if t.has(k)]
        if len(given) != 1:
            raise t.error(given[1] if len(given) > 1 else "pidfile",
                          "give exactly one of pidfile, name, cmdline")
        value = t.take(given[0], str)
        if given[0] == "cmdline":
            try:
                re.compile(value)
            except re.error as exc:
                raise t.error("cmdline", f"not a valid regular expression: {exc}") from None
        o[given[0]] = Path(value) if given[0] == "pidfile" else value
    elif kind is TrackType.TCP:
        o["host"] = t.take("host", str)
        o["port"] = t.take("port", int, check=in_range(1, 65535))
    elif kind is TrackType.HTTP:
        o["url"] = t.take("url", str, check=lambda v: None if re.match(r"https?://", v)
                          else "must start with http:// or https://")
        methods = ("GET", "HEAD", "POST", "PUT", "OPTIONS")
        o["method"] = t.take("method", str, "HEAD", lambda v: None if v.upper() in methods
                             else f"must be one of {', '.join(methods)}").upper()
        raw = t.take("status", (str, int), "200-399")
        try:
            o["status"] = _status_range(raw)
        except ValueError:
            raise t.error("status", f"{raw!r} is not a status or range like 200-399") from None
    elif kind is TrackType.SCRIPT:
        o["command"] = t.take("command", str)
        o["user"] = t.take("user", str, "nobody")
        o["max_output"] = t.take("max_output", int, 4096, in_range(1, 1048576))
    elif kind is TrackType.INTERFACE:
        o["interface"] = t.take("interface", str)
    elif kind is TrackType.FILE:
        o["path"] = Path(t.take("path", str, check=_path))
    return o


def _tracks(s: Section) -> dict[str, TrackConfig]:
    tracks = {}
    kinds = [k.value for k in TrackType]
    for name in s.data:
        _name_ok = _name(str(name))
        if _name_ok:
            raise s.error(str(name), _name_ok)
        t = s.section(str(name))
        kind = TrackType(t.take("type", str, check=lambda v: None if v in kinds
                                else f"unknown tracker type {v!r}; one of {', '.join(kinds)}"))
        interval = t.take("interval", float, 1.0,
                          lambda v: None if TRACK_FLOOR <= v <= 3600
                          else f"{v:g}s is outside {TRACK_FLOOR}..3600 seconds")
        timeout = t.take("timeout", float, min(1.0, interval), in_range(0.001, 60))
        tracks[str(name)] = TrackConfig(
            name=str(name), type=kind, interval=interval, timeout=timeout,
            rise=t.take("rise", int, 1, in_range(1, 100)),
            fall=t.take("fall", int, 1, in_range(1, 100)),
            weight=t.take("weight", int, 0, in_range(-253, 253)),
            options=_options(t, kind))
        t.done()
    return tracks


# ---- groups, sync, metrics --------------------------------------------------------------


def _sync_groups(top: Section, instances: tuple[InstanceConfig, ...]
                 ) -> tuple[SyncGroupConfig, ...]:
    s = top.section("sync_groups")
    known = {i.name for i in instances}
    taken: dict[str, str] = {}
    groups = []
    for name, raw in s.data.items():
        notify = None
        if isinstance(raw, dict):
            g = Section(s.src, raw, s.key_path(str(name)))
            members, notify = g.take("instances", list), g.take("notify", str, None)
            g.done()
        elif isinstance(raw, list):
            members = raw
        else:
            raise s.error(str(name), "must be a list of instance names or {instances, notify}")
        if len(members) < 2:
            raise s.error(str(name), "a sync group needs at least 2 instances")
        for m in members:
            if m not in known:
                raise s.error(str(name), f"unknown instance {m!r}; instances: "
                                         f"{', '.join(sorted(known))}")
            if m in taken:
                raise s.error(str(name), f"instance {m!r} is already in sync group "
                                         f"{taken[m]!r}; an instance joins at most one group")
            taken[m] = str(name)
        groups.append(SyncGroupConfig(str(name), tuple(members), notify))
    return tuple(groups)


def _endpoint(s: Section, key: str) -> tuple[str, int]:
    raw = s.take(key, str)
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\[\]]+):(\d+)", raw)
    if not m:
        raise s.error(key, f"{raw!r} must be host:port (or [ipv6]:port)")
    host, port = (m[1], m[2]) if m[1] else (m[3], m[4])
    if not 1 <= int(port) <= 65535:
        raise s.error(key, f"port {port} is outside 1..65535")
    return host, int(port)


def _sync(s: Section, instances: tuple[InstanceConfig, ...]) -> SyncConfig:
    listen = _endpoint(s, "listen")
    peers = []
    for i, raw in enumerate(s.take("peers", list)):
        p = Section(s.src, {"peer": raw}, s.key_path(f"peers[{i}]"))
        peers.append(_endpoint(p, "peer"))
    fingerprints = []
    for raw in s.take("peer_fingerprints", list):
        hexa = str(raw).lower().removeprefix("sha256:").replace(":", "")
        if not re.fullmatch(r"[0-9a-f]{64}", hexa):
            raise s.error("peer_fingerprints", f"{raw!r} is not sha256:<64 hex digits> (as "
                                               "printed by `vrrpd sync keygen`)")
        fingerprints.append(hexa)
    files = tuple(Path(f) for f in s.take("files", list))
    for f in files:
        if not f.is_absolute():
            raise s.error("files", f"{f} must be an absolute path")
    if not files or len(set(files)) != len(files):
        raise s.error("files", "list at least one file, each once")
    source = s.take("source", str, "master", lambda v: None if v == "master"
                    else "only 'master' is supported: the master of `instance` pushes")
    instance = s.take("instance", str, check=lambda v: None if v in {i.name for i in instances}
                      else f"unknown instance {v!r}")
    cfg = SyncConfig(
        listen=listen, peers=tuple(peers),
        cert=Path(s.take("cert", str, check=_path)), peer_fingerprints=tuple(fingerprints),
        files=files,
        validate=s.take("validate", str, check=lambda v: None if "{path}" in v
                        else "must contain {path} (where the staged file is)"),
        reload=s.take("reload", str), source=source, instance=instance,
        max_file_size=s.take("max_file_size", int, 16 * 1024 * 1024, in_range(1, 1 << 30)))
    s.done()
    return cfg
