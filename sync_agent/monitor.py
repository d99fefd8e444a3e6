"""The health monitor: probes every node on a short interval and publishes state changes.

Subscribers (``pool.health.subscribe``) get a ``HealthEvent`` when a node moves between up, degraded and
down; ``wait_for_change`` lets a CLI or a socket client long-poll instead of polling on a timer.

A node that a request found failing (degraded: one failure) is probed at once, not at the next round:
the second failure that makes it down then comes within the probe's timeout, and the writes stop
choosing it seconds earlier.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sync_agent.errors import NodeError
from sync_agent.health import HealthEvent, probe_timeout
from sync_agent.placement import Health

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)


class HealthMonitor:
    def __init__(self, pool: Pool, interval: float = 2.0, capacity_every: int = 15) -> None:
        self.pool = pool
        self.interval = interval
        self.capacity_every = capacity_every
        self._stop = threading.Event()
        self._wake = threading.Event()  # a node just failed a request: probe now
        self._changed = threading.Condition()
        self._events: list[tuple[int, HealthEvent]] = []
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._rounds = 0
        self._unsubscribe = pool.health.subscribe(self._on_event)

    def _on_event(self, ev: HealthEvent) -> None:
        with self._changed:
            self._seq += 1
            self._events.append((self._seq, ev))
            del self._events[:-100]
            self._changed.notify_all()
        if ev.new == Health.DEGRADED and ev.old == Health.UP:
            self._wake.set()

    def probe_once(self) -> None:
        with_capacity = self._rounds % self.capacity_every == 0
        self._rounds += 1
        names = list(self.pool.clients)

        def one(name: str) -> None:
            known = self.pool.health.get(name)
            recent = time.monotonic() - known.checked_at < self.interval * 0.9
            if not with_capacity and known.state == Health.UP and recent:
                return  # another request (the journal poll) just said it answers: no probe needed
            client = self.pool.client(name)
            latency = self.pool.health.get(name).latency
            if not client.live(timeout=probe_timeout(latency, client.timeouts.read, floor=min(2.0, self.interval))):
                self.pool.health.record(name, False, hard=False, error="not answering its liveness probe")
                return
            try:
                took = client.probe(probe_timeout(latency, client.timeouts.read))
            except NodeError as e:
                self.pool.health.record(name, False, error=e.message)
                return
            self.pool.health.record(name, True, took)
            if with_capacity:
                self.pool.health.set_capacity(name, client.capacity())

        if self._executor is None:
            self._executor = ThreadPoolExecutor(max(1, len(names)), thread_name_prefix="pooldrive-probe")
        list(self._executor.map(one, names))

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.probe_once()
            self._wake.wait(max(0.0, self.interval - (time.monotonic() - started)))
            self._wake.clear()

    _executor: ThreadPoolExecutor | None = None

    def start(self) -> HealthMonitor:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pooldrive-health", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._unsubscribe()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def wait_for_change(self, since: int, timeout: float) -> tuple[int, list[HealthEvent]]:
        """Long-poll: events numbered after ``since`` (blocks up to ``timeout`` s for one to happen)."""
        with self._changed:
            self._changed.wait_for(lambda: self._seq > since, timeout=timeout)
            return self._seq, [ev for seq, ev in self._events if seq > since]
