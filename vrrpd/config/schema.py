"""YAML with line numbers, and a reader that turns mistakes into precise :class:`ConfigError`s.

Every error names the file, the line, the key path (``instances[0].vrid``) and what is wrong,
so a tired engineer can fix it without guessing.  The loader reads a document through
:class:`Section` (one mapping: ``take`` each known key, then ``done`` refuses the rest) and
:class:`Value` (one value with its path and line).  Checks are plain functions that return the
converted value or raise ``ValueError(reason)``; the reader adds the file, line and key path.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import yaml

from vrrpd.config.errors import ConfigError

REQUIRED: Any = object()  # ``take(..., default=REQUIRED)``: the key must be present
_MISSING: Any = object()
Check = Callable[[Any], Any]  # value -> converted value, or ValueError(reason)
NAME = re.compile(r"[A-Za-z0-9_.-]+")


# libyaml's parser when PyYAML has it (Debian's and PyPI's builds do): with the pure-Python one,
# parsing was a sixth of the start-up of a daemon with 255 instances.  Same nodes, marks, errors.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_SafeLoader):  # type: ignore[misc]
    """A SafeLoader that remembers where every mapping, sequence, key and item starts."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # id(container) -> (container, its start line, {key or index: line}); holding the
        # container keeps its id from being reused while the Source lives.
        self.lines: dict[int, tuple[Any, int, dict[Any, int]]] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=True)
        keys = {self.construct_object(k): k.start_mark.line + 1 for k, _ in node.value}
        self.lines[id(mapping)] = (mapping, node.start_mark.line + 1, keys)
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        seq: list[Any] = super().construct_sequence(node, deep=True)
        items = {i: n.start_mark.line + 1 for i, n in enumerate(node.value)}
        self.lines[id(seq)] = (seq, node.start_mark.line + 1, items)
        return seq


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_sequence)


