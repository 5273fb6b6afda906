"""`vrrpd import-keepalived`: keepalived.conf -> vrrpd.yaml (issue 15 part 1).

Inputs are keepalived's own samples as Debian ships them (/usr/share/doc/keepalived/samples/,
keepalived 2.2.7), the PACS pair's keepalived configs (etc/keepalived/) and small configs
written here.  Each conversion is read back with vrrpd's loader and checked for meaning
(VRIDs, priorities, trackers and their weights), not just for being written.  The lab test
tests/lab/test_keepalived_swap.py runs the converted PACS config against keepalived.
"""

from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from vrrpd.cli.import_keepalived import main
from vrrpd.config.loader import parse_config
from vrrpd.keepalived.mapper import convert
from vrrpd.keepalived.parser import ParseError, parse_text

SAMPLES = Path("/usr/share/doc/keepalived/samples")
REPO = Path(__file__).resolve().parents[1]
VRRP_SAMPLES = sorted(Path(p) for p in glob.glob(f"{SAMPLES}/keepalived.conf.*")
                      if "vrrp_instance" in Path(p).read_text())
needs_samples = pytest.mark.skipif(not VRRP_SAMPLES, reason="Debian's keepalived not installed")


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], conf: Path, *extra: str
        ) -> tuple[int, dict[str, Any] | None, str]:
    """Convert ``conf`` into tmp_path/out.yaml: (exit status, the YAML read back, stderr)."""
    out = tmp_path / "out.yaml"
    out.unlink(missing_ok=True)
    status = main([str(conf), "-o", str(out), *extra])
    err = capsys.readouterr().err
    if not out.exists():
        return status, None, err
    parse_config(out.read_text(), out, host=False)  # vrrpd accepts it
    return status, yaml.safe_load(out.read_text()), err


def write(tmp_path: Path, text: str, name: str = "keepalived.conf") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in doc["instances"]}


# ---- keepalived's samples ---------------------------------------------------------------


@needs_samples
@pytest.mark.parametrize("sample", VRRP_SAMPLES, ids=lambda p: p.name)
def test_every_vrrp_sample_converts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    sample: Path) -> None:
    """Every sample with a vrrp_instance converts; each left-out item names a line of the
    sample that holds what it names; the exit status says whether anything was left out."""
    extra = ["-i", "high"] if sample.name.endswith("conditional_conf") else []
    status, doc, err = run(tmp_path, capsys, sample, *extra)
    assert doc is not None, err
    lines = sample.read_text().splitlines()
    left_out = [e for e in err.splitlines() if e.startswith("not converted: ")]
    for entry in left_out:
        where, what = entry.removeprefix("not converted: ").split(": ", 2)[:2]
        file, line = where.rsplit(":", 1)
        assert file == str(sample)
        assert what.split()[0] in lines[int(line) - 1], entry
    assert status == (1 if left_out else 0)
    want = sum(1 for s in lines if s.split()[:1] == ["vrrp_instance"])
    assert len(doc["instances"]) == want
    check_config(tmp_path / "out.yaml")


