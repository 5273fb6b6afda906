"""Generate the vrrpd(8) and vrrpctl(8) man pages and vrrpctl's bash completion from the
argument parsers, so options and commands have one home: ``vrrpd/cli``.

    python3 man/generate.py OUTDIR     # writes vrrpd.8, vrrpctl.8, vrrpctl.bash-completion

vrrpd.yaml(5) is hand-written (``man/vrrpd.yaml.5``): the schema is code, not data, and
``tests/test_packaging_docs.py`` checks that the page names every key the loader takes.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

from vrrpd import __version__
from vrrpd.cli import vrrpctl, vrrpd_main
from vrrpd.cli.configsync_cli import keygen_parser

# Sections the parsers cannot know: what a man page adds around the options.
VRRPD_SECTIONS = {
    "DESCRIPTION": f"""\
vrrpd keeps a pair of HAProxy load balancers highly available. It runs on both nodes, speaks
VRRP with its peer (VRRPv2 RFC 3768, VRRPv3 RFC 5798 / RFC 9568, IPv4 and IPv6), floats the
virtual IP addresses onto the master with netlink, announces them with gratuitous ARP or
unsolicited Neighbor Advertisements, and fails over when the local HAProxy or its health checks
fail. It runs in the foreground; systemd runs it as vrrpd.service.
.PP
The configuration (default {vrrpd_main.DEFAULT_CONFIG}) is described in
.BR vrrpd.yaml (5).
A bad file is refused with its file, line, key path and reason.""",
    "SIGNALS": """\
.TP
.B SIGTERM, SIGINT
Every master sends one advertisement with priority 0 (RFC 5798 section 6.4.3) and releases its
virtual addresses, so the peer takes over after its Skew_Time; then vrrpd exits.
.TP
.B SIGHUP
Reload the configuration, like
.BR "vrrpctl reload" .""",
    "SYSTEMD": """\
The unit vrrpd.service is Type=notify with a watchdog: vrrpd reports READY once its instances
run and pings the watchdog from its event loop, so a hung daemon is restarted.
.B systemctl reload vrrpd
is a hitless reload through the control socket. The unit starts only when
/etc/vrrpd/vrrpd.yaml exists; the package never enables or starts it.
Logs go to the journal with their severity:
.B journalctl -p warning -u vrrpd
shows warnings and errors only.""",
    "FILES": f"""\
.TP
.I {vrrpd_main.DEFAULT_CONFIG}
the configuration (an example: /etc/vrrpd/vrrpd.yaml.example)
.TP
.I /etc/vrrpd/hooks/
example notify hooks
.TP
.I {vrrpctl.DEFAULT_SOCKET}
the control socket
.TP
.I /var/lib/vrrpd/
persisted operator modes (demote, maintenance)""",
    "SEE ALSO": ".BR vrrpctl (8), .BR vrrpd.yaml (5), .BR systemctl (1), .BR haproxy (1)"
               .replace(", ", ",\n"),
}

VRRPCTL_SECTIONS = {
    "DESCRIPTION": f"""\
vrrpctl talks to a running
.BR vrrpd (8)
over its control socket (default {vrrpctl.DEFAULT_SOCKET}, mode 0600; 0660 for the
control_socket_group of
.BR vrrpd.yaml (5)).
Every command takes --json and then prints the daemon's answer unchanged.""",
    "EXIT STATUS": "status and check follow the monitoring-plugin convention: 0 OK, "
                   "1 WARNING, 2 CRITICAL, 3 UNKNOWN (daemon unreachable). Other commands: 0 on "
                   "success, non-zero when the daemon refused the command or could not be "
                   "reached (the reason is printed on standard error).",
    "SEE ALSO": ".BR vrrpd (8),\n.BR vrrpd.yaml (5)",
}


def esc(text: str) -> str:
    """Roff-escape running text: backslashes, and a leading dot or quote."""
    text = text.replace("\\", "\\e")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line
                     for line in text.split("\n"))


def opt(text: str) -> str:
    return text.replace("-", "\\-")


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return esc(parser._get_formatter()._expand_help(action))


