"""Sharing a folder: a scoped access key on every node, an invitation, revoke and extend.

The owner's own keys never leave this machine: each share gets its own MinIO service account whose inline
policy (``policy.folder_policy``) allows only that folder, with the expiry enforced by the server.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sync_agent import config, credentials, keys, paths
from sync_agent.config import NodeConfig, PoolConfig
from sync_agent.errors import (
    AuthError,
    ConfigError,
    NodeError,
    NodeUnreachableError,
    NotFoundError,
    RefusedError,
    UsageError,
)
from sync_agent.sharing import views
from sync_agent.sharing.invitation import Invitation, InvitedNode
from sync_agent.sharing.policy import ShareMode, check_folder, folder_policy, view_policy

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)

MIN_EXPIRY = timedelta(minutes=15)  # MinIO refuses service accounts that expire sooner
DEFAULT_EXPIRY = timedelta(days=30)  # a forgotten share ends by itself; None asks for one that never does

ADMIN_HELP = ("Sharing creates a scoped access key on every node, which needs admin rights: the keys PoolDrive "
              "uses for node '{node}' lack them. Use the node's root credentials, or keys with the admin:"
              "CreateServiceAccount and admin:RemoveServiceAccount permissions (and, for read-only shares without "
              "history, rights to create, fill and remove buckets named pdshare-*).")


@dataclass(frozen=True)
class ShareInfo:
    id: str
    folder: str
    mode: str
    label: str
    access_key: str
    expires_at: float
    created_at: float
    nodes: tuple[str, ...]
    revoke_pending: tuple[str, ...]
    revoked: bool
    history: bool = True
    view: str = ""  # the bucket its key reads ('' = the pool's own)

    @property
    def access(self) -> str:
        """What the recipient may do and read, in words."""
        if self.mode == "link":
            return "download link"
        if self.mode != ShareMode.READ_ONLY.value:
            return "read-write, with history"
        if self.history:
            return "read-only, with history"
        return "read-only, current files" if self.view else \
            "read-only (made by an older PoolDrive: its key can read the folder's past; share again)"

    @property
    def status(self) -> str:
        if self.revoked:
            return "revoke pending" if self.revoke_pending else "revoked"
        if self.expires_at and self.expires_at < time.time():
            return "expired"
        return "active"


def parse_duration(text: str) -> timedelta:
    """'30d', '12h', '90m', '2w', '45s' -> timedelta."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text or "")
    if not m:
        raise ConfigError(f"'{text}' is not a duration; use a number and a unit: 90m, 12h, 30d or 2w.")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return timedelta(seconds=int(m.group(1)) * seconds)


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _info(row: object) -> ShareInfo:
    r = row
    return ShareInfo(r.id, r.folder, r.mode, r.label, r.access_key, r.expires_at, r.created_at,  # type: ignore[attr-defined]
                     tuple(json.loads(r.nodes)), tuple(json.loads(r.revoke_pending)), r.revoked,  # type: ignore[attr-defined]
                     bool(r.history), r.view)  # type: ignore[attr-defined]


def _admin_call(pool: Pool, node: str, what: str, fn_name: str, **kw: object) -> str:
    client = pool.client(node)
    try:
        return client.admin_call(what, fn_name, **kw)
    except AuthError as e:
        raise AuthError(ADMIN_HELP.format(node=node), node=node) from e


