"""Reading PoolDrive's object metadata (``x-amz-meta-pd-*``) from the nodes: untrusted input.

Anyone who can write to the bucket (a read-write share recipient, another S3 tool, an older PoolDrive)
can put any metadata on an object, so every field is validated here, in one place, and an object whose
metadata does not parse is skipped and reported, never fatal. ``parse`` never raises.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from sync_agent.node_types import RemoteObject

_FILE_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_VERSION = 2**31 - 1
MAX_SIZE = 2**53


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    file_id: str
    version: int
    sha256: str
    size: int
    mtime: float
    written: float | None


class BadMetadata(ValueError):
    """Why an object's metadata was refused (in words, for the report)."""


def _number(meta: dict[str, str], name: str, lo: float, hi: float, *, integer: bool) -> float | int:
    raw = meta.get(name)
    if raw is None:
        raise BadMetadata(f"no '{name}'")
    if len(raw) > 32:
        raise BadMetadata(f"'{name}' is too long")
    try:
        value: float | int = int(raw) if integer else float(raw)
    except ValueError:
        raise BadMetadata(f"'{name}' is not a number: {raw[:20]!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise BadMetadata(f"'{name}' is not finite")
    if not lo <= value <= hi:
        raise BadMetadata(f"'{name}' is out of range: {raw[:20]!r}")
    return value


def has_ours(meta: dict[str, str]) -> bool:
    """Whether an object claims to be PoolDrive's at all (else it is adopted as a foreign object)."""
    return "file-id" in meta


def parse(meta: dict[str, str]) -> ObjectMeta:
    """Validate every field; raises ``BadMetadata`` naming the first bad one."""
    fid = meta.get("file-id", "")
    if not _FILE_ID.match(fid):
        raise BadMetadata(f"'file-id' is not a PoolDrive file id: {fid[:40]!r}")
    sha = meta.get("sha256", "")
    if not _SHA256.match(sha):
        raise BadMetadata("'sha256' is not a SHA-256 digest")
    version = int(_number(meta, "version", 1, MAX_VERSION, integer=True))
    size = int(_number(meta, "size", 0, MAX_SIZE, integer=True))
    mtime = float(_number(meta, "mtime", -1e11, 1e11, integer=False))
    written = float(_number(meta, "written", 0, 1e11, integer=False)) if "written" in meta else None
    return ObjectMeta(fid, version, sha, size, mtime, written)


def try_parse(meta: dict[str, str]) -> ObjectMeta | str:
    """The parsed metadata, or the reason it was refused."""
    try:
        return parse(meta)
    except BadMetadata as e:
        return str(e)


def of_object(o: RemoteObject) -> ObjectMeta | str:
    """An object's metadata, parsed: what a scan parsed already, else parsed now."""
    if o.parsed is not None:
        return cast("ObjectMeta | str", o.parsed)
    return try_parse(o.meta)


NO_META: dict[str, str] = {}  # what a scanned object's ``meta`` becomes once parsed (shared: never written)


def slim(o: RemoteObject, shared: dict) -> RemoteObject:
    """Keep a listed object small for a scan that holds every copy in the pool at once: its metadata parsed
    once and its ``meta`` dropped, and what its copies on other nodes carry alike (the key, the ETag of a
    whole-object upload, the parsed metadata) held once. ``shared`` is the scan's table of those; an object
    written by another tool keeps its ``meta`` (adopting it reads it)."""
    if o.is_delete_marker or not has_ours(o.meta):
        return o
    got = try_parse(o.meta)
    o.parsed = shared.setdefault(got, got)
    if not isinstance(got, str):
        o.meta = NO_META
    o.key = shared.setdefault(o.key, o.key)
    o.etag = shared.setdefault(o.etag, o.etag)
    return o


def object_meta(file_id: str, number: int, sha256: str, size: int, mtime: float,
                written: float | None = None) -> dict[str, str]:
    """What every replica carries so the catalog can be rebuilt from the nodes alone.

    ``written`` is when this version was created; copies made later (repair, rebalance) keep it, so the
    newest version of a key is known whatever order the nodes received their copies in.
    """
    return {"sha256": sha256, "size": str(size), "mtime": f"{mtime:.6f}", "file-id": file_id,
            "version": str(number), "written": f"{time.time() if written is None else written:.6f}"}
