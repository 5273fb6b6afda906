"""The control command registry: commands register themselves; ``help`` is generated from it.

Every command is an async function ``(daemon, args) -> dict``.  The same dict is what
``vrrpctl --json`` prints, what ``vrrpctl`` renders as text and what tests assert on
(DESIGN.md seam 7).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1

Handler = Callable[[Any, dict[str, Any]], Awaitable[dict[str, Any]]]


class CommandError(Exception):
    """A refused command; the message goes back to ``vrrpctl`` and is printed as is."""


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    usage: str
    handler: Handler
    streaming: bool = False  # `events --follow` keeps the connection open


COMMANDS: dict[str, Command] = {}


def command(name: str, summary: str, usage: str = "",
            streaming: bool = False) -> Callable[[Handler], Handler]:
    """Register ``handler`` as control command ``name``."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, summary, usage, handler, streaming)
        return handler

    return register


def help_dict() -> dict[str, Any]:
    return {"commands": [{"name": c.name, "usage": f"{c.name} {c.usage}".strip(),
                          "summary": c.summary} for c in sorted(COMMANDS.values(),
                                                                key=lambda c: c.name)]}
