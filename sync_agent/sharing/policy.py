"""The IAM policy of a folder share. Pure functions.

MinIO enforces it for every client, PoolDrive or not: listing only with a prefix inside the folder
(``folder/``, never the bare name, which would also match ``folder2/``), reading only objects inside it,
and for read-write shares writing and adding delete markers only inside it. Nobody but the owner may
delete object versions: history stays restorable whatever a recipient does. Folder names holding IAM
wildcards or policy variables are refused: they would widen the share.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sync_agent.journal import PREFIX as JOURNAL_PREFIX


class ShareMode(StrEnum):
    READ_ONLY = "ro"
    READ_WRITE = "rw"


UNSAFE = ("*", "?", "${")


def check_folder(folder: str) -> None:
    """Refuse names that IAM would read as patterns (a share of 'what?' would also open 'whats/')."""
    bad = [c for c in UNSAFE if c in folder]
    if bad:
        from sync_agent.errors import RefusedError

        raise RefusedError(f"'{folder}' cannot be shared: its name holds {' and '.join(repr(c) for c in bad)}, which "
                           "access policies read as a pattern. Rename the folder, then share it.", paths=[folder])


def folder_policy(bucket: str, folder: str, mode: ShareMode) -> dict[str, Any]:
    """The policy of a share that reads the owner's bucket itself: a read-write share, or one made with
    history. The folder's past (earlier versions, files deleted before the share) cannot be withheld here:
    MinIO lists versions to anyone holding s3:ListBucket and evaluates every GET of a versioned bucket as
    s3:GetObjectVersion, so denying the version actions (outright, or on the s3:versionid condition) also
    denies reading the current objects; measured on the pinned server with four policy variants. A
    read-only share without history therefore reads a bucket of its own (``view_policy``)."""
    folder = folder.strip("/")
    check_folder(folder)
    objects = f"arn:aws:s3:::{bucket}/{folder}/*"
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
         "Resource": [f"arn:aws:s3:::{bucket}"],
         "Condition": {"StringLike": {"s3:prefix": [f"{folder}/*", f"{folder}/"]}}},
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [f"arn:aws:s3:::{bucket}"]},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": [objects]},
    ]
    if mode == ShareMode.READ_WRITE:
        # no DeleteObjectVersion: a recipient's half-finished write stays as a version (harmless), while
        # with it a recipient could erase the folder's history
        statements.append({"Effect": "Allow", "Resource": [objects], "Action": [
            "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]})
        # new entries in the change journal, so the owner's agents hear of a recipient's writes within a
        # second (the nodes' notifications do not arrive; without this, the hourly reconcile finds them).
        # Nothing more: no listing, reading or deleting there. Entries are hints that every reader checks
        # against the nodes (``journal``), and keys that are not yet taken cannot be guessed
        statements.append({"Effect": "Allow", "Action": ["s3:PutObject"],
                           "Resource": [f"arn:aws:s3:::{bucket}/{JOURNAL_PREFIX}*"]})
    return {"Version": "2012-10-17", "Statement": statements}


def view_policy(view_bucket: str, folder: str) -> dict[str, Any]:
    """A read-only share without history: its key reads the share's view bucket (``sharing.views``), which
    holds the folder's current files and nothing else, and nothing of the owner's bucket."""
    folder = folder.strip("/")
    check_folder(folder)
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{view_bucket}"],
         "Condition": {"StringLike": {"s3:prefix": [f"{folder}/*", f"{folder}/"]}}},
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [f"arn:aws:s3:::{view_bucket}"]},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{view_bucket}/{folder}/*"]},
    ]}
