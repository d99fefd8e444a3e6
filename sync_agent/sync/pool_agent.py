"""One agent for a pool and all its folder pairs: the pool's services run once (``agent.Services``), each pair
has its own worker (a ``SyncAgent`` without services, on its own thread), and pairs come and go while it
runs. Syncthing's shape: a supervisor, each long-running loop a small service under it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sync_agent import paths
from sync_agent.errors import NotFoundError, PoolDriveError, UsageError
from sync_agent.journal import Changes
from sync_agent.sync.agent import Services, SyncAgent, start_guarded
from sync_agent.sync.pairs import Pair, overlap
from sync_agent.sync.state import SyncState

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)


def pool_agent_dir() -> Path:
    """Where the agents serving pools' folder pairs keep their lock, log and pool-wide state."""
    return paths.state_dir() / "agents"


class PoolAgent:
    def __init__(self, pool: Pool, pairs: list[Pair], *, claim: Callable[[Pair], None] | None = None,
                 release: Callable[[Pair], None] | None = None, **agent_args: Any) -> None:
        """``claim(pair)``: called before a pair's worker starts (the daemon takes the folder's lock and
        links its socket path; raising refuses the pair); ``release(pair)`` once its worker has stopped."""
        if not pairs:
            raise UsageError("No folder is synced with this pool yet: add one with "
                             "'pooldrive sync add LOCAL --to POOL_FOLDER'.")
        self.pool = pool
        self.args = agent_args
        self.claim, self.release = claim or (lambda _p: None), release or (lambda _p: None)
        self.agents: list[SyncAgent] = []
        self._threads: dict[Path, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._running = False
        self.failure: BaseException | None = None
        claimed: list[Pair] = []
        try:
            for p in pairs:
                self.claim(p)
                claimed.append(p)
                self.agents.append(self._make(p))
        except BaseException:
            for p in claimed:
                self.release(p)
            raise

    def _make(self, pair: Pair) -> SyncAgent:
        args = dict(self.args)
        if self.agents:  # one bandwidth setting for the agent: a new pair takes the one in force
            args["limits"] = (self.agents[0].limits["up"], self.agents[0].limits["down"])
        return SyncAgent(self.pool, pair.local, remote_root=pair.remote, services=False, **args)

    @property
    def pairs(self) -> list[Pair]:
        return [Pair(a.engine.root, a.engine.remote_root) for a in self.agents]

    def covers(self, path: str) -> bool:
        """Whether a pair reads this pool path (or folder, 'a/b/') into the catalog."""
        roots = [a.engine.remote_root.strip("/") for a in list(self.agents)]
        return any(not r or path.rstrip("/") == r or path.startswith(r + "/") for r in roots)

    def agent_for(self, folder: str | Path | None) -> SyncAgent:
        """The worker of the pair at ``folder`` (the first pair when none is named: an older client)."""
        if folder is None:
            return self.agents[0]
        where = Path(folder).expanduser().resolve()
        for a in self.agents:
            if a.engine.root == where:
                return a
        raise NotFoundError(f"{where} is not synced by this agent (it syncs "
                            f"{', '.join(str(a.engine.root) for a in self.agents)}).", paths=[str(where)])

    # --- the pool's side ------------------------------------------------------------------------------
    def remote_changed(self, changes: Changes | None = None, cursor: dict[str, str] | None = None) -> None:
        for a in list(self.agents):
            a.remote_changed(changes, cursor)

    def put_back_lost(self, lost: list[str]) -> list[str]:
        back: list[str] = []
        for a in list(self.agents):
            back += a.engine.put_back_lost([p for p in lost if p not in back])
        return back

    def _start_cursor(self) -> dict[str, str]:
        """Where the journal watcher starts: per node, the earliest point any pair has read to, so no pair
        misses what changed while the agent was stopped (entries read twice are harmless; a pair without a
        saved cursor refreshes its folder in full on its first pass anyway)."""
        saved = [c for a in self.agents if (c := a._saved_cursor()) is not None]
        if not saved:
            return self.pool.journal.cursor() if self.args.get("notifications", True) else {}
        nodes = set().union(*saved)
        return {n: min(c[n] for c in saved if n in c) for n in nodes}

    # --- pairs while running ---------------------------------------------------------------------------
    def add_pair(self, pair: Pair) -> SyncAgent:
        with self._lock:
            if self._stop.is_set():
                raise UsageError("The agent is stopping; add the folder after it has started again.")
            why = overlap(pair, self.pairs)
            if why:
                raise UsageError(why, paths=[str(pair.local)])
            self.claim(pair)  # the folder's lock first: no second process may sync it
            try:
                agent = self._make(pair)
            except BaseException:
                self.release(pair)
                raise
            self.agents.append(agent)
            if self._running:
                self._start(agent)
        log.info("now syncing %s", pair.describe())
        return agent

    def remove_pair(self, folder: Path) -> Pair:
        """Stop syncing ``folder``: answered at once; its worker finishes the step it is in, then its state
        is closed and its lock released (never before: a pass still running keeps them)."""
        with self._lock:
            agent = self.agent_for(folder)
            if len(self.agents) == 1:
                raise UsageError("This is the agent's last folder pair; stop the agent instead "
                                 "('pooldrive sync stop').", paths=[str(folder)])
            self.agents.remove(agent)
            thread = self._threads.pop(agent.engine.root, None)
        pair = Pair(agent.engine.root, agent.engine.remote_root)
        agent.stop()

        def finish() -> None:
            if thread is not None:
                thread.join()
            agent.engine.state.close()
            self.release(pair)
            log.info("stopped syncing %s (its files stay where they are)", pair.describe())

        threading.Thread(target=finish, name="pooldrive-pair-stop", daemon=True).start()
        return pair

    def _start(self, agent: SyncAgent) -> None:
        if self.services is not None and self.services.remote is not None:
            agent.engine.on_bulk = self.services.remote.hush
        self._threads[agent.engine.root] = agent.start_thread()

    # --- running ----------------------------------------------------------------------------------------
    services: Services | None = None

    def run(self) -> None:
        """Until ``stop``: the services, and every pair's worker."""
        try:
            self.pool.recover()
        except PoolDriveError as e:  # a node down: the next start tries again, nothing is lost meanwhile
            log.info("could not undo every half-done write yet: %s", e.message)
        a = self.args
        pool_dir = pool_agent_dir() / f"{self.pool.cfg.name}.state"  # the pool-wide part (the reconcile's place)
        self.state = SyncState(Path(self.pool.cfg.name), pool_dir)
        self.services = Services(self.pool, self.state, self.remote_changed, self._start_cursor(),
                                 notifications=a.get("notifications", True), repair=a.get("repair", True),
                                 repair_grace=a.get("repair_grace", 600.0), reconcile=a.get("reconcile", True),
                                 reconcile_interval=a.get("reconcile_interval", 3600.0),
                                 reconcile_pause=a.get("reconcile_pause", 2.0), on_lost=self.put_back_lost,
                                 covered=self.covers, first_pass_done=lambda: all(x.passes for x in self.agents))
        try:
            with self._lock:
                self._running = True
                for agent in self.agents:
                    self._start(agent)
            while not self._stop.wait(0.5):
                failed = next((x for x in self.agents if x.failure is not None), None)
                if failed is not None:
                    self.failure = failed.failure
                    return
        finally:
            with self._lock:
                self._running = False
                self._stop.set()
            for agent in list(self.agents):
                agent.stop()
            for t in list(self._threads.values()):
                t.join(timeout=30)
            self.services.stop()
            self.state.close()

    def stop(self) -> None:
        self._stop.set()
        for agent in list(self.agents):
            agent.stop()

    def start_thread(self) -> threading.Thread:
        return start_guarded(self, "pooldrive-pool-agent")
