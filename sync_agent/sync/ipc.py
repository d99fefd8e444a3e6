"""The agent's local-socket API: JSON lines over a Unix socket. This module is both sides' vocabulary and
the client the CLI and the desktop app use (pure Python, no Qt).

Requests: {"cmd": "status"}, {"cmd": "wait", "since": N, "timeout": S} (long-poll: answers when anything
changed after N), "pause", {"cmd": "resume", "allow_deletes": bool}, "restore_held", "sync_now", {"cmd": "exclude",
"path": P}, {"cmd": "include", "path": P}, "stop". Answers: {"ok": true, ...} or {"ok": false, "error":
{"title", "message", "paths"}}.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sync_agent import errors, paths
from sync_agent.errors import AgentNotRunning, PoolDriveError

if TYPE_CHECKING:
    from sync_agent.sync.status import AgentStatus, PairStatus

log = logging.getLogger(__name__)


def socket_path(folder: Path) -> Path:
    """Short and per folder (Unix socket paths must stay under 108 bytes). An agent serving a pool's
    folder pairs listens on ``pool_socket_path`` and links each pair's path here to it."""
    return _short(hashlib.sha1(str(folder.expanduser().resolve()).encode()).hexdigest()[:12])


def pool_socket_path(pool: str) -> Path:
    return _short("pool-" + hashlib.sha1(pool.encode()).hexdigest()[:12])


def _short(digest: str) -> Path:
    sock = paths.runtime_dir() / f"agent-{digest}.sock"
    if len(os.fsencode(sock)) < 100:
        return sock
    # a long state folder (no XDG_RUNTIME_DIR): a short private folder of this user's instead
    short = Path(tempfile.gettempdir()) / f"pooldrive-{os.getuid()}"
    short.mkdir(mode=0o700, exist_ok=True)
    if short.stat().st_uid != os.getuid() or short.is_symlink():
        raise PoolDriveError(f"{short} belongs to someone else; set XDG_RUNTIME_DIR to a folder of yours.",
                             title="Unsafe folder")
    return short / f"agent-{digest}-{hashlib.sha1(os.fsencode(sock)).hexdigest()[:8]}.sock"


class AgentClient:
    def __init__(self, folder: Path, timeout: float = 5.0) -> None:
        self.folder = folder.expanduser().resolve()
        self.path = socket_path(self.folder)
        self.timeout = timeout
        self.names_folder = True

    def exchange(self, line: bytes, timeout: float | None = None) -> bytes:
        """One request line to the agent's socket, its one reply line back (the protocol, raw)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout or self.timeout)
        try:
            s.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            s.close()
            raise AgentNotRunning(f"No sync agent runs for {self.folder}. Start it with "
                                  f"'pooldrive sync start --folder {self.folder}'.") from e
        try:
            s.sendall(line.replace(b"\n", b" ") + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError as e:
            raise AgentNotRunning(f"The sync agent for {self.folder} did not answer ({e}).") from e
        finally:
            s.close()
        return buf

    def request(self, cmd: str, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        if self.names_folder:  # an agent serving several pairs answers for this one
            args.setdefault("folder", str(self.folder))
        reply = json.loads(self.exchange(json.dumps({"cmd": cmd, **args}).encode(), timeout) or b"{}")
        if not reply.get("ok"):
            err = reply.get("error") or {}
            kind = getattr(errors, str(err.get("type", "")), None)  # the agent's error class, with its exit code
            cls = kind if isinstance(kind, type) and issubclass(kind, PoolDriveError) else PoolDriveError
            e = cls.__new__(cls)
            PoolDriveError.__init__(e, str(err.get("message", "The agent refused.")),
                                    title=str(err.get("title", "Sync agent")), paths=err.get("paths", ()))
            raise e
        return reply

    def running(self) -> bool:
        try:
            self.request("status", timeout=1.0)
            return True
        except AgentNotRunning:
            return False

    def status(self) -> AgentStatus:
        return cast("AgentStatus", self.request("status")["status"])

    def wait(self, since: int, timeout: float = 30.0) -> AgentStatus:
        return cast("AgentStatus", self.request("wait", timeout=timeout + 5, since=since,
                                                 wait_timeout=timeout)["status"])

    def pause(self) -> None:
        self.request("pause")

    def resume(self, allow_deletes: bool = False) -> None:
        self.request("resume", allow_deletes=allow_deletes)

    def restore_held(self) -> int:
        """Bring back the files of a held mass delete; returns how many."""
        return int(self.request("restore_held").get("restored", 0))

    def sync_now(self) -> None:
        self.request("sync_now")

    def exclude(self, path: str) -> list[str]:
        return self.request("exclude", path=path)["kept"]

    def include(self, path: str) -> None:
        self.request("include", path=path)

    def set_limits(self, up: float | None = None, down: float | None = None) -> dict[str, float]:
        """The agent's bandwidth limits in MB/s (0: none; None: unchanged); returns them as they are now."""
        return dict(self.request("limits", up=up, down=down)["limits"])

    def stop(self) -> None:
        self.request("stop")

    def verify(self, timeout: float = 3600.0) -> dict[str, int]:
        """Read this folder's files back from the nodes now; bad copies are replaced, and files with no
        good copy left are put back from this folder. Returns the counts."""
        return dict(self.request("verify", timeout=timeout)["verified"])

    def pairs(self) -> list[PairStatus]:
        return cast("list[PairStatus]", self.request("pairs")["pairs"])

    def add_pair(self, folder: Path, remote: str) -> PairStatus:
        """Sync ``folder`` with the pool folder ``remote`` too (the agent must serve the pool's pairs)."""
        return cast("PairStatus", self.request("add_pair", folder=str(folder), remote=remote)["pair"])

    def remove_pair(self, folder: Path) -> None:
        self.request("remove_pair", folder=str(folder))

    @classmethod
    def for_pool(cls, pool: str, timeout: float = 5.0) -> AgentClient:
        """A client of the agent serving ``pool``'s folder pairs (its requests name no folder)."""
        client = cls(Path("/"), timeout)
        client.path = pool_socket_path(pool)
        client.folder = Path(f"(pool {pool})")
        client.names_folder = False
        return client
