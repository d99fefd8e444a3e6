"""A local pool of real MinIO server processes for demos and development.

State lives in ``~/.local/state/pooldrive/devpool/``: ``state.json`` (ports, pids, data dirs),
``credentials.json`` (mode 0600, generated per pool) and one data dir and log per node. A pool config
named ``dev`` is written so every PoolDrive command can open the pool at once.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sync_agent import config, paths
from sync_agent.config import NodeConfig, PoolConfig
from sync_agent.credentials import write_private_file
from sync_agent.errors import DevPoolError
from sync_agent.minio_server import MinioNode, find_minio_binary, free_port, free_ports, is_live, port_is_free
from sync_agent.netshape.profiles import Link, profile_links
from sync_agent.netshape.toxiproxy import ToxiproxyServer
from sync_agent.tls import DevCA

log = logging.getLogger(__name__)

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
    link: str = ""  # how its network link is shaped ('' without a profile)
    secure: bool = False  # served over https (up --tls)


@dataclass
class Shaping:
    """A Toxiproxy server with one proxy per node; the pool config points at the proxies."""

    server: ToxiproxyServer
    profile: str
    ports: dict[str, int]  # node -> proxy port (0: not chosen yet)
    links: dict[str, Link]

    def endpoint(self, node: MinioNode) -> str:
        return f"127.0.0.1:{self.ports[node.name]}"

    def start(self, nodes: list[MinioNode]) -> None:
        self.server.start()
        api = self.server.api
        for n in nodes:
            if not (self.ports.get(n.name) and port_is_free(self.ports[n.name])):
                self.ports[n.name] = free_port()
            api.add_proxy(n.name, self.ports[n.name], n.endpoint)
            api.set_link(n.name, self.links[n.name])

    def to_json(self) -> dict[str, Any]:
        return {"port": self.server.port, "pid": self.server.pid, "profile": self.profile, "ports": self.ports,
                "links": {k: asdict(v) for k, v in self.links.items()}}

    @classmethod
    def from_json(cls, raw: dict[str, Any], root: Path) -> Shaping:
        return cls(ToxiproxyServer(raw["port"], root / "toxiproxy.log", pid=raw.get("pid", 0)), raw["profile"],
                   dict(raw["ports"]), {k: Link(**v) for k, v in raw["links"].items()})


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

    def _state(self) -> dict[str, Any]:
        if not self.exists():
            raise DevPoolError("No dev pool exists. Start one with 'pooldrive devpool up'.")
        return dict(json.loads(self.state_file.read_text()))

    def _load(self) -> list[MinioNode]:
        state = self._state()
        creds = json.loads(self.credentials_file.read_text())["default"]
        return [MinioNode(name=n["name"], data_dir=Path(n["data_dir"]), port=n["port"],
                          console_port=n["console_port"], pid=n.get("pid", 0),
                          access_key=creds["access_key"], secret_key=creds["secret_key"],
                          log_path=self.root / f"{n['name']}.log", drives=n.get("drives", 1),
                          certs_dir=Path(n["certs_dir"]) if n.get("certs_dir") else None)
                for n in state["nodes"]]

    def _save(self, nodes: list[MinioNode], shaping: Shaping | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if shaping is None and self.exists():
            shaping = self.shaping()
        data: dict[str, Any] = {"nodes": [{"name": n.name, "data_dir": str(n.data_dir), "port": n.port,
                                           "console_port": n.console_port, "pid": n.pid, "drives": n.drives,
                                           "certs_dir": str(n.certs_dir) if n.certs_dir else ""}
                                          for n in nodes]}
        if shaping is not None:
            data["shaping"] = shaping.to_json()
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state_file)

    def shaping(self) -> Shaping | None:
        """The proxies in front of the nodes, when the pool was started with a network profile."""
        raw = self._state().get("shaping")
        return Shaping.from_json(raw, self.root) if raw else None

    def nodes(self) -> list[MinioNode]:
        return self._load()

    def node(self, ref: str) -> tuple[list[MinioNode], MinioNode]:
        nodes = self._load()
        name = ref if ref.startswith("node") else f"node{ref}"
        for n in nodes:
            if n.name == name:
                return nodes, n
        raise DevPoolError(f"The dev pool has no node '{ref}'. Nodes: {', '.join(n.name for n in nodes)}.")

    @property
    def ca(self) -> DevCA:
        """The dev pool's own CA (``up --tls``): its nodes serve certificates it signed."""
        return DevCA(self.root / "tls")

    def up(self, count: int = 4, replicas: int = 2, *, profile: str | None = None, drives: int = 1,
           tls: bool = False) -> PoolConfig:
        """Start ``count`` nodes (again); ``profile`` puts a shaped proxy in front of each (see netshape),
        ``drives`` > 1 makes each node one erasure-coded server over that many drive folders, ``tls``
        serves them over https with certificates from the dev pool's own CA (trusted through the pool
        config's ``ca_file``)."""
        if count < 1 or count > 16:
            raise DevPoolError("A dev pool has between 1 and 16 nodes.")
        if drives not in (1, 2, 4, 8, 16):  # MinIO's erasure sets need an even count it can split
            raise DevPoolError("A dev pool node has 1, 2, 4, 8 or 16 drives.")
        binary = find_minio_binary()
        shaping = self.shaping() if self.exists() else None
        if profile is not None:
            try:
                links = profile_links(profile, count)
            except ValueError as e:
                raise DevPoolError(f"Unknown network profile: {e}.") from None
            old_port = shaping.server.port if shaping else 0
            shaping = Shaping(ToxiproxyServer(old_port or free_port(), self.root / "toxiproxy.log"), profile,
                              {f"node{i}": (shaping.ports.get(f"node{i}", 0) if shaping else 0)
                               for i in range(1, count + 1)},
                              {f"node{i}": links[i - 1] for i in range(1, count + 1)})
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
                               log_path=self.root / f"node{i}.log", drives=drives) for i in range(1, count + 1)]
        if tls:
            ca = self.ca if self.ca.cert.exists() else DevCA.create(self.root / "tls")
            for n in nodes:
                if n.certs_dir is None or not (n.certs_dir / "public.crt").exists():
                    n.certs_dir = self.root / "tls" / n.name
                    ca.issue(n.certs_dir)
        else:
            for n in nodes:
                n.certs_dir = None
        started: list[MinioNode] = []
        try:
            for n in nodes:
                if not (n.port and port_is_free(n.port) and port_is_free(n.console_port)):
                    n.port, n.console_port = free_ports(2)
                n.start(binary)
                started.append(n)
            if shaping is not None:
                shaping.start(nodes)
        except Exception:
            for n in started:
                n.stop()
            if shaping is not None:
                shaping.server.stop()
            raise
        finally:
            self._save(nodes, shaping)
        endpoint = shaping.endpoint if shaping is not None else (lambda n: n.endpoint)
        cfg = PoolConfig(name=self.pool_name, bucket="pooldrive", replicas=min(replicas, count),
                         credentials="file", credentials_file=str(self.credentials_file),
                         nodes=tuple(NodeConfig(name=n.name, endpoint=endpoint(n), secure=tls,
                                                ca_file=str(self.ca.cert) if tls else "") for n in nodes))
        config.save_pool(cfg)
        return config.load_pool(self.pool_name)

    def shape(self, ref: str, link: Link) -> Link:
        """Change a node's link while the pool runs (the node and every client stay up)."""
        nodes, n = self.node(ref)
        shaping = self.shaping()
        if shaping is None:
            raise DevPoolError("This dev pool has no shaped links. Start it with 'pooldrive devpool up --profile "
                               "wan' (or --profile loopback for unshaped proxies you can shape later).")
        shaping.server.api.set_link(n.name, link)
        shaping.links[n.name] = link
        self._save(nodes, shaping)
        return link

    def status(self) -> list[NodeStatus]:
        out = []
        for n in self._load():
            if not n.running():
                state = "down"
            elif n.frozen():
                state = "frozen"
            else:
                state = "up" if is_live(n.endpoint, 1.0, secure=n.certs_dir is not None) else "not answering"
            out.append(NodeStatus(n.name, n.endpoint, f"http://127.0.0.1:{n.console_port}", n.pid, state,
                                  secure=n.certs_dir is not None))
        shaping = self.shaping()
        if shaping is not None:
            for st in out:
                st.link = shaping.links[st.name].describe()
                st.endpoint = f"127.0.0.1:{shaping.ports[st.name]} -> {st.endpoint}"
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
        shaping = self.shaping()
        if shaping is not None:
            shaping.server.stop()
        self._save(nodes, shaping)
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
