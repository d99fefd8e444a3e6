from __future__ import annotations

from sync_agent.health import HealthBook, NodeHealth
from sync_agent.placement import Health


def test_one_failure_degrades_two_take_down_two_successes_bring_back() -> None:
    h = NodeHealth("n")
    assert h.observe(False) == Health.DEGRADED
    assert h.observe(False) == Health.DOWN
    assert h.observe(True, 0.01) == Health.DOWN
    assert h.observe(True, 0.01) == Health.UP


def test_hard_failure_is_down_at_once() -> None:
    assert NodeHealth("n").observe(False, hard=True) == Health.DOWN


def test_one_slow_answer_does_not_flap() -> None:
    h = NodeHealth("n")
    for _ in range(5):
        h.observe(True, 0.01)
    assert h.observe(True, 2.0) == Health.UP
    assert h.observe(True, 0.01) == Health.UP
    for _ in range(3):
        h.observe(True, 3.0)
    assert h.state == Health.DEGRADED


def test_latency_is_smoothed() -> None:
    h = NodeHealth("n", latency=0.01)
    h.observe(True, 0.02)
    assert 0.01 < h.latency < 0.02


def test_book_publishes_changes_only() -> None:
    book = HealthBook(["a"])
    events = []
    book.subscribe(events.append)
    book.record("a", True, 0.01)
    book.record("a", False, hard=True)
    book.record("a", False, hard=True)
    assert [(e.old, e.new) for e in events] == [(Health.UP, Health.DOWN)]
