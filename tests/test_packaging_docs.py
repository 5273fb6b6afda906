"""The packaged documentation stays true to the code (man/, debian/rules)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOADER = ROOT / "vrrpd" / "config" / "loader.py"
MANPAGE = ROOT / "man" / "vrrpd.yaml.5"
# Every configuration key the loader reads: take("key", ...), items("key"), section("key"),
# has("key"), _listed(s, "key", ...).
KEY_CALL = re.compile(r'(?:\.take|\.items|\.section|\.has|_listed\(\w+,)\(?\s*"([a-z_0-9]+)"')


def test_config_manpage_names_every_key_the_loader_reads() -> None:
    keys = set(KEY_CALL.findall(LOADER.read_text()))
    assert len(keys) > 40, f"the key pattern no longer matches the loader ({sorted(keys)})"
    page = MANPAGE.read_text().replace("\\-", "-")
    words = set(re.findall(r"[a-z_0-9]+", page))
    missing = sorted(keys - words)
    assert not missing, (f"{MANPAGE.relative_to(ROOT)} does not describe {missing}: "
                         "document each new key of vrrpd/config/loader.py there")


def test_generated_pages_and_completion_cover_every_command(tmp_path: Path) -> None:
    from vrrpd.cli import vrrpctl

    subprocess.run([sys.executable, str(ROOT / "man" / "generate.py"), str(tmp_path)],
                   check=True, cwd=ROOT)
    sub = next(a for a in vrrpctl.build_parser()._actions if a.choices and a.dest == "cmd")
    page = (tmp_path / "vrrpctl.8").read_text()
    completion = (tmp_path / "vrrpctl.bash-completion").read_text()
    for name in sub.choices:
        assert f".B {name}" in page
        assert f'"{name}")' in completion
    assert "keygen" in (tmp_path / "vrrpd.8").read_text()
    check = subprocess.run(["bash", "-n", str(tmp_path / "vrrpctl.bash-completion")])
    assert check.returncode == 0
