"""HAProxy configuration sync's old spellings (``sync:``, ``vrrpd sync``, ``vrrpctl sync``)
still work and warn once, naming the new one (``vrrpd/renames.py``); both at once is refused."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from test_config import GOOD, line_of, parse

from vrrpd.cli.vrrpctl import _renamed, build_parser
from vrrpd.config.loader import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_old_yaml_key_reads_as_config_sync_with_a_warning(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    old = GOOD.replace("config_sync:", "sync:")
    with caplog.at_level(logging.WARNING, "vrrpd.deprecated"):
        config = parse(old)
    assert config.config_sync == parse(GOOD).config_sync
    assert [r.getMessage() for r in caplog.records] == [
        f"/etc/vrrpd/test.yaml:{line_of(old, 'sync:')}: `sync:` is deprecated (HAProxy "
        "configuration sync, not VRRP sync groups); write `config_sync:` instead, the old "
        "spelling will be removed"]


def test_old_and_new_yaml_key_together_are_refused() -> None:
    both = GOOD + "sync: {listen: 127.0.0.1:7000}\n"
    with pytest.raises(ConfigError, match="sync: is the old spelling of `config_sync:`"):
        parse(both)


@pytest.mark.parametrize("argv", [["sync", "status"], ["--json", "sync", "push", "--force"],
                                  ["--socket", "/s", "sync", "status"],
                                  ["--socket=/s", "sync", "keygen", "--cert", "/x"]])
def test_vrrpctl_sync_is_config_sync_with_a_warning(argv: list[str],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "vrrpd.deprecated"):
        new = _renamed(argv)
    assert new == [("config-sync" if a == "sync" else a) for a in argv]
    assert build_parser().parse_args(new).cmd == "config-sync"
    assert "`vrrpctl sync` is deprecated" in caplog.text
    assert "write `vrrpctl config-sync` instead" in caplog.text


def test_other_vrrpctl_commands_are_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    for argv in (["status"], ["--socket", "sync", "status"], ["config-sync", "status"]):
        assert _renamed(argv) == argv
    assert not caplog.records


def test_vrrpd_sync_keygen_still_makes_a_key(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "vrrpd", "sync", "keygen", "--cert",
                           str(tmp_path / "node.pem"), "--name", "lb1"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sha256:") and (tmp_path / "node.pem").exists()
    assert "`vrrpd sync` is deprecated" in done.stderr
    assert "write `vrrpd config-sync` instead" in done.stderr
