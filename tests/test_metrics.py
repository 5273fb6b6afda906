"""The Prometheus endpoint: what it exports from a status document, and its HTTP answers."""

from __future__ import annotations

import asyncio
import platform

from prometheus_client import CollectorRegistry, generate_latest
from status_docs import doc, everything, instance

from vrrpd import __version__
from vrrpd.daemon.metrics import MetricsServer, StatusCollector


def scrape(status: dict[str, object]) -> str:
    registry = CollectorRegistry()
    registry.register(StatusCollector(lambda: status))
    return generate_latest(registry).decode()


def test_build_info_health_and_pair_series() -> None:
    body = scrape(everything())
    assert (f'vrrpd_build_info{{python="{platform.python_version()}",version="{__version__}"}}'
            " 1.0") in body
    assert "vrrpd_health 1.0" in body  # WARNING: its anycast group drains
    assert "vrrpd_health 0.0" in scrape(doc())
    assert 'vrrpd_instance_vips_held{vrrp_instance="pacs"} 0.0' in body
    assert 'vrrpd_instance_state{state="BACKUP",vrrp_instance="pacs"} 1.0' in body
    assert 'vrrpd_master_down_interval_seconds{vrrp_instance="pacs"} 0.361' in body
    assert 'vrrpd_master_advert_age_seconds{vrrp_instance="pacs"}' in body


def test_config_sync_series() -> None:
    body = scrape(everything())
    assert "vrrpd_config_sync_generation 4.0" in body
    assert "vrrpd_config_sync_diverged 0.0" in body
    assert "vrrpd_config_sync_last_push_success 1.0" in body
    assert "vrrpd_config_sync_last_push_timestamp_seconds 1.79999994e+09" in body
    peer = 'peer="192.0.2.12:7000"'
    assert f"vrrpd_config_sync_peer_up{{{peer}}} 1.0" in body
    assert f"vrrpd_config_sync_peer_generation{{{peer}}} 4.0" in body
    assert f'vrrpd_config_sync_peer_state{{{peer},state="in-sync"}} 1.0' in body
    assert f'vrrpd_config_sync_peer_state{{{peer},state="diverged"}} 0.0' in body


def test_no_sync_no_sync_series_and_fault_is_critical() -> None:
    body = scrape(doc(instance(state="FAULT", faults=["track:haproxy"], vips_held=False)))
    assert "vrrpd_config_sync_" not in body
    assert "vrrpd_health 2.0" in body
    assert "vrrpd_master_advert_age_seconds{" not in body  # none heard: no sample


def test_http_paths_and_methods() -> None:
    async def ask(port: int, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        answer = await reader.read()
        writer.close()
        return answer

    async def scenario() -> list[bytes]:
        server = MetricsServer(everything, "127.0.0.1", 0)
        await server.start()
        assert server._server is not None
        port = server._server.sockets[0].getsockname()[1]
        try:
            return [await ask(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
                    await ask(port, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
                    await ask(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                    await ask(port, b"GET /metricsX HTTP/1.1\r\n\r\n"),
                    await ask(port, b"POST /metrics HTTP/1.1\r\n\r\n"),
                    await ask(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")]
        finally:
            await server.stop()

    ok, query, root, other, post, head = asyncio.run(scenario())
    assert ok.startswith(b"HTTP/1.1 200 OK\r\n") and b"vrrpd_build_info" in ok
    assert query.startswith(b"HTTP/1.1 200 OK\r\n")
    assert root.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert other.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert post.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
