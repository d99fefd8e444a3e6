"""History command: purge (forget replaced versions and deleted files for good)."""

from __future__ import annotations

import argparse
import re
import sys

from rich.markup import escape

from sync_agent.api import Pool, PurgeReport, UsageError
from sync_agent.cli.common import open_pool
from sync_agent.cli.output import console, count_progress, err_console, human_size, print_json, table

SHOWN = 40  # rows of a dry run's table; the rest are counted
UNITS = {"d": 1.0, "w": 7.0, "h": 1 / 24}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("purge", help="forget replaced versions and deleted files for good (frees space)",
                       description="Forget for good what the pool keeps of a file's past: versions replaced by "
                                   "newer ones, and files deleted (which also frees a deleted file's name for a "
                                   "folder). A live file's current version always stays. Cannot be undone.")
    p.add_argument("path", nargs="?", default=None,
                   help="a file or folder (with what is under it); leave out, with --older-than, for the whole pool")
    p.add_argument("--older-than", dest="older_than", type=_age, default=None, metavar="AGE",
                   help="only what stopped being current longer ago than AGE: days, or e.g. 12h, 30d, 8w "
                        "(default with a path: everything)")
    p.add_argument("--dry-run", action="store_true", help="only show what would be forgotten")
    p.add_argument("--yes", action="store_true", help="do not ask before forgetting")
    p.set_defaults(func=cmd_purge)


def _age(text: str) -> float:
    """An age in days: '30', '30d', '12h', '8w'."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dwh]?)\s*", text.lower())
    if m is None:
        raise argparse.ArgumentTypeError(f"'{text}' is not an age: give days (30), or hours, days or weeks "
                                         "(12h, 30d, 8w)")
    return float(m.group(1)) * UNITS.get(m.group(2) or "d", 1.0)


def cmd_purge(args: argparse.Namespace) -> int:
    if args.path is None and args.older_than is None:
        raise UsageError("Name a file or folder to purge, or give --older-than AGE to purge the whole pool's "
                         "history older than that (e.g. 'pooldrive purge --older-than 90d').")
    scope = args.path or ""
    days = args.older_than or 0.0
    with open_pool(args) as pool:
        if not args.json and err_console.is_terminal:  # a whole pool's listing takes a while at 100,000 files
            where = f"under '{escape(scope)}'" if scope else "in the whole pool"
            err_console.print(f"Reading what the nodes hold {where}…")
        if args.yes and not args.dry_run:  # no question to ask first: one look at the nodes, not two
            return _purge(pool, scope, days, args.json)
        doomed, report = pool.purge(scope, older_than_days=days, dry_run=True)
        if args.dry_run or not doomed:
            if args.json:
                print_json({"dry_run": True, "versions": report.versions, "files": report.files,
                            "bytes": report.bytes, "doomed": doomed})
                return 0
            if doomed:
                table(["Path", "Version", "Stored at", "Size", "Copies", "Why"],
                      [(escape(d.path), d.number, escape(d.key), human_size(d.size), len(d.copies),
                        "deleted" if d.deleted else "replaced") for d in doomed[:SHOWN]])
                if len(doomed) > SHOWN:
                    console.print(f"... and {len(doomed) - SHOWN} more.")
            console.print(_summary(report, would=True))
            return 0
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError(f"{_summary(report, would=True)} This cannot be undone: add --yes to go on "
                                 "(or --dry-run to list them).")
            console.print(_summary(report, would=True) + " This cannot be undone.")
            if input("Forget them for good? [y/N] ").strip().lower() not in ("y", "yes"):
                console.print("Nothing was purged.")
                return 0
        return _purge(pool, scope, days, args.json)


def _purge(pool: Pool, scope: str, days: float, as_json: bool) -> int:
    with count_progress(not as_json) as progress:
        task = progress.add_task("Purging", total=None)
        _, report = pool.purge(scope, older_than_days=days,
                               progress=lambda done, total: progress.update(task, completed=done, total=total))
    if as_json:
        print_json({"dry_run": False, "versions": report.versions, "files": report.files, "bytes": report.bytes,
                    "markers": report.markers, "left": report.left})
    else:
        console.print(_summary(report, would=False))
    for why in report.left:
        err_console.print(f"[yellow]Left:[/] {escape(why)}")
    if report.left:
        err_console.print("[yellow]Run the purge again once those nodes answer.[/]")
        return 1
    return 0


def _summary(report: PurgeReport, *, would: bool) -> str:
    if not report.versions:
        return "Nothing to purge: no replaced version or deleted file there is that old."
    files = f", {report.files} deleted file(s) whole" if report.files else ""
    verb = "Would forget" if would else "Forgot"
    return (f"{verb} {report.versions} version(s){files}: {human_size(report.bytes)} "
            f"{'stored' if would else 'freed'} (every copy counted).")
