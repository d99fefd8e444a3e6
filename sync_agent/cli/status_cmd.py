"""`pooldrive status`: the nodes at a glance, optionally watching for changes."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from sync_agent.api import Health
from sync_agent.cli.common import open_pool
from sync_agent.cli.output import console, human_size, print_json, table

if TYPE_CHECKING:
    from sync_agent.api import NodeStatus, Pool

COLOUR = {Health.UP: "green", Health.DEGRADED: "yellow", Health.DOWN: "red"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="nodes: health, latency, space, weight")
    p.add_argument("--watch", action="store_true", help="keep watching and report every change")
    p.add_argument("--interval", type=float, default=2.0, help="probe interval for --watch (seconds)")
    p.set_defaults(func=cmd_status)


def _space(s: NodeStatus) -> str:
    if s.total is None:
        return "unknown"
    return f"{human_size(s.used)} / {human_size(s.total)} ({100 * (s.used or 0) / s.total:.0f}%)"


def _print(pool: Pool, rows: list[NodeStatus]) -> None:
    files, size = pool.catalog.count()
    console.print(f"Pool [bold]{pool.cfg.name}[/]: {len(rows)} nodes, {files} files ({human_size(size)}), "
                  f"{pool.cfg.replicas} copies each")
    table(["Node", "State", "Latency", "Used / total", "Weight", "Zone", "Copies", "Endpoint"],
          [(s.name, f"[{COLOUR[s.state]}]{s.state.value}[/]" + (" (draining)" if s.draining else ""),
            f"{s.latency_ms:.0f} ms" if s.state != Health.DOWN else "-", _space(s), f"{s.weight:g}",
            s.zone or "-", s.replicas, s.endpoint) for s in rows])
    for s in rows:
        if s.error and s.state != Health.UP:
            console.print(f"[{COLOUR[s.state]}]{s.name}:[/] {s.error}")


def cmd_status(args: argparse.Namespace) -> int:
    with open_pool(args, fill=False) as pool:
        rows = pool.node_status()
        if args.json and not args.watch:
            print_json(rows)
            return 0 if all(r.state != Health.DOWN for r in rows) else 1
        _print(pool, rows)
        if not args.watch:
            return 0 if all(r.state != Health.DOWN for r in rows) else 1
        from sync_agent.api import HealthMonitor

        monitor = HealthMonitor(pool, interval=args.interval).start()
        console.print("[dim]Watching for changes (Ctrl+C to stop)...[/]")
        seen = 0
        try:
            while True:
                seen, events = monitor.wait_for_change(seen, timeout=3600)
                for ev in events:
                    stamp = time.strftime("%H:%M:%S")
                    console.print(f"{stamp} {ev.node}: [{COLOUR[ev.old]}]{ev.old.value}[/] -> "
                                  f"[{COLOUR[ev.new]}]{ev.new.value}[/]" + (f"  ({ev.error})" if ev.error else ""))
        except KeyboardInterrupt:
            return 0
        finally:
            monitor.stop()
