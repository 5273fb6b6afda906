"""``vrrpd import-keepalived FILE [-o OUT.yaml]``: convert a keepalived.conf to vrrpd.yaml.

Exit status: 0 everything mapped; 1 the YAML was written but something was left out (listed
on stderr with file:line and why); 2 the keepalived.conf cannot be read or converted
(file:line: reason) and nothing was written.  Before it is written, the result is checked
with vrrpd's own loader as ``--check-config --no-host-checks`` does (the converter may run
on another machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml

from vrrpd.config.errors import ConfigError
from vrrpd.config.loader import parse_config
from vrrpd.keepalived.mapper import Conversion, convert
from vrrpd.keepalived.parser import ParseError, ParseOptions, parse_file

EXIT_OK, EXIT_UNMAPPED, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vrrpd import-keepalived",
        description="Convert a keepalived.conf (and its includes) into a vrrpd.yaml. Prints "
                    "what could not be converted, with file:line and why. Exit 0: all "
                    "converted; 1: written, something left out; 2: error, nothing written.")
    p.add_argument("file", type=Path, help="keepalived.conf to convert")
    p.add_argument("-o", "--output", type=Path, metavar="OUT.yaml",
                   help="write the YAML here (default: standard output)")
    p.add_argument("-i", "--config-id", metavar="ID",
                   help="keepalived's -i: which @ID lines count (default: the host name, as "
                        "keepalived)")
    return p


def render(conv: Conversion, source: Path) -> str:
    """The YAML with a header naming the source and listing what was left out."""
    lines = [f"# Converted from {source} by `vrrpd import-keepalived`.",
             "# Check it on the node: vrrpd --check-config -c THIS_FILE"]
    for title, findings in (("NOT converted", conv.unmapped), ("Converted with a difference",
                                                                conv.notes)):
        if findings:
            lines.append(f"# {title}:")
            lines += [f"#   {f}" for f in findings]
    return "\n".join(lines) + "\n\n" + yaml.safe_dump(conv.doc, sort_keys=False,
                                                       default_flow_style=None, width=100)


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed over it)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    options = ParseOptions(args.config_id) if args.config_id else ParseOptions()
    parsed = None
    try:
        parsed = parse_file(args.file, options)
        conv = convert(parsed)
    except ParseError as exc:
        hint = ""
        if parsed is not None and parsed.skipped_ids:
            hint = (f" (lines for config id {', '.join(sorted(parsed.skipped_ids))} were left "
                    f"out: this host's id is {options.config_id!r}; pick one with -i ID)")
        print(f"vrrpd import-keepalived: {exc}{hint}; nothing written", file=sys.stderr)
        return EXIT_ERROR
    text = render(conv, args.file)
    target = args.output or Path("<output>")
    try:
        parse_config(text, target, host=False)
    except ConfigError as exc:
        print(f"vrrpd import-keepalived: the converted configuration is refused by vrrpd: "
              f"{exc}; nothing written", file=sys.stderr)
        return EXIT_ERROR
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            write_atomically(args.output, text)
        except OSError as exc:
            print(f"vrrpd import-keepalived: cannot write {args.output}: {exc.strerror}",
                  file=sys.stderr)
            return EXIT_ERROR
    for finding in conv.notes:
        print(f"note: {finding}", file=sys.stderr)
    for finding in conv.unmapped:
        print(f"not converted: {finding}", file=sys.stderr)
    if conv.unmapped:
        print(f"vrrpd import-keepalived: {len(conv.unmapped)} item(s) not converted (listed "
              f"above); review them before using the file", file=sys.stderr)
        return EXIT_UNMAPPED
    return EXIT_OK
