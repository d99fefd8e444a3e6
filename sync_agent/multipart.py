"""Resumable multipart upload of a local file to one node.

minio-py's ``put_object`` cannot pick up an upload a crash interrupted, so large files go through this
module: the upload id is handed to the caller (who records it in the write intent) as soon as it exists,
and a later attempt lists the parts the node already has, checks each against the MD5 of the local part,
and sends only the rest. Parts are read from the file when their turn comes, so memory stays at
``parallel x PART_SIZE`` whatever the file size. (The S3 calls themselves are ``NodeClient`` methods.)
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from sync_agent.errors import NodeError, NodeUnreachableError, ObjectMissingError
from sync_agent.transfer import PART_SIZE, TransferControl

if TYPE_CHECKING:
    from sync_agent.node_client import NodeClient

log = logging.getLogger(__name__)


def part_count(size: int) -> int:
    return max(1, -(-size // PART_SIZE))


def abort(client: NodeClient, key: str, upload_id: str) -> None:
    try:
        client.abort_upload(key, upload_id)
    except NodeError:
        pass  # gone already, or the node is down: MinIO drops stale uploads by itself after a day


PART_TRIES = 6  # a link that drops connections mid-part gets the part again (a pooled connection may be cut again)


def _send_part(client: NodeClient, key: str, data: bytes, upload_id: str, number: int) -> str:
    """One part; a connection dropped on the way costs that part again, not the upload (the parts before it
    stay on the node)."""
    for attempt in range(1, PART_TRIES + 1):
        try:
            return client.upload_part(key, upload_id, number, data)
        except NodeUnreachableError:
            if attempt == PART_TRIES or not client.live(2.0):
                raise
            client.retries += 1
            log.info("part %d of '%s' to %s was cut off; sending it again", number, key, client.name)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


# Finishes an upload from its parts' ETags: (version id, etag). The writer passes one that waits for the
# arbiter of a concurrent write (see writer._Gate); alone, an upload finishes unconditionally.
Finisher = Callable[[str, list[str]], tuple[str | None, str]]


def upload(client: NodeClient, key: str, path: Path, size: int, meta: dict[str, str], *,
           upload_id: str | None, on_started: Callable[[str], None], control: TransferControl | None,
           parallel: int, finish: Finisher | None = None) -> tuple[str | None, str]:
    """Upload ``path`` as ``key``; continues ``upload_id`` when the node still has it. Returns
    (version id, etag)."""
    done: dict[int, tuple[int, str]] = {}
    if upload_id:
        try:
            done = client.list_parts(key, upload_id)
        except NodeError as e:
            if not isinstance(e, ObjectMissingError) and "NoSuchUpload" not in e.message:
                raise
            upload_id = None
    if not upload_id:
        upload_id = client.start_upload(key, meta)
        on_started(upload_id)
    assert upload_id is not None
    uid: str = upload_id

    def one(number: int) -> str:
        offset = (number - 1) * PART_SIZE
        length = min(PART_SIZE, size - offset)
        if control is not None:
            control.checkpoint()
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        known = done.get(number)
        if known is not None and known[0] == length and known[1] == hashlib.md5(data).hexdigest():
            etag = known[1]  # the node has this part already
        else:
            etag = _send_part(client, key, data, uid, number)
        if control is not None:
            control.advance(length)
        return etag

    with ThreadPoolExecutor(max(1, parallel)) as ex:
        etags = list(ex.map(one, range(1, part_count(size) + 1)))
    if finish is not None:
        return finish(uid, etags)
    return client.complete_upload(key, uid, etags)
