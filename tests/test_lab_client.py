"""lab/client.py, the lab's HTTP prober: why a request failed, and its output lines."""

from __future__ import annotations

import asyncio
import errno

import pytest

from lab.client import Sample, failure, parse_samples


@pytest.mark.parametrize(("exc", "connected", "why"), [
    (TimeoutError(), False, "connect-timeout"),
    (TimeoutError(), True, "read-timeout"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), False, "refused"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), True, "reset"),
    (asyncio.IncompleteReadError(b"HTTP/1.1", None), True, "closed"),
    (OSError(errno.EHOSTUNREACH, "no route"), False, "EHOSTUNREACH"),
    (OSError("no errno"), False, "OSError"),
])
def test_failure_names_why(exc: BaseException, connected: bool, why: str) -> None:
    assert failure(exc, connected) == why


def test_lines_round_trip() -> None:
    samples = [Sample(12.5, True, "lb2", 1.25, "pacs1", "ok", 40000),
               Sample(12.25, False, None, 500.5, None, "read-timeout", 39998),
               Sample(12.75, False, None, 0.5, None, "refused", None)]
    assert parse_samples("".join(s.line() for s in samples)) == sorted(
        samples, key=lambda s: s.sent)
