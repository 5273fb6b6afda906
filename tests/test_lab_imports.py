"""The probers the booted pair's client runs (tests/system/pair.py ``Client.PROBERS``) import
with nothing but the standard library and pynetdicom: the client machine's /opt/pacs
virtualenv (vagrant/provision) has no PyYAML, pyroute2, psutil or vrrpd."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ABSENT = ("yaml", "pyroute2", "psutil", "scapy", "vrrpd")


@pytest.mark.parametrize("module", ["lab.dicom", "lab.client"])
def test_client_probers_need_only_pynetdicom(module: str) -> None:
    hide = "; ".join(f"sys.modules[{name!r}] = None" for name in ABSENT)  # import fails
    run = subprocess.run([sys.executable, "-c", f"import sys; {hide}; import {module}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