class Source:
    """A parsed file: the data and the line of each container, key and list item."""

    def __init__(self, text: str, file: Path) -> None:
        self.file = file
        try:
            loader = _LineLoader(text)  # the reader refuses control characters at once
            try:
                self.data = loader.get_single_data()
            finally:
                loader.dispose()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(file, mark.line + 1 if mark else None, "",
                              f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
        self._lines = loader.lines

    def line(self, container: Any, key: Any = _MISSING) -> int | None:
        """The line of ``container[key]``, or where ``container`` starts when no key is given."""
        entry = self._lines.get(id(container))
        if entry is None:
            return None
        return entry[1] if key is _MISSING else entry[2].get(key)

    def root(self) -> Value:
        """The whole document (an empty file reads as an empty mapping)."""
        return Value(self, "", 1, {} if self.data is None else self.data)


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a mapping", type(None): "empty"}


def type_name(value: Any) -> str:
    """'an integer', 'a string', ... for error messages."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Value:
    """One value of the document with its key path and line."""

    src: Source
    path: str
    line: int | None
    raw: Any

    def error(self, reason: str) -> ConfigError:
        return ConfigError(self.src.file, self.line, self.path or "(top level)", reason)

    def get(self, kind: type | tuple[type, ...], check: Check | None = None) -> Any:
        """The value, refused unless it is of ``kind``; then converted by ``check``.

        Booleans are not integers here, integers are accepted as floats, and floats must be
        finite (``.nan`` or ``.inf`` is never a sensible interval).  None, where ``kind``
        allows it, means "not set" and is not passed to ``check``.
        """
        kinds = kind if isinstance(kind, tuple) else (kind,)
        value = self.raw
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and type(value) is int:
            ok, value = True, float(value)
        if not ok:
            want = " or ".join(_TYPE_NAMES[k] for k in kinds)
            raise self.error(f"must be {want}, got {type_name(value)} {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(f"must be a finite number, got {value}")
        if check is None or value is None:
            return value
        try:
            return check(value)
        except ValueError as exc:
            raise self.error(str(exc)) from None

    def items(self) -> list[Value]:
        """Each element of this list, with its own path (``vips[1]``) and line."""
        seq = self.get(list)
        return [Value(self.src, f"{self.path}[{i}]", self.src.line(seq, i), item)
                for i, item in enumerate(seq)]


class Section:
    """One mapping being read: ``take`` each known key, then ``done`` refuses the rest."""

    def __init__(self, value: Value) -> None:
        if not isinstance(value.raw, dict):
            raise value.error(f"must be a mapping, got {type_name(value.raw)}")
        self.src, self.data, self.path = value.src, value.raw, value.path
        self.line = value.line or value.src.line(value.raw)
        self._seen: set[Any] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, reason: str) -> ConfigError:
        """An error about ``key``: at its line, or at the mapping's when it is absent."""
        line = self.src.line(self.data, key) if key in self.data else self.line
        return ConfigError(self.src.file, line, self.key_path(key), reason)

    def has(self, key: str) -> bool:
        return key in self.data

    def value(self, key: str, default: Any = REQUIRED) -> Value:
        """``key`` as a :class:`Value`; an absent key reads as ``default``, or is refused."""
        self._seen.add(key)
        if key not in self.data:
            if default is REQUIRED:
                raise self.error(key, "is required" + self._misspelt(key))
            return Value(self.src, self.key_path(key), self.line, default)
        return Value(self.src, self.key_path(key), self.src.line(self.data, key),
                     self.data[key])

    def take(self, key: str, kind: type | tuple[type, ...], default: Any = REQUIRED,
             check: Check | None = None) -> Any:
        """The value of ``key``, type-checked, then converted by ``check``.

        An absent key returns ``default`` as it is: give it in converted form.
        """
        if key not in self.data and default is not REQUIRED:
            self._seen.add(key)
            return default
        return self.value(key).get(kind, check)

    def section(self, key: str) -> Section:
        return Section(self.value(key))

    def items(self, key: str, *, required: bool = True) -> list[Value]:
        """Each element of the list at ``key`` (none when it is absent and not required)."""
        return self.value(key, REQUIRED if required else []).items()

    def entries(self) -> list[tuple[str, Value]]:
        """A map of user-chosen names (``tracks:``, ``sync_groups:``): ``(name, value)``."""
        out = []
        for key in self.data:
            self._seen.add(key)
            line = self.src.line(self.data, key)
            named = Value(self.src, self.key_path(str(key)), line, key)
            out.append((named.get(str, check_name), Value(self.src, named.path, line,
                                                          self.data[key])))
        return out

    def _misspelt(self, key: str) -> str:
        """A hint when an unknown key looks like the missing ``key``."""
        unknown = [str(k) for k in self.data if k not in self._seen]
        hint = difflib.get_close_matches(key, unknown, n=1)
        line = self.src.line(self.data, hint[0]) if hint else None
        return f" (is '{hint[0]}' on line {line} misspelt?)" if hint else ""

    def only(self, known: Iterable[str]) -> None:
        """Refuse any key not in ``known``, suggesting the closest known one."""
        known = sorted(str(k) for k in known)
        for key in self.data:
            if key not in known:
                hint = difflib.get_close_matches(str(key), known, n=1)
                suffix = (f"; did you mean '{hint[0]}'?" if hint
                          else f"; known keys: {', '.join(known)}")
                raise self.error(str(key), f"unknown key{suffix}")

    def done(self) -> None:
        """Refuse any key that no ``take`` asked for."""
        self.only(self._seen)


def refuse_duplicates(pairs: Iterable[tuple[Value, Hashable]], why: str = "") -> None:
    """Refuse the second of two values whose keys (addresses, names, paths, ...) are equal."""
    seen: dict[Hashable, Value] = {}
    for value, key in pairs:
        if key in seen:
            raise value.error(f"{key} is listed twice (first at {seen[key].path}){why}")
        seen[key] = value


# ---- checks: value -> converted value, or ValueError(reason) ----------------------------


def number(x: float) -> str:
    """``x`` for a message: 3600, 0.05, 1048576 (never 1.04858e+06)."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def in_range(lo: float, hi: float) -> Check:
    def check(v: float) -> float:
        if not lo <= v <= hi:
            raise ValueError(f"{number(v)} is outside {number(lo)}..{number(hi)}")
        return v
    return check


def one_of(*choices: object) -> Check:
    def check(v: Any) -> Any:
        if v not in choices:
            raise ValueError(f"{v!r} is not one of {', '.join(map(str, choices))}")
        return v
    return check


def check_name(v: str) -> str:
    if not NAME.fullmatch(v):
        raise ValueError(f"{v!r} may only use letters, digits, '_', '.', '-'")
    return v


def absolute_path(v: str) -> Path:
    if not v.startswith("/"):
        raise ValueError(f"{v!r} must be an absolute path")
    return Path(v)


def endpoint(v: str) -> tuple[str, int]:
    """``host:port`` or ``[ipv6]:port`` -> ``(host, port)``."""
    m = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([A-Za-z0-9_.-]+):(\d+)", v)
    if not m:
        raise ValueError(f"{v!r} must be host:port (or [ipv6]:port)")
    host, port = (m[1], m[2]) if m[1] else (m[3], m[4])
    if m[1]:
        try:
            IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} is outside 1..65535")
    return host, int(port)
