"""Repair, rebalance, drain and scrub: keep every file at R verified copies (or its folder's durability
class), without a person stepping in.

Each run plans per file (``replica_plan``), copies first, re-checks, and only then trims. Every step is
idempotent and intent-protected, so a run killed at any point is simply run again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import urllib3

from sync_agent import durability, keys, writer
from sync_agent.catalog.models import ReplicaState
from sync_agent.catalog.store import VersionInfo
from sync_agent.durability import Durability
from sync_agent.errors import (
    AuthError,
    NodeError,
    NodeFullError,
    NodeUnreachableError,
    ObjectMissingError,
    PoolDriveError,
)
from sync_agent.placement import Health, placement, rank_nodes
from sync_agent.replica_plan import NodeFacts, RepairMode, ReplicaPlan, VersionFacts, plan_version
from sync_agent.replication import copy_replica, recover_replication_intents, trim_replica
from sync_agent.transfer import RateLimiter, drain_hash

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sync_agent.pool import Pool


@dataclass
class Report:
    mode: str
    files: int = 0
    copies_made: int = 0
    copies_removed: int = 0
    bytes_copied: int = 0
    seconds: float = 0.0
    planned: dict[str, dict[str, int]] = field(default_factory=dict)  # node -> {"in": n, "out": n, "bytes": b}
    unrecoverable: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)  # scrub: (path, node)
    checked: int = 0  # scrub: copies read back

    def _count(self, node: str, key: str, n: int = 1) -> None:
        self.planned.setdefault(node, {"in": 0, "out": 0, "bytes": 0})[key] += n


@dataclass
class Work:
    file_id: str
    path: str
    version: VersionInfo
    plan: ReplicaPlan


def node_facts(pool: Pool, lost: set[str] | None) -> NodeFacts:
    down = {n for n in pool.clients if pool.health.state(n) == Health.DOWN}
    return NodeFacts(replicas=pool.cfg.replicas, lost=lost or set(), down=down,
                     draining=pool.catalog.draining_nodes(), writable=set(pool.writable_nodes()), zones=pool.zones())


def _facts(pool: Pool, path: str, v: VersionInfo, draining: set[str]) -> VersionFacts:
    specs = pool.specs()
    active = [s for s in specs if s.name not in draining]
    want = pool.durability(path)
    return VersionFacts(path=path, holders=v.ok_nodes(),
                        bad=[r.node for r in v.replicas if r.state != ReplicaState.OK],
                        ranking=rank_nodes(v.key, specs, want.copies),
                        ideal=placement(v.key, active, want.copies), want=want)


def plan(pool: Pool, mode: RepairMode, *, lost: set[str] | None = None, node: str | None = None,
         prefix: str = "") -> list[Work]:
    """``prefix``: only the files under this folder (a class just changed there)."""
    pool.refresh_health(max_age=0)
    nodes = node_facts(pool, lost)
    draining = set(nodes.draining)
    if mode == RepairMode.DRAIN:
        items: Iterable[tuple[str, str, VersionInfo]] = pool.catalog.versions_with_replica_on(node or "")
    else:  # page by page, keeping only the files with work: flat memory at any size
        items = ((f.id, f.path, f.current) for f in pool.catalog.walk_pages(keys.normalize_dir(prefix))
                 if f.current is not None)
    out = []
    for fid, path, v in items:
        p = plan_version(_facts(pool, path, v, draining), nodes, mode)
        if not p.empty or p.unrecoverable:
            out.append(Work(fid, path, v, p))
    return out


def execute(pool: Pool, work: list[Work], mode: RepairMode, *, lost: set[str] | None = None, dry_run: bool = False,
            parallel: int = 4,
            limiter: RateLimiter | None = None, on_file: Callable[[Work, str | None], None] | None = None
            ) -> Report:
    report = Report(mode.value, files=len(work))
    start = time.monotonic()
    if pool.cfg.is_share:  # a recipient never removes copies: the owner's classes are not its to read
        for w in work:
            w.plan.trim = []
    lock = threading.Lock()
    for w in work:
        if w.plan.unrecoverable:
            report.unrecoverable.append(w.path)
        for n in w.plan.copy_to:
            report._count(n, "in")
            report._count(n, "bytes", w.version.size)
        for n in w.plan.trim:
            report._count(n, "out")
    if dry_run:
        return report
    recover_replication_intents(pool)

    def one(w: Work) -> None:
        err = None
        try:
            for dest in w.plan.copy_to:
                copy_replica(pool, w.file_id, w.version, dest, limiter=limiter)
                with lock:
                    report.copies_made += 1
                    report.bytes_copied += w.version.size
            # re-read what is verified now, and never let the good copies drop below R
            fresh = next((v for v in pool.catalog.versions_by_id(w.file_id) if v.number == w.version.number), None)
            if fresh is not None:
                facts = node_facts(pool, lost)
                want = pool.durability(w.path)
                good = [n for n in fresh.ok_nodes() if n not in facts.lost and n not in facts.draining]
                for node in w.plan.trim:
                    if node in facts.down:
                        continue
                    if node in good:
                        rest = [n for n in good if n != node]
                        if len(rest) < want.copies or \
                                durability.spanned(rest, facts.zones) < min(want.zones, durability.spanned(good,
                                                                                                         facts.zones)):
                            continue
                        good.remove(node)
                    elif node in fresh.ok_nodes():  # a draining or misplaced copy
                        if len(good) < want.copies:
                            continue
                    elif not good:  # a bad copy: drop it once one good copy exists
                        continue
                    trim_replica(pool, w.file_id, fresh, node)
                    with lock:
                        report.copies_removed += 1
        except PoolDriveError as e:
            err = e.message
            with lock:
                report.errors.append((w.path, e.message))
        if on_file is not None:
            on_file(w, err)

    with ThreadPoolExecutor(max(1, parallel)) as ex:
        list(ex.map(one, [w for w in work if not w.plan.unrecoverable]))
    report.seconds = time.monotonic() - start
    return report


def run(pool: Pool, mode: RepairMode, *, lost: set[str] | None = None, node: str | None = None, dry_run: bool = False,
        parallel: int = 4, limiter: RateLimiter | None = None, prefix: str = "",
        on_file: Callable[[Work, str | None], None] | None = None,
        on_plan: Callable[[list[Work]], None] | None = None) -> Report:
    """``on_plan``: told the work before it starts (a progress bar's total)."""
    from sync_agent.namespace import retry_pending_deletes

    if not dry_run:
        retry_pending_deletes(pool)
    _read_classes(pool, spread=not dry_run)
    work = plan(pool, mode, lost=lost, node=node, prefix=prefix)
    if on_plan is not None:
        on_plan(work)
    return execute(pool, work, mode, lost=lost, dry_run=dry_run, parallel=parallel, limiter=limiter, on_file=on_file)


def _read_classes(pool: Pool, *, spread: bool = True) -> None:
    """The classes as the nodes hold them now (a class set from another device since this catalog last
    looked must not be trimmed back to R); a class whose record cannot be read stays as last known."""
    try:
        pool.fetch_classes(spread=spread)
    except PoolDriveError as e:
        log.info("durability classes not read now (the last known ones count): %s", e.message)


def drain(pool: Pool, node: str, *, parallel: int = 4,
          on_progress: Callable[[int, int], None] | None = None) -> Report:
    """Move every copy (all versions) off ``node``; new files already avoid it. ``on_progress(done, total)``
    after each version moved (from worker threads)."""
    from sync_agent.catalog.models import NodeState
    from sync_agent.namespace import retry_pending_deletes

    pool.cfg.node(node)
    pool.catalog.set_node_state(node, NodeState.DRAINING)
    retry_pending_deletes(pool)
    _read_classes(pool)
    work = plan(pool, RepairMode.DRAIN, node=node)
    done = [0]
    lock = threading.Lock()

    def one_done(_w: Work, _err: str | None) -> None:
        with lock:
            done[0] += 1
            n = done[0]
        if on_progress is not None:
            on_progress(n, len(work))

    if on_progress is not None:
        on_progress(0, len(work))
    return execute(pool, work, RepairMode.DRAIN, parallel=parallel, on_file=one_done)


def undrain(pool: Pool, node: str) -> None:
    """Take a node back into service after a drain (new copies may go to it again; 'rebalance' moves
    existing files back)."""
    from sync_agent.catalog.models import NodeState

    pool.cfg.node(node)
    pool.catalog.set_node_state(node, NodeState.ACTIVE)
    log.info("%s is active again (undrained)", node)


def _read_back(pool: Pool, node: str, v: VersionInfo) -> str | None:
    """The SHA-256 of the copy on ``node``, or None when the node could not serve it (object-level).

    A body cut off midway is either a dropped link or MinIO's own bit-rot check stopping the stream, and
    only the second says anything about the copy: the node is asked again, and the copy counts as bad
    only if the node is up and the second read breaks too."""
    for attempt in range(2):
        resp = pool.client(node).get(v.key, v.replicas_version(node))
        try:
            return drain_hash(resp)[0]
        except (urllib3.exceptions.HTTPError, OSError) as e:
            log.info("reading back %s on %s broke off (%s)%s", v.key, node, type(e).__name__,
                     "" if attempt else "; asking again")
            pool.probe(node)
            if pool.health.is_down(node):
                raise NodeUnreachableError(f"{node} went away while its copy of '{v.key}' was read back.",
                                           node=node) from e
    return None


def scrub(pool: Pool, *, sample: float = 1.0, repair: bool = True, parallel: int = 4, prefix: str = "",
          seed: int | None = None, on_file: Callable[[str], None] | None = None) -> Report:
    """Read copies back and check them against the stored SHA-256; mark bad ones and repair (the files
    under ``prefix``, '' for all)."""
    report = Report("scrub")
    start = time.monotonic()
    rng = random.Random(seed)
    files = [f for f in pool.catalog.walk(keys.normalize_dir(prefix))
             if f.current is not None and (sample >= 1 or rng.random() < sample)]
    report.files = len(files)
    lock = threading.Lock()

    def one(f) -> None:
        v = f.current
        for node in v.ok_nodes():
            if pool.health.is_down(node):
                continue
            try:
                got = _read_back(pool, node, v)
            except ObjectMissingError:
                got = "missing"
            except (NodeUnreachableError, AuthError, NodeFullError) as e:
                with lock:
                    report.errors.append((f.path, f"{node}: {e.message}"))
                continue
            except NodeError:
                got = None  # the node refused to serve this object (its own bit-rot check failed)
            with lock:
                report.checked += 1
            if got != v.sha256:
                state = ReplicaState.MISSING if got == "missing" else ReplicaState.CORRUPT
                pool.catalog.set_replica_state(f.path, v.number, node, state)
                with lock:
                    report.corrupt.append((f.path, node))
        if on_file is not None:
            on_file(f.path)

    with ThreadPoolExecutor(max(1, parallel)) as ex:
        list(ex.map(one, files))
    if repair and report.corrupt:
        fixed = run(pool, RepairMode.REPAIR, parallel=parallel, prefix=prefix)
        report.copies_made, report.copies_removed = fixed.copies_made, fixed.copies_removed
        report.bytes_copied, report.errors = fixed.bytes_copied, report.errors + fixed.errors
        report.unrecoverable = fixed.unrecoverable
    report.seconds = time.monotonic() - start
    return report


class RepairLoop:
    """Background repair: nodes down longer than ``grace`` count as lost; runs every ``interval`` seconds
    and right after a node comes back (to drop the surplus copies made meanwhile) or a read finds a bad
    copy. Each round also settles the writes whose answer from a node was lost (``writer.settle_watched``).
    In an agent its first round waits for the first sync pass (see ``__init__``)."""

    def __init__(self, pool: Pool, *, grace: float = 600.0, interval: float = 3600.0, parallel: int = 2,
                 bandwidth: float = 0, first_delay: float = 0.0, ready: Callable[[], bool] | None = None) -> None:
        """The first round waits until ``ready()`` (checked each second) or ``first_delay`` seconds have
        passed, whichever comes first. A round reads every file of the catalog (at 100,000 files, seconds
        of CPU): an agent that just started gives them to its first sync pass."""
        self.pool, self.grace, self.interval, self.parallel = pool, grace, interval, parallel
        self.first_delay, self.ready = first_delay, ready
        self.class_poll = 60.0  # seconds between looks at the durability classes on the nodes
        self.limiter = RateLimiter(bandwidth)
        self.last: Report | None = None
        # told the files a round found with no good copy anywhere; returns those it put back (from a device)
        self.on_lost: Callable[[list[str]], list[str]] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe = pool.health.subscribe(lambda ev: self._wake.set() if ev.new == Health.UP else None)
        pool.damage_listeners.append(self._wake.set)  # a copy found bad is replaced now, not within the hour

    def run_once(self) -> Report:
        settled = writer.settle_watched(self.pool)  # copies whose answer was lost, waited for long enough
        if settled:
            log.info("looked for copies of %d write(s) whose answer was lost: none is left unrecorded", settled)
        self.last = run(self.pool, RepairMode.REPAIR, lost=self.pool.health.lost(self.grace), parallel=self.parallel,
                        limiter=self.limiter)
        if self.last.unrecoverable and self.on_lost is not None:
            back = set(self.on_lost(list(self.last.unrecoverable)))
            self.last.unrecoverable = [p for p in self.last.unrecoverable if p not in back]
        return self.last

    def _wait_first(self) -> bool:
        """False when stopped meanwhile."""
        deadline = time.monotonic() + self.first_delay
        while (left := deadline - time.monotonic()) > 0 and not (self.ready is not None and self.ready()):
            if self._stop.wait(min(1.0, left)):
                return False
        self._wake.clear()  # whatever woke it meanwhile (a node coming up, a bad copy), the first round covers
        return not self._stop.is_set()

    def _loop(self) -> None:
        if not self._wait_first():
            return
        while not self._stop.is_set():
            try:
                report = self.run_once()
                if report.copies_made or report.copies_removed or report.errors:
                    log.info("background repair: %d copies made, %d removed, %d errors", report.copies_made,
                             report.copies_removed, len(report.errors))
            except PoolDriveError as e:  # the next round tries again; per-file errors are in the report
                log.warning("background repair round failed: %s", e.message)
            except Exception:  # never the end of the background repair (a folder pair removed mid-round...)
                log.exception("background repair round failed unexpectedly; the next round tries again")
            lost_soon = [time.monotonic() - self.pool.health.get(n).down_since for n in self.pool.clients
                         if self.pool.health.is_down(n)]
            wait = self.interval
            if lost_soon:  # wake up when the first down node passes the grace period
                wait = min(wait, max(0.5, min(self.grace - age for age in lost_soon) + 0.1))
            deadline = time.monotonic() + wait
            while not self._wake.wait(max(0.0, min(self.class_poll, deadline - time.monotonic()))):
                if time.monotonic() >= deadline or self._classes_changed():
                    break
            self._wake.clear()

    def _classes_changed(self) -> bool:
        """Whether a durability class was set or cleared (from any device) since the last look: its folder
        is brought to it now, not at the next hourly round. One small listing per node."""
        def counts(classes: dict[str, Durability]) -> dict[str, tuple[int, int]]:
            return {f: (d.copies, d.zones) for f, d in classes.items()}

        before = counts(self.pool.classes())
        try:
            after = counts(self.pool.fetch_classes())
        except Exception as e:  # never the end of the repair loop
            log.info("durability classes not read now: %s", e)
            return False
        if after != before:
            log.info("durability classes changed (%s): bringing the files to them",
                     ", ".join(sorted(f for f in set(before) | set(after) if before.get(f) != after.get(f))))
        return after != before

    def start(self) -> RepairLoop:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="pooldrive-repair", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._wake.set in self.pool.damage_listeners:
            self.pool.damage_listeners.remove(self._wake.set)
        self._wake.set()
        self._unsubscribe()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
