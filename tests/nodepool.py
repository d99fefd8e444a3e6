"""Real MinIO node pools for tests: fresh data dirs, random free ports, and faults on demand."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import ssl
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
from minio import Minio

from sync_agent.config import NodeConfig, PoolConfig
from sync_agent.credentials import write_private_file
from sync_agent.minio_server import MinioNode, find_minio_binary, free_port, free_ports
from sync_agent.netshape.profiles import Link
from sync_agent.netshape.toxiproxy import ToxiproxyServer
from sync_agent.node_client import Timeouts
from sync_agent.pool import Pool
from sync_agent.tls import DevCA

_LIVE: list[MinioNode] = []

TEST_TIMEOUTS = Timeouts(connect=1.0, read=4.0, retries=0)
# POOLDRIVE_TEST_TLS=1: every test node serves https with a certificate from a CA made for the run, and every
# pool config trusts that CA (the whole suite over TLS)
TLS = os.environ.get("POOLDRIVE_TEST_TLS") == "1"


def reap_all() -> None:
    """Stop every node a test started; runs at fixture teardown and, as a last resort, at exit."""
    for n in list(_LIVE):
        n.thaw()
        n.kill()
        _LIVE.remove(n)


atexit.register(reap_all)


@dataclass
class NodePool:
    root: Path
    count: int = 4
    nodes: list[MinioNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.access_key = "pdtest" + secrets.token_hex(4)
        self.secret_key = secrets.token_urlsafe(24)
        self.creds_file = self.root / "credentials.json"
        write_private_file(self.creds_file, {"default": {"access_key": self.access_key,
                                                         "secret_key": self.secret_key}})
        self.ca = DevCA.create(self.root / "tls") if TLS else None
        binary = find_minio_binary()
        for i in range(1, self.count + 1):
            self.add_node(f"node{i}", binary)

    def add_node(self, name: str, binary: Path | None = None) -> MinioNode:
        certs = None
        if self.ca is not None:
            certs = self.root / "tls" / name
            self.ca.issue(certs)
        port, console_port = free_ports(2)  # two calls in a row could get the same port
        n = MinioNode(name=name, data_dir=self.root / name / "data", port=port,
                      console_port=console_port, access_key=self.access_key, secret_key=self.secret_key,
                      log_path=self.root / f"{name}.log", certs_dir=certs)
        self.nodes.append(n)
        _LIVE.append(n)
        n.start(binary)
        return n

    def __getitem__(self, name: str) -> MinioNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def config(self, bucket: str, replicas: int = 2, name: str = "test", write_quorum: int = 0,
               nodes: list[str] | None = None, weights: dict[str, float] | None = None) -> PoolConfig:
        chosen = [n for n in self.nodes if nodes is None or n.name in nodes]
        return PoolConfig(name=name, bucket=bucket, replicas=replicas, write_quorum=write_quorum,
                          credentials="file", credentials_file=str(self.creds_file),
                          nodes=tuple(NodeConfig(n.name, self.endpoint(n), (weights or {}).get(n.name, 1.0),
                                                 secure=self.ca is not None,
                                                 ca_file=str(self.ca.cert) if self.ca is not None else "")
                                      for n in chosen))

    def endpoint(self, node: MinioNode) -> str:
        return node.endpoint

    def open_pool(self, bucket: str, catalog_path: Path, *, init: bool = True,
                  timeouts: Timeouts = TEST_TIMEOUTS, **kw: object) -> Pool:
        """A Pool on these nodes; ``init`` creates the bucket on every node (all must be up)."""
        pool = Pool(self.config(bucket, **kw), catalog_path=catalog_path,  # type: ignore[arg-type]
                    timeouts=timeouts)
        if init:
            errors = pool.init_buckets()
            if errors:  # seen once in CI: a fresh node refused connections here. Say why, then try again once
                for name in errors:
                    node = self[name]
                    if not node.running():
                        log = node.log_path.read_text(errors="replace")[-1500:] \
                            if node.log_path is not None and node.log_path.exists() else "(no log)"
                        warnings.warn(f"MinIO {name} had exited before its bucket was made; its log:\n{log}",
                                      stacklevel=2)
                        node.start()
                    else:
                        node.wait_ready()
                errors = pool.init_buckets()
                pool.refresh_health(max_age=0)
            assert not errors, errors
        return pool

    def raw_client(self, name: str) -> Minio:
        """A plain MinIO client, to check what a node really holds without asking the catalog."""
        return self.s3(name, self.access_key, self.secret_key)

    def s3(self, name: str, access_key: str, secret_key: str) -> Minio:
        """A plain MinIO client with any keys (a share recipient's), over https when the nodes serve it."""
        if self.ca is None:
            return Minio(self[name].endpoint, access_key=access_key, secret_key=secret_key, secure=False)
        http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(self.ca.cert))
        return Minio(self[name].endpoint, access_key=access_key, secret_key=secret_key, secure=True,
                     http_client=http)

    def ssl_context(self) -> ssl.SSLContext | None:
        """For plain HTTP clients (urllib) fetching from these nodes: trusts the run's CA under TLS."""
        return ssl.create_default_context(cafile=str(self.ca.cert)) if self.ca is not None else None

    def holders(self, bucket: str, key: str) -> list[str]:
        """Nodes whose latest version of ``key`` is a live object (not a delete marker)."""
        out = []
        for n in self.nodes:
            if not n.running() or n.frozen():
                continue
            try:
                self.raw_client(n.name).stat_object(bucket, key)
                out.append(n.name)
            except Exception:
                pass
        return out

    def close(self) -> None:
        for n in self.nodes:
            if n in _LIVE:
                n.thaw()
                n.kill()
                _LIVE.remove(n)
        shutil.rmtree(self.root, ignore_errors=True)


class ShapedNodes(NodePool):
    """The same MinIO processes reached through one Toxiproxy proxy each, whose links a test shapes.

    Made with ``NodePool.shaped``; the proxies go away with it, the nodes stay.
    """

    base: NodePool
    server: ToxiproxyServer
    ports: dict[str, int]

    @classmethod
    def over(cls, base: NodePool, server: ToxiproxyServer, tag: str) -> ShapedNodes:
        self = cls.__new__(cls)
        self.__dict__.update(base.__dict__)
        self.base, self.server, self.ports = base, server, {}
        for n in base.nodes:
            self.ports[n.name] = free_port()
            server.api.add_proxy(f"{tag}-{n.name}", self.ports[n.name], n.endpoint)
        self.tag = tag
        return self

    def endpoint(self, node: MinioNode) -> str:
        return f"127.0.0.1:{self.ports[node.name]}"

    def shape(self, name: str, link: Link) -> None:
        self.server.api.set_link(f"{self.tag}-{name}", link)

    def cut(self, name: str, cut: bool = True) -> None:
        """Refuse every connection to ``name`` (and drop the open ones), or let them through again."""
        self.server.api.set_enabled(f"{self.tag}-{name}", not cut)

    def remove(self) -> None:
        for name in self.ports:
            self.server.api.remove_proxy(f"{self.tag}-{name}")

    def close(self) -> None:  # the nodes belong to the base pool
        self.remove()
