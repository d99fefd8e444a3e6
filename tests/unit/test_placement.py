from __future__ import annotations

from collections import Counter

import pytest

from sync_agent.placement import (
    Health,
    NodeSpec,
    ReplicaView,
    capped_weights,
    placement,
    rank_nodes,
    read_order,
    should_switch,
    unit_hash,
    write_order,
)

NODES = [NodeSpec(f"node{i}") for i in range(1, 5)]
PATHS = [f"photos/{i:05d}.jpg" for i in range(4000)]


def test_unit_hash_is_in_open_interval_and_stable() -> None:
    values = [unit_hash("node1", p) for p in PATHS[:500]]
    assert all(0 < v < 1 for v in values)
    assert unit_hash("node1", "a") == unit_hash("node1", "a")
    assert unit_hash("node1", "a") != unit_hash("node2", "a")


def test_ranking_is_stable_and_complete() -> None:
    r1 = rank_nodes("a/b.txt", NODES, 2)
    assert r1 == rank_nodes("a/b.txt", list(reversed(NODES)), 2)
    assert sorted(r1) == sorted(n.name for n in NODES)


def test_placement_gives_r_distinct_nodes_and_spreads_evenly() -> None:
    counts: Counter[str] = Counter()
    for p in PATHS:
        chosen = placement(p, NODES, 2)
        assert len(set(chosen)) == 2
        counts.update(chosen)
    expected = len(PATHS) * 2 / 4
    assert all(abs(c - expected) / expected < 0.08 for c in counts.values()), counts


def test_weights_shift_load_proportionally() -> None:
    nodes = [NodeSpec("big", 2.0), NodeSpec("a"), NodeSpec("b"), NodeSpec("c")]
    counts = Counter(placement(p, nodes, 1)[0] for p in PATHS)
    share = counts["big"] / len(PATHS)
    assert 0.35 < share < 0.45, counts  # 2 / 5


def test_weight_cap_stops_one_node_from_taking_everything() -> None:
    w = capped_weights([NodeSpec("huge", 100.0), NodeSpec("a"), NodeSpec("b")], 2)
    total = sum(w.values())
    assert w["huge"] <= total / 2 + 1e-9
    assert w == {"huge": 2.0, "a": 1.0, "b": 1.0}
    # capped, the giant holds a copy of most files, but the small nodes still share the load
    nodes = [NodeSpec("huge", 100.0), NodeSpec("a"), NodeSpec("b")]
    share = sum("huge" in placement(p, nodes, 2) for p in PATHS) / len(PATHS)
    assert 0.75 < share < 0.9


def test_adding_a_node_moves_about_one_in_n_plus_one() -> None:
    before = {p: set(placement(p, NODES, 2)) for p in PATHS}
    grown = [*NODES, NodeSpec("node5")]
    after = {p: set(placement(p, grown, 2)) for p in PATHS}
    moved_copies = sum(len(after[p] - before[p]) for p in PATHS)
    share = moved_copies / (2 * len(PATHS))
    assert 0.16 < share < 0.24, share  # ideal 1/5
    assert all(after[p] - before[p] <= {"node5"} for p in PATHS)  # copies only ever move to the new node


def test_zones_put_copies_in_distinct_failure_domains() -> None:
    nodes = [NodeSpec("a1", zone="a"), NodeSpec("a2", zone="a"), NodeSpec("b1", zone="b"), NodeSpec("b2", zone="b")]
    zone = {n.name: n.zone for n in nodes}
    for p in PATHS[:500]:
        chosen = placement(p, nodes, 2)
        assert {zone[n] for n in chosen} == {"a", "b"}


def test_write_order_skips_unusable_nodes_without_reranking() -> None:
    full = placement("x", NODES, 2)
    usable = [n.name for n in NODES if n.name != full[0]]
    order = write_order("x", NODES, 2, usable)
    assert full[0] not in order
    assert full[1] in order[:2]
    assert len(order) == 3


@pytest.mark.parametrize("r", [1, 2, 3, 4, 6])
def test_placement_with_more_replicas_than_nodes(r: int) -> None:
    assert len(placement("x", NODES, r)) == min(r, 4)


def test_read_order_prefers_fast_idle_healthy_nodes() -> None:
    views = [ReplicaView("slow", latency=0.05), ReplicaView("fast", latency=0.01),
             ReplicaView("busy", latency=0.01, inflight=9), ReplicaView("dead", Health.DOWN, 0.001),
             ReplicaView("meh", Health.DEGRADED, 0.001)]
    assert read_order(views) == ["fast", "slow", "busy", "meh"]


def test_hedge_only_when_much_slower_than_usual() -> None:
    from sync_agent.reader import hedge_delay

    assert hedge_delay(0.01) == 0.25  # a floor: one slow answer on a fast node is no reason to hedge
    assert hedge_delay(0.2) == 0.8  # a node that is slow anyway gets more time


def test_read_order_weighs_throughput_by_the_size_read() -> None:
    near_thin = ReplicaView("near-thin", latency=0.002, throughput=500e3)  # 0.5 MB/s
    far_fat = ReplicaView("far-fat", latency=0.040, throughput=50e6)
    assert read_order([near_thin, far_fat], size=1_000) == ["near-thin", "far-fat"]  # latency decides
    assert read_order([near_thin, far_fat], size=2_000_000) == ["far-fat", "near-thin"]  # the body decides
    unmeasured = ReplicaView("new", latency=0.010)  # assumed fast until measured, so it gets tried
    assert read_order([near_thin, unmeasured], size=2_000_000)[0] == "new"


def test_should_switch_only_for_a_replica_well_behind() -> None:
    assert not should_switch(0.1, 1000, 10_000_000, 0.05)  # too early to judge
    assert should_switch(1.0, 64_000, 6_000_000, 0.2)  # 94 s to go here against 0.2 s elsewhere
    assert not should_switch(1.0, 8_000_000, 6_000_000, 0.2)  # on pace: stay
    assert not should_switch(1.0, 2_000_000, 1_000_000, 0.2)  # 0.5 s left: not worth a new request
    assert not should_switch(1.0, 64_000, 0, 0.2)
