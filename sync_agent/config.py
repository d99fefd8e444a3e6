"""Pool configuration: endpoints, weights, zones and redundancy. Never secrets.

A pool is described by one TOML file in ``~/.config/pooldrive/pools/<name>.toml``. Secrets live in the
OS keyring (``credentials = "keyring"``), or, for a throwaway local dev pool only, in a 0600 file named by
``credentials_file``.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import tomli_w

from sync_agent import paths
from sync_agent.errors import ConfigError, NotFoundError

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class NodeConfig:
    name: str
    endpoint: str  # host:port
    weight: float = 1.0
    zone: str = ""
    secure: bool = False
    ca_file: str = ""  # https: trust the CA in this PEM file for this node (a private CA)
    cert_sha256: str = ""  # https: accept exactly the certificate with this SHA-256 (pinned, as SSH does)

    @property
    def is_loopback(self) -> bool:
        host = self.endpoint.rpartition(":")[0].strip("[]")
        return host in ("localhost", "::1") or host.startswith("127.")

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"


@dataclass(frozen=True)
class PoolConfig:
    name: str
    bucket: str
    nodes: tuple[NodeConfig, ...] = ()
    replicas: int = 2
    write_quorum: int = 0  # 0 means "all R"
    credentials: str = "keyring"  # "keyring" or "file"
    credentials_file: str = ""
    full_threshold: float = 0.85
    prefix: str = ""  # a shared folder: this pool is a view of only this folder ("" = everything)
    read_only: bool = False  # a read-only share: nothing is ever uploaded
    shared_by: str = ""  # who shared it (for "Shared with me")
    history: bool = True  # a share: the recipient's key may also read earlier versions and deleted files
    path: Path | None = field(default=None, compare=False)

    @property
    def is_share(self) -> bool:
        return bool(self.prefix)

    @property
    def current_only(self) -> bool:
        """A share whose key sees the current objects only: listed without versions, read without a
        version id (guarded by the ETag the catalog knows, so a newer object is never taken for it)."""
        return self.is_share and not self.history

    @property
    def quorum(self) -> int:
        return self.write_quorum if self.write_quorum > 0 else self.replicas

    def quorum_for(self, copies: int) -> int:
        """Copies a write of a file kept ``copies`` times needs before it counts: all of them, or the pool's
        write quorum when one is set (never more than the copies asked for)."""
        return min(self.write_quorum, copies) if self.write_quorum > 0 else copies

    def node(self, name: str) -> NodeConfig:
        for n in self.nodes:
            if n.name == name:
                return n
        raise NotFoundError(f"The pool '{self.name}' has no node named '{name}'. "
                            f"Nodes: {', '.join(n.name for n in self.nodes) or 'none'}.")

    def with_nodes(self, nodes: tuple[NodeConfig, ...]) -> PoolConfig:
        return replace(self, nodes=nodes)

    def validate(self) -> None:
        if not NAME_RE.match(self.name):
            raise ConfigError(f"Pool name '{self.name}' is not valid: use lowercase letters, digits, '-' "
                              "and '_' (at most 40 characters).")
        if not BUCKET_RE.match(self.bucket):
            raise ConfigError(f"Bucket name '{self.bucket}' is not a valid S3 bucket name.")
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ConfigError(f"Pool '{self.name}' has two nodes with the same name.")
        for n in self.nodes:
            if not NAME_RE.match(n.name):
                raise ConfigError(f"Node name '{n.name}' is not valid: use lowercase letters, digits, "
                                  "'-' and '_'.")
            if n.weight <= 0:
                raise ConfigError(f"Node '{n.name}' has weight {n.weight}; weights must be positive.")
            if "://" in n.endpoint or "/" in n.endpoint:
                raise ConfigError(f"Node '{n.name}': give the endpoint as host:port, without a scheme "
                                  f"or path (got '{n.endpoint}'); use secure = true for https.")
            if (n.ca_file or n.cert_sha256) and not n.secure:
                raise ConfigError(f"Node '{n.name}' names a CA file or certificate fingerprint but is not secure; "
                                  "set secure = true (https).")
            if n.cert_sha256 and not re.fullmatch(r"[0-9a-f]{64}", n.cert_sha256):
                raise ConfigError(f"Node '{n.name}': cert_sha256 must be the certificate's SHA-256 as 64 "
                                  "lowercase hexadecimal digits.")
            if n.ca_file and not Path(n.ca_file).is_file():
                raise ConfigError(f"Node '{n.name}': the CA file {n.ca_file} does not exist.", paths=[n.ca_file])
        if self.replicas < 1:
            raise ConfigError("Redundancy must be at least 1 copy.")
        if self.write_quorum < 0 or self.write_quorum > self.replicas:
            raise ConfigError(f"Write quorum {self.write_quorum} must be between 1 and R={self.replicas}.")
        if self.credentials not in ("keyring", "file"):
            raise ConfigError("credentials must be 'keyring' or 'file'.")
        if self.credentials == "file" and not self.credentials_file:
            raise ConfigError("credentials = 'file' needs credentials_file (dev pools only).")

    def to_toml(self) -> str:
        data = asdict(self)
        data.pop("path")
        data["nodes"] = [asdict(n) for n in self.nodes]
        return tomli_w.dumps(data)


def parse_pool(text: str, path: Path | None = None) -> PoolConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"Pool file {path} is not valid TOML: {e}", paths=[str(path or "")]) from e
    try:
        nodes = tuple(NodeConfig(**n) for n in raw.pop("nodes", []))
        cfg = PoolConfig(nodes=nodes, path=path, **raw)
    except TypeError as e:
        raise ConfigError(f"Pool file {path} has an unknown or missing setting: {e}") from e
    cfg.validate()
    return cfg


def pool_file(name: str) -> Path:
    return paths.pools_dir() / f"{name}.toml"


def save_pool(cfg: PoolConfig, path: Path | None = None) -> Path:
    cfg.validate()
    target = path or cfg.path or pool_file(cfg.name)
    paths.write_private(target, cfg.to_toml())  # it names the nodes and where their keys are
    return target


def load_pool(name_or_path: str | None = None) -> PoolConfig:
    """Load a pool by name, by file path, or the default one.

    The default is ``$POOLDRIVE_POOL``, else the only pool configured, else the dev pool.
    """
    ref = name_or_path or os.environ.get("POOLDRIVE_POOL") or _default_pool_name()
    p = Path(ref)
    target = p if (p.suffix == ".toml" or os.sep in ref) else pool_file(ref)
    if not target.exists() and target is p:  # a file named, not a pool
        raise ConfigError(f"The pool file {p} does not exist. Give the path of a pool's .toml file, or a pool's "
                          f"name (pools: {', '.join(list_pools()) or 'none'}).")
    if not target.exists():
        known = ", ".join(list_pools()) or "none"
        raise ConfigError(f"No pool '{ref}' is configured (pools: {known}). Create one with "
                          "'pooldrive pool create', or start a local one with 'pooldrive devpool up'.")
    return parse_pool(target.read_text(), target)


def list_pools() -> list[str]:
    d = paths.pools_dir()
    return sorted(f.stem for f in d.glob("*.toml")) if d.exists() else []


def _default_pool_name() -> str:
    pools = list_pools()
    if len(pools) == 1:
        return pools[0]
    if "dev" in pools:
        return "dev"
    if not pools:
        raise ConfigError("No pool is configured yet. Start a local one with 'pooldrive devpool up', or "
                          "create one for your own nodes with 'pooldrive pool create'.")
    raise ConfigError(f"Several pools are configured ({', '.join(pools)}): choose one with --pool NAME "
                      "or POOLDRIVE_POOL.")
