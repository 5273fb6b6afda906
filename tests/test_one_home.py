"""One home for each fact (issue 13 part 5): a default lives in config/model.py, a protocol
number in proto/numbers.py; the loader, vrrpctl and the daemon ask there."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

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
