"""The sync bundle: the listed files, their SHA-256 manifest and a generation number (sans I/O).

Wire form of a bundle (inside one transport frame, see :mod:`vrrpd.configsync.transport`)::

    +----------------+---------------------------+----------------------------+
    | u32 header len | header (JSON, UTF-8)      | file bodies, concatenated  |
    +----------------+---------------------------+----------------------------+

    header = {"generation": 7, "files": [{"name": "haproxy.cfg", "size": 1234,
                                          "sha256": "..."}, ...]}

A file travels under its *name* (the last component of its listed path), so two peers may keep
the files in different directories (two lab nodes share one file system); names are unique
among the listed files.  :func:`decode` trusts nothing: every name must be the name of one of
the receiver's own listed files (no ``/``, no ``..``), every size within ``max_file_size`` and
every body must hash to its manifest entry.  The *manifest hash* names a set of contents
independent of the generation: two nodes holding the same files have the same manifest hash.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HEADER_LEN = struct.Struct("!I")
MAX_HEADER = 64 * 1024


class BundleError(Exception):
    """A bundle that must not be applied; the message says why."""


@dataclass(frozen=True)
class Bundle:
    """The whole set of listed files at one generation."""

    generation: int
    files: tuple[tuple[str, bytes], ...]  # (name, content), in configured order

    def manifest(self) -> dict[str, str]:
        return manifest_of(self.files)

    def manifest_hash(self) -> str:
        return manifest_hash(self.manifest())


def manifest_of(files: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    """``{name: sha256 hex}`` of file contents."""
    return {path: hashlib.sha256(data).hexdigest() for path, data in files}


def manifest_hash(manifest: Mapping[str, str]) -> str:
    """One SHA-256 over the sorted ``sha256  name`` lines (``sha256sum`` style)."""
    lines = "".join(f"{digest}  {path}\n" for path, digest in sorted(manifest.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def encode(bundle: Bundle) -> bytes:
    header = {"generation": bundle.generation,
              "files": [{"name": name, "size": len(data),
                         "sha256": hashlib.sha256(data).hexdigest()}
                        for name, data in bundle.files]}
    raw = json.dumps(header, separators=(",", ":")).encode()
    return HEADER_LEN.pack(len(raw)) + raw + b"".join(data for _, data in bundle.files)


def check_name(name: object, allowed: Iterable[str]) -> str:
    """``name`` if it is exactly one of the ``allowed`` file names, else :class:`BundleError`.

    A path (absolute or with ``/``) or ``..`` is refused whatever the list says; symlinks are
    the applier's business (only the file system can tell).
    """
    if not isinstance(name, str) or "/" in name or "\0" in name:
        raise BundleError(f"refused file {name!r}: a path, not a listed file name")
    if name in ("", ".", ".."):
        raise BundleError(f"refused file {name!r}: '.' or '..'")
    if name not in set(allowed):
        raise BundleError(f"refused file {name!r}: not one of the listed sync files")
    return name


def decode(payload: bytes, allowed: Iterable[str], max_file_size: int) -> Bundle:
    """Parse and check a bundle against this node's listed file names and size limit."""
    allowed = tuple(allowed)
    if len(payload) < HEADER_LEN.size:
        raise BundleError("truncated bundle")
    (hlen,) = HEADER_LEN.unpack_from(payload)
    if hlen > MAX_HEADER or HEADER_LEN.size + hlen > len(payload):
        raise BundleError("bad bundle header length")
    try:
        header = json.loads(payload[HEADER_LEN.size:HEADER_LEN.size + hlen])
        generation = header["generation"]
        entries = header["files"]
    except (ValueError, KeyError, TypeError):
        raise BundleError("malformed bundle header") from None
    if not isinstance(generation, int) or generation < 1 or not isinstance(entries, list):
        raise BundleError("malformed bundle header")
    offset = HEADER_LEN.size + hlen
    files: list[tuple[str, bytes]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise BundleError("malformed bundle header")
        path = check_name(entry.get("name"), allowed)
        size = entry.get("size")
        if not isinstance(size, int) or size < 0:
            raise BundleError(f"{path}: bad size")
        if size > max_file_size:
            raise BundleError(f"{path}: {size} bytes is over max_file_size ({max_file_size})")
        data = payload[offset:offset + size]
        offset += size
        if len(data) != size:
            raise BundleError(f"{path}: truncated")
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise BundleError(f"{path}: content does not match its manifest SHA-256")
        files.append((path, data))
    if offset != len(payload):
        raise BundleError("trailing bytes after the last file")
    if sorted(p for p, _ in files) != sorted(allowed):
        raise BundleError("the bundle does not carry exactly the listed sync files "
                          f"(got {sorted(p for p, _ in files)}, want {sorted(allowed)})")
    return Bundle(generation, tuple(files))
