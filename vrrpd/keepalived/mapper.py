"""keepalived statements -> a vrrpd.yaml document, and the list of what did not map.

:func:`convert` walks the tree of :mod:`vrrpd.keepalived.parser` and builds the mapping that
:mod:`vrrpd.config.loader` reads (README "Configuration").  What has no vrrpd equivalent is
collected as :class:`Finding`\\ s with the statement's ``file:line`` and why
(:mod:`vrrpd.keepalived.unsupported`); ``unmapped`` ones were left out, ``notes`` were carried
over with a difference worth knowing.  A value that keepalived itself would refuse (a priority
of ``high``, a VRID of 300) or a top-level keyword it does not know is a :class:`ParseError`.

keepalived's defaults that differ from vrrpd's are written out explicitly: ``version`` (2
unless ``vrrp_version``/``version`` or IPv6 VIPs say 3), the trackers' weights (``track_file``
and ``vrrp_track_process`` default to 1) and the script timeout (keepalived: the interval).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_interface
from typing import Any

from vrrpd.config.loader import entry_refusal
from vrrpd.config.model import HOOK_STATES, REALTIME_PRIORITY_MAX
from vrrpd.config.schema import NAME
from vrrpd.keepalived import unsupported
from vrrpd.keepalived.parser import Parsed, ParseError, Statement, Where

Doc = dict[str, Any]
# keepalived's GARP keywords (in global_defs with a vrrp_ prefix), see _Converter._announce
_GARP = ("garp_master_delay", "garp_master_repeat", "garp_interval", "garp_master_refresh",
         "garp_master_refresh_repeat")
# keepalived's hook keywords, which are vrrpd's keys too
_HOOKS = ("notify", *(f"notify_{state.lower()}" for state in HOOK_STATES))
# the order of an instance's keys in the output, as in README "Configuration"
_INSTANCE_ORDER = ("name", "interface", "vrid", "version", "priority", "advert_interval",
                   "preempt", "preempt_delay", "vips", "vips_excluded", "src_ip", "unicast_peers",
                   "strict_peers",
                   "virtual_mac", "accept_mode", "v3_checksum", "auth_pass", "track",
                   "virtual_routes", "virtual_rules", *_HOOKS)
# keepalived's (and ip route's) words in a virtual_routes entry -> vrrpd's keys
_ROUTE_KEYS = {"via": "via", "gw": "via", "dev": "dev", "src": "src", "metric": "metric",
               "preference": "metric", "table": "table"}
_ROUTE_TYPES = ("blackhole", "unreachable", "prohibit")
# ... and in a virtual_rules entry
_RULE_KEYS = {"from": "from", "to": "to", "fwmark": "fwmark", "table": "table",
              "lookup": "table", "priority": "priority", "preference": "priority",
              "pref": "priority"}
_NUMBERS = ("metric", "table", "fwmark", "priority")


@dataclass(frozen=True)
class Finding:
    where: Where
    what: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}: {self.why}"


@dataclass
class Conversion:
    doc: Doc
    unmapped: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)


# ---- values -----------------------------------------------------------------------------


def _arg(s: Statement, n: int = 1) -> list[str]:
    """Exactly ``n`` arguments, or a ParseError naming the statement."""
    if len(s.args) != n:
        raise ParseError(s.where, f"{s.keyword} takes {n} argument{'s' * (n != 1)}, "
                                  f"got {len(s.args)}: {' '.join(s.args) or '(none)'}")
    return s.args


def _int(s: Statement, lo: int, hi: int, text: str | None = None) -> int:
    text = _arg(s)[0] if text is None else text
    try:
        value = int(text)
    except ValueError:
        raise ParseError(s.where, f"{s.keyword}: {text!r} is not an integer") from None
    if not lo <= value <= hi:
        raise ParseError(s.where, f"{s.keyword}: {value} is outside {lo}..{hi}")
    return value


def _seconds(s: Statement, lo: float, hi: float) -> float:
    text = _arg(s)[0]
    try:
        value = float(text)
    except ValueError:
        raise ParseError(s.where, f"{s.keyword}: {text!r} is not a number of seconds") from None
    if not lo <= value <= hi:
        raise ParseError(s.where, f"{s.keyword}: {text} is outside {lo:g}..{hi:g} seconds")
    return int(value) if value.is_integer() else value


_BOOL = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


def _flag(s: Statement) -> bool:
    """``keyword`` alone (true) or ``keyword <BOOL>``."""
    if not s.args:
        return True
    value = _BOOL.get(_arg(s)[0].lower())
    if value is None:
        raise ParseError(s.where, f"{s.keyword}: {s.args[0]!r} is not one of "
                                  f"{', '.join(_BOOL)}")
    return value


def _name(text: str) -> str:
    """A keepalived name as a vrrpd name (letters, digits, _ . -)."""
    return text if NAME.fullmatch(text) else re.sub(r"[^A-Za-z0-9_.-]", "_", text) or "_"


def _program(s: Statement) -> tuple[str, str | None]:
    """``notify* SCRIPT [user [group]]``: the command line (checked) and the user, if given."""
    if not 1 <= len(s.args) <= 3:
        raise ParseError(s.where, f"{s.keyword} takes a script and optionally a user and "
                                  f"group, got {len(s.args)} arguments")
    try:
        argv = shlex.split(s.args[0])
    except ValueError as exc:
        raise ParseError(s.where, f"{s.keyword}: {exc}") from None
    if not argv:
        raise ParseError(s.where, f"{s.keyword}: empty script")
    return s.args[0], s.args[1] if len(s.args) > 1 else None


# ---- the conversion ---------------------------------------------------------------------


class _Converter:
    def __init__(self, parsed: Parsed) -> None:
        self.out = Conversion({})
        for where, note in parsed.notes:
            self.out.notes.append(Finding(where, "include", note))
        self.defaults: dict[str, Any] = {}  # from global_defs: version, script user, announce
        self.tracks: Doc = {}
        self.instances: list[tuple[Statement, Doc]] = []
        self.groups: Doc = {}
        self.scripts: dict[str, Statement] = {}  # vrrp_script, track_file, vrrp_track_process
        self.names: dict[str, str] = {}  # keepalived instance name -> vrrpd name
        # keepalived's dev / label of the current instance's VIP statements (by id), and of
        # the addresses converted from them
        self.options: dict[int, Doc] = {}
        self.placement: dict[Any, Doc] = {}

    def unmapped(self, s: Statement, why: str, what: str | None = None) -> None:
        self.out.unmapped.append(Finding(s.where, what or " ".join(s.words()), why))

    def note(self, s: Statement, why: str, what: str | None = None) -> None:
        self.out.notes.append(Finding(s.where, what or s.keyword, why))

    def run(self, statements: list[Statement]) -> Conversion:
        groups: list[Statement] = []  # converted after the instances they name
        handlers: dict[str, Callable[[Statement], None]] = {
            "global_defs": self.global_defs, "vrrp_instance": self.collect_instance,
            "vrrp_sync_group": groups.append, "vrrp_script": self.collect_script,
            "track_file": self.collect_script, "vrrp_track_file": self.collect_script,
            "vrrp_track_process": self.collect_script}
        for s in statements:  # definitions first: instances may refer to later ones
            if s.keyword in handlers:
                handlers[s.keyword](s)
            elif s.keyword in unsupported.TOP_LEVEL:
                self.unmapped(s, unsupported.TOP_LEVEL[s.keyword],
                              " ".join(s.words()) + (" {...}" if s.block is not None else ""))
            else:
                raise ParseError(s.where, f"unknown keyword {s.keyword!r} at the top level "
                                          "(not a keepalived 2.2 block; misspelt?)")
        if not self.instances:
            first = statements[0].where if statements else None
            raise ParseError(first, "no vrrp_instance: nothing for vrrpd to run")
        doc = self.out.doc
        for key in ("node", "realtime_priority"):
            if key in self.defaults:
                doc[key] = self.defaults[key]
        doc["instances"] = [self.instance(s, d) for s, d in self.instances]
        if self.tracks:
            doc["tracks"] = self.tracks
        for s in groups:
            self.group(s)
        if self.groups:
            doc["sync_groups"] = self.groups
        return self.out

    # -- global_defs

    def global_defs(self, block: Statement) -> None:
        announce: Doc = {}
        for s in block.children:
            k = s.keyword
            if k == "router_id":
                self.defaults["node"] = _name(_arg(s)[0])
                if self.defaults["node"] != s.args[0]:
                    self.note(s, f"vrrpd names the node {self.defaults['node']!r}")
            elif k == "vrrp_version":
                self.defaults["version"] = _int(s, 2, 3)
            elif k == "script_user":
                self.defaults["script_user"] = s.args[0] if s.args else None
            elif k == "vrrp_rt_priority":
                self.defaults["realtime_priority"] = _int(s, 1, REALTIME_PRIORITY_MAX)
                self.note(s, "realtime_priority: the unit needs the drop-in "
                             "vrrpd.service.d/realtime.conf to allow it")
            elif k.removeprefix("vrrp_") in _GARP:
                self._announce(s, k.removeprefix("vrrp_"), announce)
            elif k in unsupported.GLOBAL_DEFS:
                self.unmapped(s, unsupported.GLOBAL_DEFS[k])
            else:
                self.unmapped(s, "unknown global_defs keyword (not keepalived 2.2's?); skipped")
        self.defaults["announce"] = announce

    def _announce(self, s: Statement, key: str, announce: Doc) -> None:
        """keepalived's GARP settings -> ``announce:`` keys."""
        if key == "garp_master_delay":
            announce["repeat_delay"] = _seconds(s, 0, 60)
        elif key == "garp_master_repeat":
            announce["count"] = _int(s, 1, 100)
        elif key == "garp_interval":
            announce["interval"] = _seconds(s, 0, 1)
        elif key == "garp_master_refresh":
            refresh = _seconds(s, 0, 86400)
            announce["refresh"] = refresh if refresh == 0 else max(1, refresh)
            if refresh not in (0, announce["refresh"]):
                self.note(s, "vrrpd refreshes at most once a second: converted as 1")
        else:
            announce["refresh_count"] = _int(s, 1, 100)

    # -- trackers

    def collect_script(self, s: Statement) -> None:
        name = _arg(s)[0]
        if name in self.scripts:
            raise ParseError(s.where, f"{s.keyword} {name} is defined twice (first at "
                                      f"{self.scripts[name].where})")
        self.scripts[name] = s

    def tracker(self, kind: str, name: str, ref: Statement) -> str | None:
        """The vrrpd tracker for a track_script/track_file/track_process entry (made once)."""
        wanted = {"track_script": ("vrrp_script",),
                  "track_file": ("track_file", "vrrp_track_file"),
                  "track_process": ("vrrp_track_process",)}[kind]
        s = self.scripts.get(name)
        if s is None or s.keyword not in wanted:
            raise ParseError(ref.where, f"{kind}: no {wanted[0]} named {name!r}")
        tname = _name(name)
        if tname not in self.tracks:
            made = {"vrrp_script": self.script, "vrrp_track_process": self.process}.get(
                s.keyword, self.track_file)(s)
            if made is None:
                return None
            self.tracks[tname] = made
        return tname

    def weight(self, block: Statement, s: Statement, lo: int, hi: int) -> int | None:
        """A definition's ``weight N [reverse]``; None (reported) for reverse."""
        if len(s.args) > 1:
            self.unmapped(block, "weight ... reverse has no vrrpd equivalent; the tracker is "
                                 "left out", f"{block.keyword} {block.args[0]}")
            return None
        return _int(s, lo, hi)

    def script(self, block: Statement) -> Doc | None:
        t: Doc = {"type": "script"}
        timeout: float | None = None
        for s in block.children:
            k = s.keyword
            if k == "script":
                t["command"] = _arg(s)[0]
            elif k == "interval":
                t["interval"] = _seconds(s, 0.05, 3600)
            elif k == "timeout":
                timeout = _seconds(s, 0, 3600)
            elif k == "weight":
                weight = self.weight(block, s, -253, 253)
                if weight is None:
                    return None
                t["weight"] = weight
            elif k in ("rise", "fall"):
                t[k] = _int(s, 1, 100)
            elif k == "user":
                t["user"] = _arg(s, len(s.args) or 1)[0]
                if len(s.args) > 1:
                    self.note(s, "the script runs with the user's own group in vrrpd")
            elif k == "init_fail":
                self.unmapped(s, "vrrpd's trackers start untested and report the first check")
            else:
                self.unmapped(s, "unknown vrrp_script keyword; skipped")
        if "command" not in t:
            raise ParseError(block.where, f"vrrp_script {block.args[0]} has no script")
        if "user" not in t:
            user = self.defaults.get("script_user")
            t["user"] = user or "root"
            if not user:
                self.note(block, "keepalived runs it as keepalived_script if that user exists, "
                                 "else root: converted as root; set user: to drop privileges",
                          f"vrrp_script {block.args[0]}")
        interval = float(t.get("interval", 1))
        t["timeout"] = min(timeout or interval, 60)
        if (timeout or interval) > 60:
            self.note(block, "vrrpd's longest check timeout is 60 s",
                      f"vrrp_script {block.args[0]}")
        return t

    def track_file(self, block: Statement) -> Doc | None:
        t: Doc = {"type": "file", "weight": 1}
        for s in block.children:
            if s.keyword == "file":
                t["path"] = _arg(s)[0]
            elif s.keyword == "weight":
                weight = self.weight(block, s, -254, 254)
                if weight is None:
                    return None
                t["weight"] = weight
            elif s.keyword == "init_file":
                self.unmapped(s, "vrrpd does not create the file; an absent file counts as 0")
            else:
                self.unmapped(s, "unknown track_file keyword; skipped")
        if "path" not in t:
            raise ParseError(block.where, f"{block.keyword} {block.args[0]} has no file")
        t["weight"] = max(-253, min(253, t["weight"]))
        return t

    def process(self, block: Statement) -> Doc | None:
        t: Doc = {"type": "process", "weight": 1}
        argv: list[str] = []
        match = "exact"
        for s in block.children:
            k = s.keyword
            if k == "process":
                argv = s.args
            elif k == "param_match":
                match = _arg(s)[0]
            elif k == "weight":
                weight = self.weight(block, s, -253, 253)
                if weight is None:
                    return None
                t["weight"] = weight
            elif k == "quorum" and _int(s, 1, 65535) == 1:
                pass
            elif k in ("quorum", "quorum_max", "delay", "terminate_delay", "fork_delay",
                       "full_command"):
                self.unmapped(s, "a process tracker passes while at least one matching "
                                 "process runs; no quorum or delays")
            else:
                self.unmapped(s, "unknown vrrp_track_process keyword; skipped")
        if not argv:
            raise ParseError(block.where, f"vrrp_track_process {block.args[0]} has no process")
        if len(argv) == 1 and match == "exact" and "/" not in argv[0]:
            t["name"] = argv[0]
        else:
            prog = re.escape(argv[0]) if "/" in argv[0] else rf"(\S*/)?{re.escape(argv[0])}"
            t["cmdline"] = (f"^{prog}" + "".join(" " + re.escape(a) for a in argv[1:])
                            + {"exact": "$", "partial": r"( |$)", "initial": ""}.get(match, "$"))
        return t

    def interface_tracker(self, ifname: str) -> str:
        tname = _name(f"interface-{ifname}")
        self.tracks.setdefault(tname, {"type": "interface", "interface": ifname})
        return tname

    def track_refs(self, block: Statement) -> list[Any]:
        """track_interface / track_script / track_file / track_process -> track: refs."""
        refs: list[Any] = []
        for entry in block.children:
            words = entry.words()
            weight: int | None = None
            if len(words) > 1:
                if words[1] != "weight" or len(words) not in (3, 4) or (
                        len(words) == 4 and words[3] not in ("reverse", "noreverse",
                                                              "no_reverse")):
                    raise ParseError(entry.where, f"{block.keyword}: expected NAME [weight N "
                                                  f"[reverse]], got {' '.join(words)}")
                if words[-1] == "reverse":
                    self.unmapped(entry, "reverse has no vrrpd equivalent; not tracked")
                    continue
                weight = _int(entry, -254, 254, words[2])
            if block.keyword == "track_interface":
                tname: str | None = self.interface_tracker(words[0])
                weight = weight or 0
            else:
                tname = self.tracker(block.keyword, words[0], entry)
            if tname is None:
                continue
            if weight is not None:
                weight = max(-253, min(253, weight))
            refs.append(tname if weight is None or weight == self.tracks[tname].get("weight", 0)
                        else {"name": tname, "weight": weight})
        return refs

    # -- instances

    def collect_instance(self, s: Statement) -> None:
        name = _arg(s)[0]
        vname = _name(name)
        if name in self.names or vname in self.names.values():
            raise ParseError(s.where, f"vrrp_instance {name} is defined twice")
        if vname != name:
            self.note(s, f"vrrpd names it {vname!r}: notify hooks get that name",
                      f"vrrp_instance {name}")
        self.names[name] = vname
        self.instances.append((s, {"name": vname}))

    def instance(self, block: Statement, d: Doc) -> Doc:
        version: int | None = None
        interval: float = 1
        vips: list[tuple[Statement, Any]] = []
        excluded: list[tuple[Statement, Any]] = []
        self.options, self.placement = {}, {}
        track: list[Any] = []
        announce: Doc = dict(self.defaults.get("announce", {}))
        for s in block.children:
            k = s.keyword
            if k == "interface":
                d["interface"] = _arg(s)[0]
            elif k == "virtual_router_id":
                d["vrid"] = _int(s, 1, 255)
            elif k == "priority":
                d["priority"] = _int(s, 1, 255)
            elif k == "advert_int":
                interval = _seconds(s, 0.01, 255)
            elif k == "version":
                version = _int(s, 2, 3)
            elif k == "state":
                if _arg(s)[0].upper() not in ("MASTER", "BACKUP"):
                    raise ParseError(s.where, f"state: {s.args[0]!r} is not MASTER or BACKUP")
                # keepalived 2.2: below priority 255 an initial MASTER waits Master_Down_Interval
                # like a BACKUP, which is what vrrpd does (RFC 5798 §6.4.1): nothing to carry.
            elif k == "nopreempt":
                d["preempt"] = False
            elif k == "preempt":
                d["preempt"] = _flag(s)
            elif k == "preempt_delay":
                d["preempt_delay"] = _seconds(s, 0, 3600)
            elif k == "virtual_ipaddress":
                vips += [(e, self.vip(e)) for e in s.children]
            elif k == "virtual_ipaddress_excluded":
                excluded += [(e, self.vip(e)) for e in s.children]
            elif k in ("virtual_routes", "virtual_rules"):
                entries = [self.route_or_rule(e, k) for e in s.children]
                d.setdefault(k, []).extend(e for e in entries if e is not None)
            elif k == "unicast_peer":
                d["unicast_peers"] = [self.peer(e) for e in s.children]
            elif k in ("accept", "no_accept"):
                d["accept_mode"] = k == "accept"
            elif k == "strict_mode" and _flag(s):
                d.setdefault("accept_mode", False)  # keepalived: strict implies no_accept
                self.unmapped(s, unsupported.INSTANCE[k] + "; its no_accept is converted as "
                                 "accept_mode: false")
            elif k in ("unicast_src_ip", "mcast_src_ip"):
                d["src_ip"] = self.address(s)
            elif k == "check_unicast_src":
                d["strict_peers"] = True
            elif k == "use_vmac":
                d["virtual_mac"] = True
                if s.args:
                    self.note(s, "vrrpd names the macvlan link itself and uses the RFC's MAC "
                                 "00:00:5e:00:0{1,2}:VRID")
            elif k in ("track_interface", "track_script", "track_file", "track_process"):
                track += self.track_refs(s)
            elif k == "authentication":
                self.authentication(s, d)
            elif k in _HOOKS:
                self.hook(s, d)
            elif k in _GARP:
                self._announce(s, k, announce)
            elif k in unsupported.INSTANCE:
                self.unmapped(s, unsupported.INSTANCE[k])
            else:
                self.unmapped(s, "unknown vrrp_instance keyword; skipped")
        for key in ("interface", "vrid"):
            if key not in d:
                raise ParseError(block.where, f"vrrp_instance {block.args[0]} has no "
                                 f"{'interface' if key == 'interface' else 'virtual_router_id'}")
        d["vips"] = self.vip_list(block, d, [(s, v) for s, v in vips if v is not None])
        family = ip_interface(d["vips"][0]).version
        self.excluded(d, family, [(s, v) for s, v in excluded if v is not None])
        for key in ("vips", "vips_excluded"):
            if key in d:
                d[key] = [self.placed(v) for v in d[key]]
        d["version"] = version or (3 if family == 6 else self.defaults.get("version", 2))
        if family == 6 and d["version"] == 2:
            self.note(block, "IPv6 needs VRRPv3 (keepalived switches too)", "version 2")
            d["version"] = 3
        d["advert_interval"] = self.interval(block, interval, d["version"])
        if "auth_pass" in d and d["version"] != 2:
            self.unmapped(block, "keepalived ignores authentication with VRRPv3 (RFC 5798 has "
                                 "none); so does vrrpd", "authentication")
            del d["auth_pass"]
        if d["version"] == 3 and family == 4:
            d["v3_checksum"] = "pseudo-header"
            self.note(block, "v3_checksum: pseudo-header, keepalived 2.2's VRRPv3 checksum form, "
                             "so a keepalived peer reads every advert during the swap; "
                             "`auto` once no keepalived is left", f"vrrp_instance {block.args[0]}")
        peers = d.get("unicast_peers")
        if peers:
            d["unicast_peers"] = [p for p in peers if p is not None]
            if "strict_peers" not in d:
                d["strict_peers"] = False
                self.note(block, "keepalived hears adverts from any source unless "
                                 "check_unicast_src: converted as strict_peers: false (vrrpd's "
                                 "unicast default is true: only the listed peers are heard)",
                          "unicast_peer")
        if track:
            d["track"] = track
        if announce:
            d["announce"] = announce
        return {k: d[k] for k in _INSTANCE_ORDER if k in d} | d

    def interval(self, block: Statement, interval: float, version: int) -> float:
        if version == 2 and (interval != int(interval) or interval < 1):
            whole = max(1, round(interval))
            self.unmapped(block, f"VRRPv2 advertises whole seconds (RFC 3768 §5.3.7): "
                                 f"converted to {whole}; use version 3 for sub-second adverts",
                          f"advert_int {interval:g}")
            return whole
        if version == 3 and interval > 40.95:
            self.unmapped(block, "VRRPv3's longest interval is 40.95 s (RFC 5798 §5.2.7)",
                          f"advert_int {interval:g}")
            return 40.95
        return round(interval, 2) if version == 3 else int(interval)

    def vip(self, e: Statement) -> Any:
        """One virtual_ipaddress entry: ADDRESS[/LEN] [options] -> the address, or None."""
        words = e.words()
        try:
            address = ip_interface(words[0])
        except ValueError:
            self.unmapped(e, "not an address; keepalived skips it too")
            return None
        options, rest = words[1:], []
        placement: Doc = {}
        while options:
            if options[0] in ("dev", "label") and len(options) > 1 and address.version == 4:
                placement[options[0]] = options[1]
                options = options[2:]
            else:
                rest.append(options.pop(0))
        if rest:
            where = "its dev" if "dev" in placement else "the instance's interface"
            self.unmapped(e, f"VIP options ({' '.join(rest)}) are not supported: vrrpd adds "
                             f"the address on {where}, scope global; {address} itself is "
                             "converted", " ".join(words))
        if placement:
            self.options[id(e)] = placement
        return address

    def place(self, s: Statement, vip: Any) -> None:
        """``vip`` is converted from ``s``: it keeps the dev / label given there."""
        if id(s) in self.options:
            self.placement[vip.ip] = self.options[id(s)]

    def placed(self, vip: str) -> Any:
        """A converted VIP, as a mapping when keepalived gave it a dev or label."""
        placement = self.placement.get(ip_interface(vip).ip)
        return vip if placement is None else {"address": vip, **placement}

    def vip_list(self, block: Statement, d: Doc, vips: list[tuple[Statement, Any]]
                 ) -> list[str]:
        if not vips:
            raise ParseError(block.where, f"vrrp_instance {block.args[0]} has no usable "
                                          "virtual_ipaddress")
        seen: dict[Any, Statement] = {}
        family = vips[0][1].version
        out = []
        for s, vip in vips:
            if vip.ip in seen:
                self.unmapped(s, f"listed twice (first at line {seen[vip.ip].where.line}); "
                                 "converted once")
            elif vip.version != family:
                self.unmapped(s, f"an instance carries one address family (the first VIP is "
                                 f"IPv{family}); make a second instance for IPv{vip.version}")
            else:
                seen[vip.ip] = s
                self.place(s, vip)
                out.append(str(vip) if "/" in s.keyword else str(vip.ip))
        if family == 6 and not ip_interface(out[0]).ip.is_link_local:
            local = next((v for v in out if ip_interface(v).ip.is_link_local), None)
            if local is None:
                local = f"fe80::{d['vrid']:x}/64"
                self.unmapped(block, f"RFC 5798 §5.2.9 wants a link-local address first in "
                                     f"IPv6 adverts: {local} added; keepalived sends the list "
                                     f"as configured", "virtual_ipaddress (IPv6)")
            else:
                out.remove(local)
            out.insert(0, local)
        return out

    def excluded(self, d: Doc, family: int, vips: list[tuple[Statement, Any]]) -> None:
        """virtual_ipaddress_excluded -> vips_excluded (the VIPs' family, each address once)."""
        seen = {ip_interface(v).ip for v in d["vips"]}
        out = []
        for s, vip in vips:
            if vip.version != family:
                self.unmapped(s, f"vrrpd holds one family per instance (the VIPs are "
                                 f"IPv{family}): make a second instance for IPv{vip.version}")
            elif vip.ip in seen:
                self.unmapped(s, "listed twice; converted once")
            else:
                seen.add(vip.ip)
                self.place(s, vip)
                out.append(str(vip) if "/" in s.keyword else str(vip.ip))
        if out:
            d["vips_excluded"] = out

    def route_or_rule(self, e: Statement, block: str) -> Doc | None:
        """One virtual_routes / virtual_rules entry in ``ip route`` / ``ip rule`` words (e.g.
        ``192.0.2.0/24 via 198.51.100.1 dev eth1 table 100``, ``from 192.0.2.100 table 100``)
        -> its mapping; None, reported, when a word has no vrrpd equivalent."""
        keys, words, out = (_ROUTE_KEYS if block == "virtual_routes" else _RULE_KEYS), \
            e.words(), {}
        i = 0
        while i < len(words):
            word = words[i]
            if block == "virtual_routes" and word in _ROUTE_TYPES:
                out["type"], i = word, i + 1
            elif word == "to" and block == "virtual_routes":
                i += 1  # ``to`` before the destination is optional in ip route
            elif word in keys and i + 1 < len(words):
                out[keys[word]], i = words[i + 1], i + 2
            elif block == "virtual_routes" and "to" not in out and word not in keys:
                out["to"], i = word, i + 1
            else:
                self.unmapped(e, f"{word!r} has no vrrpd equivalent in {block}; entry skipped")
                return None
        return self._typed(e, block, out)

    def _typed(self, e: Statement, block: str, out: Doc) -> Doc | None:
        """Numbers as integers, ``default`` / ``all`` as networks; None, reported, if not."""
        for key in _NUMBERS:
            if key in out:
                text = str(out[key])
                text = {"main": "254", "default": "253", "local": "255"}.get(text, text)
                try:
                    out[key] = int(text, 0)
                except ValueError:
                    self.unmapped(e, f"{key} {out[key]!r}: vrrpd takes numbers only (see "
                                     "/etc/iproute2/rt_tables); entry skipped")
                    return None
        if out.get("from") == "all":
            del out["from"]
        if out.get("to") in ("default", "all"):
            v6 = ":" in str(out.get("via", "")) + str(out.get("src", ""))
            out["to"] = "::/0" if v6 else "0.0.0.0/0"
        refusal = entry_refusal(block, out)
        if refusal is not None:
            self.unmapped(e, f"vrrpd would refuse it ({refusal}); entry skipped")
            return None
        return out

    def address(self, s: Statement) -> str:
        try:
            return str(ip_address(_arg(s)[0]))
        except ValueError:
            raise ParseError(s.where, f"{s.keyword}: {s.args[0]!r} is not an address") from None

    def peer(self, e: Statement) -> str | None:
        words = e.words()
        try:
            address = ip_address(words[0])
        except ValueError:
            self.unmapped(e, "not an address; keepalived skips it too")
            return None
        if len(words) > 1:
            self.unmapped(e, "min_ttl/max_ttl: vrrpd checks TTL 255 (RFC 5798 §5.1.1.3)",
                          " ".join(words[1:]))
        return str(address)

    def authentication(self, block: Statement, d: Doc) -> None:
        """auth_type PASS -> auth_pass (VRRPv2's weak Simple Text Password); AH is gone."""
        kind = password = None
        for s in block.children:
            if s.keyword == "auth_type":
                kind = _arg(s)[0].upper()
            elif s.keyword == "auth_pass":
                password = _arg(s)[0]
            else:
                self.unmapped(s, "unknown authentication keyword; skipped")
        if kind != "PASS" or password is None:
            self.unmapped(block, "AH authentication was removed from VRRP (RFC 3768 §5.3.6) and "
                                 "is not supported" if kind == "AH" else
                                 "needs auth_type PASS and auth_pass", f"authentication "
                                 f"(auth_type {kind})")
            return
        if len(password) > 8:
            self.note(block, "keepalived uses the first 8 characters of auth_pass; so does "
                             "the converted auth_pass", "auth_pass")
        d["auth_pass"] = password[:8]
        self.note(block, "a clear-text password on the LAN stops a misconfigured router, not "
                         "an attacker (RFC 3768 §10); drop it from both peers after the swap",
                  "authentication (auth_type PASS)")

    def hook(self, s: Statement, d: Doc) -> None:
        """notify and notify_<state>: the same keys in vrrpd, command lines as they are."""
        command, user = _program(s)
        if user:
            self.note(s, f"hooks run as vrrpd's user, not {user}")
        d[s.keyword] = command

    # -- sync groups

    def group(self, block: Statement) -> None:
        name = _name(_arg(block)[0])
        members: list[Statement] = []
        g: Doc = {}
        for s in block.children:
            k = s.keyword
            if k == "group":
                members += s.children
            elif k in self.names:  # keepalived 1.x: members listed directly in the block
                members.append(s)
            elif k in _HOOKS:
                self.hook(s, g)
            elif k in ("track_interface", "track_script", "track_file", "track_process"):
                self.unmapped(s, "trackers belong to instances in vrrpd: add them to each "
                                 "member's track:")
            elif k in unsupported.SYNC_GROUP:
                self.unmapped(s, unsupported.SYNC_GROUP[k])
            else:
                self.unmapped(s, "unknown vrrp_sync_group keyword or instance; skipped")
        names = []
        for m in members:
            if m.keyword not in self.names:
                raise ParseError(m.where, f"vrrp_sync_group {block.args[0]}: no vrrp_instance "
                                          f"named {m.keyword!r}")
            names.append(self.names[m.keyword])
        if len(names) < 2:
            self.unmapped(block, "a sync group of fewer than 2 instances does nothing",
                          f"vrrp_sync_group {block.args[0]}")
            return
        self.groups[name] = {"instances": names, **g} if g else names
        if not any(s.keyword == "sync_group_tracking_weight" for s in block.children):
            self.zero_weights(block, names)

    def zero_weights(self, block: Statement, members: list[str]) -> None:
        """keepalived.conf(5): in a sync group, members' tracker weights count as 0."""
        for d in self.out.doc["instances"]:
            if d["name"] not in members:
                continue
            weights = {(r if isinstance(r, str) else r["name"]):
                       (self.tracks[r].get("weight", 0) if isinstance(r, str) else r["weight"])
                       for r in d.get("track", [])}
            weighted = [name for name, weight in weights.items() if weight]
            if weighted:
                d["track"] = [name if name not in weighted else {"name": name, "weight": 0}
                              for name in weights]
                self.note(block, f"keepalived sets the tracker weights of sync group members "
                                 f"to 0 (FAULT on failure): so does the converted "
                                 f"{d['name']} for {', '.join(weighted)}",
                          f"vrrp_sync_group {block.args[0]}")


def convert(parsed: Parsed) -> Conversion:
    """The vrrpd document for ``parsed``; ParseError when keepalived would refuse it."""
    out = _Converter(parsed).run(parsed.statements)
    order = {f: i for i, f in enumerate(parsed.files)}
    for findings in (out.unmapped, out.notes):  # in the order of the files and their lines
        findings.sort(key=lambda f: (order.get(f.where.file, -1), f.where.line))
    return out
