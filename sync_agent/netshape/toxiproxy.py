"""A Toxiproxy server process and its HTTP API: one TCP proxy in front of each node, shaped by toxics.

Toxiproxy (github.com/Shopify/toxiproxy) is built from the Go module proxy by ``scripts/setup-toxiproxy``
and cached like MinIO; ``POOLDRIVE_TOXIPROXY_BIN`` points at a binary of your own instead. Everything
listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sync_agent import paths
from sync_agent.errors import DevPoolError
from sync_agent.minio_server import cached_binary, pid_alive
from sync_agent.netshape.profiles import Link

log = logging.getLogger(__name__)

TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"
TOXIPROXY_VERSION = "v2.5.0"


def toxiproxy_binary() -> Path:
    cached = paths.cache_dir() / "toxiproxy" / TOXIPROXY_VERSION / "server"
    return cached_binary("POOLDRIVE_TOXIPROXY_BIN", cached,
                         "Toxiproxy is not built yet. Run 'scripts/setup-toxiproxy' (it builds "
                         f"{TOXIPROXY_MODULE}@{TOXIPROXY_VERSION} with Go into {cached.parent}), or set "
                         "POOLDRIVE_TOXIPROXY_BIN to a toxiproxy-server you already have.")


class ToxiproxyAPI:
    """The control API of a running server (http://127.0.0.1:PORT)."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise DevPoolError(f"Toxiproxy refused {method} {path}: {e.read().decode(errors='replace')}") from e
        except OSError as e:
            raise DevPoolError(f"Toxiproxy at {self.url} is not answering ({e}). Is the dev pool up?") from e
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace")  # /version answers in plain text

    def alive(self) -> bool:
        try:
            self._call("GET", "/version")
            return True
        except DevPoolError:
            return False

    def proxies(self) -> dict[str, Any]:
        return dict(self._call("GET", "/proxies"))

    def add_proxy(self, name: str, listen_port: int, upstream: str) -> None:
        """A proxy listening on 127.0.0.1:``listen_port`` in front of ``upstream`` (host:port); an old one of
        the same name is replaced."""
        if name in self.proxies():
            self._call("DELETE", f"/proxies/{name}")
        self._call("POST", "/proxies", {"name": name, "listen": f"127.0.0.1:{listen_port}",
                                        "upstream": upstream, "enabled": True})

    def set_link(self, name: str, link: Link) -> None:
        """Replace every toxic on proxy ``name`` by the ones that make it behave like ``link``."""
        for toxic in self._call("GET", f"/proxies/{name}/toxics") or []:
            self._call("DELETE", f"/proxies/{name}/toxics/{toxic['name']}")
        for toxic in link.toxics():
            self.add_toxic(name, toxic)

    def add_toxic(self, name: str, toxic: dict[str, Any]) -> None:
        """One more toxic on proxy ``name`` (a raw Toxiproxy toxic, for faults a ``Link`` does not name)."""
        self._call("POST", f"/proxies/{name}/toxics", toxic)

    def remove_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}")

    def set_enabled(self, name: str, enabled: bool) -> None:
        """A disabled proxy refuses connections and drops the open ones: a cut cable."""
        self._call("POST", f"/proxies/{name}", {"enabled": enabled})


@dataclass
class ToxiproxyServer:
    """One toxiproxy-server process (started here, or found again by its pid)."""

    port: int
    log_path: Path
    pid: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def api(self) -> ToxiproxyAPI:
        return ToxiproxyAPI(self.port)

    def running(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return bool(self.pid) and pid_alive(self.pid)

    def start(self, wait: float = 10.0) -> None:
        if self.running():
            return
        binary = toxiproxy_binary()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen([str(binary), "-host", "127.0.0.1", "-port", str(self.port)],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not self.running():
                raise DevPoolError(f"Toxiproxy exited while starting; see {self.log_path}.")
            if self.api.alive():
                return
            time.sleep(0.05)
        raise DevPoolError(f"Toxiproxy did not answer on port {self.port} within {wait:.0f} s.")

    def stop(self) -> None:
        if not self.running():
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while self.running() and time.monotonic() < deadline:
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(0.05)
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
        self.pid = 0
