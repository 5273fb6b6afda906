"""Apply a received bundle on this node, all or nothing.

    stage (temp dir next to each target) -> validate ({path} = the staged *first* listed file)
    -> bind check (every ``bind`` address of the staged first file is bindable here)
    -> back up the live files (``NAME.vrrpd-backup``) -> ``os.replace`` each staged file
    -> reload -> confirm (HAProxy runs the new files: :mod:`vrrpd.configsync.confirm`)
    -> on any failure after the rename: restore the backups and reload again.

A reader of a target file sees the old or the new content, never half of one.  Only the first
listed file is validated; the others are staged in a directory beside their target under their
own name, so a main file that ``include``s siblings by relative path sees the staged ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import shlex
import shutil
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vrrpd.configsync.bundle import Bundle
from vrrpd.configsync.confirm import Confirmer, ConfirmError

log = logging.getLogger("vrrpd.configsync")

BACKUP_SUFFIX = ".vrrpd-backup"
COMMAND_TIMEOUT = 30.0
OUTPUT_LIMIT = 4000  # characters of validator/reload output kept in a result


class ApplyError(Exception):
    """The bundle was refused or rolled back; the live files are the previous ones."""


@dataclass
class Applier:
    """Stages, checks and installs bundles for one node's listed files."""

    files: tuple[Path, ...]
    validate: str
    reload: str
    sysctl_root: Path = Path("/proc/sys")
    confirm: Confirmer | None = None  # after a reload: does HAProxy run the new files?
    confirmed: str = ""  # what the last confirmed reload reported
    _staged: list[Path] = field(default_factory=list)

    async def apply(self, bundle: Bundle) -> str:
        """Install ``bundle``; return the validator's output or raise :class:`ApplyError`.

        The file work (staging with fsync, backups, renames, clean-up) runs in a worker
        thread: a slow disk must never hold up the event loop, and with it the adverts.
        """
        by_name = dict(bundle.files)
        targets = list(self.files)
        stage_dirs: dict[Path, Path] = {}
        try:
            staged = await asyncio.to_thread(self._stage_all, targets, by_name, stage_dirs)
            main = staged[self.files[0]]
            output = await self._validate(main)
            text = await asyncio.to_thread(main.read_text, errors="replace")
            bind_problems = check_binds(parse_binds(text), self.sysctl_root)
            if bind_problems:
                raise ApplyError("bind check failed: " + "; ".join(bind_problems))
            backups = await asyncio.to_thread(self._backup, targets)
            await asyncio.to_thread(self._install, staged, backups)
            await self._reload_or_roll_back(backups)
            return output
        except OSError as exc:  # staging: full disk, permissions...
            raise ApplyError(f"staging failed: {exc}; nothing changed") from None
        finally:
            await asyncio.to_thread(_remove_dirs, list(stage_dirs.values()))

    def _stage_all(self, targets: list[Path], by_name: dict[str, bytes],
                   dirs: dict[Path, Path]) -> dict[Path, Path]:
        for target in targets:
            refuse_symlink(target)
        return {t: self._stage(t, by_name[t.name], dirs) for t in targets}

    def _install(self, staged: dict[Path, Path], backups: dict[Path, Path | None]) -> None:
        try:
            for target, path in staged.items():
                os.replace(path, target)
        except OSError as exc:
            self._restore(backups)
            raise ApplyError(f"installing the files failed ({exc}); previous files "
                             "restored") from None

    def _stage(self, target: Path, data: bytes, dirs: dict[Path, Path]) -> Path:
        parent = target.parent
        if parent not in dirs:
            dirs[parent] = Path(tempfile.mkdtemp(dir=parent, prefix=".vrrpd-sync-"))
        path = dirs[parent] / target.name
        with open(path, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileNotFoundError):
            shutil.copymode(target, path)
        return path

    async def _validate(self, main: Path) -> str:
        cmd = self.validate.replace("{path}", shlex.quote(str(main)))
        code, output = await run_command(cmd)
        if code != 0:
            raise ApplyError(f"validation failed (`{self.validate}` exit {code}): "
                             f"{output or '(no output; haproxy -q hides the reason)'}")
        return output

    def _backup(self, targets: Iterable[Path]) -> dict[Path, Path | None]:
        """Copy each live file to ``NAME.vrrpd-backup`` (None: there was no live file)."""
        backups: dict[Path, Path | None] = {}
        for target in targets:
            backup = target.with_name(target.name + BACKUP_SUFFIX)
            try:
                copy_nofollow(target, backup)
                backups[target] = backup
            except FileNotFoundError:
                backups[target] = None
        return backups

    def _restore(self, backups: dict[Path, Path | None]) -> None:
        for target, backup in backups.items():
            if backup is None:
                target.unlink(missing_ok=True)
            else:
                copy_nofollow(backup, target)

    async def _reload_or_roll_back(self, backups: dict[Path, Path | None]) -> None:
        """Reload (and confirm); on failure restore the backups, reload and confirm again."""
        failure = await self._reload()
        if failure is None:
            return
        log.error("config sync: %s; restoring the previous files", failure)
        try:
            await asyncio.to_thread(self._restore, backups)
        except OSError as exc:
            raise ApplyError(f"{failure}; and restoring the backups failed: {exc}") from None
        again = await self._reload()
        after = "reloaded the previous files" if again is None else \
            f"and with the previous files too: {again}"
        raise ApplyError(f"{failure}; rolled back, {after}")

    async def _reload(self) -> str | None:
        """Run the reload command and confirm it; None when HAProxy runs the files, else why
        not."""
        self.confirmed = ""
        before = await self.confirm.before() if self.confirm is not None else None
        code, output = await run_command(self.reload)
        if code != 0:
            return f"reload failed (`{self.reload}` exit {code}): {output}"
        if self.confirm is None:
            return None
        try:
            self.confirmed = await self.confirm.confirm(before)
            log.info("config sync: %s", self.confirmed)
        except ConfirmError as exc:
            return f"reload not confirmed (`{self.reload}` exit 0): {exc}"
        return None


