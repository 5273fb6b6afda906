"""What the daemon loads at start: only what it uses (vrrpd/imports.py, vrrpd/track/manager.py).

Each check runs in a fresh interpreter, since this test process has imported everything."""

from __future__ import annotations

import subprocess
import sys

START = """
import sys
import vrrpd.cli.vrrpd_main, vrrpd.daemon.runtime, vrrpd.daemon.ports
vrrpd.daemon.ports.real_kernel()
"""


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", START + code], capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout.strip()


def test_the_daemon_loads_rtnetlink_only_and_no_unused_tracker() -> None:
    """pyroute2's other families (NDB and its sqlite3, IPVS, nl80211, ...), the http and
    script trackers and prometheus_client (metrics) stay out until configured.  (psutil does
    not: vrrpd.drain.sessions reads HAProxy's stats through the haproxy tracker's module.)"""
    loaded = _run("print(sorted(m for m in ('pyroute2.ndb', 'pyroute2.ipvs', 'sqlite3', "
                  "'vrrpd.track.net', 'vrrpd.track.script', 'prometheus_client') "
                  "if m in sys.modules))")
    assert loaded == "[]"


def test_pyroute2_still_works_for_everyone_else() -> None:
    """The first name asked of the package runs its real __init__: `from pyroute2 import X`
    works as usual, and vrrpd's classes are pyroute2's own."""
    out = _run("from pyroute2 import AsyncIPRoute, IPRoute, NDB\n"
               "from vrrpd.kernel.link import AsyncIPRoute as ours\n"
               "print(ours is AsyncIPRoute, 'pyroute2.ndb' in sys.modules)")
    assert out == "True True"