def check_config(path: Path) -> None:
    """`vrrpd --check-config --no-host-checks` (the samples' eth0..eth3 are not this host's)."""
    done = subprocess.run([sys.executable, "-m", "vrrpd", "--check-config", "--no-host-checks",
                           "-c", str(path)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert f"{path}: OK" in done.stdout


@needs_samples
def test_sample_vrrp_meaning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, doc, err = run(tmp_path, capsys, SAMPLES / "keepalived.conf.vrrp")
    assert status == 1 and doc is not None
    assert doc["node"] == "LVS_DEVEL"
    got = {n: (i["interface"], i["vrid"], i["priority"], i["version"], i["advert_interval"])
           for n, i in by_name(doc).items()}
    assert got == {"VI_1": ("eth0", 51, 100, 2, 1), "VI_2": ("eth0", 50, 50, 2, 1),
                   "VI_3": ("eth1", 52, 100, 2, 1), "VI_4": ("eth1", 53, 50, 2, 1)}
    # 192.168.200.18 is listed twice in VI_1 (once with a label): converted once, reported
    assert by_name(doc)["VI_1"]["vips"] == ["192.168.200.16", "192.168.200.17",
                                            "192.168.200.18"]
    assert "keepalived.conf.vrrp:32: 192.168.200.18 label eth0:1: listed twice" in err
    # auth_type PASS: VRRPv2's Simple Text Password, spoken for the swap (a note, not a loss)
    assert [i.get("auth_pass") for i in doc["instances"]] == ["1111", None, "1111", None]
    assert "note: " + str(SAMPLES / "keepalived.conf.vrrp") + ":21: authentication " \
           "(auth_type PASS): a clear-text password" in err
    assert by_name(doc)["VI_1"]["announce"] == {"repeat_delay": 10}  # garp_master_delay 10


@needs_samples
def test_sample_localcheck_trackers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """track_interface/track_script weights: the script's own, an override, or 0 (FAULT)."""
    status, doc, _ = run(tmp_path, capsys, SAMPLES / "keepalived.conf.vrrp.localcheck")
    assert status == 0 and doc is not None
    vi1 = by_name(doc)["VI_1"]
    assert vi1["track"] == [{"name": "interface-eth1", "weight": 2},
                            {"name": "interface-eth2", "weight": -2}, "interface-eth3",
                            "chk_sshd", {"name": "chk_haproxy", "weight": 2},
                            "chk_http_port", "chk_https_port", "chk_smtp_port"]
    t = doc["tracks"]
    assert t["chk_sshd"] == {"type": "script", "command": "killall -0 sshd", "interval": 2,
                             "weight": -4, "fall": 2, "rise": 2, "user": "root", "timeout": 2}
    assert t["interface-eth3"] == {"type": "interface", "interface": "eth3"}
    config = parse_config(yaml.safe_dump(doc), tmp_path / "x.yaml", host=False)
    assert config.tracks["chk_haproxy"].weight == 0  # the script's own weight: FAULT
    assert config.instance("VI_3").track == ()


@needs_samples
def test_sample_sync_groups_and_nopreempt(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _, doc, _ = run(tmp_path, capsys, SAMPLES / "keepalived.conf.vrrp.sync")
    assert doc is not None
    assert doc["sync_groups"] == {
        "G1": {"instances": ["VI_1", "VI_2", "VI_5", "VI_6", "VI_7", "VI_8", "VI_9"],
               "notify_backup": "/usr/local/bin/vrrp.back arg1 arg2",
               "notify_master": "/usr/local/bin/vrrp.mast arg1 arg2",
               "notify_fault": "/usr/local/bin/vrrp.fault arg1 arg2"},
        "G2": ["VI_3", "VI_4"]}
    _, doc, _ = run(tmp_path, capsys, SAMPLES / "keepalived.conf.vrrp.scripts")
    assert doc is not None  # per-state hooks with their arguments, as keepalived runs them
    assert by_name(doc)["VI_1"]["notify_fault"] == "/usr/local/bin/vrrp.sh  FAULT  VI_1"
    # keepalived 1.x style: the members listed directly in the block
    _, doc, _ = run(tmp_path, capsys, SAMPLES / "keepalived.conf.vrrp.lvs_syncd")
    assert doc is not None and doc["sync_groups"] == {"VG1": ["VI_2", "VI_3"]}
    _, doc, _ = run(tmp_path, capsys, SAMPLES / "keepalived.conf.sample")
    assert doc is not None and doc["instances"][0]["preempt"] is False


@needs_samples
@pytest.mark.parametrize(("config_id", "priority", "script"), [
    ("high", 170, "/etc/keepalived/scripts/check_high_VI_0.sh"),
    ("low", 85, "/etc/keepalived/scripts/check_low_VI_0.sh")])
def test_sample_conditional_config(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   config_id: str, priority: int, script: str) -> None:
    """`@ID` lines count as keepalived -i ID would read them."""
    _, doc, _ = run(tmp_path, capsys, SAMPLES / "keepalived.conf.conditional_conf",
                    "-i", config_id)
    assert doc is not None
    inst = doc["instances"][0]
    assert (inst["priority"], inst["version"], inst["advert_interval"]) == (priority, 3, 12)
    assert doc["tracks"]["check_VI_0"]["command"] == script
    assert doc["tracks"]["check_VI_0"]["timeout"] == 10
    assert inst["virtual_mac"] is True  # use_vmac


# ---- the PACS pair ----------------------------------------------------------------------


@pytest.mark.parametrize(("node", "priority"), [("lb1", 150), ("lb2", 100)])
def test_pacs_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str], node: str,
                   priority: int) -> None:
    """etc/keepalived/lbN.conf -> the instance and trackers etc/vrrpd/lbN.yaml also has."""
    status, doc, err = run(tmp_path, capsys, REPO / "etc" / "keepalived" / f"{node}.conf")
    assert doc is not None
    assert doc["node"] == node
    assert doc["instances"] == [{
        "name": "pacs", "interface": "eth1", "vrid": 51, "version": 3, "priority": priority,
        "advert_interval": 0.1, "preempt_delay": 60, "vips": ["192.0.2.100/24"],
        "v3_checksum": "pseudo-header",
        "track": ["chk_haproxy", "chk_web", "chk_dicom", "maintenance"],
        "announce": {"repeat_delay": 2, "count": 3}}]
    tracks = doc["tracks"]
    assert tracks["chk_haproxy"] == {  # no weight: FAULT when HAProxy is gone
        "type": "script", "command": "/bin/sh -c 'kill -0 $(cat /run/haproxy.pid)'",
        "interval": 1, "fall": 1, "rise": 1, "user": "root", "timeout": 1}
    assert tracks["chk_web"] == {
        "type": "script", "command": "/usr/bin/curl -fsI -m 1 http://127.0.0.1:8405/healthz",
        "interval": 1, "fall": 2, "rise": 3, "weight": -60, "user": "root", "timeout": 2}
    assert tracks["chk_dicom"]["command"] == "/bin/bash -c '</dev/tcp/127.0.0.1/104'"
    assert tracks["maintenance"] == {"type": "file", "weight": -100,
                                     "path": "/etc/keepalived/maintenance"}
    # only e-mail and keepalived's script-security switch are left out
    left_out = [e.split(": ")[2] for e in err.splitlines() if e.startswith("not converted")]
    assert left_out == ["enable_script_security", "notification_email",
                        "smtp_server 192.0.2.25", "smtp_alert"]
    assert status == 1
    check_config(tmp_path / "out.yaml")


# ---- syntax -----------------------------------------------------------------------------


def test_tokens_quotes_comments_and_braces(tmp_path: Path) -> None:
    parsed = parse_text(
        'vrrp_script "chk one" { # comment {\n'
        '  script "/bin/echo \\"a b\\"  c" ! another\n'
        "  weight -2 }\n"
        "vrrp_instance VI\n"
        "{\n"
        "  virtual_ipaddress { 192.0.2.1\n"
        "      192.0.2.2 }\n"
        "}\n", tmp_path / "k.conf")
    script, inst = parsed.statements
    assert (script.keyword, script.args, script.where.line) == ("vrrp_script", ["chk one"], 1)
    assert [(s.keyword, s.args, s.where.line) for s in script.children] == [
        ("script", ['/bin/echo "a b"  c'], 2), ("weight", ["-2"], 3)]
    assert [s.keyword for s in inst.children[0].children] == ["192.0.2.1", "192.0.2.2"]


def test_parameters_and_continuation(tmp_path: Path) -> None:
    parsed = parse_text("$IF=eth3\n"
                        "vrrp_instance VI { interface ${IF}\n"
                        "  virtual_router_id \\\n"
                        "      9 }\n", tmp_path / "k.conf")
    inst = parsed.statements[0]
    assert [(s.keyword, s.args, s.where.line) for s in inst.children] == [
        ("interface", ["eth3"], 2), ("virtual_router_id", ["9"], 3)]


def test_includes_relative_globs_and_braces(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Relative to the including file; wildcards and {a,b}; findings name the included file."""
    write(tmp_path, "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n"
                    "  virtual_ipaddress { 192.0.2.1 }\n  include ../parts/opt.inc\n}\n",
          "conf.d/a.conf")
    write(tmp_path, "vrrp_instance B {\n  interface eth0\n  virtual_router_id 2\n"
                    "  virtual_ipaddress { 192.0.2.2 }\n}\n", "conf.d/b.conf")
    write(tmp_path, "priority 120\nfrobnicate 3\n", "parts/opt.inc")
    write(tmp_path, "vrrp_instance C {\n  interface eth0\n  virtual_router_id 3\n"
                    "  virtual_ipaddress { 192.0.2.3 }\n}\n", "extra/c.conf")
    main_conf = write(tmp_path, "include conf.d/*.conf\ninclude {extra,none}/c.conf\n")
    status, doc, err = run(tmp_path, capsys, main_conf)
    assert doc is not None
    assert [(i["name"], i.get("priority")) for i in doc["instances"]] == [
        ("A", 120), ("B", None), ("C", None)]
    inc = tmp_path / "conf.d" / ".." / "parts" / "opt.inc"
    assert f"not converted: {inc}:2: frobnicate 3: unknown vrrp_instance keyword" in err
    assert status == 1


# ---- bad input: file:line, exit 2, nothing written --------------------------------------

INSTANCE = ("vrrp_instance VI {\n  interface eth0\n  virtual_router_id 5\n"
            "  virtual_ipaddress {\n    192.0.2.5\n  }\n}\n")


@pytest.mark.parametrize(("text", "line", "reason"), [
    (INSTANCE + "}\n", 8, "'}' closes nothing"),
    (INSTANCE.replace("  }\n}\n", "  }\n"), 1, "the '{' of vrrp_instance is never closed"),
    ("vrrp_instance VI {\n  virtual_ipaddress {\n    192.0.2.5\n", 2,
     "the '{' of virtual_ipaddress is never closed"),
    ("vrrp_instanc VI {\n}\n", 1, "unknown keyword 'vrrp_instanc' at the top level"),
    (INSTANCE + "include missing.conf\n", 8, "include missing.conf: no such file"),
    (INSTANCE.replace("virtual_router_id 5", "virtual_router_id 300"), 3,
     "virtual_router_id: 300 is outside 1..255"),
    (INSTANCE.replace("interface eth0", "priority high"), 2,
     "priority: 'high' is not an integer"),
    (INSTANCE.replace("interface eth0", 'notify "/bin/x'), 2, "unterminated \"-quoted"),
    (INSTANCE.replace("  interface eth0\n", "  track_script {\n    nope\n  }\n"), 3,
     "track_script: no vrrp_script named 'nope'"),
    (INSTANCE + "include self.conf\n", None, "included again from itself"),
])
def test_malformed_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    text: str, line: int | None, reason: str) -> None:
    conf = write(tmp_path, text, "self.conf")
    out = tmp_path / "out.yaml"
    out.write_text("previous\n")
    assert main([str(conf), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    where = f"{conf}:{line}: " if line else f"{conf}: "
    assert where + reason in err, err
    assert err.rstrip().endswith("nothing written")
    assert out.read_text() == "previous\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.yaml", "self.conf"]  # no temp


def test_unknown_keywords_in_known_blocks_are_reported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write(tmp_path, "global_defs {\n  routr_id x\n}\n"
                 + INSTANCE.replace("  interface eth0\n", "  interface eth0\n  priorty 7\n"))
    status, doc, err = run(tmp_path, capsys, conf)
    assert status == 1 and doc is not None
    assert f"{conf}:2: routr_id x: unknown global_defs keyword" in err
    assert f"{conf}:6: priorty 7: unknown vrrp_instance keyword; skipped" in err
    assert "priority" not in doc["instances"][0]
    assert "# NOT converted:" in (tmp_path / "out.yaml").read_text()  # also in the file


def test_everything_mapped_exits_0_and_prints_to_stdout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write(tmp_path, INSTANCE)
    assert main([str(conf)]) == 0
    out = capsys.readouterr()
    doc = yaml.safe_load(out.out)
    assert doc["instances"] == [{"name": "VI", "interface": "eth0", "vrid": 5, "version": 2,
                                 "advert_interval": 1, "vips": ["192.0.2.5"]}]
    assert out.err == ""


def test_ipv6_instance_gets_a_link_local_first(tmp_path: Path) -> None:
    """RFC 5798 §5.2.9: the first IPv6 address of an advert is link-local."""
    conv = convert(parse_text(INSTANCE.replace("192.0.2.5", "2001:db8::5/64"),
                              tmp_path / "k.conf"))
    inst = conv.doc["instances"][0]
    assert (inst["version"], inst["vips"]) == (3, ["fe80::5/64", "2001:db8::5/64"])
    assert [f.what for f in conv.unmapped] == ["virtual_ipaddress (IPv6)"]


def test_value_errors_name_the_statement(tmp_path: Path) -> None:
    with pytest.raises(ParseError) as err:
        convert(parse_text(INSTANCE.replace("interface eth0", "advert_int fast"),
                           tmp_path / "k.conf"))
    assert str(err.value) == f"{tmp_path / 'k.conf'}:2: advert_int: 'fast' is not a number " \
                             "of seconds"


@needs_samples
def test_conditional_config_without_a_matching_id_says_so(
        capsys: pytest.CaptureFixture[str]) -> None:
    conf = SAMPLES / "keepalived.conf.conditional_conf"
    assert main([str(conf), "-i", "other"]) == 2
    err = capsys.readouterr().err
    assert f"{conf}:6: vrrp_script check_VI_0 has no script (lines for config id high, " \
           "low were left out: this host's id is 'other'; pick one with -i ID)" in err


def test_unicast_peers_keep_keepalived_semantics(tmp_path: Path) -> None:
    """keepalived hears any source unless check_unicast_src: strict_peers says the same."""
    text = INSTANCE.replace("  interface eth0\n", "  interface eth0\n  unicast_peer {\n"
                            "    192.0.2.12\n  }\n")
    inst = convert(parse_text(text, tmp_path / "k.conf")).doc["instances"][0]
    assert (inst["unicast_peers"], inst["strict_peers"]) == (["192.0.2.12"], False)
    text = text.replace("  interface eth0\n", "  interface eth0\n  check_unicast_src\n")
    inst = convert(parse_text(text, tmp_path / "k.conf")).doc["instances"][0]
    assert inst["strict_peers"] is True


@pytest.mark.parametrize(("line", "accept"), [("no_accept", False), ("accept", True),
                                              ("strict_mode on", False)])
def test_accept_mode(tmp_path: Path, line: str, accept: bool) -> None:
    """keepalived's accept / no_accept (and strict mode, which implies no_accept) are
    RFC 5798 §6.1 Accept_Mode: vrrpd's accept_mode."""
    text = INSTANCE.replace("  interface eth0\n", f"  interface eth0\n  {line}\n")
    inst = convert(parse_text(text, tmp_path / "k.conf")).doc["instances"][0]
    assert inst["accept_mode"] is accept


def test_garp_settings(tmp_path: Path) -> None:
    """global vrrp_garp_* are defaults, garp_* in an instance override them."""
    text = ("global_defs {\n  vrrp_garp_master_refresh 60\n  vrrp_garp_master_delay 5\n}\n"
            + INSTANCE.replace("  interface eth0\n", "  interface eth0\n"
                               "  garp_master_refresh_repeat 2\n  garp_master_repeat 4\n"))
    inst = convert(parse_text(text, tmp_path / "k.conf")).doc["instances"][0]
    assert inst["announce"] == {"refresh": 60, "repeat_delay": 5, "refresh_count": 2,
                                "count": 4}


def test_rt_priority_becomes_realtime_priority(tmp_path: Path) -> None:
    """vrrp_rt_priority -> realtime_priority, with a note about the unit's drop-in."""
    conv = convert(parse_text("global_defs {\n  vrrp_rt_priority 30\n}\n" + INSTANCE,
                              tmp_path / "k.conf"))
    assert conv.doc["realtime_priority"] == 30
    assert [f.what for f in conv.notes] == ["vrrp_rt_priority"]
    assert "realtime.conf" in conv.notes[0].why
    assert not conv.unmapped


def test_excluded_vips(tmp_path: Path) -> None:
    """virtual_ipaddress_excluded -> vips_excluded; another family is reported, not mixed."""
    text = INSTANCE.replace("  interface eth0\n", "  interface eth0\n"
                            "  virtual_ipaddress_excluded {\n    192.0.2.6/24\n"
                            "    2001:db8::6\n    192.0.2.5\n  }\n")
    conv = convert(parse_text(text, tmp_path / "k.conf"))
    assert conv.doc["instances"][0]["vips_excluded"] == ["192.0.2.6/24"]
    assert [(f.where.line, f.why.split(":")[0]) for f in conv.unmapped] == [
        (5, "vrrpd holds one family per instance (the VIPs are IPv4)"),
        (6, "listed twice; converted once")]


def test_src_ip(tmp_path: Path) -> None:
    text = INSTANCE.replace("  interface eth0\n", "  interface eth0\n  unicast_src_ip 192.0.2.21\n")
    inst = convert(parse_text(text, tmp_path / "k.conf")).doc["instances"][0]
    assert inst["src_ip"] == "192.0.2.21"


def pacs_instance(body: str) -> str:
    """A keepalived instance ``pacs`` on eth1, VRID 51, with ``body`` after its opening line."""
    return f"vrrp_instance pacs {{\n    interface eth1\n    virtual_router_id 51\n{body}}}\n"


def test_virtual_routes_and_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write(tmp_path, "\n" + pacs_instance("""\
    virtual_ipaddress {
        192.0.2.100/24
    }
    virtual_routes {
        src 192.0.2.100 to 198.51.100.0/24 via 192.0.2.1 dev eth1 table 100
        blackhole 203.0.113.0/24
        default via 192.0.2.1 table main metric 7
        198.51.100.128/25 via 192.0.2.1 scope link
    }
    virtual_rules {
        from 192.0.2.100 table 100 priority 100
        fwmark 0x7 lookup 100
        from all iif eth1 table 100
    }
"""))
    code, doc, err = run(tmp_path, capsys, conf)
    assert code == 1  # scope and iif are reported
    assert "keepalived.conf:12: 198.51.100.128/25 via 192.0.2.1 scope link: 'scope'" in err
    assert "keepalived.conf:17: from all iif eth1 table 100: 'iif'" in err
    pacs = by_name(doc)["pacs"]
    assert pacs["virtual_routes"] == [
        {"src": "192.0.2.100", "to": "198.51.100.0/24", "via": "192.0.2.1", "dev": "eth1",
         "table": 100},
        {"type": "blackhole", "to": "203.0.113.0/24"},
        {"to": "0.0.0.0/0", "via": "192.0.2.1", "table": 254, "metric": 7}]
    assert pacs["virtual_rules"] == [{"from": "192.0.2.100", "table": 100, "priority": 100},
                                     {"fwmark": 7, "table": 100}]


def test_vip_dev_and_label(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write(tmp_path, "\n" + pacs_instance("""\
    virtual_ipaddress {
        192.0.2.100/24
        198.51.100.100/24 dev eth2 label eth2:pacs
        198.51.100.101/24 dev eth2 scope link
    }
    virtual_ipaddress_excluded {
        203.0.113.5 label eth1:svc
    }
"""))
    code, doc, err = run(tmp_path, capsys, conf)
    assert code == 1
    assert ("keepalived.conf:8: 198.51.100.101/24 dev eth2 scope link: VIP options (scope link) "
            "are not supported: vrrpd adds the address on its dev") in err
    pacs = by_name(doc)["pacs"]
    assert pacs["vips"] == ["192.0.2.100/24",
                            {"address": "198.51.100.100/24", "dev": "eth2", "label": "eth2:pacs"},
                            {"address": "198.51.100.101/24", "dev": "eth2"}]
    assert pacs["vips_excluded"] == [{"address": "203.0.113.5", "label": "eth1:svc"}]
