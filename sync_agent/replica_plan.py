"""What repair, rebalance and drain should do with one file version. Pure functions, no I/O.

The plan never removes a copy unless, counting only copies that already exist and are verified plus the
copies it asks to make first, the file keeps its class's good copies (R, or its folder's durability class),
spread over the zones the class asks for; the executor re-checks that after copying.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sync_agent import durability
from sync_agent.durability import Durability


class RepairMode(StrEnum):
    REPAIR = "repair"  # back to R good copies; drop surplus and bad copies
    REBALANCE = "rebalance"  # move copies to where placement puts them now
    DRAIN = "drain"  # move every copy off draining nodes


@dataclass(frozen=True)
class VersionFacts:
    path: str
    holders: Sequence[str]  # nodes with a verified copy
    bad: Sequence[str] = ()  # nodes whose copy is corrupt or missing
    ranking: Sequence[str] = ()  # every node, best first (rendezvous)
    ideal: Sequence[str] = ()  # where placement puts this file now (rebalance target)
    want: Durability | None = None  # its folder's class (None: NodeFacts.replicas copies, any zones)


@dataclass(frozen=True)
class NodeFacts:
    replicas: int
    lost: Collection[str] = frozenset()  # down past the grace period: their copies no longer count
    down: Collection[str] = frozenset()  # down now: copies still count (within grace) but cannot be read
    draining: Collection[str] = frozenset()
    writable: Collection[str] = frozenset()  # may take new copies
    zones: Mapping[str, str] = field(default_factory=dict)  # node -> zone ("" : a zone of its own)


@dataclass
class ReplicaPlan:
    copy_to: list[str] = field(default_factory=list)
    trim: list[str] = field(default_factory=list)  # remove these copies once the new ones are verified
    sources: list[str] = field(default_factory=list)
    unrecoverable: bool = False  # no readable copy anywhere

    @property
    def empty(self) -> bool:
        return not self.copy_to and not self.trim


def plan_version(f: VersionFacts, n: NodeFacts, mode: RepairMode) -> ReplicaPlan:
    want = f.want or Durability(n.replicas)
    unreachable = set(n.lost) | set(n.down)
    sources = [h for h in f.holders if h not in unreachable]
    good = [h for h in f.holders if h not in n.lost and h not in n.draining]
    plan = ReplicaPlan(sources=sources)
    if not sources:
        plan.unrecoverable = bool(f.holders or f.bad) and not any(h in unreachable for h in f.holders)
        return plan
    held = set(f.holders) | set(f.bad)
    candidates = [x for x in f.ranking if x in n.writable and x not in held]
    if mode == RepairMode.REBALANCE:
        ideal = [x for x in f.ideal if x not in n.draining]
        plan.copy_to = [x for x in ideal if x not in f.holders and x in n.writable]
        after = set(good) | set(plan.copy_to)
        if len([x for x in after if x in ideal]) >= min(want.copies, len(ideal)):
            plan.trim = [h for h in good if h not in ideal and h not in unreachable]
    else:
        plan.copy_to = durability.to_add(good, candidates, n.zones, want)
        copies = good + plan.copy_to
        if len(copies) >= want.copies:
            keep = durability.keep(copies, f.ranking, n.zones, want)
            plan.trim = [h for h in good if h not in keep and h not in unreachable]
            plan.trim += [h for h in f.holders if h in n.draining and h not in unreachable]
    if len(set(good) | set(plan.copy_to)) >= want.copies or (len(good) >= 1 and not candidates):
        plan.trim += [b for b in f.bad if b not in unreachable]
    return plan
