#!/bin/sh
# Example vrrpd notify hook (keepalived-compatible arguments).
#   $1 TYPE (INSTANCE|GROUP)  $2 NAME  $3 STATE (MASTER|BACKUP|FAULT|STOP)  $4 PRIORITY
# Environment: VRRPD_INSTANCE VRRPD_STATE VRRPD_PREV_STATE VRRPD_VIPS VRRPD_PRIORITY
#              VRRPD_REASON VRRPD_NODE VRRPD_TYPE
# Hooks run in transition order, one at a time per instance, and are killed after 30 s.
# They never delay VRRP itself, so do slow work (mail, paging) in the background.
logger -t vrrpd-notify "$VRRPD_NODE: $1 $2 $VRRPD_PREV_STATE -> $3 (priority $4, VIPs: $VRRPD_VIPS): $VRRPD_REASON"
