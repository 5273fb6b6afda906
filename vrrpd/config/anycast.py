"""The ``bgp:`` and ``anycast:`` sections (README.md "Scaling out"), read like the rest of
``vrrpd.yaml`` (:mod:`vrrpd.config.schema`: every error names file, line and key path)."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_network

from vrrpd.config.model import (
    ANYCAST_DRAIN_TIMEOUT_MAX,
    DRAIN_ADDRESSES_MAX,
    PREPEND_MAX,
    SPEAKER_ENGINES,
    AnycastGroupConfig,
    Deprefer,
    IPNetwork,
    SpeakerConfig,
    TrackConfig,
    TrackRef,
    default,
)
from vrrpd.config.schema import (
    Section,
    absolute_path,
    check_name,
    in_range,
    one_of,
    refuse_duplicates,
)
from vrrpd.kernel.bgp import MED_MAX

TrackRefs = Callable[[Section], tuple[TrackRef, ...]]


def speaker(s: Section) -> SpeakerConfig:
    config = SpeakerConfig(
        engine=s.take("engine", str, default(SpeakerConfig, "engine"), one_of(*SPEAKER_ENGINES)),
        socket=s.take("socket", str, default(SpeakerConfig, "socket"), absolute_path))
    s.done()
    return config


def _prefix(text: str) -> IPNetwork:
    try:
        net = ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a prefix like 203.0.113.10/32 or 2001:db8::10/128 "
                         f"({exc})") from None
    if net.is_multicast or net.is_loopback or net.is_link_local or net.is_unspecified:
        raise ValueError(f"{net} cannot be announced as a service (it is not unicast space)")
    return net


def groups(s: Section, key: str, tracks: dict[str, TrackConfig],
           track_refs: TrackRefs) -> tuple[AnycastGroupConfig, ...]:
    """The ``anycast:`` list; names and prefixes are unique across groups."""
    items = s.items(key)
    if not items:
        raise s.error(key, "list at least one group, or remove `anycast:`")
    out = tuple(_group(Section(v), tracks, track_refs) for v in items)
    refuse_duplicates((v, g.name) for v, g in zip(items, out, strict=True))
    owners = [(Section(v).value("prefixes"), p) for v, g in zip(items, out, strict=True)
              for p in g.prefixes]
    refuse_duplicates(owners, "; a prefix belongs to one group")
    return out


def _group(g: Section, tracks: dict[str, TrackConfig],
           track_refs: TrackRefs) -> AnycastGroupConfig:
    items = g.items("prefixes")
    if not items:
        raise g.error("prefixes", "list at least one prefix to announce")
    prefixes = tuple(v.get(str, _prefix) for v in items)
    refuse_duplicates(zip(items, prefixes, strict=True))
    deprefer = Deprefer(g.take("deprefer", str, default(AnycastGroupConfig, "deprefer").value,
                               one_of(*(d.value for d in Deprefer))))
    refs = track_refs(g)
    if deprefer is Deprefer.PREPEND:
        for ref, v in zip(refs, g.items("track", required=False), strict=True):
            weight = tracks[ref.name].weight if ref.weight is None else ref.weight
            if abs(weight) > PREPEND_MAX:
                raise v.error(f"weight {weight} would prepend the AS {abs(weight)} times; with "
                              f"deprefer: prepend use weights of -{PREPEND_MAX}..{PREPEND_MAX}")
    if g.has("haproxy_socket"):
        for v, prefix in zip(items, prefixes, strict=True):
            if prefix.num_addresses > DRAIN_ADDRESSES_MAX:
                raise v.error(f"{prefix} holds {prefix.num_addresses} addresses; a drain "
                              f"(haproxy_socket) counts HAProxy's sessions per address, at "
                              f"most {DRAIN_ADDRESSES_MAX} per prefix: announce service "
                              f"addresses (/32, /128)")
    config = AnycastGroupConfig(
        name=g.take("name", str, check=check_name),
        prefixes=prefixes,
        track=refs,
        med=g.take("med", int, default(AnycastGroupConfig, "med"), in_range(0, MED_MAX - 1)),
        deprefer=deprefer,
        haproxy_socket=g.take("haproxy_socket", (str, type(None)), None, absolute_path),
        drain_timeout=g.take("drain_timeout", float,
                             default(AnycastGroupConfig, "drain_timeout"),
                             in_range(0, ANYCAST_DRAIN_TIMEOUT_MAX)),
        drain_withdraw=g.take("drain_withdraw", bool,
                              default(AnycastGroupConfig, "drain_withdraw")),
    )
    g.done()
    return config
