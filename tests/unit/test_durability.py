"""Durability classes: the pure rules (which class, which copies to keep or add, which classes a pool refuses)."""

from __future__ import annotations

import json

import pytest

from sync_agent import durability
from sync_agent.durability import Durability
from sync_agent.replica_plan import NodeFacts, RepairMode, VersionFacts, plan_version

ZONES = {"a1": "a", "a2": "a", "b1": "b", "b2": "b"}


def test_the_deepest_folder_wins_and_siblings_are_not_inside() -> None:
    classes = {"photos": Durability(3, 2, "photos"), "photos/tmp": Durability(1, 1, "photos/tmp")}
    default = Durability(2)
    assert durability.for_key("photos/cat.jpg", classes, default).copies == 3
    assert durability.for_key("photos/tmp/x", classes, default).copies == 1
    assert durability.for_key("photos2/x", classes, default) is default
    assert durability.for_key("photos", classes, default).copies == 3


def test_a_class_the_pool_cannot_meet_is_refused_with_the_reason() -> None:
    assert durability.refusal(3, 2, ZONES) is None
    assert "at least 1" in (durability.refusal(0, 1, ZONES) or "")
    assert "has 4 nodes" in (durability.refusal(5, 1, ZONES) or "")
    assert "2 zones" in (durability.refusal(3, 3, ZONES) or "")
    assert "cannot be spread" in (durability.refusal(1, 2, ZONES) or "")
    assert durability.refusal(2, 2, {"x": "", "y": ""}) is None  # nodes without a zone are zones of their own


def test_new_copies_go_to_the_missing_zone_first_and_trimming_keeps_the_spread() -> None:
    want = Durability(2, 2)
    assert durability.to_add(["a1"], ["a2", "b2", "b1"], ZONES, want) == ["b2"]
    assert durability.keep(["a1", "a2", "b1"], ["a1", "a2", "b1", "b2"], ZONES, want) == ["a1", "b1"]


def test_repair_plans_a_copy_in_a_new_zone_and_then_trims_the_doubled_one() -> None:
    facts = VersionFacts("p", holders=["a1", "a2"], ranking=["a1", "a2", "b1", "b2"], want=Durability(2, 2))
    nodes = NodeFacts(replicas=2, writable=set(ZONES), zones=ZONES)
    plan = plan_version(facts, nodes, RepairMode.REPAIR)
    assert plan.copy_to == ["b1"] and plan.trim == ["a2"]
    plan = plan_version(VersionFacts("p", holders=["a1", "b1", "b2"], ranking=["a1", "a2", "b1", "b2"],
                                     want=Durability(1)), nodes, RepairMode.REPAIR)
    assert plan.copy_to == [] and sorted(plan.trim) == ["b1", "b2"]


@pytest.mark.parametrize("body", [b"{", b"[]", json.dumps({"folder": "../x", "copies": 2, "set_at": 1}).encode(),
                                  json.dumps({"folder": "x", "copies": 2.5, "set_at": 1}).encode(),
                                  json.dumps({"folder": "x", "copies": 2, "zones": 3, "set_at": 1}).encode(),
                                  json.dumps({"folder": "x", "copies": 2, "set_at": "now"}).encode()])
def test_records_from_the_nodes_are_untrusted(body: bytes) -> None:
    with pytest.raises(ValueError):
        durability.decode(body)


def test_a_cleared_record_keeps_its_time() -> None:
    folder, at, d = durability.decode(durability.encode("x", None, 1, 5.0, "host"))
    assert (folder, at, d) == ("x", 5.0, None)