def create_share(pool: Pool, folder: str, mode: ShareMode, *, expires: timedelta | None = DEFAULT_EXPIRY,
                 label: str = "", history: bool | None = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[ShareInfo, Invitation]:
    """``history``: the recipient may also read the folder's earlier versions and deleted files. Without it
    (the default for read-only shares) the share's key reads a view of the folder's current files and
    nothing else (``sharing.views``), which costs the room of one more copy of them. A read-write share
    always comes with history: its recipients write into the owner's versioned bucket, whose past MinIO
    cannot keep from a key that reads it (``policy.folder_policy``)."""
    folder = keys.normalize(folder)
    check_folder(folder)
    if pool.cfg.is_share:
        raise RefusedError("This pool is itself a share; only its owner can share its folders.")
    if pool.catalog.get(folder) is not None:
        raise UsageError(f"'{folder}' is a file; a share is of a folder. For one file, make a link: 'pooldrive "
                         f"share link {folder}' (Copy link in the window).", paths=[folder])
    if not pool.catalog.is_dir(folder):  # a mistyped name would share an empty folder nobody meant
        raise NotFoundError(f"There is no folder '{folder}' in the pool. Check its name ('pooldrive ls'), or put "
                            "a file in it first.", paths=[folder])
    if history is None:
        history = mode == ShareMode.READ_WRITE
    if mode == ShareMode.READ_WRITE and not history:
        raise RefusedError("A read-write share always shows the folder's history: its recipients write into your "
                           "pool's own bucket, and a key that can read a folder there can read its past too. "
                           "Share read-only to show only what is in the folder now.", paths=[folder])
    if expires is not None and expires < MIN_EXPIRY:
        raise ConfigError("A share must last at least 15 minutes (MinIO's minimum for scoped keys).")
    pool.refresh_health(max_age=0)
    down = [n for n in pool.clients if pool.health.is_down(n)]
    if down:
        raise NodeUnreachableError(f"All nodes must be reachable to create a share ({', '.join(down)} "
                                   "is down): the invitation would not work there.", node=down[0])
    share_id = secrets.token_hex(4)
    access_key = "pds" + secrets.token_hex(8) + share_id[:1]  # 20 characters, MinIO's usual length
    secret_key = secrets.token_urlsafe(30)[:40]
    expires_at = time.time() + expires.total_seconds() if expires else 0.0
    view = "" if history else views.bucket_for(share_id)
    policy = view_policy(view, folder) if view else folder_policy(pool.cfg.bucket, folder, mode)
    description = f"PoolDrive share {share_id}: {folder} ({mode.value})" + (f" for {label}" if label else "")
    created: list[str] = []
    made: list[str] = []  # nodes where this share's view bucket was made
    clients = views.Clients(pool)
    try:
        for node in pool.clients:  # first: a key without admin rights fails here, before any copy is made
            _admin_call(pool, node, "creating a share key", "add_service_account", access_key=access_key,
                        secret_key=secret_key, description=description[:250], policy=policy,
                        expiration=_rfc3339(expires_at) if expires_at else None)
            created.append(node)
        if view:
            _fill_view(pool, share_id, folder, clients, progress, made)
    except BaseException:
        _undo(pool, share_id, folder, mode, access_key, created, view, made, clients)
        raise
    finally:
        clients.close()
    row = pool.catalog.m.Share.create(id=share_id, folder=folder, mode=mode.value, label=label,
                                      access_key=access_key, expires_at=expires_at, nodes=json.dumps(created),
                                      history=history, view=view)
    inv = Invitation(share_id=share_id, bucket=view or pool.cfg.bucket, folder=folder, mode=mode.value,
                     replicas=pool.cfg.replicas, access_key=access_key, secret_key=secret_key, label=label,
                     shared_by=pool.cfg.name, expires_at=expires_at, history=history,
                     nodes=tuple(InvitedNode(n.name, n.endpoint, n.secure, n.weight, n.zone, n.cert_sha256,
                                             _ca_pem(n.ca_file)) for n in pool.cfg.nodes))
    return _info(row), inv


def _fill_view(pool: Pool, share_id: str, folder: str, clients: views.Clients,
               progress: Callable[[int, int], None] | None, made: list[str]) -> None:
    """Make the share's view and copy the folder's current files into it, on every node."""
    from sync_agent.rebuild import refresh

    failed: dict[str, str] = {}
    refresh(pool, folder + "/", failed=failed)  # the folder as the nodes hold it now: other devices write too
    if failed:
        node, why = next(iter(failed.items()))
        raise NodeUnreachableError(f"'{folder}' could not be read from {node} ({why}); nothing was shared. "
                                   "Try again when every node answers.", node=node)
    view = views.create(pool, share_id, clients, made)
    report = views.update(pool, share_id, view, folder, list(pool.clients), clients, parallel=16, progress=progress)
    if not report.complete:
        why = report.errors[0] if report.errors else f"{report.skipped_nodes[0]} did not answer"
        raise NodeUnreachableError(f"The share's copy of '{folder}' could not be made ({why}). Nothing was "
                                   "shared; try again.", node=(report.skipped_nodes or [""])[0])


def _undo(pool: Pool, share_id: str, folder: str, mode: ShareMode, access_key: str, created: list[str], view: str,
          made: list[str], clients: views.Clients) -> None:
    """All or nothing: a share that failed half-way is taken back. What cannot be removed now (a node that
    stopped answering) is kept as a revoked share, so the retries that finish revokes finish it too."""
    pending = []
    for node in created:
        try:
            _admin_call(pool, node, "undoing a share key", "delete_service_account", access_key=access_key)
        except NodeError as e:
            log.warning("a half-made share key %s stays on %s for now: %s", access_key, node, e.message)
            pending.append(node)
    left = views.drop(pool, view, made, clients) if view and made else []  # never a bucket we did not make
    if pending or left:
        pool.catalog.m.Share.create(id=share_id, folder=folder, mode=mode.value, access_key=access_key,
                                    nodes=json.dumps(sorted(left)), revoked=True,  # the view's nodes to clear
                                    revoke_pending=json.dumps(pending), history=not view, view=view if left else "",
                                    label="(not made: being cleaned up)")


def _row(pool: Pool, share_id: str) -> object:
    row = pool.catalog.m.Share.get_or_none(pool.catalog.m.Share.id == share_id)
    if row is None:
        raise NotFoundError(f"No share '{share_id}'. 'pooldrive share list' shows them.")
    return row


def retry_pending_revokes(pool: Pool) -> int:
    """Remove share keys from nodes that were down when the share was revoked; returns how many remain."""
    m = pool.catalog.m
    remaining = 0
    for row in m.Share.select().where(m.Share.revoked & (m.Share.revoke_pending != "[]")):
        left = []
        for node in json.loads(row.revoke_pending):
            if node not in pool.clients:
                continue
            try:
                _admin_call(pool, node, "revoking a share", "delete_service_account", access_key=row.access_key)
            except NodeUnreachableError:
                left.append(node)
            except NodeError:
                pass  # already gone there
        row.revoke_pending = json.dumps(left)
        row.save()
        remaining += len(left)
    return remaining


def list_shares(pool: Pool) -> list[ShareInfo]:
    retry_pending_revokes(pool)
    m = pool.catalog.m
    return [_info(r) for r in m.Share.select().order_by(m.Share.created_at)]


def revoke_share(pool: Pool, share_id: str) -> ShareInfo:
    row = _row(pool, share_id)
    pending = []
    for node in json.loads(row.nodes):  # type: ignore[attr-defined]
        if node not in pool.clients:
            continue
        try:
            _admin_call(pool, node, "revoking a share", "delete_service_account",
                        access_key=row.access_key)  # type: ignore[attr-defined]
        except NodeUnreachableError:
            pending.append(node)
        except AuthError:
            raise
        except NodeError:
            pass  # the key is not there (any more): nothing to remove
    row.revoked = True  # type: ignore[attr-defined]
    if row.view and not row.view_dropped:  # type: ignore[attr-defined]
        clients = views.Clients(pool)
        try:  # else the owner's agent removes it when it can
            row.view_dropped = not views.drop(pool, row.view, json.loads(row.nodes), clients)  # type: ignore[attr-defined]
        finally:
            clients.close()
    row.revoke_pending = json.dumps(pending)  # type: ignore[attr-defined]
    row.save()  # type: ignore[attr-defined]
    return _info(row)


def extend_share(pool: Pool, share_id: str, expires: timedelta) -> ShareInfo:
    if expires < MIN_EXPIRY:
        raise ConfigError("A share must last at least 15 minutes from now.")
    row = _row(pool, share_id)
    if row.revoked:  # type: ignore[attr-defined]
        raise RefusedError(f"Share {share_id} was revoked; share the folder again instead.")
    if row.view and row.view_dropped:  # type: ignore[attr-defined]
        raise RefusedError(f"Share {share_id} ended and its copy of the folder was removed; share the folder "
                           "again instead.")
    expires_at = time.time() + expires.total_seconds()
    # a share on the owner's bucket gets today's policy too (a read-write share made by an older version
    # may not write journal entries, so its recipients' writes reached the owner only at the reconcile)
    policy = None if row.view else folder_policy(pool.cfg.bucket, row.folder, ShareMode(row.mode))  # type: ignore[attr-defined]
    for node in json.loads(row.nodes):  # type: ignore[attr-defined]
        _admin_call(pool, node, "extending a share", "update_service_account",
                    access_key=row.access_key, expiration=_rfc3339(expires_at),  # type: ignore[attr-defined]
                    **({"policy": policy} if policy else {}))
    row.expires_at = expires_at  # type: ignore[attr-defined]
    row.save()  # type: ignore[attr-defined]
    return _info(row)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:24] or "share"


