"""keepalived keywords vrrpd knows but does not carry over, each with the reason an operator
reads in the converter's report (one home for these reasons: the README's feature list
quotes the same words).

A keyword missing from these tables and from the mapper's is *unknown*: at the top level that
is an error (a typo there loses a whole block), inside a known block it is reported and
skipped.
"""

from __future__ import annotations

_LVS = ("IPVS/LVS load balancing is not vrrpd's job: HAProxy balances; vrrpd only moves the "
        "VIPs and tracks HAProxy (tracks: {type: haproxy})")
_BFD = "BFD is not supported; use a tracker (interface, tcp, script) for the path to watch"
_SMTP = ("vrrpd sends no e-mail; a notify hook (notify: or notify_master: ...) can, and "
         "`vrrpctl events --follow` streams every transition")
_STATIC = ("static addresses, routes and rules are not tied to mastership: configure them in "
           "the host's network configuration (ifupdown, systemd-networkd)")
_NETNS = "vrrpd runs in the network namespace it is started in (ip netns exec / systemd)"
_PROCESS = "keepalived process management (names, pid files, scheduling) has no vrrpd equivalent"

# Top-level blocks and keywords keepalived 2.2 knows, other than those the mapper converts.
TOP_LEVEL: dict[str, str] = {
    "virtual_server": _LVS,
    "virtual_server_group": _LVS,
    "SSL": _LVS,
    "bfd_instance": _BFD,
    "static_ipaddress": _STATIC,
    "static_routes": _STATIC,
    "static_rules": _STATIC,
    "garp_group": "per-interface GARP rate groups are not supported; use announce: per instance",
    "linkbeat_interfaces": "vrrpd watches carrier by netlink events only (no MII/ethtool polling)",
    "linkbeat_use_polling": "vrrpd watches carrier by netlink events only (no MII/ethtool polling)",
    "interface_up_down_delays": "no interface debounce: a tracker's rise/fall counts instead",
    "net_namespace": _NETNS,
    "net_namespace_ipvs": _NETNS,
    "namespace_with_ipsets": _NETNS,
    "instance": _PROCESS,
    "use_pid_dir": _PROCESS,
    "child_wait_time": _PROCESS,
    "include_check": "include checks are the converter's own: a missing include is an error",
}

# global_defs keywords other than the mapped ones.  Anything else there is reported as unknown.
GLOBAL_DEFS: dict[str, str] = {
    **{k: _SMTP for k in ("notification_email", "notification_email_from", "smtp_server",
                          "smtp_helo_name", "smtp_connect_timeout", "smtp_alert",
                          "smtp_alert_vrrp", "smtp_alert_checker", "no_email_faults",
                          "email_faults")},
    **{k: _LVS for k in ("lvs_id", "lvs_timeouts", "lvs_flush", "lvs_flush_onstop",
                         "lvs_sync_daemon", "checker_log_all_failures", "nftables_ipvs",
                         "lvs_notify_fifo", "lvs_notify_fifo_script", "checker_process_name",
                         "checker_priority", "checker_no_swap", "checker_rt_priority",
                         "checker_cpu_affinity", "checker_rlimit_rttime")},
    **{k: _BFD for k in ("bfd_process_name", "bfd_priority", "bfd_no_swap", "bfd_rt_priority",
                         "bfd_cpu_affinity", "bfd_rlimit_rttime")},
    **{k: _PROCESS for k in ("process_names", "process_name", "vrrp_process_name",
                             "vrrp_priority", "vrrp_no_swap",
                             "vrrp_cpu_affinity", "vrrp_rlimit_rttime", "max_auto_priority",
                             "min_auto_priority_delay", "tmp_config_directory",
                             "config_save_dir", "reload_time_file", "reload_repeat",
                             "reload_file", "startup_script", "startup_script_timeout",
                             "shutdown_script", "shutdown_script_timeout", "umask",
                             "dynamic_interfaces", "disable_local_igmp", "vrrp_rx_bufs_policy",
                             "vrrp_rx_bufs_multiplier", "vrrp_netlink_cmd_rcv_bufs",
                             "vrrp_netlink_cmd_rcv_bufs_force",
                             "vrrp_netlink_monitor_rcv_bufs",
                             "vrrp_netlink_monitor_rcv_bufs_force", "vrrp_startup_delay",
                             "vrrp_log_unknown_vrids", "vrrp_iptables", "vrrp_ipsets",
                             "vrrp_nftables", "vrrp_nftables_priority", "vrrp_nftables_ifindex",
                             "vrrp_nftables_counters", "vrrp_nftables_no_counters",
                             "random_seed", "data_use_instance", "enable_traps",
                             "enable_snmp_vrrp", "enable_snmp_checker", "enable_snmp_rfc",
                             "enable_snmp_rfcv2", "enable_snmp_rfcv3", "snmp_socket",
                             "enable_dbus", "enable_dbus_read_object")},
    "enable_script_security": ("vrrpd always runs script trackers as their `user:` (default "
                               "nobody) and hooks as the daemon's user"),
    "script_group": "script trackers run with the user's own group",
    "notify_fifo": "no notify FIFO: use a notify hook or `vrrpctl events --follow` (JSON lines)",
    "notify_fifo_script": "no notify FIFO: use a notify hook or `vrrpctl events --follow`",
    "vrrp_notify_fifo": "no notify FIFO: use a notify hook or `vrrpctl events --follow`",
    "vrrp_notify_fifo_script": "no notify FIFO: use a notify hook or `vrrpctl events --follow`",
    "vrrp_notify_priority_changes": "priority changes are in `vrrpctl events`, not in hooks",
    "vrrp_mcast_group4": "adverts go to the RFC's groups 224.0.0.18 / ff02::12 (or unicast_peers)",
    "vrrp_mcast_group6": "adverts go to the RFC's groups 224.0.0.18 / ff02::12 (or unicast_peers)",
    "vrrp_strict": ("vrrpd follows the RFCs without a strict switch; keepalived's strict mode "
                    "also installs firewall rules, which vrrpd never does"),
    "vrrp_skip_check_adv_addr": "vrrpd does not compare the advert's address list (RFC 5798 §7.1 "
                                "MAY)",
    "vrrp_check_unicast_src": "set strict_peers: true on each instance",
    "vrrp_lower_prio_no_advert": "vrrpd's master answers a lower-priority advert as RFC 5798 "
                                 "§6.4.3 says",
    "vrrp_higher_prio_send_advert": "a master stepping down for a better master sends one last "
                                    "advert (always)",
    "vrrp_garp_lower_prio_delay": "no GARP on hearing a lower priority",
    "vrrp_garp_lower_prio_repeat": "no GARP on hearing a lower priority",
    "vrrp_garp_extra_if": "GARPs go only on the VIPs' interfaces",
    "vrrp_garp_extra_if_vmac": "GARPs go only on the VIPs' interfaces",
    "vrrp_gna_interval": "one announce interval for GARP and NA (announce.interval)",
    "vrrp_min_garp": "announce: {count, interval, repeat_delay} per instance",
    "vrrp_down_timer_adverts": "Master_Down_Interval is the RFC's 3 intervals + Skew_Time",
    "vrrp_use_ipvlan": "no ipvlan interfaces",
    "vrrp_cpu_affinity": _PROCESS,
    "linkbeat_use_polling": "vrrpd watches carrier by netlink events only",
    "fifo_write_vrrp_states_on_reload": "no notify FIFO",
    "vrrp_dont_track_primary": "the instance's interface is always tracked (FAULT when down)",
    "net_namespace": _NETNS,
    "net_namespace_ipvs": _NETNS,
    "instance": _PROCESS,
    "use_pid_dir": _PROCESS,
}

