"""YAML with line numbers, and a reader that turns mistakes into precise :class:`ConfigError`s.

Every error names the file, the line, the key path (``instances[0].vrid``) and what is wrong,
so a tired engineer can fix it without guessing.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
REQUIRED: Any = object()


class ConfigError(Exception):
    """A refused configuration: ``file:line: key: reason``."""

    def __init__(self, file: Path, line: int | None, key: str, reason: str) -> None:
        self.file, self.line, self.key, self.reason = file, line, key, reason
        where = f"{file}:{line}" if line else str(file)
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping key and sequence item."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[int, dict[Any, int]] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=True)
        self.lines[id(mapping)] = {self.construct_object(k): k.start_mark.line + 1
                                   for k, _ in node.value}
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        seq = super().construct_sequence(node, deep=True)
        self.lines[id(seq)] = {i: n.start_mark.line + 1 for i, n in enumerate(node.value)}
        return seq


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_sequence)


class Source:
    """A parsed file: the data and where each key came from."""

    def __init__(self, text: str, file: Path) -> None:
        self.file = file
        loader = _LineLoader(text)
        try:
            self.data = loader.get_single_data()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(file, mark.line + 1 if mark else None, "",
                              f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
        finally:
            loader.dispose()
        self.lines = loader.lines
        self._keep = [self.data]  # the id()s in self.lines stay valid while data lives

    def line(self, container: Any, key: Any) -> int | None:
        return self.lines.get(id(container), {}).get(key)

    def error(self, path: str, reason: str, container: Any = None, key: Any = None
              ) -> ConfigError:
        return ConfigError(self.file, self.line(container, key), path, reason)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping", type(None): "empty"}.get(type(value),
                                                                      type(value).__name__)


class Section:
    """One mapping being read: ``take`` each known key, then ``done`` refuses the rest."""

    def __init__(self, src: Source, data: Any, path: str, parent: Any = None,
                 key: Any = None) -> None:
        if not isinstance(data, dict):
            raise src.error(path or "(top level)", f"must be a mapping, got {_type_name(data)}",
                            parent, key)
        self.src, self.data, self.path = src, data, path
        self._seen: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, reason: str) -> ConfigError:
        line = self.src.line(self.data, key)
        return ConfigError(self.src.file, line, self.key_path(key), reason)

    def has(self, key: str) -> bool:
        return key in self.data

    def take(self, key: str, kind: type[T] | tuple[type, ...], default: Any = REQUIRED,
             check: Callable[[Any], str | None] | None = None) -> Any:
        """The value of ``key`` (or ``default``), type-checked, with ``check`` -> reason."""
        self._seen.add(key)
        if key not in self.data:
            if default is REQUIRED:
                raise ConfigError(self.src.file, None, self.key_path(key), "is required")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            want = " or ".join(_type_name(k()) if k is not type(None) else "empty"
                               for k in kinds)
            raise self.error(key, f"must be {want}, got {_type_name(value)} {value!r}")
        if check is not None:
            reason = check(value)
            if reason:
                raise self.error(key, reason)
        return value

    def section(self, key: str) -> Section:
        self._seen.add(key)
        return Section(self.src, self.data.get(key), self.key_path(key), self.data, key)

    def items(self, key: str) -> list[tuple[str, Any]]:
        """``(path, item)`` for each element of the list at ``key`` (empty when absent)."""
        values = self.take(key, list, [])
        return [(f"{self.key_path(key)}[{i}]", v) for i, v in enumerate(values)]

    def item_line(self, key: str, index: int) -> int | None:
        return self.src.line(self.data.get(key), index)

    def done(self) -> None:
        for key in self.data:
            if key not in self._seen:
                hint = difflib.get_close_matches(str(key), sorted(self._seen), n=1)
                suffix = f"; did you mean '{hint[0]}'?" if hint else (
                    f"; known keys: {', '.join(sorted(self._seen))}")
                raise self.error(key, f"unknown key{suffix}")


def in_range(lo: float, hi: float) -> Callable[[Any], str | None]:
    return lambda v: None if lo <= v <= hi else f"{v} is outside {lo:g}..{hi:g}"
