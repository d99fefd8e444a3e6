"""The transfer queue: every upload and download with progress, speed and ETA; pause, resume, cancel and
retry; failures said in words. Transfers run on their own thread pool and talk back through signals."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.icons import icon
from desktop_app.node_panel import human
from desktop_app.workers import run_async
from sync_agent import api
from sync_agent.api import Cancelled, Pool, PoolDriveError, TransferControl


@dataclass
class Job:
    id: int
    direction: str  # up | down
    label: str
    start: Callable[[TransferControl], Any]
    control: TransferControl = field(default_factory=TransferControl)
    state: str = "queued"  # queued | running | paused | done | failed | cancelled
    error: str = ""
    started: float = 0.0
    result: Any = None


class TransferQueue(QObject):
    changed = Signal(int)  # job id
    finished = Signal(int)

    def __init__(self, pool: Pool, parallel: int = 3) -> None:
        super().__init__()
        self.pool = pool
        self.jobs: dict[int, Job] = {}
        self._next = 1
        self.threads = QThreadPool()
        self.threads.setMaxThreadCount(parallel)

    def _add(self, direction: str, label: str, start: Callable[[TransferControl], Any]) -> Job:
        job = Job(self._next, direction, label, start)
        self._next += 1
        self.jobs[job.id] = job
        self._launch(job)
        return job

    def _launch(self, job: Job) -> None:
        job.control = TransferControl(limiter=self.pool.up_limiter if job.direction == "up" else self.pool.down_limiter)
        job.state, job.error, job.started = "running", "", time.monotonic()
        self.changed.emit(job.id)

        def done(result: Any) -> None:
            job.result = result
            failed = getattr(result, "failed", None)
            if failed:
                job.state, job.error = "failed", "; ".join(f"{p}: {e.message}" for p, e in failed[:3])
            else:
                job.state = "done"
            self.changed.emit(job.id)
            self.finished.emit(job.id)

        def error(e: PoolDriveError) -> None:
            job.state = "cancelled" if isinstance(e, Cancelled) else "failed"
            job.error = "" if isinstance(e, Cancelled) else f"{e.title}: {e.message}"
            self.changed.emit(job.id)
            self.finished.emit(job.id)

        run_async(lambda: job.start(job.control), done, error, self.threads)

    def upload(self, local: Path, folder: str) -> Job:
        """A file goes up with byte-level progress and pause; a folder file by file."""
        remote = f"{folder.rstrip('/')}/{local.name}" if folder else local.name
        if local.is_file():
            return self._add("up", f"{local.name} → /{remote}", lambda c: self.pool.put_file(local, remote, control=c))
        return self._add("up", f"{local.name}/ → /{remote}/",
                         lambda c: api.put_tree(self.pool, local, remote, control=c))

    def download(self, remote: str, local: Path, is_dir: bool = False) -> Job:
        if is_dir:
            return self._add("down", f"/{remote}/ → {local}",
                             lambda c: api.get_tree(self.pool, remote, local, control=c))
        return self._add("down", f"/{remote} → {local}", lambda c: self.pool.get_file(remote, local, control=c))

    def pause(self, job_id: int) -> None:
        job = self.jobs[job_id]
        if job.state == "running":
            job.control.pause()
            job.state = "paused"
            self.changed.emit(job_id)

    def resume(self, job_id: int) -> None:
        job = self.jobs[job_id]
        if job.state == "paused":
            job.control.resume()
            job.state = "running"
            self.changed.emit(job_id)

    def cancel(self, job_id: int) -> None:
        job = self.jobs[job_id]
        if job.state in ("running", "paused", "queued"):
            job.control.cancel()

    def retry(self, job_id: int) -> None:
        job = self.jobs[job_id]
        if job.state in ("failed", "cancelled"):
            self._launch(job)

    def active(self) -> int:
        return sum(j.state in ("running", "paused") for j in self.jobs.values())


class TransferPanel(QWidget):
    """The queue as a table, refreshed a few times a second while anything runs."""

    def __init__(self, queue: TransferQueue) -> None:
        super().__init__()
        self.queue = queue
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Transfer", "Progress", "Speed", "ETA", "State"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.rows: dict[int, int] = {}
        buttons = QHBoxLayout()
        self.buttons = {}
        for name, text in (("pause", "Pause"), ("resume", "Resume"), ("cancel", "Cancel"), ("retry", "Retry")):
            b = QPushButton(icon(name if name != "retry" else "refresh"), text)
            b.clicked.connect(lambda _=False, n=name: self._act(n))
            buttons.addWidget(b)
            self.buttons[name] = b
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        queue.changed.connect(self._update_row)
        self.timer = QTimer(self)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def selected_job(self) -> int | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        for job_id, row in self.rows.items():
            if row in rows:
                return job_id
        return None

    def _act(self, name: str) -> None:
        job_id = self.selected_job()
        if job_id is not None:
            getattr(self.queue, name)(job_id)

    def _update_row(self, job_id: int) -> None:
        job = self.queue.jobs[job_id]
        if job_id not in self.rows:
            row = self.table.rowCount()
            self.table.insertRow(row)
            self.rows[job_id] = row
            self.table.setItem(row, 0, QTableWidgetItem(icon("upload" if job.direction == "up" else "download"),
                                                        job.label))
            bar = QProgressBar()
            bar.setMaximum(1000)
            self.table.setCellWidget(row, 1, bar)
            for col in (2, 3, 4):
                self.table.setItem(row, col, QTableWidgetItem(""))
        row = self.rows[job_id]
        state = {"failed": f"Failed: {job.error}", "done": "Done", "cancelled": "Cancelled"}.get(job.state, job.state)
        item = self.table.item(row, 4)
        item.setText(state.capitalize() if job.state not in ("failed",) else state)
        item.setToolTip(job.error)
        self._progress(job)

    def _progress(self, job: Job) -> None:
        row = self.rows[job.id]
        c = job.control
        bar = self.table.cellWidget(row, 1)
        if isinstance(bar, QProgressBar):
            value = 1000 if job.state == "done" else int(1000 * c.done / c.total) if c.total else 0
            bar.setValue(value)
            bar.setFormat(f"{value / 10:.0f}%")
            bar.setTextVisible(True)
        if job.state == "running" and c.done:
            elapsed = max(0.001, time.monotonic() - job.started)
            speed = c.done / elapsed
            left = (c.total - c.done) / speed if speed and c.total else 0
            self.table.item(row, 2).setText(f"{human(speed)}/s")
            self.table.item(row, 3).setText(f"{left:.0f} s" if left < 3600 else f"{left / 3600:.1f} h")
        elif job.state != "running":
            self.table.item(row, 2).setText("")
            self.table.item(row, 3).setText("")

    def _tick(self) -> None:
        for job in self.queue.jobs.values():
            if job.state in ("running", "paused") and job.id in self.rows:
                self._progress(job)
