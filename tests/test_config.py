"""Config loading: the schema contract, and precise refusals (file, line, key path, reason)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from ipaddress import ip_interface
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vrrpd.config.loader import ConfigError, load_config, parse_config
from vrrpd.config.model import ChecksumMode, TrackRef, TrackType

REPO = Path(__file__).resolve().parents[1]
FILE = Path("/etc/vrrpd/test.yaml")

GOOD = """\
node: lb1
instances:
  - name: web
    interface: eth0
    vrid: 51
    priority: 150
    advert_interval: 0.1
    vips: [192.0.2.100/24]
    track: [haproxy, {name: maint, weight: -60}]
  - name: web6
    interface: eth0
    vrid: 52
    vips: [fe80::52/64, 2001:db8::100/64]
tracks:
  haproxy: {type: haproxy, pidfile: /run/haproxy.pid, socket: /run/haproxy/admin.sock}
  maint: {type: file, path: /etc/vrrpd/maintenance, weight: -10}
sync_groups:
  pacs: [web, web6]
"""


def parse(text: str) -> object:
    return parse_config(text, FILE, check_interfaces=False)


def test_good_config_becomes_the_typed_model() -> None:
    cfg = parse(GOOD)
    web, web6 = cfg.instances
    assert (web.vrid, web.priority, web.advert_interval_cs, web.version) == (51, 150, 10, 3)
    assert web.vips == (ip_interface("192.0.2.100/24"),) and web.family == 4
    assert web.track == (TrackRef("haproxy"), TrackRef("maint", -60))
    assert web.v3_checksum is ChecksumMode.AUTO and web.preempt
    assert web6.family == 6 and web6.advert_interval_cs == 100
    assert cfg.tracks["haproxy"].type is TrackType.HAPROXY
    assert cfg.tracks["haproxy"].options["pidfile"] == Path("/run/haproxy.pid")
    assert cfg.sync_groups[0].instances == ("web", "web6")


def test_example_file_loads() -> None:
    cfg = load_config(REPO / "etc" / "vrrpd.yaml", check_interfaces=False)
    assert [i.name for i in cfg.instances] == ["web", "web6"]


# (sed-style edit of GOOD, expected line, key path, words in the reason)
BAD = [
    (("vrid: 51", "vrid: 300"), 5, "instances[0].vrid", "outside 1..255"),
    (("vrid: 51", "vrid: 0"), 5, "instances[0].vrid", "outside 1..255"),
    (("priority: 150", "priority: 256"), 6, "instances[0].priority", "outside 1..255"),
    (("priority: 150", "priorty: 150"), 6, "instances[0].priorty", "did you mean 'priority'"),
    (("advert_interval: 0.1", "advert_interval: 0.105"), 7, "instances[0].advert_interval",
     "multiple of 0.01"),
    (("advert_interval: 0.1", "advert_interval: 0.5\n    version: 2"), 7,
     "instances[0].advert_interval", "whole seconds"),
    (("[192.0.2.100/24]", "[192.0.2.100/24, 2001:db8::5/64]"), 8, "instances[0].vips",
     "mixes IPv4 and IPv6"),
    (("[fe80::52/64, 2001:db8::100/64]", "[2001:db8::100/64]"), 13, "instances[1].vips",
     "must be link-local"),
    (("{name: maint, weight: -60}", "{name: mant}"), 9, "instances[0].track[1]",
     "unknown tracker 'mant'"),
    (("weight: -60", "weight: -300"), 9, "instances[0].track[1].weight", "outside -253..253"),
    (("weight: -10}", "weight: -10, interval: 0.01}"), 16, "tracks.maint.interval",
     "outside 0.05"),
    (("priority: 150", "priority: 'high'"), 6, "instances[0].priority", "must be an integer"),
    (("pacs: [web, web6]", "pacs: [web, nope]"), 18, "sync_groups.pacs", "unknown instance"),
    (("vrid: 52", "vrid: 51\n    version: 2"), 13, "instances[1].version", "IPv4-only"),
]


@pytest.mark.parametrize("edit,line,key,reason", BAD, ids=[b[2] + ":" + b[3] for b in BAD])
def test_bad_config_names_file_line_key_and_reason(edit: tuple[str, str], line: int, key: str,
                                                   reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(GOOD.replace(*edit, 1))
    err = info.value
    assert (err.file, err.line, err.key) == (FILE, line, key), str(err)
    assert reason in err.reason
    assert str(err).startswith(f"{FILE}:{line}: {key}: ")


def test_duplicate_vrid_and_name_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"instances\[1\].vrid: VRID 51 is already used"):
        parse(GOOD.replace("vips: [fe80::52/64, 2001:db8::100/64]", "vips: [192.0.2.9/24]")
              .replace("vrid: 52", "vrid: 51"))
    with pytest.raises(ConfigError, match="used twice"):
        parse(GOOD.replace("name: web6", "name: web"))


def test_missing_interface_is_refused() -> None:
    with pytest.raises(ConfigError, match="interface 'nosuch0' does not exist"):
        parse_config(GOOD.replace("interface: eth0", "interface: nosuch0", 1), FILE)


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse("instances:\n  - name: [web\n")
    assert info.value.line is not None and "not valid YAML" in str(info.value)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=20))
def test_any_yaml_document_is_loaded_or_refused_cleanly(doc: object) -> None:
    """Garbage never crashes the loader: it is refused with a ConfigError."""
    with contextlib.suppress(ConfigError):
        parse(yaml.safe_dump(doc))


def test_check_config_exit_status(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD.replace("eth0", "lo"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("vrid: 51", "vrid: 300").replace("eth0", "lo"))
    run = [sys.executable, "-m", "vrrpd", "--check-config", "-c"]
    ok = subprocess.run([*run, str(good)], capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    refused = subprocess.run([*run, str(bad)], capture_output=True, text=True, cwd=REPO)
    assert refused.returncode == 1
    assert f"{bad}:5: instances[0].vrid: 300 is outside 1..255" in refused.stderr
