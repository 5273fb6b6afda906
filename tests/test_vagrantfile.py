"""vagrant/Vagrantfile and its host-side scripts, checked without booting anything.

Booting the pair and failing it over is the job of tests/system (scripts/pair-test); these
checks catch a broken file early: Vagrant accepts it and lists the five machines, the shell
scripts parse, and every address they configure is in a documentation range.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VAGRANTFILE = REPO / "vagrant/Vagrantfile"
SCRIPTS = [REPO / "vagrant/provision", REPO / "scripts/pair-net", REPO / "scripts/build-box",
           REPO / "scripts/pair-test", REPO / "scripts/test"]
DOCUMENTATION = [ipaddress.ip_network(n) for n in
                 ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]
IPV4 = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?![\d.])")
COMMENT = re.compile(r"(^|\s)#(?!\{).*$", re.MULTILINE)  # bash and Ruby; not "#{...}"


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          **kwargs)  # type: ignore[call-overload]


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed")
def test_vagrant_accepts_the_file_and_lists_five_machines(tmp_path: Path) -> None:
    done = run(["vagrant", "validate"], cwd=VAGRANTFILE.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    # Its own state directory: a pair booted from this checkout is none of this test's business.
    status = run(["vagrant", "status", "--machine-readable"], cwd=VAGRANTFILE.parent,
                 env={**os.environ, "VAGRANT_DOTFILE_PATH": str(tmp_path)})
    assert status.returncode == 0, status.stdout + status.stderr
    names = [line.split(",")[1] for line in status.stdout.splitlines()
             if line.split(",")[2:3] == ["state"]]
    assert names == ["lb1", "lb2", "pacs1", "pacs2", "client"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script: Path) -> None:
    done = run(["bash", "-n", str(script)])
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("path", [VAGRANTFILE, *SCRIPTS], ids=lambda p: p.name)
def test_every_address_is_a_documentation_address(path: Path) -> None:
    """No 10.x (LXC's lxcbr0), 172.16/12 or 192.168 (RULES.md, issue 19 part 3); comments
    may name what is avoided, loopback is the machine's own."""
    for text in IPV4.findall(COMMENT.sub("", path.read_text())):
        address = ipaddress.ip_address(text)
        assert address.is_loopback or any(address in net for net in DOCUMENTATION), \
            f"{path.name}: {text}"
