"""Adding and removing a pool's nodes: the one place the CLI and the window both call.

Adding checks the node first (reachable, really S3, the keys work, TLS as configured) and saves nothing for
a node that fails. Removing refuses while the node holds the only copy of a file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sync_agent import config, credentials, durability
from sync_agent.config import NodeConfig, PoolConfig
from sync_agent.errors import ConfigError, RefusedError

if TYPE_CHECKING:
    from sync_agent.node_check import NodeCheck
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)


class NodeCheckFailed(ConfigError):
    """The node did not pass its check; ``check`` says why (and, for an unknown certificate, its SHA-256)."""

    def __init__(self, check: NodeCheck) -> None:
        super().__init__(check.message, title=check.title)
        self.check = check
        # exit codes as documented: 4 credentials, 5 a node problem, 3 anything else about the settings
        self.exit_code = {"Wrong credentials": 4, "Unreachable": 5}.get(check.title, ConfigError.exit_code)


@dataclass(frozen=True)
class Removal:
    cfg: PoolConfig
    copies_left: int  # copies the node still held (repair recreates them elsewhere)


def add_node(cfg: PoolConfig, node: NodeConfig, creds: credentials.Credentials | None) -> tuple[PoolConfig,
                                                                                               NodeCheck | None]:
    """Check ``node`` with ``creds`` (pools whose keys live in the keyring), create the bucket on it, keep
    the keys in the keyring and save the pool. Returns the saved config and the check."""
    from sync_agent.node_check import check_node
    from sync_agent.node_client import NodeClient

    same = [n.name for n in cfg.nodes if _address(n) == _address(node)]
    if same:  # its copies and another node's would be one server's: two copies that are one
        raise ConfigError(f"{node.endpoint} is node '{same[0]}' of this pool already. Each node must be a server "
                          "of its own, or two copies of a file could sit on one machine.")
    new = cfg.with_nodes((*cfg.nodes, node))
    new.validate()
    check = None
    if cfg.credentials == "keyring":
        if creds is None:
            raise ConfigError("Both an access key and a secret key are needed.")
        check = check_node(node, creds, cfg.bucket)  # nothing is saved for a node that does not work
        if not check.ok:
            raise NodeCheckFailed(check)
        client = NodeClient(node, creds, cfg.bucket)
        try:
            client.ensure_bucket()
        finally:
            client.close()
        credentials.store_in_keyring(cfg.name, node.name, creds)
    config.save_pool(new)
    log.info("added node %s (%s) to pool %s", node.name, node.url, cfg.name)
    return config.load_pool(str(new.path or config.pool_file(cfg.name))), check


def _address(node: NodeConfig) -> str:
    """host:port, as a server is reached (``localhost`` is 127.0.0.1; names are not case-sensitive)."""
    host, _, port = node.endpoint.lower().rpartition(":")
    return f"{'127.0.0.1' if host == 'localhost' else host}:{port}"


def remove_node(pool: Pool, name: str, *, force: bool = False) -> Removal:
    """Take ``name`` out of the pool (its copies elsewhere are recreated by repair). Refused while it holds
    the only copy of a file, unless ``force``."""
    cfg = pool.cfg
    cfg.node(name)
    sole = [f.path for f in pool.catalog.files_on_node(name) if f.replicas == [name]]
    if sole and not force:
        raise RefusedError(f"{name} holds the only copy of {len(sole)} file(s) (e.g. '{sole[0]}'). Drain it first "
                           f"('pooldrive node drain {name}', or Drain in Settings).", paths=sole[:20])
    left = {n.name: n.zone for n in cfg.nodes if n.name != name}
    unmet = [(d, why) for d in pool.classes().values() if (why := durability.refusal(d.copies, d.zones, left))]
    if unmet and not force:
        d, why = unmet[0]
        raise RefusedError(f"Without {name}, the durability class of '{d.folder}' ({d.describe()}) cannot be met: "
                           f"{why} Lower the class first ('pooldrive policy set {d.folder} --copies N').",
                           paths=[x.folder for x, _ in unmet])
    held = pool.catalog.replicas_on_node(name)
    pool.catalog.forget_node(name)
    new = cfg.with_nodes(tuple(n for n in cfg.nodes if n.name != name))
    config.save_pool(new, cfg.path)
    if cfg.credentials == "keyring":
        credentials.delete_from_keyring(cfg.name, name)
    log.info("removed node %s from pool %s (%d copies left on it)", name, cfg.name, held)
    return Removal(config.load_pool(str(cfg.path or config.pool_file(cfg.name))), held)
