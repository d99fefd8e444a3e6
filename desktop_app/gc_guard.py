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

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

INTERVAL_MS = 500  # often enough that garbage never piles up between two looks


class MainThreadCollector(QObject):
    """Collects cycles on the thread it lives on (create it on the GUI thread) while it is started."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._was_enabled = gc.isenabled()
        self._thresholds = gc.get_threshold()

    def start(self) -> MainThreadCollector:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()
        return self

    def stop(self) -> None:
        """Collects once more here, then gives the collector back to Python as it was."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    def check(self) -> int:
        """Collects the oldest generation whose threshold is crossed, as Python itself would have.
        Returns the generation collected, -1 when none was."""
        counts = gc.get_count()
        for gen in (2, 1, 0):
            if counts[gen] > self._thresholds[gen]:
                gc.collect(gen)
                return gen
        return -1
