"""Operating the booted pair: config sync, notify hooks under the unit, control_socket_group.

Each test edits files as an operator would and puts them back (and reloads) when it ends.
"""

from __future__ import annotations

import secrets

import pytest
from conftest import healthy
from pair import Machine, wait_for

pytestmark = [pytest.mark.usefixtures("baseline"), pytest.mark.timeout(300)]

HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
VRRPD_YAML = "/etc/vrrpd/vrrpd.yaml"


def test_haproxy_cfg_edited_on_the_master_is_live_on_the_backup(lb1: Machine,
                                                                 lb2: Machine) -> None:
    """`config_sync:` in lbN.yaml: the master (lb1) pushes haproxy.cfg over pinned TLS (keys made by
    `vrrpd config-sync keygen` at provisioning, each pinned on the other); lb2 validates it, reloads
    its HAProxy and confirms the reload on the master CLI.  Shown by a new frontend that
    answers on lb2."""
    token = secrets.token_hex(6)
    original = lb1.read(HAPROXY_CFG)
    edited = original + (f"\nfrontend pair_test\n    mode http\n    bind 127.0.0.1:8406\n"
                         f"    http-request return status 200 content-type text/plain "
                         f"string {token}\n")
    try:
        lb1.write(HAPROXY_CFG, edited)
        lb1.sh("systemctl reload haproxy")   # the master's own HAProxy: the operator's reload
        answer = wait_for(lambda: token in lb2.sh("curl -s http://127.0.0.1:8406/",
                                                  check=False).stdout, 15,
                          "lb2's HAProxy answers with the edited configuration")
        assert answer
        assert lb2.read(HAPROXY_CFG) == edited
        status = lb1.sh("vrrpctl config-sync status").stdout
        assert "in-sync" in status, status
    finally:
        lb1.write(HAPROXY_CFG, original)
        lb1.sh("systemctl reload haproxy")
        wait_for(lambda: lb2.read(HAPROXY_CFG) == original, 15, "lb2 back to the original")


HOOK = """#!/bin/sh
# System test hook: a line under /run/vrrpd (writable in the unit's sandbox) and a mail to
# oncall@localhost over SMTP to the local MTA (exim4 listens on 127.0.0.1:25); Debian's
# setuid/setgid sendmail would be refused by NoNewPrivileges, see README.
echo "$VRRPD_NODE $2 $VRRPD_PREV_STATE -> $3: $VRRPD_REASON" >> /run/vrrpd/pair-test-notify.log
printf 'From: vrrpd@%s\\r\\nTo: oncall@localhost\\r\\n' "$VRRPD_NODE" > /run/vrrpd/pair-test.mail
printf 'Subject: vrrpd %s %s -> %s TOKEN\\r\\n\\r\\n%s\\r\\n' \\
    "$2" "$VRRPD_PREV_STATE" "$3" "$VRRPD_REASON" >> /run/vrrpd/pair-test.mail
curl -sS --url smtp://127.0.0.1:25 --mail-from "vrrpd@$VRRPD_NODE" \\
     --mail-rcpt oncall@localhost -T /run/vrrpd/pair-test.mail \\
     >> /run/vrrpd/pair-test-notify.log 2>&1
"""


def test_notify_hook_writes_to_run_and_sends_mail(lb1: Machine, lb2: Machine) -> None:
    """A notify hook under the unit's sandbox, on the backup lb2 (restarted to read it: a
    backup's restart moves no VIP).  lb1 hands over (`vrrpctl demote`); lb2's hook logs the
    BACKUP -> MASTER transition to /run/vrrpd and mails it to oncall@localhost through exim4.
    """
    token = secrets.token_hex(6)
    hook = "/etc/vrrpd/hooks/pair-test.sh"
    original = lb2.read(VRRPD_YAML)
    lb2.sh("id oncall >/dev/null 2>&1 || useradd --create-home oncall; "
           "rm -f /run/vrrpd/pair-test-notify.log /var/mail/oncall")
    lb2.sh(f"cat > {hook} <<'PAIR_EOF'\n{HOOK.replace('TOKEN', token)}PAIR_EOF\nchmod 0755 {hook}")
    lines = original.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("    track:"))
    lines.insert(at + 1, f"    notify: {hook}\n")
    try:
        lb2.write(VRRPD_YAML, "".join(lines))
        lb2.sh("systemctl restart vrrpd")
        wait_for(lambda: healthy(lb2), 30, "lb2 BACKUP and healthy after the restart")
        lb1.sh("vrrpctl demote pacs")
        wait_for(lambda: lb2.state() == "MASTER", 10, "lb2 takes over")
        log = wait_for(lambda: "BACKUP -> MASTER" in lb2.sh(
            "cat /run/vrrpd/pair-test-notify.log", check=False).stdout and lb2.sh(
            "cat /run/vrrpd/pair-test-notify.log").stdout, 10, "the hook's line in /run/vrrpd")
        assert "lb2 pacs BACKUP -> MASTER" in log, log
        mail = wait_for(lambda: lb2.sh("cat /var/mail/oncall", check=False).stdout, 30,
                        "the hook's mail in /var/mail/oncall")
        assert f"vrrpd pacs BACKUP -> MASTER {token}" in mail, mail
    finally:
        lb1.sh("vrrpctl resume pacs", check=False)
        lb2.write(VRRPD_YAML, original)
        lb2.sh(f"systemctl restart vrrpd; rm -f {hook}")


def test_control_socket_group_lets_its_members_run_vrrpctl(lb2: Machine) -> None:
    """`control_socket_group: vrrpadm` (on the backup, lb2: its restart moves no VIP): the
    control socket becomes 0660 root:vrrpadm under the unit; a member of the group runs
    `vrrpctl status`, another user is refused."""
    original = lb2.read(VRRPD_YAML)
    lb2.sh("getent group vrrpadm >/dev/null || groupadd vrrpadm; "
           "id oper >/dev/null 2>&1 || useradd -G vrrpadm oper; "
           "id visitor >/dev/null 2>&1 || useradd visitor")
    try:
        lb2.write(VRRPD_YAML, original.replace(
            "control_socket: /run/vrrpd/vrrpd.sock",
            "control_socket: /run/vrrpd/vrrpd.sock\ncontrol_socket_group: vrrpadm", 1))
        lb2.sh("systemctl restart vrrpd")
        wait_for(lambda: lb2.state() == "BACKUP", 20, "lb2 BACKUP after the restart")
        mode = lb2.sh("stat -c '%a %G' /run/vrrpd/vrrpd.sock").stdout.split()
        assert mode == ["660", "vrrpadm"], mode
        member = lb2.sh("vrrpctl status", user="oper", check=False)   # exit: the verdict
        assert "pacs" in member.stdout and "BACKUP" in member.stdout, member.stdout
        stranger = lb2.sh("vrrpctl status", user="visitor", check=False)
        assert stranger.returncode != 0
        assert "ermission" in stranger.stdout + stranger.stderr, stranger
    finally:
        lb2.write(VRRPD_YAML, original)
        lb2.sh("systemctl restart vrrpd")
        wait_for(lambda: lb2.state() == "BACKUP", 20, "lb2 BACKUP after the restart")
