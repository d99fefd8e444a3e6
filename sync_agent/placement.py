"""Where copies go and where reads come from. Pure functions, no I/O.

Writes use weighted rendezvous (highest random weight) hashing: every node gets the score
``w / -ln(h)`` with ``h`` a uniform hash of (node, path) in (0, 1); the ranking by score is stable, and
adding a node only takes over the files for which it now ranks in the top R (about 1/(N+1) of them).
Health and fullness never change the ranking, they only skip nodes when choosing where a *new* copy goes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Health(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    weight: float = 1.0
    zone: str = ""


def unit_hash(node: str, path: str) -> float:
    """A uniform value in the open interval (0, 1), stable across runs and machines."""
    digest = hashlib.blake2b(f"{node}\x00{path}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2.0**64


def capped_weights(nodes: Sequence[NodeSpec], replicas: int) -> dict[str, float]:
    """Cap each weight at (total / R) so no node is asked to hold more than one copy of every file.

    Capping lowers the total, so the cap c is the fixed point c = (sum of uncapped weights) / (R - k) with
    the k largest weights capped (water-filling).
    """
    weights = {n.name: float(n.weight) for n in nodes}
    r = max(1, min(replicas, len(weights)))
    ordered = sorted(weights.values(), reverse=True)
    for k in range(r):
        cap = sum(ordered[k:]) / (r - k)
        if ordered[k] <= cap + 1e-12:
            if k == 0:
                return weights
            return {name: min(w, cap) for name, w in weights.items()}
    return weights


def rank_nodes(path: str, nodes: Sequence[NodeSpec], replicas: int = 1) -> list[str]:
    """All node names, best first, for ``path``."""
    weights = capped_weights(nodes, replicas)
    scored = [(weights[n.name] / -math.log(unit_hash(n.name, path)), n.name) for n in nodes]
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [name for _, name in scored]


def spread_over_zones(ranking: Sequence[str], zones: dict[str, str], count: int) -> list[str]:
    """Take ``count`` names from ``ranking``, preferring distinct zones (a node without a zone is its own)."""
    chosen: list[str] = []
    used: set[str] = set()
    for name in ranking:
        zone = zones.get(name) or f"\x00{name}"
        if zone not in used:
            chosen.append(name)
            used.add(zone)
        if len(chosen) == count:
            return chosen
    for name in ranking:
        if name not in chosen:
            chosen.append(name)
        if len(chosen) == count:
            break
    return chosen


def placement(path: str, nodes: Sequence[NodeSpec], replicas: int) -> list[str]:
    """The R nodes where ``path`` belongs when every node is healthy (what rebalance aims for)."""
    ranking = rank_nodes(path, nodes, replicas)
    return spread_over_zones(ranking, {n.name: n.zone for n in nodes}, min(replicas, len(nodes)))


def write_order(path: str, nodes: Sequence[NodeSpec], replicas: int, usable: Iterable[str]) -> list[str]:
    """Nodes to try for a new copy of ``path``: the ideal placement first, then the rest of the ranking.

    Only ``usable`` nodes (healthy, not full, not draining) appear. The caller writes to the first R that
    succeed and moves down the list when one fails.
    """
    ok = set(usable)
    ranking = [n for n in rank_nodes(path, nodes, replicas) if n in ok]
    zones = {n.name: n.zone for n in nodes}
    first = spread_over_zones(ranking, zones, min(replicas, len(ranking)))
    return first + [n for n in ranking if n not in first]


@dataclass(frozen=True)
class ReplicaView:
    """What the reader knows about one node holding a copy."""

    node: str
    health: Health = Health.UP
    latency: float = 0.01  # smoothed seconds to a first answer
    inflight: int = 0
    throughput: float = 0.0  # smoothed bytes/s of bodies it sent (0: never measured)
    rtt: float = 0.01  # seconds: the round trip without load (how far it is, not how busy)


# A link never measured is assumed fast, so that it gets tried and measured; one slow body is enough to
# learn otherwise (the reader leaves a replica that falls behind mid-read, see ``should_switch``).
ASSUMED_THROUGHPUT = 100e6


def read_cost(r: ReplicaView, size: int = 0) -> float:
    """Expected seconds to read ``size`` bytes from this replica: first answer plus the body at its measured
    rate, stretched by the requests already waiting on it."""
    rate = r.throughput if r.throughput > 0 else ASSUMED_THROUGHPUT
    return (max(r.latency, 1e-4) + size / rate) * (1 + r.inflight)


def read_order(replicas: Iterable[ReplicaView], size: int = 0) -> list[str]:
    """Replicas to read ``size`` bytes from, the one expected to finish first first; degraded ones last.

    Nodes known to be down are left out entirely: trying them would only cost a timeout.
    """
    live = [r for r in replicas if r.health != Health.DOWN]
    live.sort(key=lambda r: (r.health == Health.DEGRADED, read_cost(r, size), r.node))
    return [r.node for r in live]


def should_switch(elapsed: float, received: int, remaining: int, elsewhere: float) -> bool:
    """Leave a replica mid-read (and continue at the same offset on another) when, at the rate it has
    sent so far, the rest would take more than twice what the best other replica is expected to need for it,
    and over half a second more. ``elapsed``/``received``: this body so far; ``elsewhere``: read_cost of
    the best other replica for ``remaining`` bytes."""
    if elapsed < 0.25 or remaining <= 0:
        return False
    eta = remaining / max(received / elapsed, 1.0)
    return eta > 2 * elsewhere + 0.5


def overtake_after(size: int, spare: ReplicaView) -> float:
    """Seconds a copy may take before the next node in the write order races it: twice what the spare is
    expected to need, and half a second more. Of the copies, the first R to finish are kept; a thin or
    stalled link then costs the write that much, not its own pace (rebalance moves copies back later)."""
    return 2 * read_cost(spare, size) + 0.5
