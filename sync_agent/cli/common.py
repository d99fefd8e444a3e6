"""What every CLI command shares: opening the pool the user chose."""

from __future__ import annotations

import argparse

from sync_agent.errors import PoolDriveError
from sync_agent.pool import Pool


def open_pool(args: argparse.Namespace, *, fill: bool = True) -> Pool:
    """The pool the user chose. A catalog that did not exist yet (first use on this device, or deleted)
    is filled from the nodes first (``fill``; the sync agent does it in its first pass instead, with its
    socket already answering), so no command shows an empty pool that is not empty."""
    pool = Pool.open(args.pool)
    if pool.catalog.fresh and fill:
        from sync_agent import rebuild
        from sync_agent.cli.output import err_console

        try:
            err_console.print("[dim]This device has no catalog of this pool yet: reading it from the nodes…[/]")
            changes = rebuild.refresh(pool)
        except PoolDriveError as e:  # e.g. 'pool init' on new nodes: the command itself says what is wrong
            err_console.print(f"[dim]This device has no catalog of this pool yet, and reading it from the nodes "
                              f"failed ({e.message}); 'pooldrive catalog rebuild' tries again.[/]")
            return pool
        if changes:
            err_console.print(f"[dim]Read the catalog from the nodes: {len(changes)} file(s).[/]")
    return pool
