from __future__ import annotations

from sync_agent.replica_plan import NodeFacts, RepairMode, VersionFacts, plan_version

RANK = ["a", "b", "c", "d"]
ALL = {"a", "b", "c", "d"}


def facts(holders, bad=(), ideal=("a", "b")):
    return VersionFacts("f", holders, bad, RANK, ideal)


def test_healthy_file_needs_nothing() -> None:
    assert plan_version(facts(["a", "b"]), NodeFacts(2, writable=ALL), RepairMode.REPAIR).empty


def test_lost_copy_is_recreated_on_the_next_node_in_ranking() -> None:
    p = plan_version(facts(["a", "b"]), NodeFacts(2, lost={"a"}, down={"a"}, writable={"b", "c", "d"}),
                     RepairMode.REPAIR)
    assert p.copy_to == ["c"] and p.trim == [] and p.sources == ["b"]


def test_surplus_after_return_keeps_the_best_ranked() -> None:
    p = plan_version(facts(["a", "b", "c"]), NodeFacts(2, writable=ALL), RepairMode.REPAIR)
    assert p.copy_to == [] and p.trim == ["c"]


def test_never_trims_while_below_r() -> None:
    p = plan_version(facts(["a"]), NodeFacts(2, writable=set()), RepairMode.REPAIR)
    assert p.copy_to == [] and p.trim == []


def test_corrupt_copy_replaced_then_dropped() -> None:
    p = plan_version(facts(["b"], bad=["a"]), NodeFacts(2, writable=ALL), RepairMode.REPAIR)
    assert p.copy_to == ["c"] and p.trim == ["a"]


def test_no_readable_copy_is_unrecoverable() -> None:
    p = plan_version(facts([], bad=["a"]), NodeFacts(2, writable=ALL), RepairMode.REPAIR)
    assert p.unrecoverable and p.empty


def test_all_holders_down_is_not_unrecoverable_just_waiting() -> None:
    p = plan_version(facts(["a", "b"]), NodeFacts(2, down={"a", "b"}, writable={"c", "d"}), RepairMode.REPAIR)
    assert not p.unrecoverable and p.empty


def test_drain_moves_then_trims() -> None:
    p = plan_version(facts(["a", "b"]), NodeFacts(2, draining={"a"}, writable={"b", "c", "d"}), RepairMode.DRAIN)
    assert p.copy_to == ["c"] and p.trim == ["a"]


def test_rebalance_moves_to_ideal_only() -> None:
    p = plan_version(facts(["a", "c"], ideal=("a", "b")), NodeFacts(2, writable=ALL), RepairMode.REBALANCE)
    assert p.copy_to == ["b"] and p.trim == ["c"]
    assert plan_version(facts(["a", "b"]), NodeFacts(2, writable=ALL), RepairMode.REBALANCE).empty


def test_down_within_grace_still_counts_but_is_not_a_source() -> None:
    p = plan_version(facts(["a", "b"]), NodeFacts(2, down={"a"}, writable={"b", "c", "d"}), RepairMode.REPAIR)
    assert p.empty and p.sources == ["b"]