def _invocation(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest if not action.choices else "|".join(action.choices)
    names = ", ".join(f"\\fB{opt(s)}\\fR" for s in action.option_strings)
    if action.nargs == 0:
        return names
    meta = action.metavar or ("{" + ",".join(action.choices) + "}" if action.choices
                              else action.dest.upper())
    return f"{names} \\fI{meta}\\fR"


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _helps(sub: argparse._SubParsersAction) -> dict[str, str]:
    return {a.dest: a.help or "" for a in sub._choices_actions}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    lines = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        lines += [".TP", _invocation(action), _help(parser, action)]
    return lines


def _usage(parser: argparse.ArgumentParser) -> str:
    usage = parser.format_usage().removeprefix("usage: ").strip()
    return esc(" ".join(usage.split()))


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    sub = _subparsers(parser)
    if sub is None:
        return []
    lines = []
    helps = _helps(sub)
    for name, child in sub.choices.items():
        lines += [".TP", f".B {prefix}{name}", esc(helps.get(name, "")), ".RS",
                  f".B {_usage(child)}"]
        options = [a for a in child._actions
                   if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
        for action in options:
            if action.option_strings or action.help:  # a bare positional is in the usage
                lines += [".TP", _invocation(action), _help(child, action)]
        lines += [".RE"]
        lines += _commands(child, f"{prefix}{name} ")
    return lines


def manpage(parser: argparse.ArgumentParser, section: int, summary: str,
            sections: dict[str, str], commands: list[str]) -> str:
    stamp = os.environ.get("SOURCE_DATE_EPOCH")  # set by dpkg-buildpackage: reproducible
    date = (datetime.datetime.fromtimestamp(int(stamp), datetime.UTC).date() if stamp
            else datetime.date.today()).isoformat()
    out = [f'.TH {parser.prog.upper()} {section} {date} "vrrpd {__version__}" '
           '"System Manager\'s Manual"',
           ".SH NAME", f"{parser.prog} \\- {summary}",
           ".SH SYNOPSIS", f".B {_usage(parser)}",
           ".SH DESCRIPTION", sections["DESCRIPTION"],
           ".SH OPTIONS", *_options(parser)]
    if commands:
        out += [".SH COMMANDS", *commands]
    for title, body in sections.items():
        if title != "DESCRIPTION":
            out += [f'.SH "{title}"', body]
    return "\n".join(out) + "\n"


def completion(parser: argparse.ArgumentParser) -> str:
    """A bash completion function for ``parser``'s (sub)commands, options and choices."""

    def words(p: argparse.ArgumentParser) -> list[str]:
        found: list[str] = []
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                found += list(a.choices)
            elif a.option_strings:
                found += [s for s in a.option_strings if s.startswith("--")]
            elif a.choices:
                found += list(a.choices)
        return found

    cases = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        cases.append(f'        "{path}") opts="{" ".join(words(p))}" ;;')
        sub = _subparsers(p)
        for name, child in (sub.choices.items() if sub else ()):
            walk(child, f"{path} {name}".strip())

    walk(parser, "")
    files = " | ".join(
        a.option_strings[-1] for p in _all(parser) for a in p._actions
        if a.option_strings and (a.type is Path or a.dest in ("socket", "config")))
    name = parser.prog
    return f"""\
# bash completion for {name} (generated by man/generate.py from vrrpd/cli)
_{name}() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
    local path="" opts="" i w
    # The (sub)command path typed so far: words that name a subcommand of the path before them.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${{COMP_WORDS[i]}}
        case $w in -*) continue ;; esac
        case " $(_{name}_words "$path") " in *" $w "*) path="${{path:+$path }}$w" ;; esac
    done
    case $prev in {files}) COMPREPLY=($(compgen -f -- "$cur")); return ;; esac
    opts=$(_{name}_words "$path")
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
_{name}_words() {{
    local opts=""
    case "$1" in
{chr(10).join(cases)}
    esac
    echo "$opts"
}}
complete -F _{name} {name}
"""


def _all(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    sub = _subparsers(parser)
    return [parser, *(q for child in (sub.choices.values() if sub else ()) for q in _all(child))]


def main(outdir: str) -> int:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    daemon = vrrpd_main.build_parser()
    (out / "vrrpd.8").write_text(manpage(
        daemon, 8, "VRRP pair manager for HAProxy load balancers", VRRPD_SECTIONS,
        _commands(keygen_parser(), "config-sync ")))
    ctl = vrrpctl.build_parser()
    (out / "vrrpctl.8").write_text(manpage(
        ctl, 8, "control a running vrrpd", VRRPCTL_SECTIONS, _commands(ctl, "")))
    (out / "vrrpctl.bash-completion").write_text(completion(ctl))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/docs"))
