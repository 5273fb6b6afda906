"""Unit tests of the sync bundle: manifest, wire form and what a receiver refuses (sans I/O)."""

from __future__ import annotations

import hashlib

import pytest

from vrrpd.configsync.bundle import Bundle, BundleError, decode, encode, manifest_hash

CFG = "haproxy.cfg"
MAP = "hosts.map"
ALLOWED = (CFG, MAP)


def bundle(generation: int = 3) -> Bundle:
    return Bundle(generation, ((CFG, b"global\n"), (MAP, b"a b\n")))


def test_round_trip_keeps_generation_content_and_manifest() -> None:
    b = bundle()
    again = decode(encode(b), ALLOWED, 1024)
    assert again == b
    assert again.manifest() == {CFG: hashlib.sha256(b"global\n").hexdigest(),
                                MAP: hashlib.sha256(b"a b\n").hexdigest()}


def test_manifest_hash_names_contents_not_generation_or_order() -> None:
    """Two nodes holding the same files have the same manifest hash."""
    a = Bundle(1, ((CFG, b"x"), (MAP, b"y")))
    b = Bundle(9, ((MAP, b"y"), (CFG, b"x")))
    assert a.manifest_hash() == b.manifest_hash() == manifest_hash(a.manifest())
    assert Bundle(1, ((CFG, b"x"), (MAP, b"z"))).manifest_hash() != a.manifest_hash()


@pytest.mark.parametrize("path, reason", [
    ("/etc/haproxy/haproxy.cfg", "a path, not a listed file name"),
    ("../haproxy.cfg", "a path"),
    ("..", "'..'"),
    ("shadow", "not one of the listed"),
])
def test_paths_outside_the_listed_files_are_refused(path: str, reason: str) -> None:
    evil = Bundle(3, ((path, b"root::0:0\n"), (MAP, b"")))
    with pytest.raises(BundleError, match=reason):
        decode(encode(evil), ALLOWED, 1024)


def test_file_over_max_file_size_is_refused() -> None:
    with pytest.raises(BundleError, match="over max_file_size"):
        decode(encode(Bundle(1, ((CFG, b"x" * 101), (MAP, b"")))), ALLOWED, 100)


def test_tampered_content_does_not_match_manifest() -> None:
    raw = bytearray(encode(bundle()))
    raw[-1] ^= 1
    with pytest.raises(BundleError, match="does not match its manifest"):
        decode(bytes(raw), ALLOWED, 1024)


def test_truncated_bundle_is_refused() -> None:
    raw = encode(bundle())
    for cut in (2, 10, len(raw) - 1):
        with pytest.raises(BundleError):
            decode(raw[:cut], ALLOWED, 1024)


def test_a_bundle_must_carry_every_listed_file() -> None:
    with pytest.raises(BundleError, match="exactly the listed"):
        decode(encode(Bundle(1, ((CFG, b"x"),))), ALLOWED, 1024)


def test_generation_must_be_positive() -> None:
    with pytest.raises(BundleError, match="malformed"):
        decode(encode(bundle(0)), ALLOWED, 1024)
