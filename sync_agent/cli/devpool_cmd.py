"""`pooldrive devpool`: a local pool of real MinIO processes for demos and development."""

from __future__ import annotations

import argparse

from sync_agent.cli.output import console, print_json, table
from sync_agent.devpool import DevPool


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("devpool", help="start and stop a local pool of MinIO nodes")
    s = p.add_subparsers(dest="action", required=True)
    up = s.add_parser("up", help="start N MinIO nodes on 127.0.0.1")
    up.add_argument("--nodes", type=int, default=4)
    up.add_argument("--replicas", type=int, default=2, help="copies of each file (R)")
    up.set_defaults(func=cmd_up)
    s.add_parser("status", help="show the nodes").set_defaults(func=cmd_status)
    down = s.add_parser("down", help="stop every node")
    down.add_argument("--purge", action="store_true", help="also delete the nodes' data and the pool config")
    down.set_defaults(func=cmd_down)
    for action, text in (("kill", "kill -9 a node (a crash)"), ("stop", "stop a node cleanly"),
                         ("start", "start (or thaw) a node"), ("freeze", "SIGSTOP a node (a hang)")):
        a = s.add_parser(action, help=text)
        a.add_argument("node", help="node number or name, e.g. 2 or node2")
        a.set_defaults(func=cmd_node, node_action=action)


def cmd_up(args: argparse.Namespace) -> int:
    dp = DevPool()
    with console.status(f"Starting {args.nodes} MinIO nodes..."):
        cfg = dp.up(args.nodes, args.replicas)
    from sync_agent.pool import Pool

    with Pool(cfg) as pool:
        errors = pool.init_buckets()
    for name, why in errors.items():
        console.print(f"[yellow]{name}: could not create the bucket: {why}[/]")
    console.print(f"[green]Dev pool up:[/] {len(cfg.nodes)} nodes, {cfg.replicas} copies of each file.")
    _print_status(dp, args)
    console.print(f"Pool config: {cfg.path}")
    console.print(f"Credentials: {dp.credentials_file} (mode 0600, generated for this pool)")
    return 0


def _print_status(dp: DevPool, args: argparse.Namespace) -> None:
    rows = dp.status()
    if getattr(args, "json", False):
        print_json(rows)
        return
    colour = {"up": "green", "down": "red", "frozen": "yellow"}
    table(["Node", "State", "S3 endpoint", "Console", "PID"],
          [(r.name, f"[{colour.get(r.state, 'yellow')}]{r.state}[/]", f"http://{r.endpoint}", r.console,
            r.pid or "-") for r in rows])


def cmd_status(args: argparse.Namespace) -> int:
    dp = DevPool()
    _print_status(dp, args)
    return 0 if all(r.state == "up" for r in dp.status()) else 1


def cmd_down(args: argparse.Namespace) -> int:
    dp = DevPool()
    if not dp.exists():
        console.print("No dev pool is running.")
        return 0
    stopped = dp.down(purge=args.purge)
    console.print(f"Stopped {stopped} node(s)." + (" Data and config deleted." if args.purge else ""))
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    dp = DevPool()
    node = getattr(dp, args.node_action)(args.node)
    verb = {"kill": "killed (SIGKILL)", "stop": "stopped", "start": "started", "freeze": "frozen (SIGSTOP)"}
    console.print(f"{node.name} {verb[args.node_action]}.")
    return 0
