"""Operator state that survives a restart (``state_dir/admin.json``), written atomically."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

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
