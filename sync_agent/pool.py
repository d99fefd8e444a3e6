"""The pool: its nodes, their health and the catalog, behind one object.

``Pool`` is the engine's public API for files: the CLI, the sync agent and the desktop app all go
through it. Writing lives in ``writer``, reading in ``reader``, namespace changes in ``namespace``.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sync_agent import config, credentials, durability, durability_store, keys, namespace, paths, reader, writer
from sync_agent.catalog.store import Catalog, DirEntry, FileInfo, VersionInfo
from sync_agent.config import PoolConfig
from sync_agent.durability import Durability
from sync_agent.errors import (
    AuthError,
    NodeError,
    NodeFullError,
    NodeTimeoutError,
    NodeUnreachableError,
    PoolDriveError,
    RefusedError,
)
from sync_agent.health import HealthBook, probe_timeout
from sync_agent.journal import Journal
from sync_agent.node_types import Capacity, Timeouts
from sync_agent.placement import Health, NodeSpec
from sync_agent.transfer import (
    FEWEST_IN_FLIGHT,
    MOST_IN_FLIGHT,
    SMALL_IN_FLIGHT,
    RateLimiter,
    TransferControl,
    files_in_flight,
)

if TYPE_CHECKING:
    from sync_agent.history import Doomed, PurgeReport
    from sync_agent.node_client import NodeClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeStatus:
    name: str
    endpoint: str
    state: Health
    latency_ms: float
    weight: float
    zone: str
    used: int | None
    total: int | None
    replicas: int
    draining: bool
    error: str = ""
    rate: float = 0.0  # bytes/s its recent bodies came at (0: not measured lately)


_PENDING: NodeClient = object()  # type: ignore[assignment]  # a client not made yet


class _Clients(dict):  # node name -> NodeClient, each made on first use
    def __init__(self, make: Callable[[str], NodeClient]) -> None:
        super().__init__()
        self._make = make
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> NodeClient:
        client = super().__getitem__(name)
        if client is _PENDING:
            with self._lock:  # made once, and never put back after the node was removed meanwhile
                client = super().__getitem__(name)
                if client is _PENDING:
                    client = self._make(name)
                    super().__setitem__(name, client)
        return client

    def drop(self, name: str, *, keep: bool) -> None:
        """Close the node's client; ``keep``: a fresh one is made on next use (its settings changed)."""
        with self._lock:
            made = super().pop(name, _PENDING)
            if keep:
                super().__setitem__(name, _PENDING)
        if made is not _PENDING:
            made.close()

    def get(self, name: str, default: object = None) -> object:
        return self[name] if name in self else default  # noqa: SIM401 (self.get is this method)

    def values(self) -> list[NodeClient]:  # type: ignore[override]
        return [self[n] for n in self]

    def items(self) -> list[tuple[str, NodeClient]]:  # type: ignore[override]
        return [(n, self[n]) for n in self]

    def made(self) -> list[NodeClient]:
        return [c for c in dict.values(self) if c is not _PENDING]


