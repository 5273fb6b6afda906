"""Config loading: the schema contract, and precise refusals (file, line, key path, reason).

Each refusal case edits one line of a complete, valid configuration and checks that the error
names the file, the line that holds the mistake, the key path and a reason a person can act on.
"""

from __future__ import annotations

import contextlib
import copy
import subprocess
import sys
from ipaddress import ip_address, ip_interface
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vrrpd.config.loader import ConfigError, load_config, parse_config
from vrrpd.config.model import (
    Config,
    HAProxyOptions,
    HttpOptions,
    InterfaceOptions,
    ProcessOptions,
    ScriptOptions,
    TcpOptions,
    TrackRef,
    TrackType,
)
from vrrpd.proto.packet import ChecksumMode

REPO = Path(__file__).resolve().parents[1]
FILE = Path("/etc/vrrpd/test.yaml")
FINGERPRINT = ":".join(["AB:CD:EF:01:23:45:67:89"] * 4)

GOOD = """\
node: lb1
control_socket: /run/vrrpd/vrrpd.sock
control_socket_group: vrrpd
state_dir: /var/lib/vrrpd
log_format: json
instances:
  - name: web
    interface: eth0
    vrid: 51
    priority: 150
    advert_interval: 0.1
    preempt: true
    preempt_delay: 5
    vips: [192.0.2.100/24, 192.0.2.101]
    unicast_peers: [192.0.2.12]
    v3_checksum: pseudo-header
    track: [haproxy, {name: maint, weight: -60}]
    notify: /etc/vrrpd/hooks/notify.sh
    announce: {count: 5, interval: 0.02, repeat_delay: 0}
  - name: web6
    interface: eth0
    vrid: 52
    vips: [fe80::52/64, 2001:db8::100/64]
  - name: legacy
    interface: eth1
    vrid: 53
    version: 2
    advert_interval: 3
    vips: [198.51.100.7/24]
tracks:
  haproxy: {type: haproxy, pidfile: /run/haproxy.pid, socket: /run/haproxy/admin.sock,
            backends: [web], interval: 0.1, fall: 2, rise: 3}
  maint: {type: file, path: /etc/vrrpd/maintenance, weight: -10}
  portal: {type: http, url: "http://127.0.0.1:80/", method: get, status: "200-299",
           interval: 0.5, timeout: 0.4}
  dicom: {type: tcp, host: 127.0.0.1, port: 104}
  check: {type: script, command: /usr/local/bin/check}
  uplink: {type: interface, interface: eth1}
  proc: {type: process, cmdline: "haproxy.*-W"}
sync_groups:
  pacs: {instances: [web, web6], notify: /etc/vrrpd/hooks/group.sh}
config_sync:
  listen: "[2001:db8::11]:7000"
  peers: [192.0.2.12:7000]
  cert: /etc/vrrpd/sync/node.pem
  peer_fingerprints: ["sha256:{FINGERPRINT}"]
  files: [/etc/haproxy/haproxy.cfg]
  validate: "haproxy -c -f {path}"
  reload: "systemctl reload haproxy"
  instance: web
metrics: {listen: 127.0.0.1:9650}
""".replace("{FINGERPRINT}", FINGERPRINT)


