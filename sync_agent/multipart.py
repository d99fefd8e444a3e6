"""Resumable multipart upload of a local file to one node.

minio-py's ``put_object`` cannot pick up an upload a crash interrupted, so large files go through this
module: the upload id is handed to the caller (who records it in the write intent) as soon as it exists,
and a later attempt lists the parts the node already has, checks each against the MD5 of the local part,
and sends only the rest. Parts are read from the file when their turn comes, so memory stays at
``parallel x PART_SIZE`` whatever the file size. (This uses minio-py's multipart calls below put_object.)
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from minio.datatypes import Part
from minio.helpers import genheaders

from sync_agent.errors import NodeError, NodeUnreachableError, ObjectMissingError
from sync_agent.node_client import META_PREFIX
from sync_agent.transfer import PART_SIZE, TransferControl

if TYPE_CHECKING:
    from sync_agent.node_client import NodeClient

log = logging.getLogger(__name__)


def part_count(size: int) -> int:
    return max(1, -(-size // PART_SIZE))


def _parts_on_node(client: NodeClient, key: str, upload_id: str) -> dict[int, Part]:
    parts: dict[int, Part] = {}
    marker: str | None = None
    while True:
        result = client._call("listing uploaded parts", client.s3._list_parts, client.bucket, key, upload_id,
                              max_parts=1000, part_number_marker=marker)
        parts.update({p.part_number: p for p in result.parts})
        if not result.is_truncated:
            return parts
        marker = result.next_part_number_marker


def abort(client: NodeClient, key: str, upload_id: str) -> None:
    try:
        client._call("abandoning an upload", client.s3._abort_multipart_upload, client.bucket, key, upload_id)
    except NodeError:
        pass  # gone already, or the node is down: MinIO drops stale uploads by itself after a day


PART_TRIES = 3  # a link that drops a connection mid-part gets the part again on a new connection


def _send_part(client: NodeClient, key: str, data: bytes, upload_id: str, number: int) -> str:
    """One part; a connection dropped on the way costs that part again, not the upload (the parts before it
    stay on the node)."""
    for attempt in range(1, PART_TRIES + 1):
        try:
            return str(client._call(f"uploading part {number} of '{key}'", client.s3._upload_part, client.bucket,
                                    key, data, None, upload_id, number))
        except NodeUnreachableError:
            if attempt == PART_TRIES or not client.live(2.0):
                raise
            client.retries += 1
            log.info("part %d of '%s' to %s was cut off; sending it again", number, key, client.name)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def upload(client: NodeClient, key: str, path: Path, size: int, meta: dict[str, str], *,
           upload_id: str | None, on_started: Callable[[str], None], control: TransferControl | None,
           parallel: int) -> tuple[str | None, str]:
    """Upload ``path`` as ``key``; continues ``upload_id`` when the node still has it. Returns
    (version id, etag)."""
    done: dict[int, Part] = {}
    if upload_id:
        try:
            done = _parts_on_node(client, key, upload_id)
        except NodeError as e:
            if not isinstance(e, ObjectMissingError) and "NoSuchUpload" not in e.message:
                raise
            upload_id = None
    if not upload_id:
        headers = genheaders({META_PREFIX + k: v for k, v in meta.items()}, None, None, None, False)
        headers["Content-Type"] = "application/octet-stream"
        upload_id = client._call(f"starting the upload of '{key}'", client.s3._create_multipart_upload,
                                 client.bucket, key, headers)
        on_started(upload_id)
    assert upload_id is not None

    def one(number: int) -> Part:
        offset = (number - 1) * PART_SIZE
        length = min(PART_SIZE, size - offset)
        if control is not None:
            control.checkpoint()
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        known = done.get(number)
        if known is not None and known.size == length and known.etag == hashlib.md5(data).hexdigest():
            etag = known.etag  # the node has this part already
        else:
            etag = _send_part(client, key, data, upload_id, number)
        if control is not None:
            control.advance(length)
        return Part(number, etag)

    with ThreadPoolExecutor(max(1, parallel)) as ex:
        parts = list(ex.map(one, range(1, part_count(size) + 1)))
    result = client._call(f"finishing the upload of '{key}'", client.s3._complete_multipart_upload, client.bucket,
                          key, upload_id, parts)
    return result.version_id, (result.etag or "").strip('"')
