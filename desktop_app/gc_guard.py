"""Python's cycle collector, run only on the GUI thread.

Python collects reference cycles in whichever thread happens to allocate when a generation's threshold
is crossed: often an engine thread in the middle of a request. If that cycle holds a Qt object (a
dialog whose slot refers back to it, a finished job's signals), its C++ destructor then runs on that
thread, and Qt crashes the process (seen in CI: a segmentation fault "Garbage-collecting" inside a node
probe's worker thread). The cure PyQt and PySide applications use is to switch the automatic collector
off and collect from a timer on the GUI thread instead, by the same thresholds.
"""

from __future__ import annotations

import gc
import logging
import time

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

INTERVAL_MS = 500  # often enough that garbage never piles up between two looks
FULL_EVERY_S = 60.0  # at most one full collection a minute: Python skips most of them too (its 25 % rule)


class MainThreadCollector(QObject):
    """Collects cycles on the thread it lives on (create it on the GUI thread) while it is started.
    ``start`` and ``stop`` may be called twice; nested collectors must stop in the reverse order."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._active = False
        self._was_enabled = True
        self._last_full = time.monotonic()

    def start(self) -> MainThreadCollector:
        if not self._active:
            self._active = True
            self._was_enabled = gc.isenabled()
            gc.disable()
            self._timer.start()
        return self

    def stop(self) -> None:
        """Collects once more here, then gives the collector back to Python as it was."""
        if not self._active:
            return
        self._active = False
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    def check(self) -> int:
        """Collects the oldest generation whose threshold is crossed, as Python itself would have (a full
        collection at most every ``FULL_EVERY_S``: it walks every object, and the window waits for it).
        Returns the generation collected, -1 when none was."""
        counts, limits = gc.get_count(), gc.get_threshold()
        if limits[0] == 0:  # someone switched threshold-driven collection off altogether
            return -1
        if 0 < limits[2] < counts[2] and time.monotonic() - self._last_full >= FULL_EVERY_S:
            gc.collect(2)
            self._last_full = time.monotonic()
            return 2
        for gen in (1, 0):
            if counts[gen] > limits[gen]:
                gc.collect(gen)
                return gen
        return -1
