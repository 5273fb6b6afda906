"""Sync transport: TLS 1.3 streams, length-prefixed frames, both peers pinned before any request.

Every message is one frame::

    +-----------------+--------------------------------------------------+
    | u32 payload len | u32 JSON len | JSON header | binary tail (bundle) |
    +-----------------+--------------------------------------------------+

A frame is read whole (``readexactly``) before anything looks at it, so a peer that disconnects
mid-transfer leaves nothing behind.  Connection flow::

    client                                   server
      |---- TCP connect -------------------->|  not a configured peer, or too many
      |                                      |  unauthenticated: aborted (gate.py)
      |---- TLS 1.3 handshake -------------->|
      | check server cert pin                |
      |<--- {"challenge": hex} --------------|
      |---- {"cert": DER, "proof": sig} ---->|  check client pin + signature (tls.py)
      |<--- {"ok": true} --------------------|
      |---- request {"op": ...} + tail ----->|
      |<--- response {...} ------------------|

Every wait is bounded with ``asyncio.timeout``, never ``asyncio.wait_for``: on Python 3.11
``wait_for`` can turn a cancellation that coincides with its timeout into ``TimeoutError``,
and a cancelled caller then carries on (``ConfigSyncService.stop`` hung that way).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from vrrpd.configsync.gate import PRE_AUTH_TIMEOUT, Gate, IPAddress, peer_address
from vrrpd.configsync.tls import (
    Identity,
    PinError,
    channel_binding,
    client_proof_message,
    peer_fingerprint,
    verify_client_proof,
)
from vrrpd.kernel.listen import listening_socket

log = logging.getLogger("vrrpd.configsync")

U32 = struct.Struct("!I")
HANDSHAKE_TIMEOUT = 10.0
REQUEST_TIMEOUT = 120.0  # a push waits for validate + reload on the peer
MAX_CONTROL_FRAME = 64 * 1024
MAX_PROOF_FRAME = 8 * 1024  # the client's certificate and proof, read before authentication
CLOSE_WAIT = 1.0  # seconds a served connection gets for a clean TLS close before an abort

Handler = Callable[[dict[str, Any], bytes, str], Awaitable[dict[str, Any]]]


class TransportError(Exception):
    """The exchange with a peer failed; nothing it sent was acted upon."""


def encode_frame(header: dict[str, Any], tail: bytes = b"") -> bytes:
    raw = json.dumps(header, separators=(",", ":")).encode()
    payload = U32.pack(len(raw)) + raw + tail
    return U32.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader, limit: int) -> tuple[dict[str, Any], bytes]:
    """One whole frame, or :class:`TransportError` (short read, oversized, malformed)."""
    try:
        (size,) = U32.unpack(await reader.readexactly(U32.size))
        if size > limit:
            raise TransportError(f"frame of {size} bytes is over the limit ({limit})")
        payload = await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise TransportError(f"peer disconnected mid-transfer ({len(exc.partial)} bytes of a "
                             "frame); nothing applied") from None
    except (ConnectionError, ssl.SSLError) as exc:
        raise TransportError(f"connection lost: {exc}") from None
    if size < U32.size:
        raise TransportError("malformed frame")
    (hlen,) = U32.unpack_from(payload)
    try:
        header = json.loads(payload[U32.size:U32.size + hlen])
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise TransportError("malformed frame header") from None
    if not isinstance(header, dict) or U32.size + hlen > size:
        raise TransportError("malformed frame header")
    return header, payload[U32.size + hlen:]


async def _send(writer: asyncio.StreamWriter, header: dict[str, Any], tail: bytes = b"") -> None:
    writer.write(encode_frame(header, tail))
    await writer.drain()


class ConfigSyncServer:
    """Accepts pinned peers and hands each authenticated request to ``handler``.

    The TCP connection is accepted in the clear so that :class:`~vrrpd.configsync.gate.Gate` can
    refuse it before any TLS work; TLS starts only for an admitted peer.  A connection that
    fails or times out before it is served is aborted at once (``transport.abort()``): no TLS
    close_notify exchange, whose wait would hold its descriptor for another 30 s.
    """

    def __init__(self, identity: Identity, pins: frozenset[str], host: str, port: int,
                 handler: Handler, max_frame: int, peers: tuple[str, ...] = ()) -> None:
        self.identity = identity
        self.pins = pins
        self.host, self.port = host, port
        self.handler = handler
        self.max_frame = max_frame
        self.peers = peers
        self.gate = Gate(frozenset())
        self._context = identity.server_context()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.gate.allowed = await _resolve(self.peers)
        self._server = await asyncio.start_server(self._serve,
                                                  sock=listening_socket(self.host, self.port))
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._server.wait_closed()

    async def _authenticate(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> str:
        ssl_object = writer.get_extra_info("ssl_object")
        challenge = os.urandom(32)
        await _send(writer, {"challenge": challenge.hex()})
        answer, _ = await read_frame(reader, MAX_PROOF_FRAME)
        try:
            cert = base64.b64decode(answer["cert"], validate=True)
            proof = base64.b64decode(answer["proof"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise PinError("the client sent no certificate proof") from None
        message = client_proof_message(challenge, self.identity.fingerprint,
                                       channel_binding(ssl_object))
        return verify_client_proof(cert, proof, message, self.pins)

    async def _admit(self, peer: IPAddress, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> str:
        """TLS, challenge and proof within PRE_AUTH_TIMEOUT; the peer's fingerprint."""
        try:
            async with asyncio.timeout(PRE_AUTH_TIMEOUT):
                await writer.start_tls(self._context, ssl_handshake_timeout=PRE_AUTH_TIMEOUT)
                try:
                    fp = await self._authenticate(reader, writer)
                except PinError as exc:
                    self.gate.refuse("auth_failed",
                                     f"config sync: refused connection from {peer}: {exc}")
                    await _send(writer, {"ok": False, "error": f"authentication refused: {exc}"})
                    raise
                await _send(writer, {"ok": True})
                return fp
        finally:
            self.gate.release(peer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_address(writer.get_extra_info("peername"))
        if not self.gate.admit(peer):
            writer.transport.abort()
            return
        assert peer is not None
        served = False
        try:
            fp = await self._admit(peer, reader, writer)
            async with asyncio.timeout(REQUEST_TIMEOUT):
                header, tail = await read_frame(reader, self.max_frame)
            try:
                result = await self.handler(header, tail, fp)
            except Exception as exc:  # a handler bug must not kill the server
                log.exception("config sync: request %s from %s failed", header.get("op"), peer)
                result = {"ok": False, "error": f"internal error: {exc}"}
            await _send(writer, result)
            self.gate.counters["served"] += 1
            served = True
        except PinError:
            pass  # counted and logged by _admit
        except TimeoutError:
            self.gate.refuse("timeout", f"config sync: connection from {peer} timed out")
        except Exception as exc:  # TLS, framing, a vanished peer, anything: count, never crash
            self.gate.refuse("error", f"config sync: connection from {peer}: "
                             f"{exc or type(exc).__name__}")
        finally:
            if served:
                writer.close()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_WAIT):
                        await writer.wait_closed()
            writer.transport.abort()  # no-op once closed


