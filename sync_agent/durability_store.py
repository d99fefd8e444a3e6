"""Where durability classes live: one small object per folder on every node, and a copy in the catalog.

The nodes are the truth (every device and ``catalog rebuild`` read them there); the catalog keeps the last
records read so the writer and repair know them without a request. A folder's record is written to every
node that answers, and copied later to a node that missed it; when nodes disagree, the newest setting
wins, and a cleared class keeps its record, so a node that missed the clearing cannot bring the class back.
A class is never dropped because its record could not be read this time (its holder down): only a newer
clearing record ends it, so a node outage never trims a folder's copies.

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
    from sync_agent.node_client import NodeClient
    from sync_agent.pool_view import PoolView

log = logging.getLogger(__name__)
PREFIX = ".pooldrive/policy/"
META_KEY = "durability"


def record_key(folder: str) -> str:
    return PREFIX + hashlib.sha256(folder.encode()).hexdigest()[:40]


def _records(pool: PoolView) -> dict[str, tuple[float, Durability | None]]:
    """Every folder's newest record as last read: (when it was set, the class or None when cleared)."""
    raw = pool.catalog.get_meta(META_KEY)
    out: dict[str, tuple[float, Durability | None]] = {}
    for folder, r in (json.loads(raw) if raw else {}).items():
        d = None if r.get("copies") is None else Durability(int(r["copies"]), int(r["zones"]), folder,
                                                            float(r["set_at"]))
        out[folder] = (float(r["set_at"]), d)
    return out


def cached(pool: PoolView) -> dict[str, Durability]:
    """The classes as last read from the nodes (kept in the catalog)."""
    return {f: d for f, (_at, d) in _records(pool).items() if d is not None}


def _keep(pool: PoolView, records: dict[str, tuple[float, Durability | None]]) -> None:
    pool.catalog.set_meta(META_KEY, json.dumps(
        {f: {"copies": d.copies if d else None, "zones": d.zones if d else 1, "set_at": at}
         for f, (at, d) in sorted(records.items())}))


def fetch(pool: PoolView, *, spread: bool = True) -> dict[str, Durability]:
    """Read every answering node's class records and keep the newest setting of each folder. A folder
    whose record no node showed this time keeps what was known (a node that holds it may just be down):
    only a newer clearing record ends a class. Nodes that answered without the newest record of a folder
    get it written (a node that was down when the class was set; ``spread`` False: nothing is written). A
    node whose record of a folder could not be read or parsed (a timeout, a newer PoolDrive's format) is
    never written over when the read failed (it may hold the newest setting); one that does not parse is
    replaced. A record this device knows and no node showed (set while the others were down, its node
    gone since) is written out again."""
    records = _records(pool)
    bodies: dict[str, bytes] = {}
    seen: dict[str, dict[str, float]] = {}  # node -> folder -> set_at it holds
    unread: dict[str, set[str]] = {}  # node -> record keys it lists but that could not be read
    for node in list(pool.clients):
        if pool.health.is_down(node):
            continue
        client = pool.client(node)
        try:
            listed = [o.key for o in client.list(PREFIX)]
        except NodeError as e:
            log.info("durability classes: %s not listed (%s)", node, e.message)
            continue
        held = seen.setdefault(node, {})
        for key in listed:
            try:
                body = _read(client, key)
                folder, at, d = durability.decode(body)
            except NodeError as e:
                log.info("durability class %s on %s not read (%s)", key, node, e.message)
                unread.setdefault(node, set()).add(key)
                continue
            except ValueError as e:  # garbage at a record's key is replaced by the newest known record below
                log.warning("skipped a durability class record on %s (%s): %s", node, key, e)
                continue
            if key != record_key(folder):
                log.warning("skipped a durability class record on %s: %s does not belong to '%s'", node, key, folder)
                continue
            held[folder] = at
            if folder not in records or at > records[folder][0]:
                records[folder] = (at, d)
            if at >= records[folder][0]:
                bodies[folder] = body
    if seen:
        _keep(pool, records)
    for folder, (at, d) in records.items():  # known here but read from no node now: written out again
        if folder not in bodies:
            bodies[folder] = durability.encode(folder, d.copies if d else None, d.zones if d else 1, at,
                                               socket.gethostname())
    for node, held in seen.items() if spread else ():  # the newest records to answering nodes that miss them
        for folder, body in bodies.items():
            if held.get(folder, -1.0) < records[folder][0] and record_key(folder) not in unread.get(node, set()):
                try:
                    pool.client(node).put(record_key(folder), io.BytesIO(body), len(body), {},
                                          part_size=5 * 1024 * 1024)
                    log.info("durability class of '%s' copied to %s (it missed the last change)", folder, node)
                except NodeError as e:
                    log.info("durability class of '%s' not copied to %s: %s", folder, node, e.message)
    return {f: d for f, (_at, d) in records.items() if d is not None}


def _read(client: NodeClient, key: str) -> bytes:
    import urllib3  # here: 'pooldrive ls' loads this module and never reads a record

    resp = client.get(key)
    try:
        return resp.read(64 * 1024)
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise client.failure(e, f"reading '{key}'") from e
    finally:
        resp.close()
        resp.release_conn()


def store(pool: PoolView, folder: str, copies: int | None, zones: int = 1,
          on_node: Callable[[str, bool], None] | None = None) -> dict[str, Durability]:
    """Set (or with ``copies`` None clear) the class of ``folder`` on every node that answers; refuses a
    class the pool cannot meet. Returns the classes now in force."""
    folder = keys.normalize(folder)
    if copies is not None:
        why = durability.refusal(copies, zones, {n.name: n.zone for n in pool.cfg.nodes})
        if why:
            raise RefusedError(why, paths=[folder])
    fetch(pool)  # the newest time wins: a new setting is later than anything read (a clearing too)
    records = _records(pool)
    at = max(time.time(), records[folder][0] + 0.001 if folder in records else 0.0)
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
    now = None if copies is None else Durability(copies, zones, folder, at)
    records[folder] = (at, now)
    _keep(pool, records)
    log.info("durability class of '%s': %s", folder, now.describe() if now else "cleared")
    return {f: d for f, (_at, d) in records.items() if d is not None}


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
