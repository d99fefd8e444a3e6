"""Terminal output: tables, progress bars, sizes, JSON for scripts, and errors a person can act on."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from rich.progress import Progress

from sync_agent.api import PoolDriveError

# piped output is not wrapped at 80 columns: scripts and logs read whole lines
console = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, emoji=False, width=None if sys.stderr.isatty() else 200)


def human_size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def human_time(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    t = Table(title=title, show_edge=False, header_style="bold", pad_edge=False)
    for c in columns:
        t.add_column(c, justify="right" if c.lower() in ("size", "files", "latency", "weight", "copies",
                                                         "version", "bytes", "replicas") else "left")
    for r in rows:
        t.add_row(*[str(x) for x in r])
    console.print(t)


def _jsonable(o: Any) -> Any:
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(o).items()}
    if isinstance(o, list | tuple):
        return [_jsonable(x) for x in o]
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    return o


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(data), indent=2, default=str) + "\n")


def print_error(e: PoolDriveError) -> None:
    err_console.print(f"[bold red]{escape(e.title)}:[/] {escape(e.message)}")  # paths may hold [ ]


def count_progress(enabled: bool = True) -> Progress:
    """A bar for work counted in items (copies moved, files checked), with the time left."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err_console, disable=not enabled or not err_console.is_terminal, transient=False)


def transfer_progress(enabled: bool = True) -> Progress:
    from rich.progress import (  # loaded when a bar is shown: 'ls' and 'status' never need one
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=err_console,
                    disable=not enabled or not err_console.is_terminal, transient=False)