def parse(text: str) -> Config:
    return parse_config(text, FILE, host=False)


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the first occurrence of ``needle`` in ``text``."""
    return text[: text.index(needle)].count("\n") + 1


def test_drain_timeout_defaults_to_ten_minutes_and_needs_sync() -> None:
    """The draining hand-over needs the sync channel: 600 s by default, and a drain_timeout
    above 0 written in a file without ``sync:`` is refused where it is written."""
    cfg = parse(GOOD)
    assert cfg.instances[0].drain_timeout == 600.0
    assert parse(GOOD.replace("preempt_delay: 5", "drain_timeout: 0", 1)
                 ).instances[0].drain_timeout == 0.0
    no_sync = GOOD[:GOOD.index("config_sync:")]
    assert "sync:" not in no_sync and parse(no_sync).instances[0].drain_timeout == 600.0
    assert parse(no_sync.replace("preempt_delay: 5", "drain_timeout: 0", 1))
    text = no_sync.replace("preempt_delay: 5", "drain_timeout: 120", 1)
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert (info.value.line, info.value.key) == (line_of(text, "drain_timeout"),
                                                 "instances[0].drain_timeout")
    assert "configure config_sync:" in info.value.reason


def test_good_config_becomes_the_typed_model() -> None:
    cfg = parse(GOOD)
    web, web6, legacy = cfg.instances
    assert (cfg.node, cfg.control_socket_group, cfg.log_format) == ("lb1", "vrrpd", "json")
    assert cfg.control_socket == Path("/run/vrrpd/vrrpd.sock")
    assert (web.vrid, web.priority, web.advert_interval_cs, web.version) == (51, 150, 10, 3)
    assert web.vips == (ip_interface("192.0.2.100/24"), ip_interface("192.0.2.101/32"))
    assert web.family == 4 and web.unicast_peers == (ip_address("192.0.2.12"),)
    # unicast_peers joins peers and makes strict_peers the default (only they are heard)
    assert web.peers == (ip_address("192.0.2.12"),) and web.strict_peers
    assert web6.peers == () and not web6.strict_peers
    assert web.track == (TrackRef("haproxy"), TrackRef("maint", -60))
    assert web.v3_checksum is ChecksumMode.PSEUDO_HEADER and web.preempt
    assert (web.preempt_delay, web.notify) == (5.0, "/etc/vrrpd/hooks/notify.sh")
    assert (web.announce.count, web.announce.interval, web.announce.repeat_delay) == (5, 0.02, 0)
    assert web6.family == 6 and web6.advert_interval_cs == 100 and web6.priority == 100
    assert (legacy.version, legacy.advert_interval_cs) == (2, 300)


def test_peers_join_unicast_peers() -> None:
    web = parse(GOOD.replace("unicast_peers: [192.0.2.12]",
                             "unicast_peers: [192.0.2.12]\n    peers: [192.0.2.13]\n"
                             "    strict_peers: false")).instances[0]
    assert web.peers == (ip_address("192.0.2.13"), ip_address("192.0.2.12"))
    assert not web.strict_peers


def test_trackers_are_typed_with_converted_options() -> None:
    tracks = parse(GOOD).tracks
    assert {n: t.type for n, t in tracks.items()} == {
        "haproxy": TrackType.HAPROXY, "maint": TrackType.FILE, "portal": TrackType.HTTP,
        "dicom": TrackType.TCP, "check": TrackType.SCRIPT, "uplink": TrackType.INTERFACE,
        "proc": TrackType.PROCESS}
    haproxy = tracks["haproxy"]
    assert (haproxy.interval, haproxy.timeout, haproxy.rise, haproxy.fall) == (0.1, 0.1, 3, 2)
    assert haproxy.options == HAProxyOptions(Path("/run/haproxy.pid"),
                                             Path("/run/haproxy/admin.sock"), ("web",))
    assert tracks["portal"].options == HttpOptions("http://127.0.0.1:80/", "GET", (200, 299))
    assert tracks["dicom"].options == TcpOptions("127.0.0.1", 104)
    assert tracks["check"].options == ScriptOptions("/usr/local/bin/check", "nobody", 4096)
    assert tracks["maint"].weight == -10 and tracks["dicom"].timeout == 1.0
    assert tracks["proc"].options == ProcessOptions(cmdline="haproxy.*-W")


def test_groups_sync_and_metrics() -> None:
    cfg = parse(GOOD)
    group = cfg.sync_groups[0]
    assert (group.name, group.instances, group.notify) == (
        "pacs", ("web", "web6"), "/etc/vrrpd/hooks/group.sh")
    assert cfg.config_sync is not None and cfg.metrics is not None
    assert cfg.config_sync.listen == ("2001:db8::11", 7000)
    assert cfg.config_sync.peers == (("192.0.2.12", 7000),)
    assert cfg.config_sync.peer_fingerprints == ("abcdef0123456789" * 4,)
    assert cfg.config_sync.files == (Path("/etc/haproxy/haproxy.cfg"),)
    assert (cfg.config_sync.source, cfg.config_sync.instance) == ("master", "web")
    assert cfg.metrics.listen == ("127.0.0.1", 9650)


def test_minimal_config_takes_the_documented_defaults() -> None:
    cfg = parse("instances: [{name: a, interface: eth0, vrid: 1, vips: [192.0.2.1]}]")
    (a,) = cfg.instances
    assert (a.version, a.priority, a.advert_interval_cs, a.preempt, a.preempt_delay) == (
        3, 100, 100, True, 0.0)
    assert a.v3_checksum is ChecksumMode.AUTO and a.track == () and a.notify is None
    assert (cfg.log_format, cfg.state_dir, cfg.config_sync, cfg.metrics) == (
        "text", Path("/var/lib/vrrpd"), None, None)


def test_one_vrid_may_serve_both_families_on_one_interface() -> None:
    cfg = parse(GOOD.replace("vrid: 52", "vrid: 51"))
    assert [i.vrid for i in cfg.instances[:2]] == [51, 51]


def test_example_file_loads() -> None:
    cfg = load_config(REPO / "etc" / "vrrpd.yaml", host=False)
    assert [i.name for i in cfg.instances] == ["web", "web6"]
    assert cfg.instances[0].vips == (ip_interface("192.0.2.100/24"),)
    assert cfg.instances[0].vrid == 51 and cfg.instances[1].family == 6


# (old text, new text, text on the line the error must name, key path, words in the reason)
BAD = [
    ("vrid: 51", "vrid: 300", None, "instances[0].vrid", "300 is outside 1..255"),
    ("vrid: 51", "vrid: 0", None, "instances[0].vrid", "0 is outside 1..255"),
    ("vrid: 51", "vrid: '51'", None, "instances[0].vrid", "must be an integer, got a string"),
    ("priority: 150", "priority: 256", None, "instances[0].priority", "outside 1..255"),
    ("priority: 150", "priorty: 150", None, "instances[0].priorty",
     "unknown key; did you mean 'priority'?"),
    ("preempt: true", "preempt: 'yes'", None, "instances[0].preempt", "must be a boolean"),
    ("preempt_delay: 5", "preempt_delay: 4000", None, "instances[0].preempt_delay",
     "outside 0..3600"),
    ("preempt_delay: 5", "drain_timeout: -1", None, "instances[0].drain_timeout",
     "outside 0..86400"),
    ("preempt_delay: 5", "drain_timeout: soon", None, "instances[0].drain_timeout",
     "must be a number"),
    ("advert_interval: 0.1", "advert_interval: 0.105", None, "instances[0].advert_interval",
     "multiple of 0.01 in 0.01..40.95"),
    ("advert_interval: 0.1", "advert_interval: 41", None, "instances[0].advert_interval",
     "not allowed with version 3"),
    ("advert_interval: 0.1", "advert_interval: .nan", None, "instances[0].advert_interval",
     "must be a finite number"),
    ("advert_interval: 3", "advert_interval: 0.5", None, "instances[2].advert_interval",
     "advert_interval 0.5 is not allowed with version 2: VRRPv2 advertises whole seconds "
     "1..255; use version 3 for sub-second intervals"),
    ("version: 2", "version: 4", None, "instances[2].version", "not one of 2, 3"),
    ("[198.51.100.7/24]", "[fe80::7/64]", "version: 2", "instances[2].version",
     "VRRPv2 is IPv4-only (RFC 3768)"),
    ("192.0.2.101]", "2001:db8::5/64]", "192.0.2.100/24", "instances[0].vips[1]",
     "one instance carries one address family"),
    ("192.0.2.101]", "192.0.2.100/25]", "192.0.2.100/24", "instances[0].vips[1]",
     "192.0.2.100 is listed twice (first at instances[0].vips[0])"),
    ("192.0.2.101]", "banana]", "192.0.2.100/24", "instances[0].vips[1]",
     "'banana' is not an address"),
    ("192.0.2.101]", "224.0.0.18]", "192.0.2.100/24", "instances[0].vips[1]", "multicast"),
    ("vips: [192.0.2.100/24, 192.0.2.101]", "vips: []", None, "instances[0].vips",
     "at least one VIP"),
    ("[fe80::52/64, 2001:db8::100/64]", "[2001:db8::100/64]", None, "instances[1].vips[0]",
     "must be link-local (RFC 5798 §5.2.9"),
    ("[fe80::52/64, 2001:db8::100/64]", "[2001:db8::100/64]", None, "instances[1].vips[0]",
     "add e.g. fe80::52/64 first"),
    ("unicast_peers: [192.0.2.12]", "unicast_peers: [2001:db8::12]", None,
     "instances[0].unicast_peers[0]", "2001:db8::12 is IPv6, the VIPs are IPv4"),
    ("unicast_peers: [192.0.2.12]", "unicast_peers: [12]", None,
     "instances[0].unicast_peers[0]", "must be a string, got an integer"),
    ("unicast_peers: [192.0.2.12]", "unicast_peers: []\n    strict_peers: true",
     "strict_peers: true",
     "instances[0].strict_peers", "needs the legitimate routers of this VRID listed in peers"),
    ("unicast_peers: [192.0.2.12]", "peers: [192.0.2.12, fe80::1]", None,
     "instances[0].peers[1]", "fe80::1 is IPv6, the VIPs are IPv4"),
    ("unicast_peers: [192.0.2.12]", "peers: [192.0.2.12]\n    strict_peers: yes please",
     "strict_peers: yes",
     "instances[0].strict_peers", "must be a boolean"),
    ("v3_checksum: pseudo-header", "v3_checksum: keepalived", None, "instances[0].v3_checksum",
     "not one of auto, rfc9568, pseudo-header"),
    ("{name: maint, weight: -60}", "{name: mant}", None, "instances[0].track[1]",
     "unknown tracker 'mant'; defined trackers: check, dicom, haproxy, maint, portal, proc, "
     "uplink"),
    ("weight: -60", "weight: -300", None, "instances[0].track[1].weight", "outside -253..253"),
    ("{name: maint, weight: -60}", "haproxy", None, "instances[0].track[1]",
     "haproxy is listed twice"),
    ("priority: 150", "priority: 255", "{name: maint", "instances[0].track[1]",
     "priority 255 is the address owner's fixed priority"),
    ("  - name: web6\n    interface: eth0\n", "  - name: web6\n", "name: web6",
     "instances[1].interface", "is required"),
    ("    interface: eth0\n    vrid: 52", "    interfce: eth0\n    vrid: 52", "name: web6",
     "instances[1].interface", "is required (is 'interfce' on line 21 misspelt?)"),
    ("name: web6", "name: web 6", None, "instances[1].name", "may only use letters"),
    ("name: legacy", "name: web", "name: web\n    interface: eth1", "instances[2].name",
     "instance name 'web' is already used by instances[0]"),
    ("interface: eth1\n    vrid: 53", "interface: eth0\n    vrid: 51", "vrid: 51\n    vers",
     "instances[2].vrid", "VRID 51 is already used on eth0 for IPv4 by instances[0]"),
    ("announce: {count: 5", "announce: {count: 0", None, "instances[0].announce.count",
     "outside 1..100"),
    ("repeat_delay: 0}", "repeat_delay: 0, burst: 2}", None, "instances[0].announce.burst",
     "unknown key"),
    ("weight: -10}", "weight: -10, interval: 0.01}", None, "tracks.maint.interval",
     "0.01 is outside 0.05..3600"),
    ("timeout: 0.4", "timeout: 0", None, "tracks.portal.timeout", "more than 0"),
    ("type: tcp", "type: ping", None, "tracks.dicom.type", "'ping' is not one of haproxy"),
    ("port: 104", "port: 70000", None, "tracks.dicom.port", "outside 1..65535"),
    ("host: 127.0.0.1, ", "", "dicom:", "tracks.dicom.host", "is required"),
    ("http://127.0.0.1:80/", "ftp://127.0.0.1/", None, "tracks.portal.url",
     "must be an http:// or https:// URL"),
    ('status: "200-299"', 'status: "600"', None, "tracks.portal.status", "range like 200-399"),
    ("method: get", "method: DELETE", None, "tracks.portal.method", "not one of GET, HEAD"),
    (" socket: /run/haproxy/admin.sock,", "", "backends:", "tracks.haproxy.backends",
     "needs `socket:`"),
    ("backends: [web]", "backends: [1]", None, "tracks.haproxy.backends[0]", "must be a string"),
    ("pidfile: /run/haproxy.pid", "pidfile: run/haproxy.pid", None, "tracks.haproxy.pidfile",
     "must be an absolute path"),
    ("pidfile: /run/haproxy.pid, socket: /run/haproxy/admin.sock,\n            backends: [web], ",
     "", "haproxy: {", "tracks.haproxy.pidfile", "required unless `socket:` is given"),
    ('cmdline: "haproxy.*-W"', 'cmdline: "haproxy(", name: haproxy', None, "tracks.proc.name",
     "exactly one of pidfile, name, cmdline"),
    ('cmdline: "haproxy.*-W"', 'cmdline: "haproxy("', None, "tracks.proc.cmdline",
     "not a valid regular expression"),
    ('type: process, cmdline: "haproxy.*-W"', "type: process", None, "tracks.proc.pidfile",
     "exactly one of"),
    ("command: /usr/local/bin/check}", "command: c, max_output: 0}", None,
     "tracks.check.max_output", "outside 1..1048576"),
    ("  dicom:", "  di com:", None, "tracks.di com", "may only use letters"),
    ("[web, web6], notify", "[web, nope], notify", None, "sync_groups.pacs.instances[1]",
     "unknown instance 'nope'; instances: legacy, web, web6"),
    ("[web, web6], notify", "[web], notify", None, "sync_groups.pacs",
     "at least 2 instances"),
    ("  pacs: {", "  old: [web6, legacy]\n  pacs: {", "pacs:", "sync_groups.pacs.instances[1]",
     "instance 'web6' is already in sync group 'old'"),
    ("listen: \"[2001:db8::11]:7000\"", "listen: \"[2001:zz::11]:7000\"", None,
     "config_sync.listen",
     "is not an IPv6 address"),
    ("peers: [192.0.2.12:7000]", "peers: [192.0.2.12:0]", None, "config_sync.peers[0]",
     "port 0 is outside 1..65535"),
    ("peers: [192.0.2.12:7000]", "peers: [192.0.2.12]", "  peers:", "config_sync.peers[0]",
     "must be host:port"),
    ("peers: [192.0.2.12:7000]", "peers: []", None, "config_sync.peers", "list at least one"),
    ('"sha256:AB:CD', '"sha256:XY:CD', None, "config_sync.peer_fingerprints[0]",
     "is not sha256:<64 hex digits"),
    ("files: [/etc/haproxy/haproxy.cfg]", "files: [haproxy.cfg]", None, "config_sync.files[0]",
     "must be an absolute path"),
    ("files: [/etc/haproxy/haproxy.cfg]", "files: [/etc/h.cfg, /etc/h.cfg]", None,
     "config_sync.files[1]", "h.cfg is listed twice"),
    ("files: [/etc/haproxy/haproxy.cfg]", "files: [/etc/a/h.cfg, /etc/b/h.cfg]", None,
     "config_sync.files[1]", "files travel to the peer by name"),
    ('validate: "haproxy -c -f {path}"', 'validate: "haproxy -c"', None, "config_sync.validate",
     "must contain {path}"),
    ("  instance: web\n", "  instance: webb\n", None, "config_sync.instance",
     "unknown instance 'webb'"),
    ("  instance: web\n", "  source: backup\n", "source: backup", "config_sync.source",
     "is not one of master"),
    ("  instance: web\n", "", "config_sync:", "config_sync.instance", "is required"),
    ("listen: 127.0.0.1:9650", "listen: 127.0.0.1", None, "metrics.listen", "host:port"),
    ("listen: 127.0.0.1:9650", "listen: localhost:9650", None, "metrics.listen",
     "'localhost' is not an IP address"),
    ('"sha256:{FINGERPRINT}"'.replace("{FINGERPRINT}", FINGERPRINT), '"sha256:' + "0" * 64 + '"',
     None, "config_sync.peer_fingerprints[0]",
     "placeholder pins no certificate: run `vrrpd config-sync keygen"),
    ("notify: /etc/vrrpd/hooks/notify.sh", "notify: hooks/notify.sh", None, "instances[0].notify",
     "must be an absolute path"),
    ("notify: /etc/vrrpd/hooks/group.sh", "notify: group.sh", None, "sync_groups.pacs.notify",
     "must be an absolute path"),
    ("interface: eth0", "interface: eth0:1", None, "instances[0].interface",
     "not a valid interface name"),
    ("log_format: json", "log_format: xml", None, "log_format", "'xml' is not one of text, json"),
    ("log_format: json", "log_format: json\nrealtime_priority: 100", "realtime_priority",
     "realtime_priority", "100 is outside 0..99"),
    ("state_dir: /var/lib/vrrpd", "state_dir: vrrpd", None, "state_dir", "absolute path"),
    ("tracks:", "tracs:", None, "tracs", "unknown key; did you mean 'tracks'?"),
    ("advert_interval: 3\n", "advert_interval: 3\n    auth_pass: '123456789'\n",
     "auth_pass", "instances[2].auth_pass", "1 to 8 ASCII characters"),
    ("vrid: 52\n", "vrid: 52\n    auth_pass: secret\n", "auth_pass", "instances[1].auth_pass",
     "authentication exists only in VRRPv2 (RFC 5798 §9 removed it)"),
    ("vrid: 52\n", "vrid: 52\n    src_ip: 2001:db8::9\n", "src_ip", "instances[1].src_ip",
     "come from a link-local address (RFC 5798 §5.1.2.1)"),
    ("vrid: 51\n", "vrid: 51\n    src_ip: 192.0.2.101\n", "src_ip", "instances[0].src_ip",
     "is one of the instance's VIPs"),
    ("notify: /etc/vrrpd/hooks/notify.sh", "notify_master: \"/bin/x 'a\"", None,
     "instances[0].notify_master", "No closing quotation"),
]


@pytest.mark.parametrize("old,new,at,key,reason", BAD, ids=[f"{b[3]}:{b[4][:30]}" for b in BAD])
def test_bad_config_names_file_line_key_and_reason(old: str, new: str, at: str | None, key: str,
                                                   reason: str) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    line = line_of(text, at or new)
    with pytest.raises(ConfigError) as info:
        parse(text)
    err = info.value
    assert (err.file, err.line, err.key) == (FILE, line, key), str(err)
    assert reason in err.reason
    assert str(err) == f"{FILE}:{line}: {key}: {err.reason}"


def test_missing_interfaces_are_accepted() -> None:
    """An absent interface only keeps its instance in FAULT (or its tracker failing) until it
    appears, so the file is valid even where the interface does not exist (yet)."""
    text = GOOD.replace("eth0", "nosuch0").replace("interface: eth1}", "interface: nosuch1}")
    cfg = parse(text)
    assert cfg.instances[0].interface == "nosuch0"
    assert cfg.tracks["uplink"].options == InterfaceOptions("nosuch1")


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse("instances:\n  - name: [web\n  - name: x\n")
    assert info.value.line == 3 and "not valid YAML" in str(info.value)


@pytest.mark.parametrize("text,message", [
    ("", "/etc/vrrpd/test.yaml:1: instances: is required"),
    ("- a\n- b\n", "/etc/vrrpd/test.yaml:1: (top level): must be a mapping, got a list"),
    ("instances: []\n", "/etc/vrrpd/test.yaml:1: instances: at least one instance is required"),
    ("instances: {a: 1}\n", "/etc/vrrpd/test.yaml:1: instances: must be a list, got a mapping"),
    ("instances: [web]\n", "/etc/vrrpd/test.yaml:1: instances[0]: must be a mapping, got a "
                           "string"),
])
def test_wrong_shapes_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value).startswith(message)


def test_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"node: b\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=20))
def test_any_yaml_document_is_loaded_or_refused_cleanly(doc: object) -> None:
    """Garbage never crashes the loader: it is refused with a ConfigError."""
    with contextlib.suppress(ConfigError):
        parse(yaml.safe_dump(doc))


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_is_loaded_or_refused_cleanly(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse(text)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a parsed document, e.g. ('instances', 0, 'vrid')."""
    children = (node.items() if isinstance(node, dict)
                else enumerate(node) if isinstance(node, list) else ())
    return [p for k, v in children for p in [(*prefix, k), *_paths(v, (*prefix, k))]]


