"""The control-socket client: one JSON request, one JSON answer (``vrrpctl`` and the lab).

The wire format is one JSON object per line each way: ``{"v", "cmd", "args"}`` out,
``{"ok", "result" | "error"}`` back (:mod:`vrrpd.control.server`).  ``events --follow`` keeps
the connection open and streams one event per line after the answer.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

from vrrpd.config.model import Config, default
from vrrpd.control.registry import PROTOCOL_VERSION

DEFAULT_SOCKET = str(default(Config, "control_socket"))
TIMEOUT = 60.0  # a demote waits for the peer to take over


class ControlError(Exception):
    """The daemon refused the request or could not be reached; the message is for the operator."""


def _connect(path: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except FileNotFoundError:
        sock.close()
        raise ControlError(f"no control socket at {path}: is vrrpd running? "
                           "(systemctl status vrrpd)") from None
    except PermissionError:
        sock.close()
        raise ControlError(f"permission denied on {path}: run as root or as a member of "
                           "the control_socket_group") from None
    except ConnectionRefusedError:
        sock.close()
        raise ControlError(f"nobody listens on {path}: vrrpd is not running (stale socket)"
                           ) from None
    return sock


def _exchange(sock: socket.socket, cmd: str, args: dict[str, Any], follow: bool
              ) -> tuple[Any, Iterator[Any]]:
    sock.sendall(json.dumps({"v": PROTOCOL_VERSION, "cmd": cmd, "args": args}).encode() + b"\n")
    stream = sock.makefile("rb")
    if follow:
        sock.settimeout(None)
    line = stream.readline()
    if not line:
        raise ControlError("the daemon closed the connection without answering")
    reply = json.loads(line)
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "request failed"))
    return reply["result"], (json.loads(raw) for raw in stream)


def request(path: str, cmd: str, args: dict[str, Any], *, timeout: float = TIMEOUT) -> Any:
    """Send one request and return its result; :class:`ControlError` when refused."""
    with _connect(path, timeout) as sock:
        result, _ = _exchange(sock, cmd, args, follow=False)
        return result


def follow(path: str, cmd: str, args: dict[str, Any], *, timeout: float = TIMEOUT
           ) -> tuple[Any, Iterator[Any]]:
    """Send a streaming request (``events --follow``): its result and an iterator over the
    lines that follow, which ends when the daemon closes the connection."""
    sock = _connect(path, timeout)
    try:
        return _exchange(sock, cmd, args, follow=True)
    except BaseException:
        sock.close()
        raise
