"""What every CLI command shares: opening the pool the user chose."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sync_agent import api
from sync_agent.api import NodeError, NodeUnreachableError, PoolDriveError

if TYPE_CHECKING:
    from sync_agent.api import Pool


def open_pool(args: argparse.Namespace, *, fill: bool = True) -> Pool:
    """The pool the user chose. A catalog that has never been filled from every node (first use on this
    device, deleted, or an earlier fill that could not reach a node) is filled first (``fill``; the sync
    agent does it in its first pass instead, with its socket already answering), so no command shows an
    empty or partial pool as the truth: a fill that reaches no node fails the command, one that misses
    some nodes says which."""
    pool = api.Pool.open(args.pool)
    try:
        pool.recover()  # writes a killed command or agent left half-done on the nodes
    except PoolDriveError:
        pass  # a node down: the next command tries again, and nothing half-done is ever shown
    if fill and not pool.catalog.filled:
        from sync_agent.cli.output import err_console

        err_console.print("[dim]This device's catalog of the pool is not complete yet: reading it from the "
                          "nodes…[/]")
        failed: dict[str, str] = {}
        try:
            changes = api.refresh_catalog(pool, failed=failed)
        except PoolDriveError as e:
            pool.close()
            raise NodeError(f"This device has no complete catalog of the pool yet, and reading it from the nodes "
                            f"failed: {e.message}") from e
        if failed and len(failed) >= len(pool.cfg.nodes):
            pool.close()
            raise nothing_read(pool, failed, "This device has no complete catalog of the pool yet, and no node "
                               "could be read")
        if failed:
            err_console.print(f"[yellow]Not every node could be read ({_named(failed)}): files held only there "
                              "are not shown. The next command tries again.[/]")
        if changes:
            err_console.print(f"[dim]Read the catalog from the nodes: {len(changes)} file(s).[/]")
    return pool


def nothing_read(pool: Pool, failed: dict[str, str], what: str) -> PoolDriveError:
    """No node could be read: wrong keys (or a revoked share) say so (exit 4), naming the nodes."""
    refused = {n.name: pool.auth_failures[n.name] for n in pool.cfg.nodes if n.name in pool.auth_failures}
    if refused:
        return api.keys_refused(refused, pool.cfg.shared_by if pool.cfg.is_share else None)
    return NodeUnreachableError(f"{what} ({_named(failed)}). Bring a node back and try again.")


def _named(failed: dict[str, str]) -> str:
    return "; ".join(f"{node}: {why}" for node, why in sorted(failed.items()))


def ask_secret(prompt: str, what: str) -> str:
    """A secret from the terminal without echo; with no terminal (a pipe, a script), one line of standard
    input, without getpass's warning. Nothing to read is a clear error, not EOFError. ``what``: how to give it
    without a terminal, for that error."""
    import getpass
    import sys

    if sys.stdin.isatty():
        try:
            return getpass.getpass(prompt)
        except EOFError:
            pass
    else:
        line = sys.stdin.readline()
        if line:
            return line.rstrip("\n")
    raise api.UsageError(f"Nothing was given for '{prompt.strip(': ')}' and there is no terminal to ask on. {what}")
