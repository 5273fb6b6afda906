"""What a pushed HAProxy configuration may not add: directives that run code on the receiver.

A pinned peer can push any configuration, and the receiver applies it as root.  HAProxy 2.6
(configuration.txt) runs code, or loads it, for these directives:

* ``program`` sections: the master process starts their ``command`` (master-worker mode);
* ``external-check`` (global), ``external-check command`` / ``path`` and
  ``option external-check`` (proxies): a program run for each health check;
* ``lua-load``, ``lua-load-per-thread``, ``lua-prepend-path``: Lua code and where it is found;
* ``ssl-engine``, ``ssl-provider``, ``ssl-provider-path``: OpenSSL loads a shared object;
* ``insecure-fork-wanted``, ``insecure-setuid-wanted``: lift HAProxy's own guard against
  starting programs;
* ``setenv`` / ``presetenv`` of a variable that makes a program load code: the dynamic loader
  (``LD_*``), OpenSSL (``OPENSSL_*``), Lua (``LUA_*``), ``PATH``, ``GCONV_PATH``... HAProxy's
  master re-executes itself with its environment on every reload, and passes it to every
  program above;
* a keyword that is not literal text (``"${X}" ...`` after ``setenv X lua-load``): HAProxy
  expands environment variables before it reads the keyword, so what it is cannot be checked.

By default (:func:`new_code`) the receiver refuses a file that adds any such directive, unless
the same directive (same words, same section for ``program`` lines) is already in its live
file of that name: a pair that already uses Lua keeps syncing.  ``config_sync.allow_code: true``
accepts everything.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CODE_KEYWORDS = frozenset({
    "external-check", "lua-load", "lua-load-per-thread", "lua-prepend-path", "ssl-engine",
    "ssl-provider", "ssl-provider-path", "insecure-fork-wanted", "insecure-setuid-wanted"})
ENV_KEYWORDS = frozenset({"setenv", "presetenv"})
CODE_ENV = re.compile(r"LD_\w*|OPENSSL_\w*|LUA_\w*|PYTHON\w*|PERL\w*|PATH|GCONV_PATH|LOCPATH|"
                      r"NLSPATH|BASH_ENV|ENV|SHELLOPTS|IFS")
# Lines that open a section (HAProxy 2.6 section keywords).
SECTIONS = frozenset({"global", "defaults", "frontend", "backend", "listen", "peers",
                      "resolvers", "userlist", "program", "mailers", "http-errors", "ring",
                      "cache", "fcgi-app"})


@dataclass(frozen=True)
class CodeLine:
    """One directive that runs code: where it is and what it says, normalised."""

    file: str
    line: int
    directive: str  # words joined by one space; "program NAME: command ..." inside a program

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.directive}"


def _words(raw: str) -> list[str]:
    """HAProxy's words of one line: quotes and backslashes resolved, comment dropped."""
    try:
        lexer = shlex.shlex(raw, posix=True, punctuation_chars=False)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        return list(lexer)
    except ValueError:  # unbalanced quotes: HAProxy refuses the file anyway
        return raw.split("#", 1)[0].split()


def _runs_code(words: list[str], raw_keyword: str, section: str) -> bool:
    keyword = words[0]
    if "$" in raw_keyword:
        return True  # the keyword comes from the environment
    if section.startswith("program ") or keyword == "program":
        return True
    if keyword in CODE_KEYWORDS:
        return True
    if keyword == "option" and len(words) > 1 and words[1] == "external-check":
        return True
    return keyword in ENV_KEYWORDS and len(words) > 1 and CODE_ENV.fullmatch(words[1]) is not None


def code_lines(name: str, text: str) -> list[CodeLine]:
    """Every directive of ``text`` (file ``name``) that runs or loads code."""
    out: list[CodeLine] = []
    section = ""
    for number, raw in enumerate(text.splitlines(), 1):
        words = _words(raw)
        if not words:
            continue
        if words[0] in SECTIONS:
            section = " ".join(words[:2])
        if _runs_code(words, raw.split()[0], section):
            directive = " ".join(words)
            if section.startswith("program ") and words[0] != "program":
                directive = f"{section}: {directive}"
            out.append(CodeLine(name, number, directive))
    return out


def new_code(pushed: Iterable[tuple[str, bytes]], live: Mapping[str, bytes]) -> list[CodeLine]:
    """Code directives of the pushed files that the live file of the same name lacks."""
    added: list[CodeLine] = []
    for name, data in pushed:
        have = {c.directive for c in code_lines(name, live.get(name, b"").decode(
            errors="replace"))}
        added += [c for c in code_lines(name, data.decode(errors="replace"))
                  if c.directive not in have]
    return added


def refusal(added: list[CodeLine]) -> str:
    """The error the pusher sees (``vrrpctl config-sync push`` / ``sync status``)."""
    shown = "; ".join(map(str, added[:5])) + (f"; and {len(added) - 5} more"
                                              if len(added) > 5 else "")
    return (f"refused: the push adds HAProxy directives that run code on this node, which its "
            f"live files do not have: {shown}. Add them on this node by hand first, or set "
            "config_sync.allow_code: true here to accept such pushes")
