"""The lab's client: HTTP HEAD to the VIP every 10 ms, as a radiologist's browser would see it.

Run in the client node as a subprocess (``python -m lab.client URL``), one asyncio
task per request so a hanging request never delays the next one.  Each request gets
``timeout`` seconds to connect and as long again to read the response head; it prints one line
per request::

    <sent, CLOCK_MONOTONIC seconds> <1|0> <LB or '-'> <latency ms> <backend or '-'> <why> <port>

``why`` is ``ok`` or why the request failed (:func:`probe`): ``connect-timeout``,
``read-timeout``, ``refused``, ``reset``, ``closed`` (the connection ended before a response
head), ``http-<status>``, or another errno name; ``port`` is the request's local TCP port
(``-`` when it got none), to find it in a packet capture.

The LB is the ``X-LB`` header (the HAProxy pair of :mod:`lab.haproxy_pair` sets it) or,
when the load balancers run an unmodified configuration, the ``X-Remote-Addr`` header a
``scripts/pacs-backend`` answers with (the address the request came from: the load balancer's
own) translated by ``--lb ADDRESS=NAME``; the backend is ``X-Backend``.

CLOCK_MONOTONIC is system-wide (namespaces do not change it), so the test or benchmark that
injects a fault can compare its own ``time.monotonic()`` with these timestamps.

:func:`measure` turns the samples and the fault time into the client-visible outage: the
longest gap between consecutive successful requests from the last success before the fault up
to the first success served by the new load balancer, and the failed requests in that window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import http.client
import itertools
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lab.netns import Node


def http_request(node: Node, host: str, method: str = "HEAD", source: str | None = None,
            headers: Mapping[str, str] | None = None, timeout: float = 2
            ) -> http.client.HTTPResponse:
    """One ``method /`` to ``host``:80 from ``node`` on a new connection (from ``source``,
    one of the node's addresses, if given); the answer, its body read and the connection
    closed, after asserting it was 200 OK."""
    with node.ns.entered():
        conn = http.client.HTTPConnection(host, 80, timeout=timeout,
                                          source_address=(source, 0) if source else None)
        try:
            conn.request(method, "/", headers=dict(headers or {}))
            resp = conn.getresponse()
            resp.read()
        finally:
            conn.close()
    assert resp.status == 200, resp.status
    return resp


@dataclass(frozen=True)
class Sample:
    """One request: when it was sent, whether a 2xx/3xx came back, which LB answered, and
    why it failed (see the module docstring)."""

    sent: float
    ok: bool
    lb: str | None
    latency_ms: float
    backend: str | None = None
    why: str = "ok"
    port: int | None = None

    def line(self) -> str:
        """The sample as one line of a prober's output (see the module docstring)."""
        return (f"{self.sent:.6f} {int(self.ok)} {self.lb or '-'} {self.latency_ms:.2f} "
                f"{self.backend or '-'} {self.why} {self.port or '-'}\n")


@dataclass(frozen=True)
class Outage:
    """What the client saw of one failover."""

    outage_ms: float  # longest gap between successes around the fault
    failed: int  # failed requests sent in that window
    new_lb: str | None  # who served the first success after the fault
    window_ms: float  # last success before the fault -> first success by the new LB


@dataclass(frozen=True)
class Answer:
    """What :func:`probe` saw of one request."""

    ok: bool
    why: str  # "ok" or why it failed, see the module docstring
    lb: str | None = None
    backend: str | None = None
    port: int | None = None


def failure(exc: BaseException, connected: bool) -> str:
    """The ``why`` of a request that raised ``exc`` (before or after it ``connected``)."""
    match exc:
        case TimeoutError():
            return "read-timeout" if connected else "connect-timeout"
        case ConnectionRefusedError():
            return "refused"
        case ConnectionResetError():
            return "reset"
        case asyncio.IncompleteReadError() | asyncio.LimitOverrunError():
            return "closed"
        case OSError() if exc.errno is not None:
            return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


async def probe(host: str, port: int, path: str, timeout: float,
                lbs: Mapping[str, str] | None = None) -> Answer:
    """One ``HEAD`` with ``Connection: close``: status 2xx/3xx, LB, backend, see above."""
    writer = None
    local_port = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        local_port = writer.get_extra_info("sockname")[1]
        writer.write(f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError,
            asyncio.LimitOverrunError) as exc:
        return Answer(False, failure(exc, writer is not None), port=local_port)
    finally:
        if writer is not None:
            writer.close()
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    ok = len(parts) >= 2 and parts[1][:1] in ("2", "3")
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (ln.partition(":") for ln in lines[1:] if ":" in ln)}
    lb = headers.get("x-lb")
    if lb is None and "x-remote-addr" in headers:
        lb = (lbs or {}).get(headers["x-remote-addr"], headers["x-remote-addr"])
    return Answer(ok, "ok" if ok else f"http-{parts[1] if len(parts) >= 2 else '?'}", lb,
                  headers.get("x-backend"), local_port)


