"""What we know about each node's health: state with hysteresis, smoothed latency, requests in flight.

``NodeHealth.observe`` is the pure state machine; ``HealthBook`` holds one per node and is shared by every
transfer thread, the health monitor and the readers' replica choice.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sync_agent.node_types import Capacity
from sync_agent.placement import ASSUMED_THROUGHPUT, Health, ReplicaView

log = logging.getLogger(__name__)

EWMA_ALPHA = 0.3
PROBE_FLOOR = 3.0  # seconds a health probe waits at least (a busy server, a connection still to open)
PROBE_RTTS = 10  # ... and otherwise this many of the node's round trips
MIN_RATE_SAMPLE = 256 * 1024  # bytes: a whole body smaller than this is mostly latency
RATE_FORGET = 120.0  # seconds after which a node's measured rate is no longer trusted


def probe_timeout(latency: float, ceiling: float, floor: float = PROBE_FLOOR) -> float:
    """How long a health probe waits for its answer: ten of the node's measured round trips, at least
    ``floor``, at most ``ceiling`` (the read timeout). A node that froze on the LAN fails its probe in 3 s
    instead of the 20 s a data request waits; one 250 ms away still has 3 s, one a second away 10 s.
    Data requests keep the fixed read timeout: a node committing a large part may be silent for seconds."""
    return min(ceiling, max(floor, PROBE_RTTS * latency))


def answer_timeout(view: ReplicaView, size: int, ceiling: float) -> float:
    """How long a write waits for a request it cannot race, the arbiter's compare-and-swap or the look at
    what the arbiter holds, before it goes on without it: a health probe's patience (a node silent that
    long is called down by the monitor) plus twice the body's time at the link's measured rate, at most
    ``ceiling`` (the read timeout). A frozen node then costs a save 3 s, not the 20 s read timeout."""
    rate = view.throughput if view.throughput > 0 else ASSUMED_THROUGHPUT
    return min(ceiling, probe_timeout(view.latency, ceiling) + 2 * size / rate)


RTT_WINDOW = 60.0  # seconds: the round-trip floor is the quickest answer within the last one to two of these


@dataclass
class WindowedMin:
    """The smallest sample of the last one to two windows: how far a node is, not how busy. Sixteen
    parallel PUTs into a loopback node took 50 ms each on a loaded machine, which lifts the smoothed
    latency but not this, as long as one answer in a window was quick; a node that really moved away (a
    new route) is followed within two windows. (BBR keeps its min_rtt the same way.)"""

    window: float = RTT_WINDOW
    _now: float = math.inf  # quickest in the current window
    _before: float = math.inf  # quickest in the one before it
    _since: float = -math.inf  # when the current window began

    def add(self, sample: float, at: float) -> None:
        if at - self._since >= self.window:
            self._before = self._now if at - self._since < 2 * self.window else math.inf
            self._now, self._since = sample, at
        else:
            self._now = min(self._now, sample)

    def value(self, default: float) -> float:
        low = min(self._now, self._before)
        return default if low == math.inf else low


@dataclass
class NodeHealth:
    name: str
    state: Health = Health.UP
    latency: float = 0.02  # EWMA, seconds
    floor: WindowedMin = field(default_factory=WindowedMin)  # the round trip without load
    inflight: int = 0
    throughput: float = 0.0  # smoothed body rate in bytes/s (0: not measured yet)
    rate_at: float = 0.0  # monotonic time of the last rate sample
    failures: int = 0  # consecutive
    successes: int = 0  # consecutive
    slow: int = 0  # consecutive slow answers
    capacity: Capacity | None = None
    last_error: str = ""
    checked_at: float = 0.0
    known: bool = False  # probed or used at least once
    down_since: float = 0.0  # monotonic time it went down (0 while not down)

    def observe(self, ok: bool, latency: float = 0.0, *, hard: bool = False, error: str = "") -> Health:
        """Feed one probe or request result; returns the (possibly new) state.

        Hysteresis: one failure makes a node degraded, two in a row (or one hard failure such as a refused
        connection) make it down; it takes two good answers in a row to come back up. One slow answer
        changes nothing; three slow ones in a row make it degraded.
        """
        self.checked_at = time.monotonic()
        first, self.known = not self.known, True
        if ok:
            if self.state == Health.DOWN and self.successes + 1 >= 2:
                self.down_since = 0.0
            self.failures = 0
            self.successes += 1
            self.last_error = ""
            is_slow = latency > max(0.5, 5 * self.latency)
            self.slow = self.slow + 1 if is_slow else 0
            self.latency = latency if self.latency <= 0 or (first and latency > 0) else \
                (1 - EWMA_ALPHA) * self.latency + EWMA_ALPHA * min(latency, 10 * max(self.latency, 0.01))
            if latency > 0:
                self.floor.add(latency, self.checked_at)
            if self.slow >= 3:
                self.state = Health.DEGRADED
            elif self.state == Health.DOWN:
                self.state = Health.UP if self.successes >= 2 else Health.DOWN
            elif self.state == Health.DEGRADED and self.successes >= 2 and self.slow == 0:
                self.state = Health.UP
        else:
            self.successes = 0
            self.failures += 1
            self.last_error = error
            if hard or self.failures >= 2:
                if self.state != Health.DOWN:
                    self.down_since = time.monotonic()
                self.state = Health.DOWN
            elif self.state == Health.UP:
                self.state = Health.DEGRADED
        return self.state

    def observe_rate(self, nbytes: int, seconds: float) -> None:
        """Smoothed as seconds per byte, not bytes per second: one slow body then counts for what it cost
        (an average of rates would let a fast history hide a link that just became thin)."""
        rate = max(nbytes, 1) / max(seconds, 1e-3)  # a body that sent nothing at all is as slow as it gets
        if self.throughput <= 0 or time.monotonic() - self.rate_at > RATE_FORGET:
            self.throughput = rate
        else:
            self.throughput = 1 / ((1 - EWMA_ALPHA) / self.throughput + EWMA_ALPHA / rate)
        self.rate_at = time.monotonic()

    @property
    def rtt(self) -> float:
        """Seconds: the node's round trip without load (the smoothed latency until it has answered)."""
        return self.floor.value(self.latency)

    def known_throughput(self) -> float:
        """The smoothed rate, or 0 (unknown) when it was last measured too long ago to trust: a link that
        was thin gets tried again now and then, and the reader leaves it at once if it still is."""
        return self.throughput if time.monotonic() - self.rate_at <= RATE_FORGET else 0.0

    @property
    def full_fraction(self) -> float:
        return self.capacity.used_fraction if self.capacity else 0.0


