"""The control command registry: commands register themselves with their arguments; the
server dispatches from it, and ``vrrpctl``'s subcommands, its help and ``help`` are generated
from it.

Every command is an async function ``(daemon, args) -> dict``.  The same dict is what
``vrrpctl --json`` prints, what ``vrrpctl`` renders as text and what tests assert on
(DESIGN.md seam 7).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 1

Handler = Callable[[Any, dict[str, Any]], Awaitable[dict[str, Any]]]

DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class CommandError(Exception):
    """A refused command; the message goes back to ``vrrpctl`` and is printed as is."""


def duration(text: str) -> float:
    """``"10m"`` -> 600.0 (s, m, h, d; a bare number is seconds)."""
    m = DURATION.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 10m, 2h, 1d")
    return float(m[1]) * UNITS[m[2]]


@dataclass(frozen=True)
class Arg:
    """One argument of a command, as ``vrrpctl`` parses it: ``flags`` and ``options`` go to
    ``argparse.add_argument``; the parsed value travels in the request's ``args`` under the
    argument's name."""

    flags: tuple[str, ...]
    help: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def usage(self) -> str:
        """``[INSTANCE]``, ``on|off``, ``[--since AGE]``, ``[--force]``."""
        if not self.flags[0].startswith("-"):
            word = "|".join(self.options["choices"]) if "choices" in self.options \
                else self.flags[0].upper()
            return f"[{word}]" if self.options.get("nargs") == "?" else word
        if self.options.get("action") == "store_true":
            return f"[{self.flags[0]}]"
        return f"[{self.flags[0]} {self.options.get('metavar', 'VALUE')}]"


INSTANCE = Arg(("instance",), "the instance (may be left out when there is only one)",
               {"nargs": "?"})
ALL = Arg(("--all",), "every instance", {"action": "store_true"})
FORCE = Arg(("--force",), "even if no peer takes over", {"action": "store_true"})


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    args: tuple[Arg, ...]
    handler: Handler
    streaming: bool = False  # `events --follow` keeps the connection open
    # seconds the answer may take beyond the client's usual wait (an anycast drain)
    waits: float = 0.0

    @property
    def usage(self) -> str:
        return " ".join([self.name, *(a.usage for a in self.args)])


COMMANDS: dict[str, Command] = {}


def command(name: str, summary: str, *args: Arg, streaming: bool = False,
            waits: float = 0.0) -> Callable[[Handler], Handler]:
    """Register ``handler`` as control command ``name`` taking ``args``."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, summary, args, handler, streaming, waits)
        return handler

    return register


def help_dict() -> dict[str, Any]:
    return {"commands": [{"name": c.name, "usage": c.usage, "summary": c.summary}
                         for c in sorted(COMMANDS.values(), key=lambda c: c.name)]}