async def run(url: str, interval: float, timeout: float, out: Path,
              lbs: Mapping[str, str] | None = None) -> None:
    """Probe ``url`` every ``interval`` seconds until SIGTERM, one line per request to ``out``."""
    parts = urlsplit(url)
    host, port, path = parts.hostname or "", parts.port or 80, parts.path or "/"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    tasks: set[asyncio.Task[None]] = set()
    with out.open("w", buffering=1) as sink:

        async def one() -> None:
            sent = time.monotonic()
            a = await probe(host, port, path, timeout, lbs)
            sink.write(Sample(sent, a.ok, a.lb, (time.monotonic() - sent) * 1000, a.backend,
                              a.why, a.port).line())

        tick = time.monotonic()
        while not stop.is_set():
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            tick += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, tick - time.monotonic()))
        if tasks:
            await asyncio.wait(tasks, timeout=2 * timeout + 0.1)


def read_samples(path: Path) -> list[Sample]:
    return parse_samples(path.read_text())


def parse_samples(text: str) -> list[Sample]:
    """A prober's output (``Sample.line`` lines), in the order the requests were sent."""
    samples = []
    for line in text.splitlines():
        f = line.split()
        if len(f) == 7:
            why, port = f[5], None if f[6] == "-" else int(f[6])
            samples.append(Sample(float(f[0]), f[1] == "1", None if f[2] == "-" else f[2],
                                  float(f[3]), None if f[4] == "-" else f[4], why, port))
    return sorted(samples, key=lambda s: s.sent)


def measure(samples: Sequence[Sample], fault: float, new_lb: str | None = None) -> Outage:
    """The outage around a fault injected at ``fault`` (monotonic seconds).

    The window runs from the last success sent before ``fault`` to the first success after it
    served by ``new_lb`` (any LB when None).  The outage is the longest gap between consecutive
    successes inside it; a make-before-break hand-over shows just the probe spacing.
    """
    before = [s for s in samples if s.sent <= fault and s.ok]
    if not before:
        raise ValueError("no successful request before the fault")
    start = before[-1].sent
    after = [s for s in samples if s.sent > fault and s.ok and (new_lb is None or s.lb == new_lb)]
    if not after:
        raise ValueError(f"no successful request by {new_lb or 'any LB'} after the fault")
    end = after[0]
    window = [s for s in samples if start <= s.sent <= end.sent]
    ok_times = [s.sent for s in window if s.ok]
    gap = max(b - a for a, b in itertools.pairwise(ok_times))
    return Outage(outage_ms=gap * 1000, failed=sum(not s.ok for s in window),
                  new_lb=end.lb, window_ms=(end.sent - start) * 1000)


class ClientProber:
    """The prober subprocess in ``node``; :meth:`samples` reads what it recorded so far."""

    def __init__(self, node: Node, url: str, interval: float = 0.01, timeout: float = 0.05,
                 out: Path | None = None, lbs: Mapping[str, str] | None = None) -> None:
        self.node = node
        self.lbs = dict(lbs or {})
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.out = out or Path(f"/tmp/vrrpd-client-{node.ns.name}.txt")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        repo = str(Path(__file__).resolve().parents[1])
        self.proc = self.node.ns.popen(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {repo!r}); "
             "from lab.client import main; sys.exit(main())",
             self.url, "--interval", str(self.interval), "--timeout", str(self.timeout),
             "--out", str(self.out),
             *(f"--lb={addr}={name}" for addr, name in self.lbs.items())])
        deadline = time.monotonic() + 5
        while not any(s.ok for s in self.samples()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"client: no successful request to {self.url} in 5 s")
            time.sleep(0.02)

    def samples(self) -> list[Sample]:
        return read_samples(self.out) if self.out.exists() else []

    def measure(self, fault: float, new_lb: str | None = None, wait: float = 10) -> Outage:
        """Wait (up to ``wait`` s) for a success by ``new_lb`` after ``fault``; measure.

        A request is recorded when it completes, so once that success is seen, requests sent
        before it may still be in flight (a slow success, or a failure still waiting out its
        timeouts): wait until each has had its connect and read timeouts before measuring,
        or the gap would be too long and the failures too few."""
        deadline = time.monotonic() + wait
        while True:
            samples = self.samples()
            if any(s.sent > fault and s.ok and (new_lb is None or s.lb == new_lb)
                   for s in samples):
                time.sleep(2 * self.timeout + 0.05)
                return measure(self.samples(), fault, new_lb)
            if time.monotonic() > deadline:
                return measure(samples, fault, new_lb)  # raises, naming what is missing
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=0.05)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--lb", action="append", default=[], metavar="ADDRESS=NAME",
                   help="name the LB whose address a backend reports in X-Remote-Addr")
    args = p.parse_args(argv)
    lbs = dict(item.split("=", 1) for item in args.lb)
    asyncio.run(run(args.url, args.interval, args.timeout, args.out, lbs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
