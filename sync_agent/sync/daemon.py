"""The agent as a process: one per sync folder (a lock file), serving the socket API, telling systemd
when it is ready and petting its watchdog."""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import signal
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

from sync_agent.errors import AlreadyRunning, PoolDriveError
from sync_agent.pool import Pool
from sync_agent.sync.agent import SyncAgent
from sync_agent.sync.ipc import socket_path
from sync_agent.sync.state import state_dir_for
from sync_agent.sync.status import AgentStatus

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
    agent: SyncAgent
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
        except Exception as e:
            log.exception("a request to the agent failed")
            reply = {"ok": False, "error": {"title": "Bad request", "message": str(e), "paths": []}}
        self.wfile.write((json.dumps(reply) + "\n").encode())

    def dispatch(self, req: dict[str, Any]) -> dict[str, Any]:
        a, cmd = self.agent, req.get("cmd")
        if cmd == "status":
            return {"status": self._status()}
        if cmd == "wait":
            timeout = float(req.get("wait_timeout", 30))
            a.activity.wait(int(req.get("since", 0)), min(300.0, timeout) if math.isfinite(timeout) and timeout > 0
                            else 0.0)
            return {"status": self._status()}
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
        elif cmd == "limits":
            return {"limits": a.set_limits(req.get("up"), req.get("down"))}
        elif cmd == "stop":
            threading.Thread(target=self.on_stop, daemon=True).start()
        else:
            raise PoolDriveError(f"Unknown command {cmd!r}.", title="Bad request")
        return {}

    def _status(self) -> AgentStatus:
        a = self.agent
        return AgentStatus(**a.activity.snapshot(), folder=str(a.engine.root), pool=a.pool.cfg.name,
                           pid=os.getpid(), paused=a.paused, excluded=list(a.engine.state.excluded),
                           limits=a.limits)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def run(pool: Pool, folder: Path, **agent_args: Any) -> int:
    """Run the agent for ``folder`` until stopped (SIGTERM, SIGINT or the socket's 'stop')."""
    folder = folder.expanduser().resolve()
    sdir = state_dir_for(folder)
    sdir.mkdir(parents=True, exist_ok=True)
    lock = open(sdir / "agent.lock", "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        lock.seek(0)
        raise AlreadyRunning(f"A sync agent already runs for {folder} (pid {lock.read().strip() or '?'}).") from e
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    agent = SyncAgent(pool, folder, **agent_args)
    sock = socket_path(folder)
    sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    sock.unlink(missing_ok=True)
    stopped = threading.Event()

    def stop() -> None:
        agent.stop()
        stopped.set()

    handler = type("Handler", (_Handler,), {"agent": agent, "on_stop": staticmethod(stop)})
    server = _Server(str(sock), handler)
    os.chmod(sock, 0o600)
    threading.Thread(target=server.serve_forever, name="pooldrive-api", daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop())
    worker = agent.start_thread()
    ready = threading.Event()

    def watch_ready() -> None:
        while not stopped.is_set():
            if (agent.passes or agent.activity.state.value in ("offline", "paused")) and not ready.is_set():
                ready.set()
                sd_notify("READY=1\nSTATUS=" + agent.activity.state.value)
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
        agent.stop()
        worker.join(timeout=30)
        server.shutdown()
        server.server_close()
        sock.unlink(missing_ok=True)
        agent.engine.state.close()
        lock.close()
    if agent.failure is not None:
        log.error("the sync agent gave up after repeated errors: %r", agent.failure)
        return 1
    return 0
