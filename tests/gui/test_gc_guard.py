"""Cycles are collected on the GUI thread only, where Qt objects may be destroyed (desktop_app.gc_guard)."""

from __future__ import annotations

import gc
import threading

from desktop_app.gc_guard import MainThreadCollector

_died_on: list[str] = []  # the name of the thread each _Cycle was freed on


class _Cycle:

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        _died_on.append(threading.current_thread().name)


_kept: list[list[list[int]]] = []


def _churn() -> None:
    """Allocates far past generation 0's threshold, as an engine thread parsing a listing does."""
    _kept.append([[i] for i in range(50_000)])


def test_a_cycle_dropped_while_engine_threads_allocate_dies_on_the_gui_thread(qapp, qtbot) -> None:
    collector = MainThreadCollector(interval_ms=50)  # the fixture already runs one; this one is under test
    collector.start()
    try:
        assert not gc.isenabled()
        _died_on.clear()
        _Cycle()  # garbage at once, but only a cycle collection can free it
        workers = [threading.Thread(target=_churn, name=f"engine-{i}") for i in range(4)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        assert _died_on == []  # no engine thread collected it
        qtbot.waitUntil(lambda: _died_on != [], timeout=5000)  # the timer did, on this thread
        assert _died_on == [threading.main_thread().name]
    finally:
        _kept.clear()
        collector.stop()
    assert not gc.isenabled()  # stop gives back what it found: the fixture's collector had it off


def test_start_and_stop_twice_leave_the_collector_as_they_found_it(qapp) -> None:
    was = gc.isenabled()
    gc.enable()
    try:
        c = MainThreadCollector()
        c.start()
        c.start()  # a second start must not take "off" for how it found things
        assert not gc.isenabled()
        c.stop()
        assert gc.isenabled()
        gc.disable()  # as another collector would have it
        c.stop()  # a second stop changes nothing
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
