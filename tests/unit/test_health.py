from __future__ import annotations

from sync_agent.health import HealthBook, NodeHealth, WindowedMin
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
    h = NodeHealth("n")
    h.observe(True, 0.01)  # the first answer sets it
    h.observe(True, 0.02)
    assert 0.01 < h.latency < 0.02


def test_a_near_node_under_load_still_counts_as_near() -> None:
    """The batch upload's rule (``small_writes.quick``) reads the round-trip floor, not the smoothed answer
    time: CI once saw loopback PUTs take 50 ms under the upload's own load, and a third of a folder went
    the full way, file by file."""
    from sync_agent.small_writes import quick

    book = HealthBook(["near"])
    book.record("near", True, 0.005)
    for _ in range(300):
        book.record("near", True, 0.09)  # busy: every answer slow, the way as short as before
    view = book.views(["near"])[0]
    assert view.latency > 0.05 and view.rtt == 0.005 and quick(view)


def test_the_round_trip_floor_follows_a_node_that_moved_away_within_two_windows() -> None:
    floor = WindowedMin(window=60.0)
    floor.add(0.004, at=0.0)
    floor.add(0.2, at=30.0)
    assert floor.value(1.0) == 0.004
    floor.add(0.2, at=70.0)  # a new window: the quick answer is still in the one before
    assert floor.value(1.0) == 0.004
    floor.add(0.25, at=135.0)  # two windows on: only answers from the new route are left
    assert floor.value(1.0) == 0.2
    floor.add(0.3, at=400.0)  # silence for long: nothing old counts
    assert floor.value(1.0) == 0.3
    floor.add(0.003, at=401.0)  # one quick answer: near again
    assert floor.value(1.0) == 0.003
    assert WindowedMin().value(0.02) == 0.02  # never answered: the caller's guess


def test_book_publishes_changes_only() -> None:
    book = HealthBook(["a"])
    events = []
    book.subscribe(events.append)
    book.record("a", True, 0.01)
    book.record("a", False, hard=True)
    book.record("a", False, hard=True)
    assert [(e.old, e.new) for e in events] == [(Health.UP, Health.DOWN)]


def test_a_slow_body_counts_for_what_it_cost_and_nothing_divides_by_zero() -> None:
    from sync_agent.health import NodeHealth

    h = NodeHealth("n")
    for _ in range(5):
        h.observe_rate(50_000_000, 1.0)  # 50 MB/s history
    h.observe_rate(100_000, 1.0)  # one body at 100 KB/s
    assert h.known_throughput() < 500_000  # the slow body dominates (a rate average would say 35 MB/s)
    h.observe_rate(0, 0.5)  # a stalled body: no crash, and slower still
    assert 0 < h.known_throughput() < 100_000


def test_a_probe_waits_ten_round_trips_within_its_floor_and_the_read_timeout() -> None:
    from sync_agent.health import probe_timeout

    assert probe_timeout(0.002, 20.0) == 3.0  # a LAN node that froze is found down in 3 s, not 20
    assert probe_timeout(0.25, 20.0) == 3.0
    assert probe_timeout(1.0, 20.0) == 10.0  # a node a second away is given ten of its round trips
    assert probe_timeout(5.0, 20.0) == 20.0  # never longer than a data request waits
    assert probe_timeout(0.002, 20.0, floor=2.0) == 2.0


def test_the_first_answer_sets_the_latency_instead_of_nudging_the_assumed_one() -> None:
    """A node 100 ms away is 100 ms away from its first answer (a batch upload decides by it), not 44 ms
    after one probe as the smoothing of an assumed 20 ms would say."""
    h = NodeHealth("n")
    h.observe(True, 0.1)
    assert h.latency == 0.1
    h.observe(True, 0.2)
    assert 0.1 < h.latency < 0.2
