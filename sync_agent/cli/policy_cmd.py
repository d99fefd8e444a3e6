"""`pooldrive policy`: durability classes per folder (how many copies, over how many zones)."""

from __future__ import annotations

import argparse

from rich.markup import escape

from sync_agent import api
from sync_agent.cli.common import open_pool
from sync_agent.cli.output import console, count_progress, err_console, print_json, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="durability classes: copies and zones per folder")
    s = p.add_subparsers(dest="action", required=True)
    st = s.add_parser("set", help="keep the files of a folder in N copies over Z zones (the deepest folder's "
                                  "class wins); repairs the folder to it now")
    st.add_argument("folder")
    st.add_argument("--copies", type=int, required=True, help="copies of each file (at least 1)")
    st.add_argument("--zones", type=int, default=1, help="zones the copies are spread over (default 1)")
    st.add_argument("--no-wait", action="store_true",
                    help="only set the class; the agent's background repair brings the files to it")
    st.add_argument("--parallel", type=int, default=16, help="files copied or trimmed at once (default 16)")
    st.set_defaults(func=cmd_set)
    cl = s.add_parser("clear", help="remove a folder's class (its files fall back to the enclosing class or R)")
    cl.add_argument("folder")
    cl.add_argument("--no-wait", action="store_true", help="only clear; the background repair trims later")
    cl.add_argument("--parallel", type=int, default=16, help="files copied or trimmed at once (default 16)")
    cl.set_defaults(func=cmd_clear)
    sh = s.add_parser("show", help="the classes, and whether every file meets its class")
    sh.add_argument("folder", nargs="?", default="", help="only this folder (default: every class)")
    sh.set_defaults(func=cmd_show)


def _apply(pool: api.Pool, folder: str, parallel: int) -> int:
    """Bring the folder's files to their classes now, with a progress bar. The folder is read from the nodes
    first: other devices' repairs move copies without telling this catalog."""
    with console.status(f"Reading '{escape(folder)}' from the nodes..."):
        api.refresh_catalog(pool, folder)
    with count_progress() as progress:
        task = progress.add_task(f"Bringing '{escape(folder)}' to its class", total=None)
        report = api.repair(pool, api.RepairMode.REPAIR, prefix=folder, parallel=max(1, parallel),
                            on_plan=lambda work: progress.update(task, total=len(work)),
                            on_file=lambda _w, _err: progress.advance(task))
    console.print(f"Made {report.copies_made} copies, removed {report.copies_removed}.")
    for path, why in report.errors:
        err_console.print(f"[red]Failed:[/] {escape(path)}: {escape(why)}")
    for path in report.unrecoverable:
        err_console.print(f"[red]No readable copy left:[/] {escape(path)}")
    return 1 if report.errors or report.unrecoverable else 0


def cmd_set(args: argparse.Namespace) -> int:
    folder = api.keys.normalize(args.folder)
    with open_pool(args) as pool:
        classes = pool.set_class(folder, args.copies, args.zones)
        console.print(f"'{escape(folder)}' keeps {escape(classes[folder].describe())}.")
        return 0 if args.no_wait else _apply(pool, folder, args.parallel)


def cmd_clear(args: argparse.Namespace) -> int:
    folder = api.keys.normalize(args.folder)
    with open_pool(args) as pool:
        if folder not in pool.fetch_classes():
            console.print(f"'{escape(folder)}' has no class of its own; nothing to clear.")
            return 0
        pool.set_class(folder, None)
        console.print(f"'{escape(folder)}' keeps {escape(pool.durability(folder).describe())} now.")
        return 0 if args.no_wait else _apply(pool, folder, args.parallel)


def cmd_show(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        classes = pool.fetch_classes()
        folders = [api.keys.normalize(args.folder)] if args.folder else ["", *sorted(classes)]
        reports = [api.class_compliance(pool, f) for f in folders]
    if args.json:
        print_json([{"folder": r.folder, "copies": r.want.copies, "zones": r.want.zones,
                     "set_on": r.want.folder, "files": r.files, "meeting": r.meeting, "short": r.short}
                    for r in reports])
        return 0
    table(["Folder", "Copies", "Zones", "Set on", "Files", "Meeting it"],
          [("(whole pool)" if not r.folder else escape(r.folder), r.want.copies, r.want.zones,
            escape(r.want.folder) if r.want.folder else "pool default", r.files,
            "all" if r.met else f"[yellow]{r.meeting}[/]") for r in reports], title="Durability classes")
    for r in reports:
        for path in r.short[:5]:
            console.print(f"[yellow]short of its class:[/] {escape(path)}")
    return 0