async def _resolve(hosts: tuple[str, ...]) -> frozenset[IPAddress]:
    """The addresses of the configured peers (names resolved once, at start)."""
    loop = asyncio.get_running_loop()
    out: set[IPAddress] = set()
    for host in hosts:
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            log.error("config sync: cannot resolve peer %s (%s); connections from it are refused",
                      host, exc)
            continue
        out.update(a for a in (peer_address(info[4]) for info in infos) if a is not None)
    return frozenset(out)


async def open_session(identity: Identity, pins: frozenset[str], host: str, port: int
                       ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect, pin the server and prove our identity; the caller closes the writer."""
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port,
                                                           ssl=identity.client_context())
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        raise TransportError(f"cannot connect to {host}:{port}: {exc or 'timed out'}") from None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        try:
            server_fp = peer_fingerprint(ssl_object, pins)
        except PinError as exc:
            raise TransportError(f"{host}:{port}: {exc}") from None
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            hello, _ = await read_frame(reader, MAX_CONTROL_FRAME)
        try:
            challenge = bytes.fromhex(hello["challenge"])
        except (KeyError, TypeError, ValueError):
            raise TransportError(f"{host}:{port}: no challenge from the peer") from None
        try:
            binding = channel_binding(ssl_object)
        except PinError as exc:
            raise TransportError(f"{host}:{port}: {exc}") from None
        proof = identity.prove(client_proof_message(challenge, server_fp, binding))
        await _send(writer, {"cert": base64.b64encode(identity.der).decode(),
                             "proof": base64.b64encode(proof).decode()})
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            welcome, _ = await read_frame(reader, MAX_CONTROL_FRAME)
        if not welcome.get("ok"):
            raise TransportError(f"{host}:{port}: {welcome.get('error', 'refused')}")
    except BaseException as exc:
        writer.close()
        if isinstance(exc, TimeoutError):
            raise TransportError(f"{host}:{port}: timed out") from None
        if isinstance(exc, ConnectionError | ssl.SSLError):
            raise TransportError(f"{host}:{port}: connection lost: {exc}") from None
        raise
    return reader, writer


async def call(identity: Identity, pins: frozenset[str], host: str, port: int,
               header: dict[str, Any], tail: bytes = b"",
               timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
    """One authenticated request to a peer; its response header (or :class:`TransportError`)."""
    reader, writer = await open_session(identity, pins, host, port)
    try:
        await _send(writer, header, tail)
        async with asyncio.timeout(timeout):
            response, _ = await read_frame(reader, MAX_CONTROL_FRAME)
        return response
    except TimeoutError:
        raise TransportError(f"{host}:{port}: timed out") from None
    except (ConnectionError, ssl.SSLError) as exc:
        raise TransportError(f"{host}:{port}: connection lost: {exc}") from None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
