"""The validated, typed configuration model.  Built by :mod:`vrrpd.config.loader`.

Every class here is frozen: a reload builds a new tree and diffs it against the running one
(:mod:`vrrpd.config.diff`), it never mutates the old one.  Times are seconds (float) except the
VRRP advertisement interval, which is kept in centiseconds as on the wire (RFC 5798 §5.2.7).
"""

from __future__ import annotations

import functools
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import StrEnum
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_network,
)
from pathlib import Path
from typing import Any, TypeVar

from vrrpd.proto.numbers import DEFAULT_PRIORITY, OWNER_PRIORITY
from vrrpd.proto.packet import ChecksumMode

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface
IPNetwork = IPv4Network | IPv6Network

MAIN_TABLE = 254  # RT_TABLE_MAIN (rtnetlink.h), ``ip route``'s table when none is named
ROUTE_TYPES = ("unicast", "local", "blackhole", "unreachable", "prohibit")  # RTN_* vrrpd sets


def default(model: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``model``: every default has its one home in
    this module; the loader (:mod:`vrrpd.config.loader`) and ``vrrpctl`` ask for it here."""
    f = _fields(model)[name]
    if f.default is MISSING and f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


@functools.cache
def _fields(model: type) -> dict[str, Field[Any]]:
    """The fields of dataclass ``model`` by name: the loader asks :func:`default` ten times per
    instance (a tenth of a 255-instance start's configuration time went to making this dict)."""
    return {f.name: f for f in fields(model)}


# The states notify hooks name (keepalived's): STOP is an instance stopping (shutdown, or
# removed by a reload); each has a ``notify_<state>`` key.
HOOK_STATES = ("MASTER", "BACKUP", "FAULT", "STOP")


@dataclass(frozen=True)
class TrackRef:
    """An instance's reference to a tracker; ``weight`` None means the tracker's own weight."""

    name: str
    weight: int | None = None


@dataclass(frozen=True)
class AnnounceConfig:
    """Gratuitous ARP / unsolicited NA on becoming master (RFC 5798 §6.4.1 / §6.4.2)."""

    count: int = 3  # frames per VIP in each burst
    interval: float = 0.01  # seconds between frames of one burst
    repeat_delay: float = 2.0  # seconds until the second burst; 0 disables it
    # keepalived's garp_master_refresh: a burst of ``refresh_count`` every ``refresh`` seconds
    # while master, after the second burst; 0 disables it
    refresh: float = 0.0
    refresh_count: int = 1


@dataclass(frozen=True)
class VipPlacement:
    """Where a VIP lives when not on the instance's interface (keepalived's ``dev``), and its
    IPv4 address label (keepalived's ``label``, as ``ip addr add ... label``)."""

    dev: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class VirtualRoute:
    """keepalived's ``virtual_routes`` entry: a route the master holds with its VIPs
    (:mod:`vrrpd.kernel.routes`).  A unicast route has ``via`` or ``dev`` (or both)."""

    to: IPNetwork
    via: IPAddress | None = None
    dev: str | None = None
    src: IPAddress | None = None  # the preferred source (``ip route ... src``)
    metric: int | None = None
    table: int = MAIN_TABLE
    type: str = "unicast"  # one of ROUTE_TYPES


@dataclass(frozen=True)
class VirtualRule:
    """keepalived's ``virtual_rules`` entry: a policy routing rule the master holds with its
    VIPs (:mod:`vrrpd.kernel.routes`); ``family`` follows ``from``/``to``, else the VIPs'."""

    table: int
    family: int
    source: IPNetwork | None = None  # ``from``
    destination: IPNetwork | None = None  # ``to``
    fwmark: int | None = None
    priority: int | None = None  # None: the kernel picks one below the last rule


@dataclass(frozen=True)
class TproxyConfig:
    """``tproxy:`` of the instance whose VIP is the real servers' gateway: while master, the
    replies to HAProxy's transparent connections (``source 0.0.0.0 usesrc clientip``) are
    delivered to HAProxy instead of being forwarded to the client (:mod:`vrrpd.kernel.tproxy`).
    The defaults are spelled ``tp`` (0x7470) so that ``ip rule``, ``ip route show table all``
    and ``nft list ruleset`` show at a glance which mark, table and rule are vrrpd's."""

    fwmark: int = 0x7470  # set on packets of local transparent sockets (nft ``socket``)
    table: int = 7470  # holds ``local default dev lo``
    priority: int = 7470  # of the ``fwmark -> table`` rule: before main (32766)

    def routes(self, family: int) -> tuple[VirtualRoute, ...]:
        """``ip route add local default dev lo table TABLE``: every destination is local."""
        return (VirtualRoute(to=ip_network(("::/0", "0.0.0.0/0")[family == 4]), dev="lo",
                             table=self.table, type="local"),)

    def rules(self, family: int) -> tuple[VirtualRule, ...]:
        """``ip rule add fwmark MARK lookup TABLE priority PRIORITY``."""
        return (VirtualRule(table=self.table, family=family, fwmark=self.fwmark,
                            priority=self.priority),)


@dataclass(frozen=True)
class InstanceConfig:
    """One virtual router (``instances:`` list entry)."""

    name: str
    interface: str
    vrid: int
    version: int = 3
    priority: int = DEFAULT_PRIORITY
    advert_interval_cs: int = 100
    preempt: bool = True
    preempt_delay: float = 0.0
    vips: tuple[IPInterface, ...] = ()
    # keepalived's virtual_ipaddress_excluded: held with the VIPs, never in adverts
    vips_excluded: tuple[IPInterface, ...] = ()
    unicast_peers: tuple[IPAddress, ...] = ()
    # source of our adverts (keepalived's unicast_src_ip / mcast_src_ip); None: the interface's
    src_ip: IPAddress | None = None
    peers: tuple[IPAddress, ...] = ()  # the legitimate other routers (unicast_peers included)
    strict_peers: bool = False  # drop adverts from any other source before the state machine
    v3_checksum: ChecksumMode = ChecksumMode.AUTO
    track: tuple[TrackRef, ...] = ()
    notify: str | None = None  # command line; run on every transition (vrrpd.daemon.notify)
    # keepalived's notify_master/_backup/_fault/_stop: state (HOOK_STATES) -> command line
    notify_states: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    # VRRPv2 Simple Text Password (RFC 2338 §5.3.6.1; weak, see vrrpd.proto.packet); None: none
    auth_pass: str | None = None
    announce: AnnounceConfig = field(default_factory=AnnounceConfig)
    na_router_flag: bool = True  # R flag of unsolicited NAs (RFC 5798 §6.4.2 sets it)
    virtual_mac: bool = False  # RFC 5798 §7.3 virtual router MAC on a macvlan link
    accept_mode: bool = True  # RFC 5798 Accept_Mode; True: HAProxy serves on the VIPs
    # keepalived's per-VIP dev / label: VIP -> placement; absent VIPs go on the interface
    vip_placement: dict[IPInterface, VipPlacement] = field(default_factory=dict, hash=False,
                                                         compare=True)
    # keepalived's virtual_routes / virtual_rules: added after the VIPs, removed before them
    routes: tuple[VirtualRoute, ...] = ()
    rules: tuple[VirtualRule, ...] = ()
    tproxy: TproxyConfig | None = None  # transparent proxying through this gateway VIP
    # Draining hand-over (vrrpd.drain): after a planned hand-over this node keeps serving its
    # open connections for at most this many seconds (0 = off) while the new master forwards
    # their packets here.  10 min: a DICOM C-STORE of a CT study (hundreds of MB to a few GB
    # over 100 Mb/s to 1 Gb/s) takes from under a minute to several minutes; the drain ends as
    # soon as HAProxy has no session left, so only idle associations wait this long.  Needs
    # ``config_sync:`` (its pinned TLS channel tells the peer): without it there is no drain,
    # and the loader refuses a drain_timeout written in the file.
    drain_timeout: float = 600.0

    @property
    def held_routes(self) -> tuple[VirtualRoute, ...]:
        """The routes the master holds: ``virtual_routes``, then ``tproxy``'s."""
        return self.routes + (self.tproxy.routes(self.family) if self.tproxy else ())

    @property
    def held_rules(self) -> tuple[VirtualRule, ...]:
        """The rules the master holds: ``virtual_rules``, then ``tproxy``'s."""
        return self.rules + (self.tproxy.rules(self.family) if self.tproxy else ())

    @property
    def family(self) -> int:
        """4 or 6; validation guarantees every VIP has the same family."""
        return self.vips[0].version

    @property
    def held(self) -> tuple[IPInterface, ...]:
        """Every address the master holds: the VIPs, then the excluded ones."""
        return self.vips + self.vips_excluded

    def by_interface(self, vips: tuple[IPInterface, ...], default: str
                     ) -> dict[str, tuple[IPInterface, ...]]:
        """``vips`` grouped by the interface each goes on: its ``dev``, else ``default`` (the
        instance's interface or its virtual MAC link)."""
        out: dict[str, tuple[IPInterface, ...]] = {}
        for vip in vips:
            placement = self.vip_placement.get(vip)
            dev = placement.dev if placement is not None and placement.dev else default
            out[dev] = (*out.get(dev, ()), vip)
        return out

    @property
    def vip_labels(self) -> dict[IPInterface, str]:
        return {vip: p.label for vip, p in self.vip_placement.items() if p.label is not None}


class TrackType(StrEnum):
    HAPROXY = "haproxy"
    PROCESS = "process"
    TCP = "tcp"
    HTTP = "http"
    SCRIPT = "script"
    INTERFACE = "interface"
    FILE = "file"


# ---- type-specific tracker options (the keys of a ``tracks:`` entry beside the common ones) --

@dataclass(frozen=True)
class HAProxyOptions:
    """``type: haproxy`` (:mod:`vrrpd.track.haproxy`): the master by pidfile or by the process
    listening on the stats socket; ``backends`` need the socket."""

    pidfile: Path | None = None
    socket: Path | None = None
    backends: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProcessOptions:
    """``type: process`` (:mod:`vrrpd.track.process`): exactly one of the three."""

    pidfile: Path | None = None
    name: str | None = None
    cmdline: str | None = None  # a regular expression


@dataclass(frozen=True)
class TcpOptions:
    """``type: tcp`` (:mod:`vrrpd.track.net`): a TCP connect."""

    host: str
    port: int


@dataclass(frozen=True)
class HttpOptions:
    """``type: http`` (:mod:`vrrpd.track.net`)."""

    url: str
    method: str = "HEAD"
    status: tuple[int, int] = (200, 399)  # accepted status codes, inclusive


@dataclass(frozen=True)
class ScriptOptions:
    """``type: script`` (:mod:`vrrpd.track.script`)."""

    command: str
    user: str = "nobody"
    max_output: int = 4096  # bytes of output kept


@dataclass(frozen=True)
class InterfaceOptions:
    """``type: interface`` (:mod:`vrrpd.track.interface`)."""

    interface: str


@dataclass(frozen=True)
class FileOptions:
    """``type: file`` (:mod:`vrrpd.track.file`)."""

    path: Path


Opts = TypeVar("Opts")
TrackOptions = (HAProxyOptions | ProcessOptions | TcpOptions | HttpOptions | ScriptOptions
                | InterfaceOptions | FileOptions)


@dataclass(frozen=True)
class TrackConfig:
    """One entry of the top-level ``tracks:`` map; ``options`` holds the type's own keys.

    ``weight`` 0 means a failing tracker puts its instances in FAULT; otherwise it adjusts the
    effective priority (negative while failing, positive while passing), clamped to 1..254.
    """

    name: str
    type: TrackType
    options: TrackOptions
    interval: float = 1.0
    timeout: float = 1.0
    rise: int = 1
    fall: int = 1
    weight: int = 0


def options_of(config: TrackConfig, kind: type[Opts]) -> Opts:
    """``config.options`` as ``kind``; a tracker given another type's options is a bug."""
    if not isinstance(config.options, kind):
        raise TypeError(f"tracker {config.name}: {type(config.options).__name__}, "
                        f"expected {kind.__name__}")
    return config.options


TRACK_OPTIONS: dict[TrackType, type[TrackOptions]] = {
    TrackType.HAPROXY: HAProxyOptions, TrackType.PROCESS: ProcessOptions,
    TrackType.TCP: TcpOptions, TrackType.HTTP: HttpOptions, TrackType.SCRIPT: ScriptOptions,
    TrackType.INTERFACE: InterfaceOptions, TrackType.FILE: FileOptions}


@dataclass(frozen=True)
class SyncGroupConfig:
    """``sync_groups:`` entry: members change state together."""

    name: str
    instances: tuple[str, ...]
    notify: str | None = None  # command line; run on every transition (vrrpd.daemon.notify)
    # keepalived's notify_master/_backup/_fault/_stop: state (HOOK_STATES) -> command line
    notify_states: dict[str, str] = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class ConfigSyncConfig:
    """Top-level ``config_sync:``: HAProxy configuration sync between the peers."""

    listen: tuple[str, int]
    peers: tuple[tuple[str, int], ...]
    cert: Path
    peer_fingerprints: tuple[str, ...]
    files: tuple[Path, ...]
    validate: str
    reload: str
    source: str = "master"
    instance: str | None = None
    max_file_size: int = 16 * 1024 * 1024
    # after `reload`, confirm HAProxy runs the new files (vrrpd.configsync.confirm); master CLI
    # first
    master_socket: Path | None = None
    stats_socket: Path | None = None
    pidfile: Path | None = None
    # accept pushed HAProxy directives that run code (vrrpd.configsync.policy) the live file lacks
    allow_code: bool = False


@dataclass(frozen=True)
class SpeakerConfig:
    """Top-level ``bgp:``: the BGP speaker anycast groups announce through
    (:mod:`vrrpd.kernel.bgp`); ``socket`` is FRR bgpd's vty socket."""

    engine: str = "frr"  # one of SPEAKER_ENGINES
    socket: Path = Path("/run/frr/bgpd.vty")


SPEAKER_ENGINES = ("frr",)


class Deprefer(StrEnum):
    """How a failing weighted tracker (or a drain) makes a group's routes less preferred:
    a higher MULTI_EXIT_DISC (RFC 4271 §5.1.4) or a longer AS_PATH (§9.1.2.2 a)."""

    MED = "med"
    PREPEND = "prepend"


PREPEND_MAX = 10  # AS-path prepends vrrpd adds at most (a longer path only costs bytes)


REALTIME_PRIORITY_MAX = 99  # sched(7): SCHED_RR's static priorities are 1-99
ANYCAST_DRAIN_TIMEOUT_MAX = 3600.0  # seconds: the longest drain_timeout of an anycast group


@dataclass(frozen=True)
class AnycastGroupConfig:
    """``anycast:`` list entry: prefixes every healthy node announces over BGP.

    A failing weight-0 tracker withdraws them; a failing weighted tracker de-prefers them by
    ``|weight|`` (added to the MED, or that many AS-path prepends).  ``vrrpctl demote`` drains
    the group: de-prefer at once, then wait (at most ``drain_timeout`` s) for the current
    sessions of HAProxy behind ``haproxy_socket`` to reach zero.
    """

    name: str
    prefixes: tuple[IPNetwork, ...]
    track: tuple[TrackRef, ...] = ()
    med: int = 0  # the MED of a healthy node
    deprefer: Deprefer = Deprefer.MED
    haproxy_socket: Path | None = None  # HAProxy's stats socket, whose sessions a drain awaits
    drain_timeout: float = 30.0
    drain_withdraw: bool = True  # after the drain, withdraw (False: stay announced, de-preferred)

    @property
    def addresses(self) -> tuple[IPAddress, ...]:
        """Every address of the prefixes (a drain counts HAProxy's sessions on them; with
        ``haproxy_socket`` the loader keeps prefixes to DRAIN_ADDRESSES_MAX addresses)."""
        return tuple(a for p in self.prefixes for a in p)


DRAIN_ADDRESSES_MAX = 256  # addresses of one prefix a drain looks for in HAProxy's sessions


@dataclass(frozen=True)
class MetricsConfig:
    listen: tuple[str, int]


@dataclass(frozen=True)
class Config:
    """The whole ``vrrpd.yaml``."""

    path: Path
    node: str
    control_socket: Path = Path("/run/vrrpd/vrrpd.sock")
    control_socket_group: str | None = None
    state_dir: Path = Path("/var/lib/vrrpd")
    log_format: str = "text"
    # SCHED_RR priority of the event loop (1-99; 0: normal scheduling), keepalived's
    # vrrp_rt_priority: vrrpd.daemon.scheduling
    realtime_priority: int = 0
    instances: tuple[InstanceConfig, ...] = ()
    tracks: dict[str, TrackConfig] = field(default_factory=dict, hash=False)
    sync_groups: tuple[SyncGroupConfig, ...] = ()
    config_sync: ConfigSyncConfig | None = None
    metrics: MetricsConfig | None = None
    bgp: SpeakerConfig | None = None
    anycast: tuple[AnycastGroupConfig, ...] = ()

    def instance(self, name: str) -> InstanceConfig | None:
        return next((i for i in self.instances if i.name == name), None)

    def not_sources(self, ifname: str, family: int) -> frozenset[IPAddress]:
        """The VIPs on ``ifname`` that must never be an advert source: every instance's but
        the address owner's (priority 255), whose VIPs are the interface's own (RFC 5798 §1)."""
        return frozenset(v.ip for i in self.instances
                         if i.interface == ifname and i.family == family
                         and i.priority != OWNER_PRIORITY
                         for v in i.vips)
