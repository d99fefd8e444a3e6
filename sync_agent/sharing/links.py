"""File links: pre-signed download URLs, one per node holding a copy, so a link survives a dead node."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sync_agent import keys
from sync_agent.errors import ConfigError, NodeError, NoReplicaError

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)

MAX_LINK = timedelta(days=7)  # S3 signatures (and so MinIO) cap pre-signed URLs at 7 days


def file_links(pool: Pool, path: str, expires: timedelta = timedelta(hours=24)) -> list[tuple[str, str]]:
    """(node, URL) for every verified copy of the current version of ``path``."""
    if expires > MAX_LINK:
        raise ConfigError("Links can last at most 7 days: S3 signatures, and so MinIO, refuse longer ones. "
                          "Share the folder instead for longer access.")
    if expires.total_seconds() < 1:
        raise ConfigError("A link must last at least one second.")
    info = pool.catalog.require(keys.normalize(path))
    assert info.current is not None
    out = []
    for node in info.current.ok_nodes():
        try:
            url = pool.client(node).presign_get(info.current.key, info.current.replicas_version(node), expires)
        except NodeError:
            continue
        out.append((node, url))
    if not out:
        raise NoReplicaError(f"No node holding '{path}' could sign a link.", paths=[path])
    return out
