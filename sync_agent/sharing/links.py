"""File links: pre-signed download URLs, one per node holding a copy, so a link survives a dead node.

A pre-signed URL is valid for as long as the key that signed it exists. Signed with the owner's own key,
a link could only be stopped by changing that key everywhere. So each link gets a key of its own on every
node holding the file: a service account that may read exactly that object, expiring with the link.
Revoking the link ('pooldrive share revoke ID', or 'pooldrive share unlink PATH') deletes that key, and
every URL it signed stops working at once. The key is kept in the catalog like a share, of kind 'link'.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sync_agent import keys
from sync_agent.credentials import Credentials
from sync_agent.errors import ConfigError, NodeError, NodeUnreachableError, NoReplicaError, RefusedError
from sync_agent.sharing.policy import UNSAFE
from sync_agent.sharing.shares import MIN_EXPIRY, ShareInfo, _admin_call, _info, _rfc3339, revoke_share

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)
MAX_LINK = timedelta(days=7)  # S3 signatures (and so MinIO) cap pre-signed URLs at 7 days
LINK_MODE = "link"


def _object_policy(bucket: str, key: str) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
         "Resource": [f"arn:aws:s3:::{bucket}/{key}"]}]}


def file_links(pool: Pool, path: str, expires: timedelta = timedelta(hours=24),
               on_note: Callable[[str], None] | None = None) -> list[tuple[str, str]]:
    """(node, URL) for every verified copy of the current version of ``path``, each signed with a link
    key made for this link alone. A node whose keys may not make one (no admin rights, or not MinIO)
    gets a link signed with the owner's key, said through ``on_note``: it lasts until it expires."""
    if expires > MAX_LINK:
        raise ConfigError("Links can last at most 7 days: S3 signatures, and so MinIO, refuse longer ones. "
                          "Share the folder instead for longer access.")
    if expires.total_seconds() < 1:
        raise ConfigError("A link must last at least one second.")
    if pool.cfg.is_share:
        raise RefusedError("Links are made by the pool's owner; this pool is a share.")
    info = pool.catalog.require(keys.normalize(path))
    assert info.current is not None
    bad = [c for c in UNSAFE if c in info.current.key]
    if bad:
        raise RefusedError(f"'{info.path}' cannot have a link: its name holds {' and '.join(map(repr, bad))}, "
                           "which access policies read as a pattern. Rename it, or share its folder.")
    signer = Credentials("pdl" + secrets.token_hex(8) + "l", secrets.token_urlsafe(30)[:40])
    expires_at = time.time() + expires.total_seconds()
    key_expiry = time.time() + max(expires, MIN_EXPIRY).total_seconds()  # MinIO's shortest-lived key
    out: list[tuple[str, str]] = []
    made: list[str] = []
    fixed: list[str] = []
    pool.refresh_health()
    for node in info.current.ok_nodes():
        if pool.health.is_down(node):  # a frozen node would hold the link for its read timeout, for nothing
            log.info("no link through %s: it is down", node)
            continue
        vid = info.current.replicas_version(node)
        try:
            try:
                _admin_call(pool, node, "creating a link key", "add_service_account", access_key=signer.access_key,
                            secret_key=signer.secret_key, policy=_object_policy(pool.cfg.bucket, info.current.key),
                            description=f"PoolDrive link to {info.path}"[:250], expiration=_rfc3339(key_expiry))
            except NodeUnreachableError:
                raise
            except NodeError as e:  # no admin API for these keys: a plain link, said so
                log.warning("link to '%s' through %s signed with the pool's key (%s)", info.path, node, e.message)
                fixed.append(node)
                out.append((node, pool.client(node).presign_get(info.current.key, vid, expires)))
                continue
            made.append(node)
            out.append((node, pool.client(node).presign_get(info.current.key, vid, expires, signer=signer)))
        except NodeError as e:
            log.info("no link through %s: %s", node, e.message)
    if fixed and on_note is not None:
        on_note(f"{', '.join(fixed)}: these keys may not make a link key of its own (no admin rights there), so "
                "that link is signed with your key and works until it expires; 'share unlink' cannot stop it.")
    if made:
        pool.catalog.m.Share.create(id=secrets.token_hex(4), folder=info.path, mode=LINK_MODE, label="link",
                                    access_key=signer.access_key, expires_at=expires_at, nodes=json.dumps(made))
    if not out:
        raise NoReplicaError(f"No node holding '{path}' could sign a link.", paths=[path])
    return out


def links_to(pool: Pool, path: str) -> list[ShareInfo]:
    m = pool.catalog.m
    rows = m.Share.select().where((m.Share.mode == LINK_MODE) & (m.Share.folder == keys.normalize(path))
                                  & ~m.Share.revoked)
    return [_info(r) for r in rows]


def revoke_links(pool: Pool, path: str) -> list[ShareInfo]:
    """Stop every link made to ``path``: their keys are deleted (on nodes that are down, when they are
    back, like a revoked share's)."""
    return [revoke_share(pool, link.id) for link in links_to(pool, path)]
