"""Operator state that survives a restart (``state_dir/admin.json``), written atomically."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from vrrpd.proto.events import AdminChanged, AdminMode

log = logging.getLogger("vrrpd.persist")


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StateFile:
    """A small JSON document of operator decisions (demote, promote, maintenance)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("ignoring unreadable state file %s (%s); operator modes reset to normal",
                      self.path, exc)
            return {}
        return doc if isinstance(doc, dict) else {}

    def save(self, doc: dict[str, Any]) -> None:
        try:
            write_atomic(self.path, json.dumps(doc, indent=1, sort_keys=True).encode())
        except OSError as exc:
            log.error("cannot save operator state to %s: %s; it will not survive a restart",
                      self.path, exc)


class OperatorModes:
    """The operator's modes per instance (demote, promote, maintenance), persisted in ``path``
    so that a restart keeps them."""

    def __init__(self, path: Path, drivers: dict[str, Any]) -> None:
        self.file = StateFile(path)
        self.drivers = drivers

    def restore(self) -> None:
        for name, mode in self.file.load().get("instances", {}).items():
            if name in self.drivers and mode in AdminMode._value2member_map_:
                log.warning("[%s] restoring operator mode '%s' from %s; `vrrpctl resume %s` "
                            "returns to normal", name, mode, self.file.path, name)
                self.drivers[name].post(AdminChanged(AdminMode(mode)))

    def set(self, names: list[str], mode: AdminMode) -> None:
        for name in names:
            self.drivers[name].post(AdminChanged(mode))
        self.file.save({"instances": {n: d.router.admin.value for n, d in self.drivers.items()
                                      if d.router.admin is not AdminMode.NORMAL}})
