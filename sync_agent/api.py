"""The engine's public API: the one module the window (``desktop_app``) and the command line
(``sync_agent.cli``) import. ``tests/unit/test_code_checks.py`` holds them to it, and holds the engine to
never importing either of them.

Everything here is re-exported from the module that implements it; what is not listed is internal and may
change. Grouped by what a caller does with them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy sees; at run time each name is loaded on first use (_SOURCES)
    from sync_agent import keys
    from sync_agent.about import app_version
    from sync_agent.batch import BatchResult, get_tree, put_tree, put_trees
    from sync_agent.catalog.store import DirEntry, FileInfo, VersionInfo
    from sync_agent.config import NodeConfig, PoolConfig, list_pools, load_pool, pool_file, save_pool
    from sync_agent.credentials import KEYRING_HELP, Credentials, keyring_available, store_in_keyring
    from sync_agent.desktop_integration import autostart_enabled, autostart_off, autostart_on
    from sync_agent.desktop_integration import install as install_desktop_entries
    from sync_agent.desktop_integration import start_session as start_desktop_session
    from sync_agent.desktop_integration import uninstall as uninstall_desktop_entries
    from sync_agent.devpool import DevPool
    from sync_agent.durability import Durability
    from sync_agent.durability_store import ClassReport
    from sync_agent.durability_store import compliance as class_compliance
    from sync_agent.errors import (
        AlreadyRunning,
        AuthError,
        CatalogUnreadableError,
        ChangedMeanwhileError,
        ConfigError,
        DevPoolError,
        NodeError,
        NodeUnreachableError,
        NotFoundError,
        PoolDriveError,
        QuorumError,
        UsageError,
        keys_refused,
    )
    from sync_agent.history import Doomed, PurgeReport
    from sync_agent.journal import Changes
    from sync_agent.monitor import HealthMonitor
    from sync_agent.netshape.profiles import PROFILES as LINK_PROFILES
    from sync_agent.netshape.profiles import Link
    from sync_agent.netshape.profiles import changed as changed_link
    from sync_agent.node_admin import NodeCheckFailed, Removal, add_node, remove_node
    from sync_agent.node_check import NodeCheck, check_node
    from sync_agent.paths import keep_user_umask, secure_tree, user_umask, write_private
    from sync_agent.placement import Health
    from sync_agent.pool import NodeStatus, Pool
    from sync_agent.rebuild import rebuild as rebuild_catalog
    from sync_agent.rebuild import refresh as refresh_catalog
    from sync_agent.rebuild import refresh_paths
    from sync_agent.repair import Report as RepairReport
    from sync_agent.repair import drain, scrub, undrain
    from sync_agent.repair import run as repair
    from sync_agent.replica_plan import RepairMode
    from sync_agent.resolve import Keep, conflicts
    from sync_agent.resolve import resolve as resolve_conflict
    from sync_agent.sharing.invitation import (
        MIN_PASSPHRASE,
        InvitationError,
        is_sealed,
        looks_like_invitation,
    )
    from sync_agent.sharing.invitation import decode as decode_invitation
    from sync_agent.sharing.invitation import encode as encode_invitation
    from sync_agent.sharing.links import file_links, revoke_links
    from sync_agent.sharing.policy import ShareMode
    from sync_agent.sharing.shares import (
        ShareInfo,
        accept_invitation,
        create_share,
        extend_share,
        list_shares,
        parse_duration,
        revoke_share,
    )
    from sync_agent.sync.conflicts import Conflict
    from sync_agent.sync.daemon import run as run_agent
    from sync_agent.sync.ignore import IGNORE_FILE
    from sync_agent.sync.ipc import AgentClient, AgentNotRunning
    from sync_agent.sync.pairs import Pair
    from sync_agent.sync.pairs import add as add_pair
    from sync_agent.sync.pairs import load as load_pairs
    from sync_agent.sync.pairs import make as make_pair
    from sync_agent.sync.pairs import remove as remove_pair
    from sync_agent.sync.pool_agent import pool_agent_dir
    from sync_agent.sync.remote_watch import RemoteWatcher
    from sync_agent.sync.state import state_dir_for
    from sync_agent.sync.status import AgentState, AgentStatus, IssueKind
    from sync_agent.tls import normalize_fingerprint, pretty_fingerprint, server_fingerprint
    from sync_agent.transfer import Cancelled, RateLimiter, TransferControl

# name -> 'module:attribute' (or a module): the same names as the block above, which a test checks
_SOURCES = {
    "keys": "sync_agent.keys",
    "BatchResult": "sync_agent.batch:BatchResult",
    "get_tree": "sync_agent.batch:get_tree",
    "put_tree": "sync_agent.batch:put_tree",
    "put_trees": "sync_agent.batch:put_trees",
    "DirEntry": "sync_agent.catalog.store:DirEntry",
    "FileInfo": "sync_agent.catalog.store:FileInfo",
    "VersionInfo": "sync_agent.catalog.store:VersionInfo",
    "NodeConfig": "sync_agent.config:NodeConfig",
    "PoolConfig": "sync_agent.config:PoolConfig",
    "list_pools": "sync_agent.config:list_pools",
    "load_pool": "sync_agent.config:load_pool",
    "pool_file": "sync_agent.config:pool_file",
    "save_pool": "sync_agent.config:save_pool",
    "KEYRING_HELP": "sync_agent.credentials:KEYRING_HELP",
    "Credentials": "sync_agent.credentials:Credentials",
    "keyring_available": "sync_agent.credentials:keyring_available",
    "store_in_keyring": "sync_agent.credentials:store_in_keyring",
    "autostart_enabled": "sync_agent.desktop_integration:autostart_enabled",
    "autostart_off": "sync_agent.desktop_integration:autostart_off",
    "autostart_on": "sync_agent.desktop_integration:autostart_on",
    "install_desktop_entries": "sync_agent.desktop_integration:install",
    "start_desktop_session": "sync_agent.desktop_integration:start_session",
    "uninstall_desktop_entries": "sync_agent.desktop_integration:uninstall",
    "DevPool": "sync_agent.devpool:DevPool",
    "AlreadyRunning": "sync_agent.errors:AlreadyRunning",
    "AuthError": "sync_agent.errors:AuthError",
    "keys_refused": "sync_agent.errors:keys_refused",
    "CatalogUnreadableError": "sync_agent.errors:CatalogUnreadableError",
    "ChangedMeanwhileError": "sync_agent.errors:ChangedMeanwhileError",
    "ConfigError": "sync_agent.errors:ConfigError",
    "DevPoolError": "sync_agent.errors:DevPoolError",
    "NodeError": "sync_agent.errors:NodeError",
    "NodeUnreachableError": "sync_agent.errors:NodeUnreachableError",
    "NotFoundError": "sync_agent.errors:NotFoundError",
    "PoolDriveError": "sync_agent.errors:PoolDriveError",
    "QuorumError": "sync_agent.errors:QuorumError",
    "UsageError": "sync_agent.errors:UsageError",
    "Changes": "sync_agent.journal:Changes",
    "Doomed": "sync_agent.history:Doomed",
    "PurgeReport": "sync_agent.history:PurgeReport",
    "HealthMonitor": "sync_agent.monitor:HealthMonitor",
    "LINK_PROFILES": "sync_agent.netshape.profiles:PROFILES",
    "Link": "sync_agent.netshape.profiles:Link",
    "changed_link": "sync_agent.netshape.profiles:changed",
    "NodeCheckFailed": "sync_agent.node_admin:NodeCheckFailed",
    "Removal": "sync_agent.node_admin:Removal",
    "add_node": "sync_agent.node_admin:add_node",
    "remove_node": "sync_agent.node_admin:remove_node",
    "NodeCheck": "sync_agent.node_check:NodeCheck",
    "check_node": "sync_agent.node_check:check_node",
    "secure_tree": "sync_agent.paths:secure_tree",
    "keep_user_umask": "sync_agent.paths:keep_user_umask",
    "user_umask": "sync_agent.paths:user_umask",
    "write_private": "sync_agent.paths:write_private",
    "Health": "sync_agent.placement:Health",
    "NodeStatus": "sync_agent.pool:NodeStatus",
    "Pool": "sync_agent.pool:Pool",
    "rebuild_catalog": "sync_agent.rebuild:rebuild",
    "refresh_catalog": "sync_agent.rebuild:refresh",
    "refresh_paths": "sync_agent.rebuild:refresh_paths",
    "RepairReport": "sync_agent.repair:Report",
    "drain": "sync_agent.repair:drain",
    "scrub": "sync_agent.repair:scrub",
    "undrain": "sync_agent.repair:undrain",
    "repair": "sync_agent.repair:run",
    "RepairMode": "sync_agent.replica_plan:RepairMode",
    "Durability": "sync_agent.durability:Durability",
    "ClassReport": "sync_agent.durability_store:ClassReport",
    "class_compliance": "sync_agent.durability_store:compliance",
    "Keep": "sync_agent.resolve:Keep",
    "conflicts": "sync_agent.resolve:conflicts",
    "resolve_conflict": "sync_agent.resolve:resolve",
    "MIN_PASSPHRASE": "sync_agent.sharing.invitation:MIN_PASSPHRASE",
    "InvitationError": "sync_agent.sharing.invitation:InvitationError",
    "is_sealed": "sync_agent.sharing.invitation:is_sealed",
    "looks_like_invitation": "sync_agent.sharing.invitation:looks_like_invitation",
    "decode_invitation": "sync_agent.sharing.invitation:decode",
    "encode_invitation": "sync_agent.sharing.invitation:encode",
    "file_links": "sync_agent.sharing.links:file_links",
    "revoke_links": "sync_agent.sharing.links:revoke_links",
    "ShareMode": "sync_agent.sharing.policy:ShareMode",
    "ShareInfo": "sync_agent.sharing.shares:ShareInfo",
    "accept_invitation": "sync_agent.sharing.shares:accept_invitation",
    "create_share": "sync_agent.sharing.shares:create_share",
    "extend_share": "sync_agent.sharing.shares:extend_share",
    "list_shares": "sync_agent.sharing.shares:list_shares",
    "parse_duration": "sync_agent.sharing.shares:parse_duration",
    "revoke_share": "sync_agent.sharing.shares:revoke_share",
    "Conflict": "sync_agent.sync.conflicts:Conflict",
    "run_agent": "sync_agent.sync.daemon:run",
    "pool_agent_dir": "sync_agent.sync.pool_agent:pool_agent_dir",
    "Pair": "sync_agent.sync.pairs:Pair",
    "add_pair": "sync_agent.sync.pairs:add",
    "load_pairs": "sync_agent.sync.pairs:load",
    "make_pair": "sync_agent.sync.pairs:make",
    "remove_pair": "sync_agent.sync.pairs:remove",
    "IGNORE_FILE": "sync_agent.sync.ignore:IGNORE_FILE",
    "AgentClient": "sync_agent.sync.ipc:AgentClient",
    "AgentNotRunning": "sync_agent.sync.ipc:AgentNotRunning",
    "RemoteWatcher": "sync_agent.sync.remote_watch:RemoteWatcher",
    "state_dir_for": "sync_agent.sync.state:state_dir_for",
    "AgentState": "sync_agent.sync.status:AgentState",
    "AgentStatus": "sync_agent.sync.status:AgentStatus",
    "IssueKind": "sync_agent.sync.status:IssueKind",
    "normalize_fingerprint": "sync_agent.tls:normalize_fingerprint",
    "pretty_fingerprint": "sync_agent.tls:pretty_fingerprint",
    "server_fingerprint": "sync_agent.tls:server_fingerprint",
    "Cancelled": "sync_agent.transfer:Cancelled",
    "RateLimiter": "sync_agent.transfer:RateLimiter",
    "TransferControl": "sync_agent.transfer:TransferControl",
    "app_version": "sync_agent.about:app_version",
}

__all__ = [  # noqa: RUF022 (grouped by use, not sorted)
    # a pool, its files and transfers
    "app_version", "Pool", "NodeStatus", "FileInfo", "VersionInfo", "DirEntry", "Health", "Conflict", "Keep",
    "conflicts", "resolve_conflict",
    "TransferControl", "Cancelled", "RateLimiter", "BatchResult", "put_tree", "put_trees", "get_tree",
    "keys",
    # the catalog, kept in line with the nodes
    "refresh_catalog", "refresh_paths", "rebuild_catalog", "Changes", "RemoteWatcher", "HealthMonitor",
    # keeping every file at R copies
    "repair", "drain", "undrain", "scrub", "RepairMode", "RepairReport",
    # history kept for good, and forgotten (through Pool.purge)
    "Doomed", "PurgeReport",
    # durability classes per folder (set and read through Pool.set_class / Pool.classes)
    "Durability", "ClassReport", "class_compliance",
    # pools, nodes and credentials
    "PoolConfig", "NodeConfig", "list_pools", "load_pool", "pool_file", "save_pool", "add_node", "remove_node",
    "Removal", "NodeCheck", "NodeCheckFailed", "check_node", "Credentials", "KEYRING_HELP", "keyring_available",
    "store_in_keyring", "normalize_fingerprint", "pretty_fingerprint", "server_fingerprint", "secure_tree",
    "write_private", "keep_user_umask", "user_umask",
    # sharing
    "ShareMode", "ShareInfo", "create_share", "list_shares", "extend_share", "revoke_share", "accept_invitation",
    "parse_duration", "encode_invitation", "decode_invitation", "is_sealed", "looks_like_invitation",
    "InvitationError", "MIN_PASSPHRASE", "file_links", "revoke_links",
    # the sync agent
    "AgentClient", "AgentNotRunning", "AgentState", "AgentStatus", "IssueKind", "run_agent", "state_dir_for",
    "Pair", "make_pair", "add_pair", "remove_pair", "load_pairs", "pool_agent_dir",
    "IGNORE_FILE",
    # the desktop and the dev pool
    "autostart_enabled", "autostart_on", "autostart_off", "install_desktop_entries", "uninstall_desktop_entries",
    "start_desktop_session", "DevPool", "Link", "LINK_PROFILES", "changed_link",
    # errors (the rest of the hierarchy is reached through PoolDriveError)
    "PoolDriveError", "AlreadyRunning", "AuthError", "CatalogUnreadableError", "ChangedMeanwhileError", "ConfigError",
    "DevPoolError", "NodeError", "NodeUnreachableError", "NotFoundError", "QuorumError", "UsageError",
    "keys_refused",
]


def __getattr__(name: str) -> Any:
    """Loads a name on first use (PEP 562), so `pooldrive --version` or `--help` never loads the engine."""
    where = _SOURCES.get(name)
    if where is None:
        raise AttributeError(f"sync_agent.api has no {name!r}: it is not part of the public engine API")
    module, _, attr = where.partition(":")
    value = importlib.import_module(module)
    if attr:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