# vrrp_instance keywords other than the mapped ones.
INSTANCE: dict[str, str] = {
    "smtp_alert": _SMTP,
    "track_bfd": _BFD,
    "lvs_sync_daemon_interface": _LVS,
    "use_vmac_addr": "virtual_mac covers the instance's interface only",
    "vmac_xmit_base": ("with virtual_mac, multicast adverts leave through the macvlan link, "
                       "unicast ones through the interface (vrrpd/kernel/vmac.py)"),
    "use_ipvlan": "no ipvlan interfaces",
    "native_ipv6": "the VIPs' family decides (as in keepalived 2.x, where this is deprecated)",
    "dont_track_primary": "the instance's interface is always tracked (FAULT when down)",
    "mcast_dst_ip": "adverts go to the RFC's groups 224.0.0.18 / ff02::12 (or unicast_peers)",
    "track_src_ip": "adverts leave from the interface's primary address",
    "unicast_fault_no_peer": "an instance without unicast_peers multicasts",
    "unicast_ttl": "unicast adverts are sent with TTL 255 (RFC 5798 §5.1.1.3)",
    "old_unicast_checksum": ("use v3_checksum: pseudo-header to send keepalived 2.2's "
                             "VRRPv3 checksum form (auto accepts both)"),
    "garp_lower_prio_delay": "no GARP on hearing a lower priority",
    "garp_lower_prio_repeat": "no GARP on hearing a lower priority",
    "garp_extra_if": "GARPs go only on the VIPs' interfaces",
    "down_timer_adverts": "Master_Down_Interval is the RFC's 3 intervals + Skew_Time",
    "lower_prio_no_advert": "vrrpd's master answers a lower-priority advert (RFC 5798 §6.4.3)",
    "higher_prio_send_advert": "a master stepping down for a better master sends one last "
                               "advert (always)",
    "promote_secondaries": "set net.ipv4.conf.IF.promote_secondaries=1 with sysctl",
    "skip_check_adv_addr": "vrrpd does not compare the advert's address list (RFC 5798 §7.1 "
                           "MAY)",
    "strict_mode": "vrrpd follows the RFCs without a strict switch and adds no firewall rules",
    "debug": "use vrrpd --log-level debug",
    "notify_deleted": "a removed instance reports nothing to hooks",
    "notify_master_rx_lower_pri": "no hook for a lower-priority advert heard by the master",
    "notify_priority_changes": "priority changes are in `vrrpctl events`, not in hooks",
    "kernel_rx_buf_size": "socket buffers are the kernel's defaults",
    "linkbeat_use_polling": "vrrpd watches carrier by netlink events only",
    "vrf": "no VRF binding",
}

SYNC_GROUP: dict[str, str] = {
    "smtp_alert": _SMTP,
    "track_bfd": _BFD,
    "global_tracking": "trackers belong to instances in vrrpd; list them on every member",
    "sync_group_tracking_weight": "trackers belong to instances in vrrpd",
    "notify_deleted": "a removed instance reports nothing to hooks",
    "notify_priority_changes": "priority changes are in `vrrpctl events`, not in hooks",
}
