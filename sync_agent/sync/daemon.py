"""The agent as a process, serving the socket API, telling systemd when it is ready and petting its
watchdog. Either one process for a pool and all its folder pairs (the pool's lock and socket; each pair's
socket path links to it), or, for a folder given on the command line that is no pair, one process for that
folder alone (its own lock and socket, as before pairs existed). Every pair's folder has its lock file, so
two processes never sync one folder."""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import signal
import socket
import socketserver
import sqlite3
import threading
import time
from pathlib import Path
from typing import IO, Any

from sync_agent.errors import AgentNotRunning, AlreadyRunning, PoolDriveError
from sync_agent.pool import Pool
from sync_agent.sync.agent import SyncAgent
from sync_agent.sync.ipc import pool_socket_path, socket_path
from sync_agent.sync.pairs import Pair
from sync_agent.sync.pairs import make as make_pair
from sync_agent.sync.pool_agent import PoolAgent, pool_agent_dir
from sync_agent.sync.state import state_dir_for
from sync_agent.sync.status import AgentStatus, PairStatus

log = logging.getLogger(__name__)


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) about readiness and liveness; a no-op outside systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(addr)
            s.sendall(state.encode())
        except OSError:
            pass


class _Handler(socketserver.StreamRequestHandler):
    supervisor: PoolAgent
    on_stop: Any

    def handle(self) -> None:
        line = self.rfile.readline(1 << 20)
        try:
            req = json.loads(line or b"{}")
            if not isinstance(req, dict):
                raise PoolDriveError("A request is a JSON object with a 'cmd'.", title="Bad request")
            reply = {"ok": True, **self.dispatch(req)}
        except PoolDriveError as e:
            reply = {"ok": False, "error": e.to_dict()}
        except sqlite3.ProgrammingError:  # a request that came in while the agent stops (its state is closed)
            reply = {"ok": False, "error": AgentNotRunning("The sync agent is stopping.").to_dict()}
        except Exception as e:
            log.exception("a request to the agent failed")
            reply = {"ok": False, "error": {"title": "Bad request", "message": str(e), "paths": []}}
        self.wfile.write((json.dumps(reply) + "\n").encode())

    def dispatch(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd, sup = req.get("cmd"), self.supervisor
        if cmd == "pairs":
            return {"pairs": [self._pair_status(a) for a in sup.agents]}
        if cmd == "add_pair":  # the pairs file is the caller's to change (the CLI, the window)
            agent = sup.add_pair(make_pair(str(req["folder"]), str(req.get("remote", ""))))
            return {"pair": self._pair_status(agent)}
        if cmd == "remove_pair":
            sup.remove_pair(Path(str(req["folder"])))
            return {}
        if cmd == "limits":  # one setting for the whole agent: every pair keeps it
            limits = {}
            for agent in sup.agents:
                limits = agent.set_limits(req.get("up"), req.get("down"))
            return {"limits": limits}
        if cmd == "stop":
            threading.Thread(target=self.on_stop, daemon=True).start()
            return {}
        a = sup.agent_for(req.get("folder"))
        if cmd == "status":
            return {"status": self._status(a)}
        if cmd == "wait":
            timeout = float(req.get("wait_timeout", 30))
            timeout = min(300.0, timeout) if math.isfinite(timeout) and timeout > 0 else 0.0
            since, pairs = int(req.get("since", 0)), self._pairs_digest()
            deadline = time.monotonic() + timeout
            while True:  # this pair's activity, or any pair's state (the status lists every pair)
                a.activity.wait(since, max(0.0, min(0.5, deadline - time.monotonic())))
                if a.activity.seq > since or self._pairs_digest() != pairs or time.monotonic() >= deadline:
                    break
            return {"status": self._status(a)}
        if cmd == "pause":
            a.pause()
        elif cmd == "resume":
            a.resume(bool(req.get("allow_deletes")))
        elif cmd == "restore_held":
            return {"restored": a.restore_held()}
        elif cmd == "sync_now":
            a.sync_now()
        elif cmd == "exclude":
            return {"kept": a.engine.exclude(str(req["path"]))}
        elif cmd == "include":
            a.engine.include(str(req["path"]))
            a.sync_now()
        elif cmd == "verify":
            return {"verified": a.verify()}
        else:
            raise PoolDriveError(f"Unknown command {cmd!r}.", title="Bad request")
        return {}

    def _status(self, a: SyncAgent) -> AgentStatus:
        return AgentStatus(**a.activity.snapshot(), folder=str(a.engine.root), pool=a.pool.cfg.name,
                           pid=os.getpid(), paused=a.paused, excluded=list(a.engine.state.excluded),
                           limits=a.limits, remote=a.engine.remote_root,
                           pairs=[self._pair_status(x) for x in self.supervisor.agents])

    def _pairs_digest(self) -> list[tuple[str, str, int]]:
        return [(p["folder"], p["state"], p["issues"]) for p in map(self._pair_status, self.supervisor.agents)]

    @staticmethod
    def _pair_status(a: SyncAgent) -> PairStatus:
        snap = a.activity.snapshot()
        return PairStatus(folder=str(a.engine.root), remote=a.engine.remote_root, state=snap["state"],
                          detail=snap.get("detail", ""), issues=len(snap["issues"]), last_sync=snap["last_sync"])


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _lock(path: Path, what: str) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path, "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        lock.seek(0)
        raise AlreadyRunning(f"A sync agent already runs for {what} (pid {lock.read().strip() or '?'}).") from e
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def run(pool: Pool, target: Path | list[Pair], **agent_args: Any) -> int:
    """Run the agent until stopped (SIGTERM, SIGINT or the socket's 'stop'): for one folder (``target`` a
    path: synced with the whole pool, its own process) or for the pool's folder pairs (a list)."""
    pooled = isinstance(target, list)
    pairs = target if isinstance(target, list) else [Pair(target.expanduser().resolve(), "")]
    locks = [_lock(pool_agent_dir() / f"{pool.cfg.name}.lock", f"pool '{pool.cfg.name}'")] if pooled else []
    sock = pool_socket_path(pool.cfg.name) if pooled else socket_path(pairs[0].local)
    sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    held: dict[Path, IO[str]] = {}
    links: set[Path] = set()
    guard = threading.Lock()

    def claim(p: Pair) -> None:
        """Before a pair's worker starts: the folder's lock (no second process syncs it), and its socket
        path linked to this agent's socket, so a client naming the folder finds it."""
        with guard:
            lock = _lock(state_dir_for(p.local) / "agent.lock", str(p.local))
            at = socket_path(p.local)
            try:
                if at != sock:
                    at.unlink(missing_ok=True)
                    at.symlink_to(sock)
                    links.add(at)
            except BaseException:
                lock.close()
                raise
            held[p.local] = lock

    def release(p: Pair) -> None:
        with guard:
            lock = held.pop(p.local, None)
            if lock is not None:
                lock.close()
            at = socket_path(p.local)
            if at in links:
                at.unlink(missing_ok=True)
                links.discard(at)

    supervisor = PoolAgent(pool, pairs, claim=claim, release=release, **agent_args)
    sock.unlink(missing_ok=True)  # a socket left by a killed agent (the locks above say none runs)
    stopped = threading.Event()

    def stop() -> None:
        supervisor.stop()
        stopped.set()

    handler = type("Handler", (_Handler,), {"supervisor": supervisor, "on_stop": staticmethod(stop)})
    server = _Server(str(sock), handler)
    os.chmod(sock, 0o600)
    threading.Thread(target=server.serve_forever, name="pooldrive-api", daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop())
    worker = supervisor.start_thread()
    ready = threading.Event()

    def watch_ready() -> None:
        while not stopped.is_set():
            first = supervisor.agents[0] if supervisor.agents else None
            if first is not None and (first.passes or first.activity.state.value in ("offline", "paused")) \
                    and not ready.is_set():
                ready.set()
                sd_notify("READY=1\nSTATUS=" + first.activity.state.value)
            usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
            if usec and worker.is_alive():
                sd_notify("WATCHDOG=1")
            stopped.wait(max(1.0, usec / 2e6) if usec else 1.0)

    threading.Thread(target=watch_ready, daemon=True).start()
    try:
        while worker.is_alive() and not stopped.is_set():
            stopped.wait(0.5)
    finally:
        sd_notify("STOPPING=1")
        supervisor.stop()
        worker.join(timeout=30)
        server.shutdown()
        server.server_close()
        sock.unlink(missing_ok=True)
        for agent in supervisor.agents:
            agent.engine.state.close()
        with guard:
            for at in links:
                at.unlink(missing_ok=True)
            for lock in [*held.values(), *locks]:
                lock.close()
    if supervisor.failure is not None:
        log.error("the sync agent gave up after repeated errors: %r", supervisor.failure)
        return 1
    return 0
