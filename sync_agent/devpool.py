"""A local pool of real MinIO server processes for demos and development.

State lives in ``~/.local/state/pooldrive/devpool/``: ``state.json`` (ports, pids, data dirs),
``credentials.json`` (mode 0600, generated per pool) and one data dir and log per node. A pool config
named ``dev`` is written so every PoolDrive command can open the pool at once.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from sync_agent import config, paths
from sync_agent.config import NodeConfig, PoolConfig
from sync_agent.credentials import write_private_file
from sync_agent.errors import DevPoolError
from sync_agent.minio_server import MinioNode, find_minio_binary, free_port, is_live, port_is_free

DEV_POOL_NAME = "dev"


def generate_credentials() -> tuple[str, str]:
    return "pd" + secrets.token_hex(8), secrets.token_urlsafe(30)


@dataclass
class NodeStatus:
    name: str
    endpoint: str
    console: str
    pid: int
    state: str  # up | frozen | down


class DevPool:
    def __init__(self, root: Path | None = None, pool_name: str = DEV_POOL_NAME) -> None:
        self.root = root or paths.state_dir() / "devpool"
        self.pool_name = pool_name

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials.json"

    def exists(self) -> bool:
        return self.state_file.exists()

    def _load(self) -> list[MinioNode]:
        if not self.exists():
            raise DevPoolError("No dev pool exists. Start one with 'pooldrive devpool up'.")
        state = json.loads(self.state_file.read_text())
        creds = json.loads(self.credentials_file.read_text())["default"]
        return [MinioNode(name=n["name"], data_dir=Path(n["data_dir"]), port=n["port"],
                          console_port=n["console_port"], pid=n.get("pid", 0),
                          access_key=creds["access_key"], secret_key=creds["secret_key"],
                          log_path=self.root / f"{n['name']}.log")
                for n in state["nodes"]]

    def _save(self, nodes: list[MinioNode]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data = {"nodes": [{"name": n.name, "data_dir": str(n.data_dir), "port": n.port,
                           "console_port": n.console_port, "pid": n.pid} for n in nodes]}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state_file)

    def nodes(self) -> list[MinioNode]:
        return self._load()

    def node(self, ref: str) -> tuple[list[MinioNode], MinioNode]:
        nodes = self._load()
        name = ref if ref.startswith("node") else f"node{ref}"
        for n in nodes:
            if n.name == name:
                return nodes, n
        raise DevPoolError(f"The dev pool has no node '{ref}'. Nodes: {', '.join(n.name for n in nodes)}.")

    def up(self, count: int = 4, replicas: int = 2) -> PoolConfig:
        if count < 1 or count > 16:
            raise DevPoolError("A dev pool has between 1 and 16 nodes.")
        binary = find_minio_binary()
        if self.exists():
            nodes = self._load()
            running = [n.name for n in nodes if n.running()]
            if running:
                raise DevPoolError(f"A dev pool is already running ({len(running)} of {len(nodes)} nodes up: "
                                   f"{', '.join(running)}). See 'pooldrive devpool status', or stop it with "
                                   "'pooldrive devpool down'.")
            if len(nodes) != count:
                raise DevPoolError(f"A stopped dev pool with {len(nodes)} nodes exists. Start it with "
                                   f"'pooldrive devpool up --nodes {len(nodes)}', or delete it with "
                                   "'pooldrive devpool down --purge'.")
        else:
            access, secret = generate_credentials()
            write_private_file(self.credentials_file,
                               {"default": {"access_key": access, "secret_key": secret}})
            nodes = [MinioNode(name=f"node{i}", data_dir=self.root / "data" / f"node{i}",
                               port=0, console_port=0, access_key=access, secret_key=secret,
                               log_path=self.root / f"node{i}.log") for i in range(1, count + 1)]
        started: list[MinioNode] = []
        try:
            for n in nodes:
                if not (n.port and port_is_free(n.port) and port_is_free(n.console_port)):
                    n.port, n.console_port = free_port(), free_port()
                n.start(binary)
                started.append(n)
        except Exception:
            for n in started:
                n.stop()
            raise
        finally:
            self._save(nodes)
        cfg = PoolConfig(name=self.pool_name, bucket="pooldrive", replicas=min(replicas, count),
                         credentials="file", credentials_file=str(self.credentials_file),
                         nodes=tuple(NodeConfig(name=n.name, endpoint=n.endpoint) for n in nodes))
        config.save_pool(cfg)
        return config.load_pool(self.pool_name)

    def status(self) -> list[NodeStatus]:
        out = []
        for n in self._load():
            if not n.running():
                state = "down"
            elif n.frozen():
                state = "frozen"
            else:
                state = "up" if is_live(n.endpoint, 1.0) else "not answering"
            out.append(NodeStatus(n.name, n.endpoint, f"http://127.0.0.1:{n.console_port}", n.pid, state))
        return out

    def down(self, purge: bool = False) -> int:
        if not self.exists():
            return 0
        nodes = self._load()
        stopped = 0
        for n in nodes:
            if n.running():
                n.stop()
                stopped += 1
            n.pid = 0
        self._save(nodes)
        if purge:
            shutil.rmtree(self.root, ignore_errors=True)
            config.pool_file(self.pool_name).unlink(missing_ok=True)
        return stopped

    def _act(self, ref: str, action: str) -> MinioNode:
        nodes, n = self.node(ref)
        if action == "start":
            if n.running():
                n.thaw()
            else:
                n.start(find_minio_binary())
        else:
            getattr(n, action)()
            if action in ("kill", "stop"):
                n.pid = 0
        self._save(nodes)
        return n

    def kill(self, ref: str) -> MinioNode:
        return self._act(ref, "kill")

    def stop(self, ref: str) -> MinioNode:
        return self._act(ref, "stop")

    def start(self, ref: str) -> MinioNode:
        return self._act(ref, "start")

    def freeze(self, ref: str) -> MinioNode:
        return self._act(ref, "freeze")
