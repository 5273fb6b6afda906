"""Notify hooks: run an operator's scripts on transitions, as keepalived does.

On a transition to STATE an instance (or sync group) runs, in keepalived's order:

1. ``notify_<state>`` (``notify_master``, ``_backup``, ``_fault``, ``_stop``) if configured,
   as its command line says, with no added arguments;
2. ``notify``, its command line followed by keepalived's ``TYPE NAME STATE PRIORITY`` (TYPE is
   ``INSTANCE`` or ``GROUP``).

STATE is ``MASTER``, ``BACKUP`` or ``FAULT``, and ``STOP`` when an instance stops (vrrpd
shuts down, or a reload removes it): its state machine is back in Initialize then, which hooks
never see under that name, as keepalived scripts expect STOP.  A group's ``notify`` is not
called for STOP ("stop only applies to instances", keepalived.conf(5)); its ``notify_stop`` is.
Command lines split like sh words (``shlex``), without a shell.  The environment adds
``VRRPD_TYPE``, ``VRRPD_INSTANCE``, ``VRRPD_STATE``, ``VRRPD_PREV_STATE``, ``VRRPD_VIPS``
(space separated), ``VRRPD_PRIORITY``, ``VRRPD_REASON`` and ``VRRPD_NODE``.

Hooks of one instance (or group) run one at a time, in transition order, each awaited with a
timeout and killed with its process group when it overruns.  They run on their own task, so a
slow hook never delays an advert or a takeover; failures are logged.  While hooks run, later
transitions coalesce: only the latest one's hooks wait, so a flapping instance holds at most
one running and one pending transition, and the hooks always end up told the current state
(the skipped transitions are counted and logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
from collections.abc import Mapping

from vrrpd.config.model import Config
from vrrpd.daemon.logs import RateLimitedLog
from vrrpd.proto.events import State

log = logging.getLogger("vrrpd.notify")

HOOK_TIMEOUT = 30.0
STOP = "STOP"


def hook_state(state: str) -> str:
    """The state's name for hooks: Initialize is reached only by stopping."""
    return STOP if state == State.INITIALIZE.value else state


class HookRunner:
    """One ordered queue of hook invocations for one instance or sync group."""

    def __init__(self, notify: str | None, states: Mapping[str, str], kind: str, name: str,
                 timeout: float = HOOK_TIMEOUT) -> None:
        self.config = (notify, dict(states), kind, name)  # what it was built from
        self.notify = shlex.split(notify) if notify else None
        self.states = {state: shlex.split(cmd) for state, cmd in states.items()}
        self.kind = kind
        self.name = name
        self.timeout = timeout
        self.coalesced = 0  # transitions replaced by a later one before their hooks ran
        self._pending: list[tuple[list[str], dict[str, str]]] | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._log = RateLimitedLog(log)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, state: str, prev_state: str, priority: int, vips: list[str], reason: str,
               node: str) -> None:
        state = hook_state(state)  # VRRPD_PREV_STATE stays INIT when an instance starts
        env = {"VRRPD_TYPE": self.kind, "VRRPD_INSTANCE": self.name, "VRRPD_STATE": state,
               "VRRPD_PREV_STATE": prev_state, "VRRPD_PRIORITY": str(priority),
               "VRRPD_VIPS": " ".join(vips), "VRRPD_REASON": reason, "VRRPD_NODE": node}
        batch = []
        if state in self.states:
            batch.append((self.states[state], env))
        if self.notify and not (state == STOP and self.kind == "GROUP"):
            batch.append(([*self.notify, self.kind, self.name, state, str(priority)], env))
        if not batch:
            return
        if self._pending is not None:
            self.coalesced += 1
            self._log.warning("coalesced", "notify hooks of %s: transitions come faster than "
                              "the hooks run; skipped the one to %s, they get the latest "
                              "(%d skipped so far)", self.name,
                              self._pending[0][1]["VRRPD_STATE"], self.coalesced)
        self._pending = batch
        self._idle.clear()
        self._wake.set()

    async def idle(self) -> None:
        await self._idle.wait()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending is not None:
                batch, self._pending = self._pending, None
                for argv, env in batch:
                    try:
                        await self._invoke(argv, env)
                    except Exception:  # a hook must never stop the ones after it
                        log.exception("notify hook %s failed", shlex.join(argv))
            self._idle.set()

    async def _invoke(self, argv: list[str], env: dict[str, str]) -> None:
        what = f"notify hook {shlex.join(argv)}"
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, env={**os.environ, **env}, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True)
        except OSError as exc:
            log.error("%s: cannot run it: %s (check the path and that it is executable)",
                      what, exc.strerror)
            return
        try:
            async with asyncio.timeout(self.timeout):  # not wait_for: vrrpd.configsync.transport
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


class NotifyHooks:
    """The hook runners of one configuration: ``INSTANCE`` hooks by instance name, ``GROUP``
    hooks by ``group:NAME``.  A group's hook runs when its last member reaches the state."""

    def __init__(self, runners: dict[str, HookRunner]) -> None:
        self.runners = runners

    @staticmethod
    def wanted(config: Config) -> dict[str, tuple[str | None, dict[str, str], str, str]]:
        """key -> (notify, per-state hooks, TYPE, name) for every hook ``config`` asks for."""
        hooks = {cfg.name: (cfg.notify, cfg.notify_states, "INSTANCE", cfg.name)
                 for cfg in config.instances if cfg.notify or cfg.notify_states}
        hooks.update({f"group:{g.name}": (g.notify, g.notify_states, "GROUP", g.name)
                      for g in config.sync_groups if g.notify or g.notify_states})
        return hooks

    @classmethod
    def build(cls, config: Config, keep: NotifyHooks | None = None) -> NotifyHooks:
        """The hooks of ``config``; runners of ``keep`` whose hooks did not change carry on."""
        kept = keep.runners if keep is not None else {}
        runners = {}
        for key, wanted in cls.wanted(config).items():
            old = kept.get(key)
            runners[key] = old if old is not None and old.config == wanted else HookRunner(*wanted)
        return cls(runners)

    def instance_changed(self, name: str, state: str, prev_state: str, priority: int,
                         vips: list[str], reason: str, node: str) -> None:
        runner = self.runners.get(name)
        if runner is not None:
            runner.submit(state, prev_state, priority, vips, reason, node)

    def group_reached(self, group: str, state: str, prev_state: str, priority: int,
                      vips: list[str], reason: str, node: str) -> None:
        runner = self.runners.get(f"group:{group}")
        if runner is not None:
            runner.submit(state, prev_state, priority, vips, reason, node)

    async def close_except(self, keep: NotifyHooks, wait: float) -> None:
        """Close the runners ``keep`` does not use, after their queued hooks (up to ``wait``
        seconds)."""
        kept = {id(r) for r in keep.runners.values()}
        await self._close([r for r in self.runners.values() if id(r) not in kept], wait)

    async def close(self, wait: float) -> None:
        await self._close(list(self.runners.values()), wait)

    @staticmethod
    async def _close(runners: list[HookRunner], wait: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await asyncio.gather(*(r.idle() for r in runners))
        for runner in runners:
            await runner.close()
