"""Config diff for hitless reload: unchanged instances keep their state (DESIGN.md seam 6)."""

from __future__ import annotations

from ipaddress import ip_interface
from pathlib import Path

from vrrpd.config.diff import diff_configs
from vrrpd.config.loader import parse_config
from vrrpd.config.model import Config

BASE = """\
instances:
  - name: web
    interface: eth0
    vrid: 51
    vips: [192.0.2.100/24]
    track: [haproxy]
  - name: dicom
    interface: eth0
    vrid: 52
    vips: [192.0.2.104/24]
  - name: web6
    interface: eth0
    vrid: 51
    vips: [fe80::51/64, 2001:db8::100/64]
tracks:
  haproxy: {type: haproxy, pidfile: /run/haproxy.pid}
  maint: {type: file, path: /etc/vrrpd/maintenance}
sync_groups:
  pacs: [web, web6]
"""


def config(text: str) -> Config:
    return parse_config(text, Path("/etc/vrrpd/vrrpd.yaml"), host=False)


def test_identical_configs_have_an_empty_diff() -> None:
    d = diff_configs(config(BASE), config(BASE))
    assert d.empty and d.unchanged == ("web", "dicom", "web6")
    assert (d.added, d.removed, d.changed, d.tracks) == ((), (), {}, ())


def test_added_and_removed_instances() -> None:
    d = diff_configs(config(BASE), config(BASE.replace("name: dicom", "name: query")))
    assert (d.added, d.removed, d.unchanged) == (("query",), ("dicom",), ("web", "web6"))
    assert not d.empty


def test_vip_only_change_is_applied_in_place() -> None:
    d = diff_configs(config(BASE), config(BASE.replace(
        "vips: [192.0.2.100/24]", "vips: [192.0.2.100/24, 192.0.2.101/24]")))
    change = d.changed["web"]
    assert change.fields == ("vips",) and change.vips_only and not change.restart
    assert change.added_vips == (ip_interface("192.0.2.101/24"),) and change.removed_vips == ()
    assert d.updated == ("web",) and d.restarted == () and d.unchanged == ("dicom", "web6")


def test_other_field_change_is_not_vips_only() -> None:
    d = diff_configs(config(BASE), config(BASE.replace(
        "vrid: 52\n", "vrid: 52\n    priority: 200\n    preempt_delay: 10\n")))
    change = d.changed["dicom"]
    assert change.fields == ("priority", "preempt_delay")
    assert not change.vips_only and not change.restart and d.updated == ("dicom",)


def test_wire_identity_change_restarts_the_instance() -> None:
    """A new interface, VRID or version is another virtual router on the wire."""
    for edit in [("vrid: 52", "vrid: 53"), ("vrid: 52", "vrid: 52\n    version: 2"),
                 ("interface: eth0\n    vrid: 52", "interface: eth1\n    vrid: 52")]:
        d = diff_configs(config(BASE), config(BASE.replace(*edit)))
        assert d.restarted == ("dicom",), edit
        assert not d.changed["dicom"].vips_only


def test_family_change_restarts_even_when_only_vips_changed() -> None:
    d = diff_configs(config(BASE), config(BASE.replace(
        "vips: [192.0.2.104/24]", "vips: [fe80::52/64]")))
    change = d.changed["dicom"]
    assert change.fields == ("vips",) and change.restart and not change.vips_only


def test_tracker_sync_group_and_metrics_changes_are_reported() -> None:
    new = (BASE.replace("path: /etc/vrrpd/maintenance}", "path: /etc/vrrpd/maint}")
           .replace("pacs: [web, web6]", "pacs: [dicom, web6]")
           + "metrics: {listen: 127.0.0.1:9650}\nlog_format: json\n")
    d = diff_configs(config(BASE), config(new))
    assert d.tracks == ("maint",) and d.tracks_changed
    assert d.sync_groups_changed and d.metrics_changed and not d.config_sync_changed
    assert d.settings == ("log_format",)
    assert d.changed == {} and d.unchanged == ("web", "dicom", "web6")


def test_added_and_removed_trackers() -> None:
    new = BASE.replace("  maint: {type: file, path: /etc/vrrpd/maintenance}\n",
                       "  dicom: {type: tcp, host: 127.0.0.1, port: 104}\n")
    assert diff_configs(config(BASE), config(new)).tracks == ("maint", "dicom")
