"""Confirming a reload: HAProxy 2.6 ``show proc`` parsing and the confirm loop (fake CLI).

The real thing (HAProxy 2.6 master-worker refusing a reload at run time) is in
``tests/lab/test_configsync_haproxy_lab.py``; the outputs below were captured from HAProxy 2.6.12.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vrrpd.config.errors import ConfigError
from vrrpd.config.loader import parse_config
from vrrpd.configsync.confirm import ConfirmError, MasterCLIConfirm, confirmer, parse_show_proc

STARTED = """\
#<PID>          <type>          <reloads>       <uptime>        <version>
16838           master          0 [failed: 0]   0d00h12m59s     2.6.12-1+deb12u4
# workers
16839           worker          0               0d00h12m59s     2.6.12-1+deb12u4
# programs

"""
# after a reload whose new configuration could not bind (port in use): the counter moved,
# `failed` is 1 and the previous worker (it survived one reload) is still the current one
REFUSED = """\
#<PID>          <type>          <reloads>       <uptime>        <version>
16838           master          2 [failed: 1]   0d00h13m07s     2.6.12-1+deb12u4
# workers
4351            worker          1               0d00h00m05s     2.6.12-1+deb12u4
# programs

"""
RELOADED = """\
#<PID>          <type>          <reloads>       <uptime>        <version>
16838           master          3 [failed: 0]   0d00h13m15s     2.6.12-1+deb12u4
# workers
4400            worker          0               0d00h00m00s     2.6.12-1+deb12u4
# old workers
4351            worker          2               0d00h00m10s     2.6.12-1+deb12u4
# programs

"""


def test_show_proc_of_haproxy_2_6_is_parsed() -> None:
    s = parse_show_proc(RELOADED)
    assert (s.master_pid, s.reloads, s.failed) == (16838, 3, 0)
    assert s.workers == ((4400, 0),)  # old workers are not current
    assert parse_show_proc(REFUSED).failed == 1
    with pytest.raises(ValueError, match="no master line"):
        parse_show_proc("Unknown command\n")


def confirm(tmp: Path, answers: list[str]) -> str:
    async def main() -> str:
        server = await asyncio.start_unix_server(serve, str(tmp / "master.sock"))
        try:
            check = MasterCLIConfirm(tmp / "master.sock", timeout=0.5)
            return await check.confirm(await check.before())
        finally:
            server.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write((answers.pop(0) if len(answers) > 1 else answers[0]).encode())
        await writer.drain()
        writer.close()

    return asyncio.run(main())


def test_a_reload_is_confirmed_by_the_counter_and_a_new_worker(tmp_path: Path) -> None:
    assert confirm(tmp_path, [STARTED, STARTED, RELOADED]) == \
        "HAProxy reloaded: reload #3, new worker pid 4400"


def test_a_reload_refused_at_run_time_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfirmError, match=r"refused the reload at run time .*reloads 2, "
                                           r"failed 1"):
        confirm(tmp_path, [STARTED, REFUSED])


def test_a_reload_that_never_happens_times_out(tmp_path: Path) -> None:
    with pytest.raises(ConfirmError, match=r"did not confirm the reload within 0.5s: the "
                                           r"reload counter is still 0"):
        confirm(tmp_path, [STARTED])


SYNC = """\
node: lb1
instances:
  - {name: web, interface: lo, vrid: 51, priority: 100, vips: [192.0.2.100/24]}
config_sync:
  listen: 192.0.2.11:7000
  peers: [192.0.2.12:7000]
  cert: /etc/vrrpd/sync/node.pem
  peer_fingerprints: ["sha256:%s"]
  files: [/etc/haproxy/haproxy.cfg]
  validate: "haproxy -c -f {path}"
  reload: "systemctl reload haproxy"
  instance: web
""" % ("ab" * 32)


def test_config_keys_pick_the_check() -> None:
    cfg = parse_config(SYNC + "  master_socket: /run/haproxy-master.sock\n", Path("x.yaml"),
                       host=False)
    sync = cfg.config_sync
    assert sync is not None and sync.master_socket == Path("/run/haproxy-master.sock")
    check = confirmer(sync.master_socket, sync.stats_socket, sync.pidfile)
    assert isinstance(check, MasterCLIConfirm)
    plain = parse_config(SYNC, Path("x.yaml"), host=False).config_sync
    assert plain is not None and confirmer(plain.master_socket, plain.stats_socket,
                                           plain.pidfile) is None
    with pytest.raises(ConfigError, match=r"config_sync.master_socket: .*absolute"):
        parse_config(SYNC + "  master_socket: haproxy-master.sock\n", Path("x.yaml"),
                     host=False)
    with pytest.raises(ConfigError, match=r"config_sync.pidfile: is checked together with "
                                          "`stats_socket:`"):
        parse_config(SYNC + "  pidfile: /run/haproxy.pid\n", Path("x.yaml"), host=False)
