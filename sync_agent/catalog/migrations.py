"""Linear schema migrations, with a backup of the database file before any of them runs."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from peewee import Database

from sync_agent.catalog.models import SCHEMA_VERSION, Models
from sync_agent.errors import ConfigError

log = logging.getLogger(__name__)


def _create_v1(db: Database, m: Models) -> None:
    db.create_tables([m.SchemaVersion, m.Node, m.File, m.Version, m.Replica, m.Intent])


def _add_shares_v2(db: Database, m: Models) -> None:
    db.create_tables([m.Share])


def _add_replica_etag_v3(db: Database, m: Models) -> None:
    if "etag" not in {c.name for c in db.get_columns("replica")}:
        db.execute_sql('ALTER TABLE "replica" ADD COLUMN "etag" VARCHAR(255)')


def _add_catalog_meta_v4(db: Database, m: Models) -> None:
    """A small key/value table; 'filled' says a read of every node has completed into this catalog. An
    older catalog may hold a partial read (earlier versions kept one when a node was down), so it starts
    unfilled: the first read that reaches every node sets the flag."""
    db.execute_sql('CREATE TABLE IF NOT EXISTS "catalog_meta" (key TEXT PRIMARY KEY, value TEXT NOT NULL)')


def _add_share_history_v5(db: Database, m: Models) -> None:
    """Shares made before schema 5 granted the folder's history."""
    if "history" not in {c.name for c in db.get_columns("share")}:
        db.execute_sql('ALTER TABLE "share" ADD COLUMN "history" INTEGER NOT NULL DEFAULT 1')


def _add_share_view_v6(db: Database, m: Models) -> None:
    """Shares made before schema 6 read the owner's bucket."""
    columns = {c.name for c in db.get_columns("share")}
    if "view" not in columns:
        db.execute_sql('ALTER TABLE "share" ADD COLUMN "view" VARCHAR(255) NOT NULL DEFAULT \'\'')
    if "view_dropped" not in columns:
        db.execute_sql('ALTER TABLE "share" ADD COLUMN "view_dropped" INTEGER NOT NULL DEFAULT 0')


def _index_version_keys_v7(db: Database, m: Models) -> None:
    """Every write asks whether an object key blocks its name (``Catalog.name_clash``)."""
    db.execute_sql('CREATE INDEX IF NOT EXISTS "version_key" ON "version" ("key")')


# MIGRATIONS[i] takes the schema from version i to version i + 1.
MIGRATIONS: list[Callable[[Database, Models], None]] = [_create_v1, _add_shares_v2, _add_replica_etag_v3,
                                                         _add_catalog_meta_v4, _add_share_history_v5,
                                                         _add_share_view_v6, _index_version_keys_v7]
assert len(MIGRATIONS) == SCHEMA_VERSION


def current_version(db: Database, m: Models) -> int:
    if not db.table_exists("schema_version"):
        return 0
    row = m.SchemaVersion.select().order_by(m.SchemaVersion.version.desc()).first()
    return row.version if row else 0


def backup(path: Path, version: int) -> Path:
    target = path.with_name(f"{path.name}.v{version}.{int(time.time())}.bak")
    shutil.copy2(path, target)
    return target


def migrate(db: Database, m: Models, path: Path | None) -> int:
    """Bring the schema to SCHEMA_VERSION; returns the version found."""
    found = current_version(db, m)
    if found > SCHEMA_VERSION:
        raise ConfigError(f"The catalog {path} was written by a newer PoolDrive (schema {found}, this one "
                          f"knows {SCHEMA_VERSION}). Upgrade PoolDrive, or rebuild the catalog from the nodes "
                          "with 'pooldrive catalog rebuild'.", paths=[str(path or "")])
    if found == SCHEMA_VERSION:
        return found
    if path is not None and found > 0:
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        backup(path, found)
    for version in range(found, SCHEMA_VERSION):
        with db.atomic():
            MIGRATIONS[version](db, m)
            m.SchemaVersion.create(version=version + 1)
    return found
