"""``tcp`` and ``http`` trackers against real listeners on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from track_helpers import running, track_config

from vrrpd.config.model import TrackConfig, TrackType


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def first_status(config: TrackConfig) -> tuple[bool, str]:
    async with running(config) as (_, rec):
        _, status = await rec.wait_for(lambda s: True)
    return status.ok, status.detail


def test_tcp_connects_to_a_listener_and_fails_on_a_closed_port() -> None:
    accepted: list[bool] = []

    async def scenario() -> None:
        server = await asyncio.start_server(
            lambda r, w: accepted.append(True) or w.close(), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        async with server:
            ok = await first_status(track_config(TrackType.TCP, host="127.0.0.1", port=port))
            assert ok == (True, f"connected to 127.0.0.1:{port}")
        closed = closed_port()
        assert await first_status(track_config(TrackType.TCP, host="127.0.0.1", port=closed)) == (
            False,
            f"connect to 127.0.0.1:{closed} failed: Connect call failed ('127.0.0.1', {closed})",
        )

    asyncio.run(scenario())
    assert accepted


async def http_server(
    status_line: bytes,
    requests: list[bytes],
    stall: bool = False,
    tls: ssl.SSLContext | None = None,
) -> asyncio.Server:
    """A tiny HTTP server answering every request with ``status_line``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        if stall:
            await asyncio.sleep(30)
        writer.write(status_line + b"Content-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)


@pytest.mark.parametrize(
    ("status_line", "options", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\n", {}, (True, "HEAD {url}: 200 OK")),
        (
            b"HTTP/1.1 503 Service Unavailable\r\n",
            {},
            (False, "HEAD {url}: 503 Service Unavailable (expected 200-399)"),
        ),
        (
            b"HTTP/1.0 404 Not Found\r\n",
            {"status": (404, 404)},
            (True, "HEAD {url}: 404 Not Found"),
        ),
        (b"SSH-2.0-OpenSSH\r\n", {}, (False, "HEAD {url}: not HTTP: b'SSH-2.0-OpenSSH\\r\\n'")),
    ],
)
def test_http_status_ranges(
    status_line: bytes, options: dict[str, object], expected: tuple[bool, str]
) -> None:
    requests: list[bytes] = []

    async def scenario() -> tuple[bool, str]:
        server = await http_server(status_line, requests)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/health?x=1"
        async with server:
            ok, detail = await first_status(track_config(TrackType.HTTP, url=url, **options))
        return ok, detail.replace(url, "{url}")

    assert asyncio.run(scenario()) == expected
    request = requests[0].decode()
    assert request.startswith("HEAD /health?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert "\r\nConnection: close\r\n" in request


def test_http_get_method_and_timeout() -> None:
    requests: list[bytes] = []

    async def scenario() -> tuple[bool, str]:
        server = await http_server(b"HTTP/1.1 200 OK\r\n", requests, stall=True)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        async with server:
            config = track_config(TrackType.HTTP, url=url, method="GET", timeout=0.2)
            return await first_status(config)

    assert asyncio.run(scenario()) == (False, "no result within the 0.2s timeout")
    assert requests[0].startswith(b"GET / HTTP/1.1\r\n")


def test_http_rejects_other_schemes() -> None:
    with pytest.raises(ValueError, match="url must be http:// or https://"):
        asyncio.run(first_status(track_config(TrackType.HTTP, url="ftp://example.org/")))


def test_https_without_certificate_verification(tmp_path: Path) -> None:
    """A self-signed certificate is accepted: the check asks whether the service answers."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=portal", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    requests: list[bytes] = []

    async def scenario() -> tuple[bool, str]:
        server = await http_server(b"HTTP/1.1 204 No Content\r\n", requests, tls=tls)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        async with server:
            ok, detail = await first_status(track_config(TrackType.HTTP, url=url))
        return ok, detail.replace(url, "{url}")

    assert asyncio.run(scenario()) == (True, "HEAD {url}: 204 No Content")