def _same_share(name: str, inv: Invitation) -> bool:
    """Whether pool ``name`` is this very share (accepting it again refreshes it, keys included)."""
    try:
        existing = config.load_pool(name)
    except ConfigError:
        return False  # unreadable: not ours to replace
    return existing.is_share and existing.prefix == inv.folder and existing.bucket == inv.bucket


def _free_name(base: str, inv: Invitation) -> str:
    name, i = base, 2
    while config.pool_file(name).exists() and not _same_share(name, inv):
        name, i = f"{base}-{i}", i + 1
    return name


def _ca_pem(ca_file: str) -> str:
    """The CA certificate(s) the owner trusts for a node, to travel with the invitation: only the
    CERTIFICATE blocks of the file, so a CA file that also holds its key never sends the key along."""
    if not ca_file:
        return ""
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", Path(ca_file).read_text(),
                        re.DOTALL)
    if not blocks:
        raise ConfigError(f"The CA file {ca_file} holds no certificate.", paths=[ca_file])
    return "\n".join(blocks) + "\n"


def _trusted_node(pool_name: str, n: InvitedNode) -> NodeConfig:
    """The recipient trusts a node's TLS certificate as the owner does: same pin, same CA (kept 0600)."""
    ca_file = ""
    if n.ca_pem:
        folder = paths.config_dir() / "ca"
        target = folder / f"{pool_name}-{n.name}.pem"
        if target.parent != folder or not config.NAME_RE.match(pool_name) or not config.NAME_RE.match(n.name):
            raise ConfigError(f"'{pool_name}-{n.name}' cannot name a certificate file.")
        paths.write_private(target, n.ca_pem)
        ca_file = str(target)
    return NodeConfig(n.name, n.endpoint, n.weight, n.zone, n.secure, ca_file, n.cert_sha256)


