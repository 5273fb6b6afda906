"""keepalived.conf -> a tree of :class:`Statement`\\ s, each knowing its file and line.

The syntax is keepalived.conf(5)'s: a statement is a keyword and its arguments on one line;
``{`` opens its block (on the same line or alone on the next), ``}`` closes it; ``#`` and ``!``
start a comment anywhere outside quotes; ``"..."`` and ``'...'`` quote (the quotes go, the
spaces stay); a trailing ``\\`` continues the line.  Beyond the words, the preprocessing
keepalived does before it parses:

* ``include PATTERN`` (and ``includer``/``includem``/``includew``/``includeb``/``includea``):
  the lines of every matching file, spliced in place, at any depth.  Relative patterns are
  relative to the including file's directory; ``*?[]`` wildcards and ``{a,b}`` braces expand.
* ``@ID line`` / ``@^ID line``: the line counts only when keepalived runs with (without)
  ``-i ID`` (:data:`ParseOptions.config_id`, keepalived's default: the host name).
* ``$NAME=value`` defines a parameter; ``$NAME`` / ``${NAME}`` in later lines is replaced.

Parsing is not meaning: this module knows no keyword but ``include`` and the preprocessor's;
:mod:`vrrpd.keepalived.mapper` decides what each statement means.
"""

from __future__ import annotations

import glob
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

INCLUDE_KEYWORDS = ("include", "includer", "includem", "includew", "includeb", "includea")
MAX_INCLUDE_DEPTH = 32  # keepalived's own limit is lower; a deeper chain is a loop
_PARAM = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
            "v": "\v"}


class ParseError(Exception):
    """keepalived.conf cannot be read: ``file:line: reason``."""

    def __init__(self, where: Where | None, reason: str) -> None:
        super().__init__(f"{where}: {reason}" if where else reason)
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class Where:
    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Statement:
    """``keyword arg...`` and, when a ``{`` followed it, its block of statements."""

    keyword: str
    args: list[str]
    where: Where
    block: list[Statement] | None = None

    @property
    def children(self) -> list[Statement]:
        return [] if self.block is None else self.block

    def words(self) -> list[str]:
        """Keyword and arguments: an entry of a list block (``192.0.2.1 dev eth0``)."""
        return [self.keyword, *self.args]


@dataclass(frozen=True)
class ParseOptions:
    config_id: str = field(default_factory=lambda: socket.gethostname().split(".")[0])


@dataclass
class Parsed:
    """The top-level statements, every file read, and notes that are not errors."""

    statements: list[Statement]
    files: list[Path]
    notes: list[tuple[Where, str]]
    skipped_ids: set[str] = field(default_factory=set)  # @ID lines left out, by ID


def parse_file(path: Path | str, options: ParseOptions | None = None) -> Parsed:
    """Read ``path`` and its includes; :class:`ParseError` on the first mistake."""
    reader = _Reader(options or ParseOptions())
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise ParseError(None, f"{path}: cannot read: {exc.strerror}") from None
    return Parsed(_build(reader.lines(path, text, 0)), reader.files, reader.notes,
                  reader.skipped_ids)


def parse_text(text: str, path: Path | str = "<text>",
               options: ParseOptions | None = None) -> Parsed:
    """Parse ``text`` as if it were the file ``path`` (includes relative to its directory)."""
    reader = _Reader(options or ParseOptions())
    return Parsed(_build(reader.lines(Path(path), text, 0)), reader.files, reader.notes,
                  reader.skipped_ids)


# ---- lines: comments, quotes, continuation, conditionals, parameters, includes -----------

Token = tuple[str, bool]  # (text, quoted): a quoted "{" is a word, not a brace


