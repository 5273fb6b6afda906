"""Applying a bundle for real: ``haproxy -c`` on a staged file, bind check, reload, rollback."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from vrrpd.configsync.apply import Applier, ApplyError, check_binds, parse_binds, read_local
from vrrpd.configsync.bundle import Bundle

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")

GOOD = """global
    log stdout format raw local0
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend dicom
    bind 127.0.0.1:{port}
    default_backend pacs
backend pacs
    server pacs1 127.0.0.1:11112 check
"""
NONLOCAL = Path("/proc/sys/net/ipv4/ip_nonlocal_bind")
BROKEN = GOOD.replace("default_backend pacs", "default_backend nope")


def applier(tmp: Path, reload: str = "true") -> tuple[Applier, Path, Path]:
    cfg, extra = tmp / "haproxy.cfg", tmp / "hosts.map"
    cfg.write_text(GOOD.format(port=10104))
    extra.write_text("old\n")
    return Applier((cfg, extra), "haproxy -c -f {path}", reload), cfg, extra


def push(a: Applier, cfg: Path, extra: Path, text: str, mapped: bytes = b"new\n") -> str:
    return asyncio.run(a.apply(Bundle(2, ((cfg.name, text.encode()), (extra.name, mapped)))))


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith(".vrrpd-sync-"))


def test_good_config_is_validated_installed_and_backed_up(tmp_path: Path) -> None:
    a, cfg, extra = applier(tmp_path)
    os.chmod(cfg, 0o640)
    push(a, cfg, extra, GOOD.format(port=10105))
    assert "10105" in cfg.read_text() and extra.read_text() == "new\n"
    assert "10104" in (tmp_path / "haproxy.cfg.vrrpd-backup").read_text()
    assert (tmp_path / "hosts.map.vrrpd-backup").read_text() == "old\n"
    assert cfg.stat().st_mode & 0o777 == 0o640  # the live file's mode is kept
    assert leftovers(tmp_path) == []


def test_broken_config_is_refused_with_the_validator_output(tmp_path: Path) -> None:
    a, cfg, extra = applier(tmp_path)
    before = cfg.read_text()
    with pytest.raises(ApplyError, match=r"(?s)validation failed.*nope") as err:
        push(a, cfg, extra, BROKEN.format(port=10105))
    assert "haproxy -c" in str(err.value)
    assert cfg.read_text() == before and extra.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_reload_failure_rolls_back_and_reloads_again(tmp_path: Path) -> None:
    log = tmp_path / "reloads"
    a, cfg, extra = applier(tmp_path, reload=f"echo x >> {log}; grep -q 10105 {tmp_path}/"
                                             "haproxy.cfg && echo boom && exit 3 || true")
    before = cfg.read_text()
    with pytest.raises(ApplyError, match=r"reload failed .*exit 3\): boom; rolled back, "
                                         "reloaded the previous files"):
        push(a, cfg, extra, GOOD.format(port=10105))
    assert cfg.read_text() == before and extra.read_text() == "old\n"
    assert log.read_text() == "x\nx\n"  # the new files, then the restored ones


def test_symlinked_target_is_refused(tmp_path: Path) -> None:
    a, cfg, extra = applier(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    extra.unlink()
    extra.symlink_to(victim)
    with pytest.raises(ApplyError, match="symlink"):
        push(a, cfg, extra, GOOD.format(port=10105))
    assert victim.read_text() == "keep\n"


def test_backup_and_restore_never_write_through_a_planted_symlink(tmp_path: Path) -> None:
    """Issue 12 part 4: a symlink planted at ``haproxy.cfg.vrrpd-backup`` (pointing at a file
    root owns) is replaced by the backup, never written through; the rollback restores from
    the real backup."""
    a, cfg, extra = applier(tmp_path, reload=f"grep -q 10105 {tmp_path}/haproxy.cfg "
                                             "&& exit 3 || true")
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    backup = tmp_path / "haproxy.cfg.vrrpd-backup"
    backup.symlink_to(victim)
    before = cfg.read_text()
    with pytest.raises(ApplyError, match="rolled back"):
        push(a, cfg, extra, GOOD.format(port=10105))
    assert victim.read_text() == "keep\n"
    assert not backup.is_symlink() and backup.read_text() == before
    assert cfg.read_text() == before and not cfg.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_read_local_enforces_max_file_size(tmp_path: Path) -> None:
    a, _, _ = applier(tmp_path)
    with pytest.raises(ApplyError, match="over max_file_size"):
        read_local(a.files, 10)
    assert [p for p, _ in read_local(a.files, 1 << 20)] == ["haproxy.cfg", "hosts.map"]


def test_full_disk_while_staging_changes_nothing(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    a, cfg, extra = applier(tmp_path)
    before = cfg.read_text()

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ApplyError, match=r"staging failed: .*No space left.*nothing changed"):
        push(a, cfg, extra, GOOD.format(port=10105))
    assert cfg.read_text() == before and leftovers(tmp_path) == []


def test_bind_check_needs_local_address_nonlocal_bind_or_transparent(tmp_path: Path) -> None:
    sysctl = tmp_path / "sys"
    (sysctl / "net/ipv4").mkdir(parents=True)
    (sysctl / "net/ipv4/ip_nonlocal_bind").write_text("0\n")
    binds = parse_binds("frontend f\n  bind 127.0.0.1:80,:81\n  bind *:82\n"
                        "  bind 192.0.2.200:104 # not ours\n"
                        "  bind 192.0.2.201:105 transparent\n  bind unix@/run/x.sock\n"
                        "  bind ipv6@:::443\n")
    assert [(b.line, b.address, b.transparent) for b in binds] == [
        (2, "127.0.0.1", False), (2, "", False), (3, "*", False), (4, "192.0.2.200", False),
        (5, "192.0.2.201", True), (7, "::", False)]
    problems = check_binds(binds, sysctl)
    if NONLOCAL.read_text().strip() == "1":
        assert problems == []  # this host allows it: the kernel said yes
    else:
        assert problems == ["line 4: 192.0.2.200 is not a local address and "
                            "net.ipv4.ip_nonlocal_bind = 0; set it to 1 or add `transparent` "
                            "to the bind line"]


def test_unbindable_bind_address_refuses_the_bundle(tmp_path: Path) -> None:
    if NONLOCAL.read_text().strip() == "1":
        pytest.skip("this host allows non-local binds")
    a, cfg, extra = applier(tmp_path)
    before = cfg.read_text()
    bad = GOOD.format(port=10105).replace("127.0.0.1:10105", "192.0.2.200:10105")
    with pytest.raises(ApplyError, match=r"bind check failed: line 9: 192\.0\.2\.200"):
        push(a, cfg, extra, bad)
    assert cfg.read_text() == before
