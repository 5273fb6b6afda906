"""The one exception a refused configuration raises."""

from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    """A refused configuration, printed as ``file:line: key.path: reason``.

    ``line`` is None only when the file has no line to point at (an empty file, a file that is
    not UTF-8); ``key`` is empty for errors about the whole document (YAML syntax).
    """

    def __init__(self, file: Path, line: int | None, key: str, reason: str) -> None:
        self.file, self.line, self.key, self.reason = file, line, key, reason
        where = f"{file}:{line}" if line else str(file)
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")
