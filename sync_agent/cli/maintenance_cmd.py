"""`pooldrive repair | rebalance | scrub | node drain`: keeping every file at R verified copies."""

from __future__ import annotations

import argparse

from rich.markup import escape

from sync_agent import api
from sync_agent.api import RepairMode
from sync_agent.cli.common import open_pool
from sync_agent.cli.output import console, count_progress, err_console, human_size, print_json, table


def register(sub: argparse._SubParsersAction) -> None:
    for name, text in (("repair", "bring every file back to R verified copies now (down nodes count as lost)"),
                       ("rebalance", "move copies to where placement puts them (after adding a node or "
                                     "changing weights)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--dry-run", action="store_true", help="only show what would move")
        p.add_argument("--parallel", type=int, default=4)
        p.add_argument("--limit", type=float, default=0, help="bandwidth limit in MB/s (0: none)")
        p.set_defaults(func=cmd_run, mode=RepairMode(name))
    s = sub.add_parser("scrub", help="read copies back and check their checksums; repair bad ones")
    s.add_argument("--sample", type=float, default=1.0, help="share of files to check (0-1)")
    s.add_argument("--no-repair", action="store_true")
    s.add_argument("--parallel", type=int, default=4)
    s.set_defaults(func=cmd_scrub)
    node = sub.add_parser("node", help="node maintenance")
    ns = node.add_subparsers(dest="action", required=True)
    d = ns.add_parser("drain", help="move every copy off a node so it can be removed")
    d.add_argument("name")
    d.add_argument("--parallel", type=int, default=4)
    d.set_defaults(func=cmd_drain)
    u = ns.add_parser("undrain", help="take a drained (or draining) node back into service")
    u.add_argument("name")
    u.set_defaults(func=cmd_undrain)


def _print_report(r: api.RepairReport, dry_run: bool) -> None:
    verb = "would move" if dry_run else "moved"
    if r.planned:
        table(["Node", "Copies in", "Copies out", "Bytes in"],
              [(n, c["in"], c["out"], human_size(c["bytes"])) for n, c in sorted(r.planned.items())],
              title=f"{r.mode}: {r.files} file(s) need work")
    if dry_run:
        total = sum(c["bytes"] for c in r.planned.values())
        console.print(f"{r.mode} {verb} {sum(c['in'] for c in r.planned.values())} copies "
                      f"({human_size(total)}) and remove {sum(c['out'] for c in r.planned.values())}.")
    else:
        rate = r.bytes_copied / r.seconds if r.seconds else 0
        console.print(f"{r.mode}: made {r.copies_made} copies ({human_size(r.bytes_copied)}, {human_size(rate)}/s), "
                      f"removed {r.copies_removed}, in {r.seconds:.1f} s.")
    for path in r.unrecoverable:
        err_console.print(f"[red]No readable copy left:[/] {escape(path)}")
    for path, why in r.errors:
        err_console.print(f"[red]Failed:[/] {path}: {why}")


def cmd_run(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        pool.refresh_health(max_age=0)
        lost = {n for n in pool.clients if pool.health.is_down(n)} if args.mode == RepairMode.REPAIR else None
        if lost:
            console.print(f"[yellow]Counting {', '.join(sorted(lost))} as lost (down now).[/]")
        limiter = api.RateLimiter(args.limit * 1e6) if args.limit else None
        with console.status(f"{args.mode.value}..."):
            report = api.repair(pool, args.mode, lost=lost, dry_run=args.dry_run, parallel=args.parallel,
                                limiter=limiter)
    if args.json:
        print_json(report)
    else:
        _print_report(report, args.dry_run)
    return 1 if report.errors or report.unrecoverable else 0


def cmd_scrub(args: argparse.Namespace) -> int:
    with open_pool(args) as pool, console.status("Reading copies back..."):
        report = api.scrub(pool, sample=args.sample, repair=not args.no_repair, parallel=args.parallel)
    if args.json:
        print_json(report)
        return 1 if report.corrupt else 0
    table(["Files", "Copies checked", "Bad copies", "Copies made", "Seconds"],
          [(report.files, report.checked, len(report.corrupt), report.copies_made, f"{report.seconds:.1f}")],
          title="Scrub")
    for path, node in report.corrupt:
        console.print(f"[red]bad copy[/] {path} on {node}")
    return 1 if report.corrupt and args.no_repair else 0


def cmd_undrain(args: argparse.Namespace) -> int:
    with open_pool(args, fill=False) as pool:
        api.undrain(pool, args.name)
    console.print(f"{args.name} takes new copies again; 'pooldrive rebalance' moves existing files back onto it.")
    return 0


def cmd_drain(args: argparse.Namespace) -> int:
    with open_pool(args) as pool, count_progress() as progress:
        task = progress.add_task(f"Moving copies off {args.name}", total=None)
        report = api.drain(pool, args.name, parallel=args.parallel,
                              on_progress=lambda done, total: progress.update(task, completed=done, total=total))
        left = pool.catalog.replicas_on_node(args.name)
    _print_report(report, False)
    if left:
        err_console.print(f"[yellow]{args.name} still holds {left} copies; run the drain again.[/]")
        return 1
    console.print(f"{args.name} is empty: 'pooldrive pool remove-node {args.name}' can remove it now.")
    return 0
