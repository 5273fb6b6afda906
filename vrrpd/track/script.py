"""``script`` tracker: ``/bin/sh -c command`` as an unprivileged user, exit 0 = success.

The only tracker type that forks.  The child runs in its own session (so its process group is
its pid); when the check overruns its timeout the whole group gets SIGKILL, grandchildren too.
stdout and stderr are merged and read to the end, but only the first ``max_output`` bytes are
kept, so a flooding script neither blocks on a full pipe nor grows the daemon's memory.

Options (converted by the config loader): ``command`` (str), ``user`` (str, default nobody),
``max_output`` (int, default 4096).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import signal

from vrrpd.config.model import ScriptOptions, TrackConfig, TrackType, options_of
from vrrpd.track.base import StatusCallback, Tracker
from vrrpd.track.status import CheckResult

SCRIPT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
EXIT_MEANING = {126: "command not executable", 127: "command not found"}  # POSIX sh


class ScriptTracker(Tracker):
    """Runs the command every interval; ``last_output`` keeps the (bounded) output."""

    kind = TrackType.SCRIPT

    def __init__(self, config: TrackConfig, on_status: StatusCallback) -> None:
        super().__init__(config, on_status)
        opts = options_of(config, ScriptOptions)
        self.command, self.user, self.max_output = opts.command, opts.user, opts.max_output
        try:
            account = pwd.getpwnam(self.user)
        except KeyError:
            raise ValueError(f"tracker {config.name}: unknown user {self.user!r}") from None
        # Dropping privileges needs them; a daemon already running as that user just runs it.
        self._credentials: dict[str, object] = (
            {}
            if account.pw_uid == os.geteuid()
            else {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        )
        self.last_output = ""

    async def check(self) -> CheckResult:
        self.step = f"script {self.command!r}, process group killed"
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            self.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            cwd="/",
            env=SCRIPT_ENV,
            **self._credentials,  # type: ignore[arg-type]
        )
        try:
            assert proc.stdout is not None
            output = await read_bounded(proc.stdout, self.max_output)
            code = await proc.wait()
        except BaseException:  # timeout (cancellation) included: leave nothing running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        self.last_output = output.decode("utf-8", errors="replace")
        return CheckResult(code == 0, self._describe(code))

    def _describe(self, code: int) -> str:
        if code < 0:
            outcome = f"killed by {signal.Signals(-code).name}"
        else:
            outcome = f"exit {code}" + (f", {EXIT_MEANING[code]}" if code in EXIT_MEANING else "")
        lines = self.last_output.strip().splitlines()
        return f"{outcome}: {lines[-1][:200]}" if lines else outcome


async def read_bounded(stream: asyncio.StreamReader, keep: int) -> bytes:
    """Read ``stream`` to EOF, keeping the first ``keep`` bytes and discarding the rest."""
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
    return bytes(kept)
