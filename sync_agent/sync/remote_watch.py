"""Noticing changes on the pool within seconds: the change journal (polled every second, a cheap
listing) and MinIO bucket notifications where a deployment delivers them. Changes by other S3 tools show up
with the agent's periodic full refresh."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sync_agent.pool import Pool

EVENTS = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")


class RemoteWatcher:
    def __init__(self, pool: Pool, on_change: Callable[[], None], poll: float = 1.0) -> None:
        self.pool = pool
        self.on_change = on_change
        self.poll = poll
        self._stop = threading.Event()
        self._streams: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []
        self.supported: dict[str, bool] = {}

    def _listen(self, node: str) -> None:
        """One long-lived ListenBucketNotification request per node, read line by line.

        (minio-py's EventIterable spins when the stream ends without closing, so the stream is read here.)
        """
        client = self.pool.client(node)
        delay = 1.0
        while not self._stop.is_set():
            try:
                resp = client.s3._execute("GET", self.pool.cfg.bucket, preload_content=False, query_params={
                    "prefix": client.scope, "suffix": "", "events": list(EVENTS)})
                self._streams[node] = resp
                self.supported[node] = True
                delay = 1.0
                try:
                    while not self._stop.is_set():
                        line = resp.readline()
                        if not line:
                            break  # the stream ended: listen again after a pause
                        if b"Records" in line:
                            self.on_change()
                finally:
                    resp.close()
                    resp.release_conn()
            except Exception:
                self.supported.setdefault(node, False)
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)

    def _poll_journal(self) -> None:
        seen: dict[str, str] = {}
        while not self._stop.is_set():
            if self.pool.journal.changed(seen):
                self.on_change()
            self._stop.wait(self.poll)

    def start(self) -> RemoteWatcher:
        t = threading.Thread(target=self._poll_journal, name="pooldrive-journal", daemon=True)
        t.start()
        self._threads.append(t)
        for node in self.pool.clients:
            t = threading.Thread(target=self._listen, args=(node,), name=f"pooldrive-notify-{node}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for stream in list(self._streams.values()):
            try:
                stream._close_response()  # minio-py's EventIterable has no public close
            except Exception:
                pass