def _remove_dirs(dirs: list[Path]) -> None:
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def copy_nofollow(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` (content, mode, times) without following a symlink at either.

    ``src`` is opened with O_NOFOLLOW (a symlink there is refused with ELOOP); the copy is
    written to a new file made with O_EXCL in ``dst``'s directory and renamed over ``dst``, so
    a symlink planted at ``dst`` (say ``haproxy.cfg.vrrpd-backup`` -> ``/etc/shadow``) is
    replaced, never written through.  A reader of ``dst`` sees the old or the new content.
    """
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        data = f.read()
    tmp_fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
    try:
        with os.fdopen(tmp_fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), st.st_mode & 0o7777)
            os.fsync(out.fileno())
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def refuse_symlink(target: Path) -> None:
    """A target that is (or lies under) a symlink could point anywhere: refuse it."""
    if target.is_symlink() or os.path.realpath(target) != str(target):
        raise ApplyError(f"refused path {target}: it is or goes through a symlink")
    if not target.parent.is_dir():
        raise ApplyError(f"refused path {target}: directory {target.parent} does not exist")


async def run_command(cmd: str, timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
    """Run a shell command; (exit status, stdout+stderr trimmed).  Timeout counts as 124."""
    proc = await asyncio.create_subprocess_shell(
        cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        async with asyncio.timeout(timeout):  # not wait_for: see vrrpd.configsync.transport
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, f"timed out after {timeout:g}s"
    text = out.decode(errors="replace").strip()
    return proc.returncode or 0, text[-OUTPUT_LIMIT:]


# ---- bind check -------------------------------------------------------------------------

@dataclass(frozen=True)
class Bind:
    """One address of a HAProxy ``bind`` line."""

    line: int
    address: str  # host part as written (may be empty or "*")
    transparent: bool


def parse_binds(text: str) -> list[Bind]:
    """The IP ``bind`` addresses of a HAProxy configuration (unix/abns/fd sockets skipped)."""
    binds = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if len(words) < 2 or words[0] != "bind":
            continue
        transparent = "transparent" in words[2:]
        for addr in words[1].split(","):
            for prefix in ("ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@", "udp@", "quic4@",
                           "quic6@"):
                addr = addr.removeprefix(prefix)
            if addr.startswith(("/", "unix@", "abns@", "fd@", "sockpair@", "uxst@")):
                continue
            host = addr.rsplit(":", 1)[0] if ":" in addr else addr
            binds.append(Bind(number, host.strip("[]"), transparent))
    return binds


def check_binds(binds: Iterable[Bind], sysctl_root: Path = Path("/proc/sys")) -> list[str]:
    """Problems with binds this node could not open (empty list: all bindable).

    Each address is tried with a real ``bind()`` to port 0, so the kernel answers with its own
    view (local addresses, ``net.ipv4.ip_nonlocal_bind``); ``transparent`` binds are exempt.
    """
    problems = []
    for b in binds:
        if b.address in ("", "*") or b.transparent:
            continue
        try:
            ip = ipaddress.ip_address(b.address)
        except ValueError:
            problems.append(f"line {b.line}: cannot check bind address {b.address!r} "
                            "(use an IP address)")
            continue
        if ip.is_unspecified:
            continue
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((str(ip), 0))
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:
                    problems.append(f"line {b.line}: bind {ip}: {exc.strerror}")
                    continue
                key = f"net/ipv{ip.version}/ip_nonlocal_bind"
                try:
                    value = (sysctl_root / key).read_text().strip()
                except OSError:
                    value = "?"
                problems.append(f"line {b.line}: {ip} is not a local address and "
                                f"{key.replace('/', '.')} = {value}; set it to 1 or add "
                                "`transparent` to the bind line")
    return problems


def read_local(files: Iterable[Path], max_file_size: int) -> tuple[tuple[str, bytes], ...]:
    """``(name, content)`` of the live listed files (a missing one reads as empty), each
    checked against the limit."""
    out = []
    for path in files:
        refuse_symlink(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        if len(data) > max_file_size:
            raise ApplyError(f"{path}: {len(data)} bytes is over max_file_size "
                             f"({max_file_size})")
        out.append((path.name, data))
    return tuple(out)