class Pool:
    def __init__(self, cfg: PoolConfig, catalog: Catalog | None = None, *,
                 timeouts: Timeouts = Timeouts(), catalog_path: Path | None = None) -> None:
        self.cfg = cfg
        self.catalog = catalog or Catalog(catalog_path or paths.catalog_path(cfg.name))
        self.timeouts = timeouts
        self.health = HealthBook([n.name for n in cfg.nodes])
        self.clients: dict[str, NodeClient] = _Clients(self._make_client)
        self.up_limiter = RateLimiter()
        self.down_limiter = RateLimiter()
        self.parallel_files = 0  # 0: as many as the nodes' round trips call for (files_in_flight)
        self.damage_listeners: list[Callable[[], None]] = []  # told when a copy is found bad (background repair)
        self.auth_failures: dict[str, AuthError] = {}  # nodes that refused our credentials at the last probe
        self._io_executor: ThreadPoolExecutor | None = None
        self._probe_lock = threading.Lock()
        self._classes: tuple[float, dict[str, Durability]] | None = None
        for n in cfg.nodes:
            self.clients[n.name] = _PENDING  # made on first use: 'pooldrive ls' never loads the S3 library
        self.journal = Journal(self)

    def _make_client(self, name: str) -> NodeClient:
        from sync_agent.node_client import NodeClient

        n, cfg = self.cfg.node(name), self.cfg
        return NodeClient(n, credentials.credentials_for(cfg, name), cfg.bucket, self.timeouts,
                          scope=keys.normalize_dir(cfg.prefix) if cfg.prefix else "")

    def use_config(self, cfg: PoolConfig) -> None:
        """Go on with a changed node list (a node added or removed while the app runs): clients for new
        nodes, none for removed ones; the catalog and everything else stay."""
        old = set(self.clients)
        changed = [n.name for n in cfg.nodes if n.name not in old or n != self.cfg.node(n.name)]
        self.cfg = cfg
        clients: _Clients = self.clients  # type: ignore[assignment]
        for name in changed:
            clients.drop(name, keep=True)
            self.health.forget(name)  # another address: what was known of the old one says nothing
        for name in old - {n.name for n in cfg.nodes}:
            clients.drop(name, keep=False)
            self.health.forget(name, removed=True)

    def recover(self) -> int:
        """Undo the writes a killed process left half-done on the nodes (their intents in this catalog);
        returns how many. Network I/O: the command line runs it when it opens a pool, the agent before its
        first pass, the window on a worker thread, never in a constructor."""
        return writer.recover_intents(self)

    @classmethod
    def open(cls, name_or_path: str | None = None, **kw: object) -> Pool:
        return cls(config.load_pool(name_or_path), **kw)  # type: ignore[arg-type]

    @property
    def io_executor(self) -> ThreadPoolExecutor:
        """Threads for the replica writes of single files (never submit work that itself waits on it)."""
        if self._io_executor is None:
            self._io_executor = ThreadPoolExecutor(2 * MOST_IN_FLIGHT + 16, thread_name_prefix="pooldrive-io")
        return self._io_executor

    def files_in_flight(self, *, small: bool = False, files: int | None = None) -> int:
        """How many files a batch moves at once: the fixed setting, else what the usable nodes' round trips
        call for (measured by a health probe if none was made yet); ``small`` files (one request each) at
        least ``SMALL_IN_FLIGHT``. A batch of no more ``files`` than the fewest the rule ever gives moves
        them all at once without that probe (a round trip to the farthest node: 0.1 s of a one-file
        ``pooldrive get`` over a WAN)."""
        if self.parallel_files:
            return self.parallel_files
        if files is not None and files <= FEWEST_IN_FLIGHT:
            return max(files, 1)
        self.refresh_health(max_age=60, with_capacity=False)
        auto = files_in_flight([h.rtt for h in self.health.snapshot() if h.state != Health.DOWN])
        return max(auto, SMALL_IN_FLIGHT) if small else auto

    def close(self) -> None:
        self.journal.flush()
        if self._io_executor is not None:
            self._io_executor.shutdown(wait=True)
        for c in self.clients.made():  # type: ignore[attr-defined]  # (a _Clients)
            c.close()
        self.catalog.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- nodes and health ---------------------------------------------------------------------------
    def specs(self) -> list[NodeSpec]:
        return [NodeSpec(n.name, n.weight, n.zone) for n in self.cfg.nodes]

    def client(self, name: str) -> NodeClient:
        try:
            return self.clients[name]
        except KeyError:  # removed meanwhile, under a job that read the catalog before: a failure of that node
            raise NodeError(f"Node '{name}' is no longer in the pool.", node=name) from None

    # --- durability classes -------------------------------------------------------------------------
    def classes(self) -> dict[str, Durability]:
        """The durability classes set on folders (as last read from the nodes; another process's change
        shows here within 5 s)."""
        if self.cfg.is_share:  # the owner's classes are not the recipient's to read; it writes R copies
            return {}
        now = time.monotonic()
        if self._classes is None or now - self._classes[0] > 5.0:
            self._classes = (now, durability_store.cached(self))
        return dict(self._classes[1])

    def durability(self, key: str) -> Durability:
        return durability.for_key(key, self.classes(), Durability(self.cfg.replicas))

    def zones(self) -> dict[str, str]:
        return {n.name: n.zone for n in self.cfg.nodes}

    def fetch_classes(self, *, spread: bool = True) -> dict[str, Durability]:
        """Read the classes from the nodes (a rebuild, the repair loop, another device's change); ``spread``:
        also copy the newest records to nodes that miss them."""
        if self.cfg.is_share:
            return {}
        classes = durability_store.fetch(self, spread=spread)
        self._classes = (time.monotonic(), classes)
        return dict(classes)

    def set_class(self, folder: str, copies: int | None, zones: int = 1) -> dict[str, Durability]:
        """Set (``copies`` None: clear) a folder's durability class on the nodes; repair then brings its
        files to it (``repair.run(..., prefix=folder)``)."""
        if self.cfg.is_share:
            raise RefusedError("Durability classes are the pool owner's to set; this is a shared folder.",
                               paths=[folder])
        classes = durability_store.store(self, folder, copies, zones)
        self._classes = (time.monotonic(), classes)
        return dict(classes)

    def probe(self, name: str) -> bool:
        """One health probe of ``name``; returns whether it answered."""
        client = self.clients[name]
        try:
            took = client.probe(probe_timeout(self.health.get(name).latency, client.timeouts.read))
            self.health.record(name, True, took)
            self.auth_failures.pop(name, None)
            return True
        except NodeError as e:  # no answer within the probe's timeout: down only if the next probe agrees
            self.health.record(name, False, hard=not isinstance(e, NodeTimeoutError), error=e.message)
            if isinstance(e, AuthError):
                self.auth_failures[name] = e
            else:
                self.auth_failures.pop(name, None)
            return False

    def refresh_health(self, *, max_age: float = 10.0, with_capacity: bool = True) -> None:
        """Probe, in parallel, the nodes not heard from for ``max_age`` seconds (0: every node, now).

        Any answer counts as word from a node, and so does a failure: a probe, the agent's health monitor,
        the journal's poll, a copy written. So with the monitor running, a write never waits here on the
        probe of a node that froze (it waited up to 3 s every 10 s)."""
        def stale() -> list[str]:
            now = time.monotonic()
            return [n for n in self.clients if max_age <= 0 or now - self.health.get(n).checked_at >= max_age]

        if not stale():
            return
        with self._probe_lock:  # one round at a time: 16 transfers finding the health stale at once made 6 rounds
            names = stale()  # another thread's round may just have finished
            if names:  # the round trips first, the free space after: its first call loads minio-py (0.2 s of
                with ThreadPoolExecutor(len(names)) as ex:  # CPU), which the other probes' timings took in
                    up = [n for n, ok in zip(names, ex.map(self.probe, names), strict=True) if ok]
                    if with_capacity and up:
                        list(ex.map(lambda n: self.health.set_capacity(n, self.clients[n].capacity()), up))

    def mark_corrupt(self, path: str, number: int, node: str) -> None:
        """A copy that failed its checksum or whose body broke off twice: never read again, and the
        background repair (if one runs) replaces it at once."""
        from sync_agent.catalog.models import ReplicaState

        log.warning("the copy of '%s' (version %d) on %s is damaged; it will be replaced", path, number, node)
        self.catalog.set_replica_state(path, number, node, ReplicaState.CORRUPT)
        for listener in list(self.damage_listeners):
            listener()

    def note_failure(self, name: str, err: PoolDriveError) -> None:
        """Count a failed request against the node's health when it says something about the node.

        An unreachable node is down; one that did not answer in time is degraded, and down if it fails again
        (a busy node's late answer to a request with a short timeout must not take it out of service; the
        monitor probes a degraded node at once); a full one takes no new copies; an error about one object
        (missing, corrupt) says nothing about the node and is handled by the caller.
        """
        if isinstance(err, NodeUnreachableError):
            self.health.record(name, False, hard=not isinstance(err, NodeTimeoutError), error=str(err))
        elif isinstance(err, NodeFullError):
            self.health.set_capacity(name, Capacity(total=1, used=1, free=0))
        elif isinstance(err, AuthError):
            self.health.record(name, False, error=str(err))
            self.auth_failures[name] = err

    def unusable_nodes(self) -> dict[str, str]:
        """Nodes that may not take new copies right now, with the reason in words."""
        self.refresh_health()
        draining = self.catalog.draining_nodes()
        out = {}
        for n in self.cfg.nodes:
            h = self.health.get(n.name)
            if h.state == Health.DOWN:
                out[n.name] = "refused the credentials" if n.name in self.auth_failures else "down"
            elif n.name in draining:
                out[n.name] = "draining"
            elif h.full_fraction >= self.cfg.full_threshold:
                out[n.name] = f"full ({h.full_fraction:.0%} used)"
        return out

    def check_writable(self, key: str) -> None:
        """Refuse, in words, a change this pool view may not make (a read-only share, outside the share)."""
        if not self.cfg.is_share:
            return
        who = f" from {self.cfg.shared_by}" if self.cfg.shared_by else ""
        if self.cfg.read_only:
            raise RefusedError(f"'{self.cfg.prefix}' is a read-only share{who}: '{key}' cannot be changed on the "
                               "pool. Your local copy is kept.", paths=[key])
        if not keys.is_under(key, self.cfg.prefix):
            raise RefusedError(f"'{key}' is outside the shared folder '{self.cfg.prefix}'.", paths=[key])

    def writable_nodes(self) -> list[str]:
        """Nodes that may take new copies: not down, not over the fullness threshold, not draining."""
        unusable = self.unusable_nodes()
        return [n.name for n in self.cfg.nodes if n.name not in unusable]

    def init_buckets(self) -> dict[str, str]:
        """Create the pool's bucket (versioned) on every node; returns per-node errors."""
        errors: dict[str, str] = {}
        if self.cfg.is_share:
            return errors  # the owner's bucket: a share's keys can neither see nor create it

        def one(name: str) -> None:
            try:
                self.clients[name].ensure_bucket()
            except NodeError as e:
                errors[name] = e.message

        with ThreadPoolExecutor(max(1, len(self.clients))) as ex:
            list(ex.map(one, self.clients))
        return errors

    def node_status(self) -> list[NodeStatus]:
        self.refresh_health(max_age=0)
        draining = self.catalog.draining_nodes()
        out = []
        for n in self.cfg.nodes:
            h = self.health.get(n.name)
            cap = h.capacity
            out.append(NodeStatus(n.name, n.endpoint, h.state, h.latency * 1000, n.weight, n.zone,
                                  cap.used if cap else None, cap.total if cap else None,
                                  self.catalog.replicas_on_node(n.name), n.name in draining, h.last_error,
                                  h.known_throughput()))
        return out

    # --- files --------------------------------------------------------------------------------------
    def put_file(self, local: Path | str, remote: str, *, control: TransferControl | None = None,
                 mtime: float | None = None) -> FileInfo:
        return writer.put_file(self, Path(local), remote, control=control, mtime=mtime)[0]

    def put_bytes(self, remote: str, data: bytes, *, mtime: float | None = None) -> FileInfo:
        return writer.put_bytes(self, remote, data, mtime=mtime)

    def get_file(self, remote: str, local: Path | str, *, version: int | None = None,
                 control: TransferControl | None = None) -> Path:
        return reader.get_file(self, remote, Path(local), version=version, control=control)

    def read_bytes(self, remote: str, version: int | None = None) -> bytes:
        return reader.read_bytes(self, remote, version=version)

    def read_order_for(self, remote: str) -> list[str]:
        """The nodes a read of ``remote`` would try now, best first."""
        return reader.read_order_for(self, remote)

    def stat(self, remote: str) -> FileInfo:
        return self.catalog.require(keys.normalize(remote))

    def exists(self, remote: str) -> bool:
        return self.catalog.get(keys.normalize(remote)) is not None

    def list(self, folder: str = "") -> builtins.list[DirEntry]:
        return self.catalog.list_dir(keys.normalize_dir(folder))

    def walk(self, folder: str = "") -> Iterator[FileInfo]:
        return self.catalog.walk(keys.normalize_dir(folder))

    def versions(self, remote: str) -> builtins.list[VersionInfo]:
        return self.catalog.versions(keys.normalize(remote))

    def move(self, src: str, dst: str) -> builtins.list[str]:
        return namespace.move(self, src, dst)

    def delete(self, remote: str, *, recursive: bool = False) -> builtins.list[str]:
        return namespace.delete(self, remote, recursive=recursive)

    def restore(self, remote: str, number: int) -> FileInfo:
        return namespace.restore(self, remote, number)

    def purge(self, remote: str = "", *, older_than_days: float = 0.0, dry_run: bool = False,
              progress: Callable[[int, int], None] | None = None) -> tuple[builtins.list[Doomed], PurgeReport]:
        """Forget for good the history under ``remote`` that stopped being current ``older_than_days`` ago
        (``history.purge``)."""
        from sync_agent import history  # the listing and merge code it needs loads with it, not with every command

        return history.purge(self, remote, older_than_days=older_than_days, dry_run=dry_run, now=time.time(),
                             progress=progress)
