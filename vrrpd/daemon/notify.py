"""Notify hooks: run an operator's script on every transition, keepalived-compatibly.

Arguments are keepalived's ``TYPE NAME STATE PRIORITY`` (TYPE is ``INSTANCE`` or ``GROUP``);
the environment adds ``VRRPD_INSTANCE``, ``VRRPD_STATE``, ``VRRPD_PREV_STATE``, ``VRRPD_VIPS``
(space separated), ``VRRPD_PRIORITY``, ``VRRPD_REASON`` and ``VRRPD_NODE``.

Hooks of one instance (or group) run one at a time, in transition order, each awaited with a
timeout and killed with its process group when it overruns.  They run on their own task, so a
slow hook never delays an advert or a takeover; failures are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

log = logging.getLogger("vrrpd.notify")

HOOK_TIMEOUT = 30.0


class HookRunner:
    """One ordered queue of hook invocations for one instance or sync group."""

    def __init__(self, script: str, kind: str, name: str, timeout: float = HOOK_TIMEOUT
                 ) -> None:
        self.script = script
        self.kind = kind
        self.name = name
        self.timeout = timeout
        self._queue: asyncio.Queue[tuple[list[str], dict[str, str]]] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, state: str, prev_state: str, priority: int, vips: list[str], reason: str,
               node: str) -> None:
        args = [self.kind, self.name, state, str(priority)]
        env = {"VRRPD_TYPE": self.kind, "VRRPD_INSTANCE": self.name, "VRRPD_STATE": state,
               "VRRPD_PREV_STATE": prev_state, "VRRPD_PRIORITY": str(priority),
               "VRRPD_VIPS": " ".join(vips), "VRRPD_REASON": reason, "VRRPD_NODE": node}
        self._queue.put_nowait((args, env))

    async def idle(self) -> None:
        await self._queue.join()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            args, env = await self._queue.get()
            try:
                await self._invoke(args, env)
            finally:
                self._queue.task_done()

    async def _invoke(self, args: list[str], env: dict[str, str]) -> None:
        what = f"notify hook {self.script} {' '.join(args)}"
        try:
            proc = await asyncio.create_subprocess_exec(
                self.script, *args, env={**os.environ, **env}, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True)
        except OSError as exc:
            log.error("%s: cannot run it: %s (check the path and that it is executable)",
                      what, exc.strerror)
            return
        try:
            async with asyncio.timeout(self.timeout):  # not wait_for: vrrpd.sync.transport
                out, _ = await proc.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            log.error("%s: killed after %gs; hooks must finish quickly", what, self.timeout)
            return
        text = out[:2000].decode(errors="replace").strip()
        if proc.returncode:
            log.error("%s: exit status %d%s", what, proc.returncode,
                      f": {text}" if text else "")
        else:
            log.info("%s: ok%s", what, f": {text}" if text else "")