def accept_invitation(inv: Invitation, name: str | None = None) -> PoolConfig:
    """Add the shared folder as a pool view of its own; its keys go to this user's keyring. Everything is
    checked before anything is written."""
    if name and config.pool_file(name).exists() and not _same_share(name, inv):
        raise ConfigError(f"A pool named '{name}' exists already ({config.pool_file(name)}); it is left as it is. "
                          "Choose another name with --name, or leave --name out for a free one.")
    name = name or _free_name(f"shared-{_slug(inv.folder.rsplit('/', 1)[-1])}", inv)
    who = f"{inv.shared_by} ({inv.label})" if inv.label else inv.shared_by
    PoolConfig(name=name, bucket=inv.bucket, replicas=inv.replicas, credentials="keyring", prefix=inv.folder,
               nodes=tuple(NodeConfig(n.name, n.endpoint, n.weight, n.zone, n.secure, "", n.cert_sha256)
                           for n in inv.nodes)).validate()
    cfg = PoolConfig(name=name, bucket=inv.bucket, replicas=inv.replicas, credentials="keyring",
                     prefix=inv.folder, read_only=inv.mode == ShareMode.READ_ONLY.value, shared_by=who,
                     history=inv.history,
                     nodes=tuple(_trusted_node(name, n) for n in inv.nodes))
    cfg.validate()
    for n in inv.nodes:
        credentials.store_in_keyring(name, n.name, credentials.Credentials(inv.access_key, inv.secret_key))
    config.save_pool(cfg)
    return config.load_pool(name)
