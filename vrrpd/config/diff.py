"""Old vs new :class:`~vrrpd.config.model.Config`, for hitless reload (DESIGN.md seam 6).

Reload is parse -> validate -> diff -> apply.  This module is the diff: which instances were
added, removed or changed, and for a changed one whether the running virtual router can take
the change in place (only its VIPs, or only fields it can re-read) or has to be restarted
because its identity on the wire changed (interface, VRID, version, address family).
Instances that did not change keep their state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from vrrpd.config.model import Config, InstanceConfig, IPInterface

# What a running virtual router cannot change: its socket, its VRID and its MAC on the wire
# (and its tproxy mark and table, held as one piece while master).
IDENTITY_FIELDS = ("interface", "vrid", "version", "virtual_mac", "accept_mode", "tproxy")
# Top-level settings read once at start-up (the control socket, state directory, logging,
# the BGP speaker and anycast groups).
SETTINGS_FIELDS = ("node", "control_socket", "control_socket_group", "state_dir", "log_format",
                   "realtime_priority", "bgp", "anycast")


@dataclass(frozen=True)
class InstanceChange:
    """How one instance (same name in both configs) changed."""

    old: InstanceConfig
    new: InstanceConfig

    @property
    def name(self) -> str:
        return self.new.name

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the InstanceConfig fields that differ, in declaration order."""
        return tuple(f.name for f in fields(InstanceConfig)
                     if getattr(self.old, f.name) != getattr(self.new, f.name))

    @property
    def vips_only(self) -> bool:
        """Only the VIP lists changed (same family): a master adds/removes them in place."""
        return (bool(self.fields) and set(self.fields) <= {"vips", "vips_excluded"}
                and self.old.family == self.new.family)

    @property
    def restart(self) -> bool:
        """The wire identity changed: the old router must stop and a new one start."""
        return (self.old.family != self.new.family
                or any(f in IDENTITY_FIELDS for f in self.fields))

    @property
    def added_vips(self) -> tuple[IPInterface, ...]:
        return tuple(v for v in self.new.held if v not in self.old.held)

    @property
    def removed_vips(self) -> tuple[IPInterface, ...]:
        return tuple(v for v in self.old.held if v not in self.new.held)


@dataclass(frozen=True)
class ConfigDiff:
    """What a reload from ``old`` to ``new`` has to do.  Instance names keep ``new``'s order."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: dict[str, InstanceChange] = field(hash=False)
    unchanged: tuple[str, ...]
    tracks: tuple[str, ...]  # trackers added, removed or redefined
    settings: tuple[str, ...]  # SETTINGS_FIELDS that differ; they take effect on restart
    sync_groups_changed: bool
    config_sync_changed: bool
    metrics_changed: bool

    @property
    def tracks_changed(self) -> bool:
        return bool(self.tracks)

    @property
    def restarted(self) -> tuple[str, ...]:
        """Changed instances that must be restarted (see :attr:`InstanceChange.restart`)."""
        return tuple(n for n, c in self.changed.items() if c.restart)

    @property
    def updated(self) -> tuple[str, ...]:
        """Changed instances that take the change in place."""
        return tuple(n for n, c in self.changed.items() if not c.restart)

    @property
    def empty(self) -> bool:
        """Nothing at all changed."""
        return not (self.added or self.removed or self.changed or self.tracks or self.settings
                    or self.sync_groups_changed or self.config_sync_changed or self.metrics_changed)


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """What changed from ``old`` to ``new`` (both already validated)."""
    old_by = {i.name: i for i in old.instances}
    new_by = {i.name: i for i in new.instances}
    both = [n for n in new_by if n in old_by]
    track_names = list(old.tracks) + [n for n in new.tracks if n not in old.tracks]
    return ConfigDiff(
        added=tuple(n for n in new_by if n not in old_by),
        removed=tuple(n for n in old_by if n not in new_by),
        changed={n: InstanceChange(old_by[n], new_by[n]) for n in both
                 if old_by[n] != new_by[n]},
        unchanged=tuple(n for n in both if old_by[n] == new_by[n]),
        tracks=tuple(n for n in track_names if old.tracks.get(n) != new.tracks.get(n)),
        settings=tuple(f for f in SETTINGS_FIELDS if getattr(old, f) != getattr(new, f)),
        sync_groups_changed=old.sync_groups != new.sync_groups,
        config_sync_changed=old.config_sync != new.config_sync,
        metrics_changed=old.metrics != new.metrics,
    )