@dataclass(frozen=True)
class HealthEvent:
    node: str
    old: Health
    new: Health
    error: str = ""


@dataclass
class HealthBook:
    names: list[str]
    _nodes: dict[str, NodeHealth] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listeners: list[Callable[[HealthEvent], None]] = field(default_factory=list)
    _removed: set[str] = field(default_factory=set)  # nodes that left the pool while this process ran

    def __post_init__(self) -> None:
        for n in self.names:
            self._nodes.setdefault(n, NodeHealth(n))

    def get(self, name: str) -> NodeHealth:
        with self._lock:
            return self._nodes.setdefault(name, NodeHealth(name))

    def forget(self, name: str, *, removed: bool = False) -> None:
        """What is known of a node goes: it has another address now, or (``removed``) it left the pool; then
        it is down to every reader, so a job that read the catalog before never picks it for a copy the
        catalog still listed there (a name added to the pool again is forgotten without ``removed``)."""
        with self._lock:
            self._nodes.pop(name, None)
            if removed:
                self._removed.add(name)
            else:
                self._removed.discard(name)

    def snapshot(self) -> list[NodeHealth]:
        with self._lock:
            return [NodeHealth(**vars(h)) for h in self._nodes.values()]

    def subscribe(self, fn: Callable[[HealthEvent], None]) -> Callable[[], None]:
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn)

    def record(self, name: str, ok: bool, latency: float = 0.0, *, hard: bool = False,
               error: str = "") -> None:
        with self._lock:
            h = self._nodes.setdefault(name, NodeHealth(name))
            old = h.state
            new = h.observe(ok, latency, hard=hard, error=error)
        if new != old:
            for fn in list(self._listeners):
                fn(HealthEvent(name, old, new, error))

    def record_rate(self, name: str, nbytes: int, seconds: float, *, partial: bool = False) -> None:
        """A body of ``nbytes`` took ``seconds`` after its first byte. Small whole bodies say more about
        latency than about the link and are left out; a body cut short for being slow always counts."""
        if nbytes < MIN_RATE_SAMPLE and not partial:
            return
        with self._lock:
            self._nodes.setdefault(name, NodeHealth(name)).observe_rate(nbytes, seconds)

    def set_capacity(self, name: str, capacity: Capacity | None) -> None:
        with self._lock:
            self._nodes.setdefault(name, NodeHealth(name)).capacity = capacity

    def state(self, name: str) -> Health:
        return self.get(name).state

    def is_down(self, name: str) -> bool:
        return self.state(name) == Health.DOWN

    def lost(self, grace: float) -> set[str]:
        """Nodes down for longer than ``grace`` seconds (grace 0: every node down now)."""
        now = time.monotonic()
        with self._lock:
            return {n for n, h in self._nodes.items()
                    if h.state == Health.DOWN and now - h.down_since >= grace}

    def views(self, names: list[str]) -> list[ReplicaView]:
        with self._lock:
            return [ReplicaView(n, Health.DOWN) if n in self._removed else
                    ReplicaView(n, self._nodes[n].state, self._nodes[n].latency, self._nodes[n].inflight,
                                self._nodes[n].known_throughput(), rtt=self._nodes[n].rtt)
                    if n in self._nodes else ReplicaView(n) for n in names]

    @contextmanager
    def request(self, name: str) -> Iterator[None]:
        """Count a request in flight and time it (the caller records failures itself)."""
        with self._lock:
            h = self._nodes.setdefault(name, NodeHealth(name))
            h.inflight += 1
        try:
            yield
        finally:
            with self._lock:
                h.inflight -= 1
