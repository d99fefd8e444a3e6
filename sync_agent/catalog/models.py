"""The catalog's tables (peewee).

The catalog is a cache of what the nodes hold; ``sync_agent.rebuild`` can recreate it from them alone.
Model classes are built per database by :func:`bind_models`, so one process can hold several catalogs
(two simulated devices, an owner and a share recipient) without a global database proxy being switched
under another thread's feet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from peewee import (
    BooleanField,
    CharField,
    Database,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

SCHEMA_VERSION = 7


class ReplicaState:
    OK = "ok"  # written and checksum-verified
    PENDING = "pending"  # being written
    CORRUPT = "corrupt"  # read back with a wrong checksum
    MISSING = "missing"  # the node no longer has it


class NodeState:
    ACTIVE = "active"
    DRAINING = "draining"


@dataclass(frozen=True)
class Models:
    SchemaVersion: Any
    Node: Any
    File: Any
    Version: Any
    Replica: Any
    Intent: Any
    Share: Any

    def all(self) -> list[type[Model]]:
        return [self.SchemaVersion, self.Node, self.File, self.Version, self.Replica, self.Intent, self.Share]


def bind_models(db: Database) -> Models:
    class Base(Model):
        class Meta:
            database = db

    class SchemaVersion(Base):
        version = IntegerField()
        changed_at = FloatField(default=time.time)

        class Meta:
            table_name = "schema_version"

    class Node(Base):
        name = CharField(primary_key=True)
        state = CharField(default=NodeState.ACTIVE)

        class Meta:
            table_name = "node"

    class File(Base):
        """One logical file; ``path`` is where it is now, ``deleted`` keeps its history restorable."""

        id = CharField(primary_key=True)
        path = CharField(index=True)  # unique among live files (partial index below)
        size = IntegerField(default=0)
        sha256 = CharField(default="")
        mtime = FloatField(default=0.0)
        version = IntegerField(default=0)  # the current version number
        deleted = BooleanField(default=False, index=True)
        updated_at = FloatField(default=time.time)

        class Meta:
            table_name = "file"

    class Version(Base):
        file = ForeignKeyField(File, backref="versions", on_delete="CASCADE")
        number = IntegerField()
        key = CharField(index=True)  # the object key this version was written under (indexed: schema 7)
        size = IntegerField()
        sha256 = CharField()
        mtime = FloatField()
        created_at = FloatField(default=time.time)

        class Meta:
            table_name = "version"
            indexes = ((("file", "number"), True),)

    class Replica(Base):
        version = ForeignKeyField(Version, backref="replicas", on_delete="CASCADE")
        node = CharField(index=True)
        s3_version = CharField(null=True)  # the node's S3 version id
        etag = CharField(null=True)  # the node's ETag of that version (schema 3): the compare-and-swap token
        state = CharField(default=ReplicaState.OK)
        verified_at = FloatField(default=time.time)

        class Meta:
            table_name = "replica"
            indexes = ((("version", "node"), True),)

    class Intent(Base):
        """A write-ahead record: an operation that started and has not been committed or undone."""

        kind = CharField()
        path = CharField()
        file_id = CharField()
        version = IntegerField()
        payload = TextField(default="{}")
        created_at = FloatField(default=time.time)

        class Meta:
            table_name = "intent"

    class Share(Base):
        """A folder this user shared (schema 2): one scoped access key, created on every node."""

        id = CharField(primary_key=True)
        folder = CharField()
        mode = CharField()  # ro | rw
        label = CharField(default="")
        access_key = CharField()
        expires_at = FloatField(default=0.0)  # 0: never
        created_at = FloatField(default=time.time)
        nodes = TextField(default="[]")  # nodes where the key exists
        revoke_pending = TextField(default="[]")  # nodes that still have to drop the key
        revoked = BooleanField(default=False)
        history = BooleanField(default=True)  # schema 5: the recipient also sees earlier versions
        view = CharField(default="")  # schema 6: the bucket the recipient reads (a share view), '' = ours
        view_dropped = BooleanField(default=False)  # schema 6: that view was removed from every node

        class Meta:
            table_name = "share"

    File.add_index(File.index(File.path, unique=True, where=(File.deleted == False), name="file_live_path"))  # noqa: E712
    return Models(SchemaVersion, Node, File, Version, Replica, Intent, Share)
