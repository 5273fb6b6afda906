"""One home for each fact (issue 13 part 5): a default lives in config/model.py, a protocol
number in proto/numbers.py; the loader, vrrpctl and the daemon ask there."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from benchmarks.stress import DEFAULT_ARGS
from vrrpd.config.loader import parse_config
from vrrpd.config.model import AnnounceConfig, Config, InstanceConfig, TrackConfig, default
from vrrpd.control.client import DEFAULT_SOCKET

MINIMAL = """\
node: lb1
instances:
  - {name: web, interface: lo, vrid: 51, vips: [192.0.2.100/24], track: [t]}
tracks:
  t: {type: file, path: /nonexistent}
"""


def test_a_minimal_file_gets_exactly_the_model_defaults() -> None:
    config = parse_config(MINIMAL, Path("/etc/vrrpd/vrrpd.yaml"), host=False)
    (web,) = config.instances
    given = {"name", "interface", "vrid", "vips", "track", "peers", "unicast_peers",
             "strict_peers"}
    for f in fields(InstanceConfig):
        if f.name not in given:
            assert getattr(web, f.name) == default(InstanceConfig, f.name), f.name
    for f in fields(AnnounceConfig):
        assert getattr(web.announce, f.name) == default(AnnounceConfig, f.name), f.name
    for name in ("control_socket", "control_socket_group", "state_dir", "log_format"):
        assert getattr(config, name) == default(Config, name), name
    tracker = config.tracks["t"]
    for name in ("interval", "timeout", "rise", "fall", "weight"):
        assert getattr(tracker, name) == default(TrackConfig, name), name


def test_vrrpctl_uses_the_configs_default_socket() -> None:
    assert str(default(Config, "control_socket")) == DEFAULT_SOCKET


@pytest.mark.parametrize("name", ["VRRP_TTL = 255", "IPPROTO_VRRP = 112",
                                  "OWNER_PRIORITY = 255"])
def test_protocol_numbers_are_defined_once(name: str) -> None:
    homes = [p for p in Path(__file__).parents[1].joinpath("vrrpd").rglob("*.py")
             if name in p.read_text()]
    assert [p.name for p in homes] == ["numbers.py"]


def test_vrrpctl_commands_and_help_come_from_the_daemons_registry() -> None:
    """vrrpctl offers exactly the commands the daemon registers (``config-sync-X`` as
    ``config-sync X``, plus ``config-sync keygen``, which runs without a daemon), and ``help``
    shows usages built from the same argument lists vrrpctl parses."""
    from vrrpd.cli.vrrpctl import build_parser
    from vrrpd.control.registry import COMMANDS, help_dict

    sub = next(a for a in build_parser()._actions if a.dest == "cmd")
    assert sub.choices is not None
    sync = next(a for a in sub.choices["config-sync"]._actions if a.dest == "config_sync_cmd")
    assert sync.choices is not None
    offered = (set(sub.choices) - {"config-sync"}) | {f"config-sync-{n}" for n in sync.choices} - {
        "config-sync-keygen"}
    assert offered == set(COMMANDS)
    usage = {c["name"]: c["usage"] for c in help_dict()["commands"]}
    assert usage["demote"] == "demote [INSTANCE] [--all] [--force]"
    assert usage["maintenance"] == "maintenance on|off [--force]"
    assert usage["events"] == ("events [--since AGE] [--follow] [--plot FILE.svg] "
                               "[--also EVENTS]")


def test_tracker_options_are_typed_with_their_defaults_in_the_model() -> None:
    """Each tracker type's keys are a typed dataclass (config/model.py) whose defaults the
    loader uses and the trackers read, instead of a dict whose defaults each side repeated."""
    from vrrpd.config.model import HttpOptions, ScriptOptions

    text = MINIMAL.replace("t: {type: file, path: /nonexistent}",
                           "t: {type: file, path: /nonexistent}\n"
                           "  s: {type: script, command: /bin/true}\n"
                           "  h: {type: http, url: 'http://127.0.0.1/'}")
    tracks = parse_config(text, Path("/etc/vrrpd/vrrpd.yaml"), host=False).tracks
    assert tracks["s"].options == ScriptOptions("/bin/true")
    assert tracks["h"].options == HttpOptions("http://127.0.0.1/")
    assert (tracks["s"].options.user, tracks["h"].options.method) == (  # type: ignore[union-attr]
        default(ScriptOptions, "user"), default(HttpOptions, "method"))


def test_json_and_socket_go_before_or_after_the_command() -> None:
    """``vrrpctl status --json`` and ``vrrpctl --json status`` mean the same; an option given
    before the command is not reset by the command's own (absent) copy of it."""
    from vrrpd.cli.vrrpctl import build_parser
    from vrrpd.control.client import DEFAULT_SOCKET

    parse = build_parser().parse_args
    assert parse(["status"]).json is False and parse(["status"]).socket == DEFAULT_SOCKET
    assert parse(["status", "--json"]).json and parse(["--json", "status"]).json
    assert parse(["--socket", "/s", "status"]).socket == "/s"
    assert parse(["config-sync", "status", "--socket", "/s", "--json"]).socket == "/s"
    assert parse(["events", "--follow", "--json"]).json


def test_the_stress_script_runs_what_scripts_test_runs() -> None:
    """benchmarks/stress.py's default is scripts/test's pytest run before the system tests, so
    a stress result speaks for the suite CI runs (issue 13 part 8)."""
    script = (Path(__file__).parents[1] / "scripts" / "test").read_text()
    assert f"-m pytest -q -p no:cacheprovider {' '.join(DEFAULT_ARGS)}\n" in script
