"""Running engine calls off the GUI thread.

Every call into the engine (network, disk, SQLite) goes through ``run_async``: it runs on a thread pool
and its result or error comes back to the GUI thread through a Qt signal. A frozen node therefore never
freezes the window, however long the call takes.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from sync_agent.api import PoolDriveError

log = logging.getLogger(__name__)


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _Signals()
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn()
        except PoolDriveError as e:
            self.signals.failed.emit(e)
        except Exception as e:
            traceback.print_exc()
            self.signals.failed.emit(PoolDriveError(f"Unexpected problem: {e!r}", title="Internal error"))
        else:
            self.signals.done.emit(result)


_KEEP: set[_Signals] = set()  # keep signal objects alive until delivered
_POOL: QThreadPool | None = None


def engine_pool() -> QThreadPool:
    """Threads for engine calls. They wait on the network, not the CPU: Qt's global pool has one thread
    per core (two here), so one slow node probe could hold up a user's click; this one has 16."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(16)
    return _POOL


def run_async(fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[PoolDriveError], None] | None = None, pool: QThreadPool | None = None) -> None:
    job = _Job(fn)
    sig = job.signals
    _KEEP.add(sig)

    def finished(handler: Callable[[Any], None] | None) -> Callable[[Any], None]:
        def call(value: Any) -> None:
            _KEEP.discard(sig)
            if handler is None:
                return
            try:
                handler(value)
            except RuntimeError as e:  # the window or dialog that asked was closed while the call ran
                if "already deleted" not in str(e):
                    raise
                log.debug("result of %s dropped: its window is gone", getattr(fn, "__name__", fn))
        return call

    sig.done.connect(finished(on_done))
    sig.failed.connect(finished(on_error))
    (pool or engine_pool()).start(job)


class EngineEvents(QObject):
    """Engine callbacks (any thread) turned into Qt signals (delivered on the GUI thread)."""

    health_changed = Signal(str, str)  # node, new state
