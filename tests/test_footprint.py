"""What the daemon loads at start: only what it uses (vrrpd/imports.py, vrrpd/track/manager.py).

Each check runs in a fresh interpreter, since this test process has imported everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    """pyroute2's other families (NDB and its sqlite3, IPVS, nl80211, ...), the http, script
    and haproxy trackers (psutil), anycast and prometheus_client (metrics) stay out until
    configured; so does OpenSSL (``_ssl``), which only config sync and https trackers use."""
    loaded = _run("print(sorted(m for m in ('pyroute2.ndb', 'pyroute2.ipvs', 'sqlite3', "
                  "'vrrpd.track.net', 'vrrpd.track.script', 'vrrpd.track.haproxy', 'psutil', "
                  "'vrrpd.daemon.anycast', 'prometheus_client', '_ssl') if m in sys.modules))")
    assert loaded == "[]"


def test_asyncio_gets_ssl_when_it_is_first_used(tmp_path: Path) -> None:
    """The config-sync TLS channel works with ssl deferred: a TLS 1.3 exchange over asyncio
    with the sync identity's contexts, after OpenSSL was kept out at start."""
    cert = tmp_path / "sync.pem"
    out = _run(f"""
import asyncio
from pathlib import Path
assert '_ssl' not in sys.modules
from vrrpd.configsync.tls import Identity, keygen
keygen(Path({str(cert)!r}), "lb1")
me = Identity(Path({str(cert)!r}))

async def main():
    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=me.server_context())
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=me.client_context())
    writer.write(b"hello\\n")
    print(writer.get_extra_info("ssl_object").version(), (await reader.readline()).decode())
    writer.close()
    server.close()

asyncio.run(main())
""")
    assert out == "TLSv1.3 hello"


def test_pyroute2_still_works_for_everyone_else() -> None:
    """The first name asked of the package runs its real __init__: `from pyroute2 import X`
    works as usual, and vrrpd's classes are pyroute2's own."""
    out = _run("from pyroute2 import AsyncIPRoute, IPRoute, NDB\n"
               "from vrrpd.kernel.link import AsyncIPRoute as ours\n"
               "print(ours is AsyncIPRoute, 'pyroute2.ndb' in sys.modules)")
    assert out == "True True"
