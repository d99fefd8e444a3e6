"""Finding the MinIO server binary and running one MinIO node process.

MinIO is distributed as source only: ``scripts/setup-minio`` builds the pinned version with Go into
``~/.cache/pooldrive/minio/<pin>/``. ``POOLDRIVE_MINIO_BIN`` points at a binary of your own instead.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sync_agent import paths
from sync_agent.errors import DevPoolError, MinioBinaryMissingError
from sync_agent.processes import pid_alive

log = logging.getLogger(__name__)

# The Go module proxy serves this pseudo-version of github.com/minio/minio (commit 7aac2a2c5b7c,
# 2026-02-12, the newest the proxy holds; the RELEASE.* tags are not served by it).
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"


def minio_cache_dir() -> Path:
    return paths.cache_dir() / "minio" / MINIO_VERSION


def cached_binary(env_var: str, cached: Path, missing: str, error: type[DevPoolError] = DevPoolError) -> Path:
    """The program ``env_var`` points at, else the one the setup scripts built into ``cached``; ``missing``
    says how to get it."""
    env = os.environ.get(env_var)
    if env:
        p = Path(env).expanduser()
        if p.is_file() and os.access(p, os.X_OK):
            return p
        raise error(f"{env_var} points at {p}, which is not an executable file.")
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    raise error(missing)


def find_minio_binary() -> Path:
    cached = minio_cache_dir() / "minio"
    return cached_binary("POOLDRIVE_MINIO_BIN", cached,
                         "The MinIO server binary is not built yet. Run 'scripts/setup-minio' (it builds MinIO "
                         f"{MINIO_VERSION} from source with Go and caches it in {cached.parent}), or set "
                         "POOLDRIVE_MINIO_BIN to a minio binary you already have.", MinioBinaryMissingError)


def free_port() -> int:
    return free_ports(1)[0]


def _below_ephemeral() -> range | None:
    """Ports below the range the kernel hands out to outgoing connections (Linux), when there is room."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return range(10000, low) if low - 10000 >= 1000 else None


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (bound all at once: two calls one after the other could get the same one).

    Taken below the kernel's range for outgoing connections where it can: a port from that range can be
    taken by any connection (a client's, another node's) between this choice and the node binding it; a
    node's console port was, once in CI, and the node would not start."""
    span = _below_ephemeral()
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            for port in random.sample(span, 50) if span else ():
                try:
                    s.bind(("127.0.0.1", port))
                    break
                except OSError:
                    continue
            else:
                s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``port`` (TIME_WAIT leftovers of a restarted node do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


_UNVERIFIED = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # a process this one started: reachable is enough
_UNVERIFIED.check_hostname = False
_UNVERIFIED.verify_mode = ssl.CERT_NONE


def is_live(endpoint: str, timeout: float = 1.0, probe: str = "live", secure: bool = False) -> bool:
    """True when MinIO at ``endpoint`` (host:port) answers its liveness probe (``probe="cluster"``: its
    erasure set can also take writes). ``secure``: over https, to a process we started (not verified)."""
    ctx = _UNVERIFIED if secure else None
    scheme = "https" if secure else "http"
    try:
        with urllib.request.urlopen(f"{scheme}://{endpoint}/minio/health/{probe}", timeout=timeout,
                                    context=ctx) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def pid_frozen(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "T"
    except OSError:
        return False


@dataclass
class MinioNode:
    """One MinIO server process on 127.0.0.1 with its own data dir and ports.

    Works both for a process this Python process started (``proc`` set) and for one found again by its
    pid (the dev pool CLI, which starts nodes in one command and stops them in another).
    """

    name: str
    data_dir: Path
    port: int
    console_port: int
    access_key: str
    secret_key: str
    pid: int = 0
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    drives: int = 1  # more than 1: one erasure-coded server over that many drive folders, as most deployments
    certs_dir: Path | None = None  # serve https with public.crt/private.key from here (MinIO's --certs-dir)
    region: str = ""  # a region of its own (MINIO_SITE_REGION): requests must be signed for it

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _data_args(self) -> list[str]:
        if self.drives <= 1:
            return [str(self.data_dir)]
        for i in range(1, self.drives + 1):
            (self.data_dir / f"drive{i}").mkdir(parents=True, exist_ok=True)
        return [f"{self.data_dir}/drive{{1...{self.drives}}}"]

    def start(self, binary: Path | None = None, wait: float = 60.0) -> None:
        if self.running():
            return
        binary = binary or find_minio_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for port in (self.port, self.console_port):
            if not port_is_free(port):
                raise DevPoolError(f"Port {port} for {self.name} is already in use by another program.")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_")}
        env.update(MINIO_ROOT_USER=self.access_key, MINIO_ROOT_PASSWORD=self.secret_key,
                   MINIO_UPDATE="off", MINIO_CALLHOME_ENABLE="off", MINIO_BROWSER="on")
        if self.region:
            env["MINIO_SITE_REGION"] = self.region
        if self.drives > 1:  # drive folders on the system disk: MinIO refuses them ("drive not found") otherwise
            env["MINIO_CI_CD"] = "on"
        log_path = self.log_path or self.data_dir.parent / f"{self.name}.log"
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(binary), "server", *self._data_args(), "--address", self.endpoint,
                 "--console-address", f"127.0.0.1:{self.console_port}", "--quiet",
                 *(["--certs-dir", str(self.certs_dir)] if self.certs_dir else [])],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True)
        self.pid = self.proc.pid
        self.wait_ready(wait)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the node answers. A busy machine (or a NAS) can take tens of seconds to start a node that
        holds data; the log's last lines go with any failure."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise DevPoolError(f"MinIO node {self.name} exited while starting. Its log says:\n{self._log_tail()}")
            if is_live(self.endpoint, timeout=0.5, probe="cluster" if self.drives > 1 else "live",
                       secure=self.certs_dir is not None):
                return
            time.sleep(0.05)
        raise DevPoolError(f"MinIO node {self.name} did not answer on {self.endpoint} within {timeout:.0f} s. "
                           f"Its log ({self.log_path}) ends:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:] if self.log_path else ""
        except OSError:
            return ""

    def running(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return bool(self.pid) and pid_alive(self.pid)

    def _signal(self, sig: int) -> None:
        if self.pid and self.running():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def _reap(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=0.05)
                    return True
                except subprocess.TimeoutExpired:
                    continue
            if not self.running():
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Clean shutdown (SIGTERM), escalating to SIGKILL."""
        self.thaw()
        self._signal(signal.SIGTERM)
        if not self._reap(timeout):
            self.kill()

    def kill(self) -> None:
        """Hard kill (SIGKILL), as a crashing machine would."""
        self._signal(signal.SIGKILL)
        self._reap(10.0)

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its sockets open but stops answering. Returns once it is stopped."""
        self._signal(signal.SIGSTOP)
        self._wait_for(lambda: self.frozen() or not self.running())

    def thaw(self) -> None:
        if self.frozen():
            self._signal(signal.SIGCONT)
            self._wait_for(lambda: not self.frozen())

    @staticmethod
    def _wait_for(cond: Callable[[], bool], timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.005)

    def frozen(self) -> bool:
        return bool(self.pid) and pid_frozen(self.pid)

    def restart(self, binary: Path | None = None) -> None:
        self.stop()
        self.start(binary)
