"""The IAM policy of a folder share. Pure functions.

MinIO enforces it for every client, PoolDrive or not: listing only with a prefix inside the folder,
reading only objects inside it, and for read-write shares writing and deleting only inside it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    READ_ONLY = "ro"
    READ_WRITE = "rw"


def folder_policy(bucket: str, folder: str, mode: Mode) -> dict[str, Any]:
    folder = folder.strip("/")
    objects = f"arn:aws:s3:::{bucket}/{folder}/*"
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
         "Resource": [f"arn:aws:s3:::{bucket}"],
         "Condition": {"StringLike": {"s3:prefix": [f"{folder}/*", f"{folder}/", folder]}}},
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [f"arn:aws:s3:::{bucket}"]},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": [objects]},
    ]
    if mode == Mode.READ_WRITE:
        # DeleteObjectVersion lets a recipient's client undo its own half-finished writes (crash safety)
        statements.append({"Effect": "Allow", "Resource": [objects], "Action": [
            "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts"]})
    return {"Version": "2012-10-17", "Statement": statements}
