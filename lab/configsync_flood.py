"""Knock on a sync listener as hard as one core allows (``benchmarks/configsync_flood.py``).

Run inside the attacking node's namespace::

    python -m lab.configsync_flood --target 192.0.2.12:8443 --mode connect --duration 60

``idle``: nothing (a baseline run).  ``connect``: TCP connections, 256 in flight
(non-blocking), each closed the moment it is made (RST: SO_LINGER 0, so the attacker never
runs out of ports), again and again in one process.
``loris``: open up to ``--hold`` connections and keep them, sending one byte every 5 s,
reopening any the server closes.
Prints one JSON line: attempts, connections made, refused/reset, still held at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import selectors
import socket
import struct
import time

LINGER_RST = struct.pack("ii", 1, 0)


def _connect(target: tuple[str, int], timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    sock.settimeout(timeout)
    try:
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    return sock


def connect_flood(target: tuple[str, int], duration: float,
                  inflight: int = 256) -> dict[str, int]:
    """Non-blocking connects, ``inflight`` at a time, each closed as soon as it completes."""
    counts = {"attempts": 0, "connected": 0, "failed": 0}
    sel = selectors.DefaultSelector()
    end = time.monotonic() + duration
    while time.monotonic() < end:
        while len(sel.get_map()) < inflight:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            sock.setblocking(False)
            counts["attempts"] += 1
            if sock.connect_ex(target) not in (0, errno.EINPROGRESS):
                counts["failed"] += 1
                sock.close()
                continue
            sel.register(sock, selectors.EVENT_WRITE)
        for key, _ in sel.select(0.1):
            sock = key.fileobj  # type: ignore[assignment]
            sel.unregister(sock)
            ok = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            counts["connected" if ok else "failed"] += 1
            sock.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    return counts


def _alive(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def loris(target: tuple[str, int], duration: float, hold: int) -> dict[str, int]:
    counts = {"attempts": 0, "connected": 0, "failed": 0, "closed_by_server": 0, "held": 0}
    held: list[socket.socket] = []
    end = time.monotonic() + duration
    next_byte = time.monotonic() + 5
    while time.monotonic() < end:
        while len(held) < hold and time.monotonic() < end:
            counts["attempts"] += 1
            try:
                held.append(_connect(target, 1.0))
                counts["connected"] += 1
            except OSError as exc:
                counts["failed"] += 1
                if exc.errno == errno.EMFILE:
                    break
        if time.monotonic() >= next_byte:
            next_byte += 5
            for sock in held:
                with contextlib.suppress(OSError):
                    sock.send(b"\x16", socket.MSG_DONTWAIT)
        alive = [s for s in held if _alive(s)]
        for sock in set(held) - set(alive):
            counts["closed_by_server"] += 1
            sock.close()
        held = alive
        time.sleep(0.01)
    counts["held"] = len(held)
    for sock in held:
        sock.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT")
    parser.add_argument("--mode", choices=("idle", "connect", "loris"), default="connect")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--hold", type=int, default=2000)
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    target = (host, int(port))
    start = time.monotonic()
    if args.mode == "idle":
        time.sleep(args.duration)
        counts = {"attempts": 0, "connected": 0, "failed": 0}
    elif args.mode == "connect":
        counts = connect_flood(target, args.duration)
    else:
        counts = loris(target, args.duration, args.hold)
    counts["seconds"] = round(time.monotonic() - start, 3)  # type: ignore[assignment]
    print(json.dumps({"mode": args.mode, **counts}))


if __name__ == "__main__":
    main()
