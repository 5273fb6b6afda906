#!/bin/sh
# Example: when this node becomes MASTER, make sure HAProxy runs (it may have been stopped
# for maintenance while this node was BACKUP).  Wire it with `notify:` on the instance.
[ "$3" = "MASTER" ] || exit 0
systemctl is-active --quiet haproxy || systemctl start haproxy
