"""Holders that disagree are brought back in line with the pool's current version.

The rule (also in README, "Two devices, one file"): the current content of a key is the newest entry across
all nodes, two versions of one file ordered by their version numbers and anything else by when it was
written (``rebuild._later``); every device and every rebuild applies the same rule to the same listings,
so they agree. A node that holds a copy of that current version must also report it as its own newest
entry at the key, or a reader asking that node directly (another S3 tool, a recipient's key, an older
PoolDrive) would get something else. It can fail to when a copy of an older version was put on top of it
(a repair or drain copy made while a new version was being written), or when a write was undone on some
nodes and not others.

Such a node gets its own copy of the current version restated on top: a server-side copy of that version
onto the key, as a compare-and-swap on what is newest there now. The older entry stays below it as a
version, so nothing is lost, and two devices fixing the same node at once make one copy, not two.

A node that holds no copy of the current version is not a holder: its older entry is history, and the
rule already ranks it below the current one. It is left as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sync_agent import metadata
from sync_agent.errors import NodeError, PreconditionFailed
from sync_agent.node_types import RemoteObject

if TYPE_CHECKING:
    from sync_agent.pool_view import PoolView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Disagreement:
    """``node`` holds version ``number`` of file ``file_id`` (S3 version ``version_id``) but reports ``there``
    as its newest entry at ``key``."""

    key: str
    node: str
    file_id: str
    number: int
    version_id: str | None
    there: RemoteObject


def find(live: Iterable[tuple[str, str, int, Mapping[str, str | None]]],
         latest: Mapping[tuple[str, str], RemoteObject]) -> list[Disagreement]:
    """The holders of each live file's current version whose newest entry is something else (pure).

    ``live``: (key, file id, current version number, node -> S3 version id of its copy);
    ``latest``: (node, key) -> the node's newest entry.
    """
    out = []
    for key, file_id, number, replicas in live:
        for node, vid in sorted(replicas.items()):
            there = latest.get((node, key))
            if there is None or there.version_id == vid:
                continue
            if not there.is_delete_marker:
                m = metadata.of_object(there)
                if not isinstance(m, str) and m.file_id == file_id and m.version == number:
                    continue  # the same version restated already (its newest copy counts)
            out.append(Disagreement(key, node, file_id, number, vid, there))
    return out


def restate(pool: PoolView, found: list[Disagreement]) -> int:
    """Put each holder's own copy of the current version back on top; returns how many were restated."""
    done = 0
    for d in found:
        client = pool.client(d.node)
        expected: str | None = None if d.there.is_delete_marker else d.there.etag
        try:  # its metadata read now, for the few that disagree (a scan keeps no per-version index)
            mine = client.stat(d.key, d.version_id)
            vid, _ = client.copy_if(d.key, d.version_id, mine.meta, if_match=expected)
        except PreconditionFailed:
            log.info("'%s' on %s changed while it was being brought in line; the next refresh looks again",
                     d.key, d.node)
            continue
        except NodeError as e:
            log.info("could not bring '%s' on %s in line with the other copies yet: %s", d.key, d.node,
                     e.message)
            continue
        pool.catalog.add_replica(d.file_id, d.number, d.node, vid)
        log.warning("'%s' on %s reported an older entry as its newest; its copy of version %d was put back "
                    "on top (the older one stays as a version)", d.key, d.node, d.number)
        done += 1
    return done
