"""Pushed configuration policy (issue 12 part 3): directives that run code are refused unless
the receiver's live file already has them or ``sync.allow_code: true``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_configsync_transport import Node, pair

from vrrpd.configsync.policy import code_lines, new_code

BASE = "global\n    maxconn 100\ndefaults\n    mode http\n"


@pytest.mark.parametrize(("line", "code"), [
    ("    lua-load /tmp/x.lua", True),
    ("    lua-load-per-thread /tmp/x.lua", True),
    ("    lua-prepend-path /tmp/?.lua", True),
    ("    external-check", True),
    ("    insecure-fork-wanted", True),
    ("    ssl-engine rdrand", True),
    ("    ssl-provider evil", True),
    ("    ssl-provider-path /tmp", True),
    ("    setenv LD_PRELOAD /tmp/evil.so", True),
    ("    presetenv OPENSSL_CONF /tmp/openssl.cnf", True),
    ("    setenv PATH /tmp", True),
    ('    "lua-load" /tmp/x.lua', True),  # quotes are resolved as HAProxy does
    ("    lua\\-load /tmp/x.lua", True),
    ('    "${KW}" /tmp/x.lua', True),  # keyword from the environment: cannot be checked
    ("    setenv BACKEND_ADDR 192.0.2.20", False),  # plain variables are fine
    ("    maxconn 200", False),
    ("    # lua-load /tmp/x.lua", False),
    ("    http-request return status 200 string lua-load", False),
])
def test_directives_that_run_code(line: str, code: bool) -> None:
    found = code_lines("haproxy.cfg", BASE.replace("    maxconn 100", line))
    assert bool(found) is code
    if code:
        assert found[0].line == 2


def test_program_section_and_external_check_in_a_backend() -> None:
    text = (BASE + "program evil\n    command /bin/sh -c id\n"
            "backend app\n    option external-check\n    external-check command /bin/x\n")
    assert [(c.line, c.directive) for c in code_lines("haproxy.cfg", text)] == [
        (5, "program evil"), (6, "program evil: command /bin/sh -c id"),
        (8, "option external-check"), (9, "external-check command /bin/x")]


def test_only_what_the_live_file_lacks_counts() -> None:
    live = {"haproxy.cfg": (BASE + "global\n    lua-load /etc/haproxy/auth.lua\n").encode()}
    same = (BASE + "global\n  lua-load   /etc/haproxy/auth.lua   # still ours\n").encode()
    other = (BASE + "global\n    lua-load /tmp/x.lua\n").encode()
    assert new_code([("haproxy.cfg", same)], live) == []
    added = new_code([("haproxy.cfg", other)], live)
    assert [str(a) for a in added] == ["haproxy.cfg line 6: lua-load /tmp/x.lua"]
    # the same directive in another listed file does not vouch for this one
    assert new_code([("extra.cfg", same)], live) != []


def test_refused_push_names_the_line_on_the_pusher(tmp_path: Path) -> None:
    async def body(a: Node, b: Node) -> None:
        assert a.service is not None and b.service is not None
        a.cfg.write_text("global\n    maxconn 10\n")
        assert all(r["ok"] for r in (await a.service.push())["peers"].values())
        a.cfg.write_text("global\n    maxconn 10\n    lua-load /tmp/x.lua\n")
        result = await a.service.push()
        (reply,) = result["peers"].values()
        assert not reply["ok"]
        assert "haproxy.cfg line 3: lua-load /tmp/x.lua" in reply["error"]
        assert "config_sync.allow_code: true" in reply["error"]
        assert b.cfg.read_text() == "global\n    maxconn 10\n"  # nothing applied
        status = await a.service.status()
        assert "lua-load" in status["last_push"]["error"]
        # The operator vouches for it on the receiver: then the push goes through.
        b.service.config = dataclasses.replace(b.service.config, allow_code=True)
        assert all(r["ok"] for r in (await a.service.push())["peers"].values())
        assert "lua-load /tmp/x.lua" in b.cfg.read_text()

    pair(tmp_path, body)
