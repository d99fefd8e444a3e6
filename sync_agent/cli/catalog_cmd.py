"""`pooldrive catalog`: rebuild the local catalog from the nodes, or bring it up to date."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.markup import escape

from sync_agent import api
from sync_agent.api import CatalogUnreadableError
from sync_agent.cli.common import nothing_read, open_pool
from sync_agent.cli.output import console, err_console, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("catalog", help="the local catalog of files and replicas")
    s = p.add_subparsers(dest="action", required=True)
    s.add_parser("rebuild", help="recreate the catalog from the nodes alone").set_defaults(func=cmd_rebuild)
    s.add_parser("refresh", help="bring the catalog in line with the nodes").set_defaults(func=cmd_refresh)


def cmd_rebuild(args: argparse.Namespace) -> int:
    try:
        pool = open_pool(args, fill=False)
    except CatalogUnreadableError as e:  # set the damaged file aside (never deleted) and start a new one
        damaged = Path(e.paths[0])
        aside = damaged.with_name(f"{damaged.name}.unreadable-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            src = damaged.with_name(damaged.name + suffix)
            if src.exists():
                src.rename(aside.with_name(aside.name + suffix))
        console.print(f"[yellow]The catalog could not be read; it was set aside as {aside}. The shares and links "
                      "you made were recorded in it: if they still matter, revoke them with the nodes' admin "
                      "tools ('mc admin user svcacct ls').[/]")
        pool = open_pool(args, fill=False)
    with pool, console.status("Listing every node...") as status:
        scan = api.rebuild_catalog(pool, progress=lambda node, n: status.update(f"Listing {node}: {n} objects"))
        files, size = pool.catalog.count()
    deleted = sum(1 for f in scan.files.values() if f.deleted)
    if args.json:
        print_json({"files": files, "bytes": size, "deleted": deleted, "skipped": scan.skipped})
    else:
        console.print(f"Rebuilt the catalog from {len(scan.scanned)} nodes: {files} files, {deleted} deleted "
                      "files kept restorable.")
        for key in scan.skipped:
            console.print(f"[yellow]Skipped an object whose name is not a valid pool path:[/] {key!r}")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    with open_pool(args, fill=False) as pool:
        failed: dict[str, str] = {}
        changes = api.refresh_catalog(pool, failed=failed)
        if failed and len(failed) >= len(pool.cfg.nodes):  # not '0 changes': nothing was read at all
            raise nothing_read(pool, failed, "No node could be read")
        if failed:
            err_console.print(f"[yellow]Not every node could be read ({'; '.join(sorted(failed))}): files held "
                              "only there are not refreshed.[/]")
    if args.json:
        print_json(changes)
    else:
        for c in changes:
            console.print(f"{c.kind:9} {escape(c.path)}")
        console.print(f"{len(changes)} change(s).")
    return 0
