"""The product and its harness are separate (DESIGN.md, "Where it goes next"; issue 13 part 4).

What a load balancer installs is the wheel: it must hold ``vrrpd`` and nothing of the lab
(``lab/``: namespaces, the demo, stand-in PACS servers, peer runners), and no module of the
product may import the lab or a test-only dependency such as pynetdicom.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_ONLY = {"lab", "tests", "pynetdicom", "pydicom", "pytest", "hypothesis"}


def test_the_product_never_imports_the_lab_or_test_only_packages() -> None:
    offenders = []
    for path in sorted((REPO / "vrrpd").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.relative_to(REPO)}:{node.lineno}: {name}" for name in names
                          if name.split(".")[0] in TEST_ONLY]
    assert offenders == []


def test_the_wheel_holds_vrrpd_and_no_lab_code(tmp_path: Path) -> None:
    """Build the wheel from a copy of the checkout (no build/ or egg-info left in it)."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        ".hypothesis"))
    out = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "--quiet", "--wheel-dir", str(out), str(src)],
                   check=True, timeout=120, capture_output=True)
    (wheel,) = out.glob("vrrpd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.startswith("vrrpd-")}
    assert packages == {"vrrpd"}, names
    assert "vrrpd/proto/router.py" in names and "vrrpd/control/client.py" in names
    assert not [n for n in names if "/lab/" in n or n.startswith(("lab/", "tests/"))]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and "pynetdicom" in line]
    assert requires and all("extra ==" in line for line in requires), requires
