"""What a node answers with, as plain data: listings, capacity, the timeouts a request waits for. Apart from
``node_client`` (which talks to the nodes through minio-py) so that modules that only read these, and
commands that never reach a node (``pooldrive ls`` reads the catalog), do not load the S3 library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Timeouts:
    connect: float = 3.0
    read: float = 20.0
    retries: int = 1
    # requests that have another way to go on when they fail (the one-request fast paths, which fall back to
    # the full path; the change journal's, which the next poll or another node covers) wait at most this long
    # (never more than ``read``): a frozen node costs a bulk download or a batch of uploads 3 s, not 20. As a
    # health probe's floor: a node silent that long is what the monitor calls failed.
    quick: float = 3.0

    @property
    def quick_read(self) -> float:
        return min(self.quick, self.read)


@dataclass(slots=True)
class RemoteObject:
    """One object (or one version of it) as a node lists it (slots: a full listing holds one per copy)."""

    key: str
    size: int
    last_modified: datetime | None
    version_id: str | None = None
    is_latest: bool = True
    is_delete_marker: bool = False
    etag: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    # what a scan made of ``meta`` (``metadata.ObjectMeta``, or why it was refused), kept in place of ``meta``:
    # a full listing of 100,000 files at R=2 held 200,000 metadata dicts, ~600 bytes each
    parsed: object = None


@dataclass
class Capacity:
    total: int
    used: int
    free: int

    @property
    def used_fraction(self) -> float:
        return self.used / self.total if self.total else 0.0


def http_error() -> type[Exception]:
    """urllib3's base error, for ``except`` clauses of modules that must not load urllib3 on import (the
    read path: 'pooldrive ls' imports it and reads nothing)."""
    from urllib3.exceptions import HTTPError

    return HTTPError