GOOD_DOC = yaml.safe_load(GOOD)
GARBAGE = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
           | st.lists(st.integers() | st.text(max_size=4), max_size=3)
           | st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_paths(GOOD_DOC)), GARBAGE)
def test_any_value_anywhere_is_loaded_or_refused_cleanly(path: tuple[Any, ...],
                                                         garbage: object) -> None:
    """Replacing any one value of a valid file with garbage never crashes the loader."""
    doc = copy.deepcopy(GOOD_DOC)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = garbage
    with contextlib.suppress(ConfigError):
        parse(yaml.safe_dump(doc))


def test_check_config_exit_status(tmp_path: Path) -> None:
    """``vrrpd --check-config -c FILE``: 0 when valid; 1 and the message when not.

    GOOD names hooks, a group and a certificate of another host: the file alone is checked
    (tests/test_check_config.py checks against the host)."""
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("vrid: 51", "vrid: 300"))
    run = [sys.executable, "-m", "vrrpd", "--check-config", "--no-host-checks", "-c"]
    ok = subprocess.run([*run, str(good)], capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    refused = subprocess.run([*run, str(bad)], capture_output=True, text=True, cwd=REPO)
    assert refused.returncode == 1
    assert f"{bad}:9: instances[0].vrid: 300 is outside 1..255" in refused.stderr


def test_realtime_priority_refused_by_the_kernel_says_what_to_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's refusal (no CAP_SYS_NICE, RestrictRealtime=yes, no real-time budget in
    the cgroup) becomes one warning that names the drop-in; the daemon runs on."""
    from vrrpd.daemon import scheduling

    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(scheduling.os, "sched_setscheduler", refuse)
    monkeypatch.setattr(scheduling.resource, "setrlimit", lambda *_: None)
    with pytest.raises(OSError) as refused:
        scheduling.use_realtime(10)
    assert "realtime_priority 10: the kernel refused real-time scheduling (Operation not " \
           "permitted)" in str(refused.value)
    assert scheduling.DROP_IN in str(refused.value)
    assert (REPO / "etc/systemd/vrrpd.service.d" / Path(scheduling.DROP_IN).name).is_file()
