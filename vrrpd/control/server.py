"""Unix-socket control server: versioned JSON, one request line, one response line.

Request:  ``{"v": 1, "cmd": "status", "args": {...}}``
Response: ``{"v": 1, "ok": true, "result": {...}}`` or ``{"v": 1, "ok": false, "error": "..."}``

Streaming commands (``events`` with ``follow``) answer with one JSON line per event until the
client hangs up.  A malformed, oversized or slow request gets an error or a closed connection;
it never affects the daemon.  The socket is mode 0600 (0660 with ``control_socket_group``).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
from pathlib import Path
from typing import Any

from vrrpd.control import commands as _commands  # noqa: F401  (registers the commands)
from vrrpd.control import configsync_commands as _sync_commands  # noqa: F401
from vrrpd.control.registry import COMMANDS, PROTOCOL_VERSION, CommandError

log = logging.getLogger("vrrpd.control")

MAX_REQUEST = 64 * 1024
READ_TIMEOUT = 5.0


def _reply(ok: bool, **body: Any) -> bytes:
    return json.dumps({"v": PROTOCOL_VERSION, "ok": ok, **body}).encode() + b"\n"


class ControlServer:
    def __init__(self, daemon: Any, path: Path, group: str | None = None) -> None:
        self.daemon = daemon
        self.path = path
        self.group = group
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket from a crashed run
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._client, path=str(self.path),
                                                           limit=MAX_REQUEST)
        finally:
            os.umask(old_umask)
        if self.group:
            os.chown(self.path, -1, grp.getgrnam(self.group).gr_gid)
            os.chmod(self.path, 0o660)
        else:
            os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("control request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):  # not wait_for: vrrpd.configsync.transport
                line = await reader.readline()
        except TimeoutError:
            writer.write(_reply(False, error="no request within 5 s"))
            return
        except ValueError:  # asyncio raises this when the line exceeds the limit
            writer.write(_reply(False, error=f"request larger than {MAX_REQUEST} bytes"))
            return
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            writer.write(_reply(False, error=f"malformed request ({exc}); expected one JSON "
                                             'object like {"v": 1, "cmd": "status"}'))
            return
        if request.get("v", PROTOCOL_VERSION) != PROTOCOL_VERSION:
            writer.write(_reply(False, error=f"protocol version {request.get('v')} not "
                                             f"supported; this daemon speaks {PROTOCOL_VERSION}"))
            return
        name, args = request.get("cmd"), request.get("args") or {}
        cmd = COMMANDS.get(name) if isinstance(name, str) else None
        if cmd is None or not isinstance(args, dict):
            writer.write(_reply(False, error=f"unknown command {name!r}; `vrrpctl help` lists "
                                             "the commands"))
            return
        if cmd.streaming and args.get("follow"):
            await self._stream(cmd.name, args, writer)
            return
        try:
            result = await cmd.handler(self.daemon, args)
        except CommandError as exc:
            writer.write(_reply(False, error=str(exc)))
        else:
            writer.write(_reply(True, result=result))
        await writer.drain()

    async def _stream(self, name: str, args: dict[str, Any],
                      writer: asyncio.StreamWriter) -> None:
        queue = self.daemon.events.subscribe()
        try:
            result = await COMMANDS[name].handler(self.daemon, args)
            writer.write(_reply(True, result=result))
            while True:
                event = await queue.get()
                writer.write(json.dumps(event).encode() + b"\n")
                await writer.drain()
        finally:
            self.daemon.events.unsubscribe(queue)