class _Reader:
    def __init__(self, options: ParseOptions) -> None:
        self.options = options
        self.params: dict[str, str] = {}
        self.files: list[Path] = []
        self.notes: list[tuple[Where, str]] = []
        self.skipped_ids: set[str] = set()
        self._open: list[Path] = []

    def lines(self, path: Path, text: str, depth: int) -> Iterator[tuple[Where, list[Token]]]:
        """Every non-empty logical line of ``path`` with its includes spliced in."""
        resolved = path.resolve()
        if resolved in self._open:
            raise ParseError(None, f"{path}: included again from itself (an include loop)")
        self._open.append(resolved)
        self.files.append(path)
        try:
            yield from self._lines(path, text, depth)
        finally:
            self._open.pop()

    def _lines(self, path: Path, text: str, depth: int) -> Iterator[tuple[Where, list[Token]]]:
        physical = text.split("\n")
        i = 0
        while i < len(physical):
            where = Where(path, i + 1)
            raw = physical[i]
            i += 1
            while raw.rstrip().endswith("\\") and i < len(physical):  # continuation
                raw = raw.rstrip()[:-1] + " " + physical[i]
                i += 1
            line = self._conditional(raw.strip())
            if line is None:
                continue
            if re.match(r"\$\w+\s*=", line):
                name, _, value = line[1:].partition("=")
                self.params[name.strip()] = self._substitute(_strip_comment(value).strip(),
                                                             where)
                continue
            include = re.match(rf"({'|'.join(INCLUDE_KEYWORDS)})(\s|$)", line)
            if include:  # the pattern is read raw: its {a,b} braces are not blocks
                words = [w for w, _ in _tokens(line[include.end():], where, braces=False)]
                yield from self._include(include[1], words, where, path, depth)
                continue
            tokens = _tokens(self._substitute(line, where), where)
            if tokens:
                yield where, tokens

    def _conditional(self, line: str) -> str | None:
        """``@ID rest`` -> rest if ID is ours, ``@^ID rest`` -> rest if it is not."""
        m = re.match(r"@(\^?)(\S+)\s*(.*)", line)
        if not m:
            return line
        ours = m[2] == self.options.config_id
        if ours == bool(m[1]):
            self.skipped_ids.add(m[2])
            return None
        return m[3]

    def _substitute(self, line: str, where: Where) -> str:
        if line.lstrip().startswith("~SEQ"):
            raise ParseError(where, "~SEQ(...) sequences are not supported by the converter; "
                                    "expand them (keepalived -t -d... or by hand) first")

        def value(m: re.Match[str]) -> str:
            name = m[1] or m[2]
            return self.params.get(name, m[0])  # keepalived leaves an unknown $NAME alone

        return _PARAM.sub(value, line) if "$" in line else line

    def _include(self, keyword: str, words: list[str], where: Where, path: Path, depth: int
                 ) -> Iterator[tuple[Where, list[Token]]]:
        if len(words) != 1:
            raise ParseError(where, f"{keyword} takes one file name or pattern, "
                                    f"got {len(words)}")
        if depth >= MAX_INCLUDE_DEPTH:
            raise ParseError(where, f"includes nested deeper than {MAX_INCLUDE_DEPTH}")
        pattern = words[0]
        base = path.parent
        matches: list[Path] = []
        for alternative in _braces(pattern):
            full = alternative if alternative.startswith("/") else str(base / alternative)
            matches += sorted(Path(p) for p in glob.glob(full))
        if not matches:
            if glob.has_magic(pattern) or "{" in pattern:
                self.notes.append((where, f"include {pattern}: no file matches; nothing "
                                          "included"))
                return
            raise ParseError(where, f"include {pattern}: no such file "
                                    f"(relative names are relative to {base})")
        for match in matches:
            try:
                text = match.read_text(encoding="utf-8", errors="surrogateescape")
            except OSError as exc:
                raise ParseError(where, f"include {match}: cannot read: {exc.strerror}"
                                 ) from None
            yield from self.lines(match, text, depth + 1)


def _braces(pattern: str) -> list[str]:
    """csh brace expansion: ``a{b,c{d,e}}f`` -> abf, acdf, acef."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [x for alt in m[1].split(",")
            for x in _braces(pattern[:m.start()] + alt + pattern[m.end():])]


def _strip_comment(text: str) -> str:
    return re.split(r"[#!]", text, maxsplit=1)[0]


def _tokens(line: str, where: Where, braces: bool = True) -> list[Token]:
    """Split one logical line into words and (if ``braces``) braces; drop the comment."""
    tokens: list[Token] = []
    stops = "{}#!" if braces else "#!"
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            i += 1
        elif c in "#!":
            break
        elif c in "{}" and braces:
            tokens.append((c, False))
            i += 1
        else:
            word, quoted = [], False
            while i < n and not line[i].isspace() and line[i] not in stops:
                if line[i] in "\"'":
                    quote, quoted = line[i], True
                    end = i + 1
                    while end < n and line[end] != quote:
                        end += 2 if line[end] == "\\" and quote == '"' else 1
                    if end >= n:
                        raise ParseError(where, f"unterminated {quote}-quoted string")
                    word.append(_unescape(line[i + 1:end]) if quote == '"'
                                else line[i + 1:end])
                    i = end + 1
                else:
                    word.append(line[i])
                    i += 1
            tokens.append(("".join(word), quoted))
    return tokens


def _unescape(text: str) -> str:
    """keepalived.conf(5) "Quoted strings": \\n, \\t, \\xXX, \\nnn, \\C -> C."""
    def one(m: re.Match[str]) -> str:
        s = m[1]
        if s in _ESCAPES:
            return _ESCAPES[s]
        if s[0] == "x":
            return chr(int(s[1:], 16))
        if s[0].isdigit():
            return chr(int(s, 8))
        return s

    return re.sub(r"\\(x[0-9a-fA-F]+|[0-7]{1,3}|.)", one, text)


# ---- the tree ---------------------------------------------------------------------------


def _build(lines: Iterator[tuple[Where, list[Token]]]) -> list[Statement]:
    """Nest statements by braces; unbalanced braces are errors naming their line."""
    top: list[Statement] = []
    stack: list[Statement] = []  # the statements whose blocks are open

    def current() -> list[Statement]:
        return stack[-1].children if stack else top

    for where, tokens in lines:
        stmt: Statement | None = None
        for text, quoted in tokens:
            if text == "{" and not quoted:
                owner = stmt
                if owner is None:  # `{` alone on its line opens the previous statement
                    siblings = current()
                    owner = siblings[-1] if siblings and siblings[-1].block is None else None
                    if owner is None:
                        raise ParseError(where, "'{' without a keyword before it")
                if owner.block is not None:
                    raise ParseError(where, f"a second '{{' after {owner.keyword}")
                owner.block = []
                stack.append(owner)
                stmt = None
            elif text == "}" and not quoted:
                if not stack:
                    raise ParseError(where, "'}' closes nothing (there is no open block)")
                stack.pop()
                stmt = None
            elif stmt is None:
                stmt = Statement(text, [], where)
                current().append(stmt)
            else:
                stmt.args.append(text)
    if stack:
        opened = stack[-1]
        raise ParseError(opened.where, f"the '{{' of {opened.keyword} is never closed "
                                       "(missing '}')")
    return top
