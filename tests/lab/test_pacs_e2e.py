"""End to end: the PACS reference deployment (:class:`lab.pacs.PacsLab`) survives failovers.

lb1 and lb2 run the shipped etc/haproxy/haproxy.cfg (only pidfile and stats socket paths moved)
and etc/vrrpd/lbN.yaml; pacs1/pacs2 run scripts/pacs-backend; the client is 192.0.2.50.
Through the VIP, before and after each failover (HAProxy SIGKILL on the master, ``vrrpctl
demote``, the master's switch port down and up again):

* a DICOM C-ECHO association (104, and the INFINITT Check port 8104) and a C-FIND (query 105,
  worklist 204) succeed, and the C-FINDs are answered by the same PACS server as before
  (``stick on src``, tables replicated by ``peers pacs``);
* web requests keep their backend: without a cookie by source address (the new master's
  ``show table web`` holds the client's entry, replicated by ``peers pacs``), with a
  ``SERVERID`` cookie by the cookie (sent from a second workstation address, naming the
  server the first one is not stuck to).

Config sync: an edit of haproxy.cfg on the master arrives byte-identical on the backup, whose
HAProxy then runs it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest

from lab.client import http_request
from lab.daemons import REALTIME, replace_file, wait_for
from lab.dicom import answers
from lab.haproxy_pair import VIP_ADDR
from lab.pacs import PacsLab

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")

CLIENT = "192.0.2.50"
COOKIE_CLIENT = "192.0.2.51"  # a second workstation address, for the cookie requests


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PacsLab]:
    # real-time vrrpd (lab.daemons.REALTIME): the 0.1 s adverts leave a hand-over 0.4 s
    # (RFC 5798 §6.4.2 Master_Down_Interval at priority 1), which a starved daemon can miss
    with PacsLab(tmp_path_factory.mktemp("pacs"), realtime_priority=REALTIME) as lab:
        lab.node("client").ns.run(["ip", "addr", "add", f"{COOKIE_CLIENT}/24", "dev", "eth0"])
        yield lab


def web(lab: PacsLab, source: str = CLIENT, cookie: str | None = None
        ) -> tuple[str, str, str | None]:
    """HEAD / through the VIP from ``source``: (backend, LB address, Set-Cookie value)."""
    resp = http_request(lab.node("client"), VIP_ADDR, source=source,
                        headers={"Cookie": f"SERVERID={cookie}"} if cookie else None)
    return resp.getheader("X-Backend", ""), resp.getheader("X-Remote-Addr", ""), \
        resp.getheader("Set-Cookie")


def dicom(lab: PacsLab) -> dict[int, str]:
    """C-ECHO on 104 and 8104, C-FIND on 105 and 204 through the VIP."""
    return answers(lab.node("client"), VIP_ADDR, (104, 8104))


def stick_entry(lab: PacsLab, lb: str, table: str, key: str) -> str | None:
    """The server_key HAProxy on ``lb`` holds for ``key`` in stick table ``table``."""
    out = lab.haproxy[lb].stats(f"show table {table}")
    m = re.search(rf"key={re.escape(key)} .*server_key=(\S+)", out)
    return m.group(1) if m else None


def test_dicom_and_web_persistence_across_failovers(lab: PacsLab) -> None:
    backend, lb, set_cookie = web(lab)
    assert lb == "192.0.2.11" and set_cookie == f"SERVERID={backend}; path=/; HttpOnly"
    other_backend = {"pacs1": "pacs2", "pacs2": "pacs1"}[backend]
    # a second workstation pins the other server by its cookie
    assert web(lab, COOKIE_CLIENT, cookie=other_backend)[0] == other_backend
    finds = dicom(lab)
    wait_for(lambda: all(stick_entry(lab, "lb2", t, CLIENT) for t in ("web", "query", "mwl")),
             3, "lb2 to learn the client's stick entries (peers pacs)", poll=0.05)

    def check(new_master: str, what: str) -> None:
        wait_for(lambda: lab.holders() == [new_master], 10, f"{new_master} to hold the VIP "
                 f"after {what}", poll=0.005)
        assert stick_entry(lab, new_master, "web", CLIENT) == backend, \
            lab.haproxy[new_master].stats("show table web")
        got, via, _ = web(lab)
        assert (got, via) == (backend, lab.node(new_master).ipv4.ip.compressed), what
        assert web(lab, COOKIE_CLIENT, cookie=other_backend)[0] == other_backend, what
        assert dicom(lab) == finds, f"C-FIND answered by another PACS server after {what}"

    # (a) HAProxy dies on the master: its vrrpd sees it by pidfd and resigns
    lab.haproxy["lb1"].kill()
    try:
        check("lb2", "HAProxy SIGKILL on lb1")
    finally:  # the next test shares this lab
        lab.restart_haproxy("lb1")

    # (b) planned hand-over back to lb1, then lb2 resumes (it stays BACKUP: priority 100)
    lab.vrrpd["lb2"].ctl("demote", instance=lab.instance)
    check("lb1", "vrrpctl demote on lb2")
    lab.vrrpd["lb2"].ctl("resume", instance=lab.instance)
    lab.vrrpd["lb2"].wait_state(lab.instance, "BACKUP")

    # (c) lb1 is cut off, then comes back (and waits preempt_delay before taking over)
    assert lab.lab is not None
    lab.lab.set_link("lb1", False)
    try:
        check("lb2", "lb1's switch port down")
    finally:  # the next test shares this lab
        lab.lab.set_link("lb1", True)
    lab.vrrpd["lb1"].wait_state(lab.instance, "BACKUP")
    check("lb2", "lb1's switch port up again")


def test_config_sync_keeps_reference_haproxy_cfg_identical_and_live(lab: PacsLab) -> None:
    master = lab.master()
    assert master is not None
    backup = lab.other(master)
    src, dst = lab.haproxy[master].cfg, lab.haproxy[backup].cfg
    assert src.read_bytes() == dst.read_bytes()
    edited = src.read_text().replace("    bind 127.0.0.1:80\n",
                                     "    bind 127.0.0.1:80\n    maxconn 3001\n", 1)
    assert "maxconn 3001" in edited
    replace_file(src, edited)
    took = wait_for(lambda: dst.read_bytes() == src.read_bytes(), 3,
                    f"the edit on {master} to arrive on {backup}", poll=0.01)
    print(f"haproxy.cfg edit on {master} identical on {backup} after {took:.3f}s")

    def live() -> bool:  # the backup's HAProxy reloaded: its web frontend has the new limit
        rows = lab.haproxy[backup].stats("show stat").splitlines()
        head = rows[0].lstrip("# ").split(",")
        web_fe = next(r.split(",") for r in rows[1:] if r.startswith("web,FRONTEND,"))
        return web_fe[head.index("slim")] == "3001"

    wait_for(live, 5, f"HAProxy on {backup} to run the synced file", poll=0.05)
    status = lab.vrrpd[master].ctl("config-sync-status")
    assert [p["sync"] for p in status["peers"].values()] == ["in-sync"], status
