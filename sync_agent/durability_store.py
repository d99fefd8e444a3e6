"""Where durability classes live: one small object per folder on every node, and a copy in the catalog.

The nodes are the truth (every device and ``catalog rebuild`` read them there); the catalog keeps the last
classes read so the writer and repair know them without a request. A folder's record is written to every
node that answers; when nodes disagree (one missed a change while down), the newest setting wins, and a
cleared class keeps its record, so a node that missed the clearing cannot bring the class back.

Records are untrusted input: one that does not parse is skipped and logged, never fatal. A share
recipient's key cannot write here (its policy covers only the shared folder).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sync_agent import durability, keys
from sync_agent.durability import Durability
from sync_agent.errors import NodeError, QuorumError, RefusedError

if TYPE_CHECKING:
    from sync_agent.pool_view import PoolView

log = logging.getLogger(__name__)
PREFIX = ".pooldrive/policy/"
META_KEY = "durability"


def record_key(folder: str) -> str:
    return PREFIX + hashlib.sha256(folder.encode()).hexdigest()[:40]


def cached(pool: PoolView) -> dict[str, Durability]:
    """The classes as last read from the nodes (kept in the catalog)."""
    raw = pool.catalog.get_meta(META_KEY)
    out: dict[str, Durability] = {}
    for folder, r in (json.loads(raw) if raw else {}).items():
        out[folder] = Durability(int(r["copies"]), int(r["zones"]), folder, float(r["set_at"]))
    return out


def _keep(pool: PoolView, classes: dict[str, Durability]) -> None:
    pool.catalog.set_meta(META_KEY, json.dumps(
        {f: {"copies": d.copies, "zones": d.zones, "set_at": d.set_at} for f, d in sorted(classes.items())}))


def fetch(pool: PoolView) -> dict[str, Durability]:
    """Read every node's class records; the newest setting of each folder wins. Kept in the catalog when at
    least one node answered (else the catalog's are returned)."""
    newest: dict[str, tuple[float, Durability | None]] = {}
    answered = 0
    for node in list(pool.clients):
        if pool.health.is_down(node):
            continue
        client = pool.client(node)
        try:
            listed = [o.key for o in client.list(PREFIX)]
            answered += 1
        except NodeError as e:
            log.info("durability classes: %s not listed (%s)", node, e.message)
            continue
        for key in listed:
            try:
                resp = client.get(key)
                try:
                    body = resp.read(64 * 1024)
                finally:
                    resp.close()
                    resp.release_conn()
                folder, at, d = durability.decode(body)
            except NodeError as e:
                log.info("durability class %s on %s not read (%s)", key, node, e.message)
                continue
            except ValueError as e:
                log.warning("skipped a durability class record on %s (%s): %s", node, key, e)
                continue
            if key != record_key(folder):
                log.warning("skipped a durability class record on %s: %s does not belong to '%s'", node, key, folder)
                continue
            if folder not in newest or at > newest[folder][0]:
                newest[folder] = (at, d)
    if not answered:
        return cached(pool)
    classes = {f: d for f, (_at, d) in newest.items() if d is not None}
    _keep(pool, classes)
    return classes


def store(pool: PoolView, folder: str, copies: int | None, zones: int = 1,
          on_node: Callable[[str, bool], None] | None = None) -> dict[str, Durability]:
    """Set (or with ``copies`` None clear) the class of ``folder`` on every node that answers; refuses a
    class the pool cannot meet. Returns the classes now in force."""
    folder = keys.normalize(folder)
    if copies is not None:
        why = durability.refusal(copies, zones, {n.name: n.zone for n in pool.cfg.nodes})
        if why:
            raise RefusedError(why, paths=[folder])
    current = fetch(pool)  # the newest time wins: a new setting is later than anything read
    at = max([time.time()] + [d.set_at + 0.001 for d in current.values() if d.folder == folder])
    body = durability.encode(folder, copies, zones, at, socket.gethostname())
    written = 0
    for node in list(pool.clients):
        ok = False
        if not pool.health.is_down(node):
            try:
                pool.client(node).put(record_key(folder), io.BytesIO(body), len(body), {}, part_size=5 * 1024 * 1024)
                ok = True
                written += 1
            except NodeError as e:
                log.warning("durability class of '%s' not written to %s: %s", folder, node, e.message)
        if on_node is not None:
            on_node(node, ok)
    if not written:
        raise QuorumError(f"No node could take the durability class of '{folder}'; nothing changed.",
                          paths=[folder])
    if copies is None:
        current.pop(folder, None)
    else:
        current[folder] = Durability(copies, zones, folder, at)
    _keep(pool, current)
    log.info("durability class of '%s': %s", folder,
             "cleared" if copies is None else current[folder].describe())
    return current


@dataclass(frozen=True)
class ClassReport:
    """How the files under a folder stand against their classes (from the catalog: what the nodes held at
    the last look)."""

    folder: str
    want: Durability  # the class in force at the folder itself
    files: int
    meeting: int  # files whose verified copies meet their class (count and zones)
    short: list[str]  # some of those that do not

    @property
    def met(self) -> bool:
        return self.meeting == self.files


def compliance(pool: PoolView, folder: str, *, examples: int = 20) -> ClassReport:
    folder = keys.normalize(folder, allow_root=True)
    zones = {n.name: n.zone for n in pool.cfg.nodes}
    files = meeting = 0
    short: list[str] = []
    for f in pool.catalog.walk(keys.normalize_dir(folder)):
        if f.current is None:
            continue
        files += 1
        if durability.meets(f.current.ok_nodes(), zones, pool.durability(f.path)):
            meeting += 1
        elif len(short) < examples:
            short.append(f.path)
    return ClassReport(folder, pool.durability(folder) if folder else Durability(pool.cfg.replicas),
                       files, meeting, short)
