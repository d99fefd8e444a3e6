"""`pooldrive devpool`: a local pool of real MinIO processes for demos and development."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sync_agent import api
from sync_agent.api import LINK_PROFILES, DevPoolError, Link, changed_link
from sync_agent.cli.output import console, print_json, table

if TYPE_CHECKING:
    from sync_agent.api import DevPool


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devpool", help="start and stop a local pool of MinIO nodes")
    s = p.add_subparsers(dest="action", required=True)
    up = s.add_parser("up", help="start N MinIO nodes on 127.0.0.1")
    up.add_argument("--nodes", type=int, default=4)
    up.add_argument("--replicas", type=int, default=2, help="copies of each file (R)")
    up.add_argument("--profile", choices=sorted(LINK_PROFILES),
                    help="put a Toxiproxy proxy in front of each node with this network profile "
                         "(wan: node1 LAN, node2 VPS 40 ms 100 Mbit/s, node3 home 80 ms 20 Mbit/s, node4 flaky)")
    up.add_argument("--drives", type=int, default=1,
                    help="drives per node (more than 1: an erasure-coded MinIO server, as in production)")
    up.add_argument("--tls", action="store_true",
                    help="serve the nodes over https with certificates from the dev pool's own CA")
    up.set_defaults(func=cmd_up)
    sh = s.add_parser("shape", help="change a node's network link while the pool runs (needs --profile at up)")
    sh.add_argument("node", help="node number or name, e.g. 2 or node2")
    sh.add_argument("--rtt", type=int, metavar="MS", help="round trip time added, in milliseconds")
    sh.add_argument("--jitter", type=int, metavar="MS", help="+- variation of the delay, in milliseconds")
    sh.add_argument("--rate", type=float, metavar="MBIT", help="bandwidth in Mbit/s (0: unlimited)")
    sh.add_argument("--resets", type=float, metavar="SHARE",
                    help="share of connections the link cuts mid-way, 0 to 1")
    sh.add_argument("--slow-close", type=int, metavar="MS", help="hold closing connections this long")
    sh.add_argument("--clear", action="store_true", help="take every shaping off this node's link first")
    sh.set_defaults(func=cmd_shape)
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
    dp = api.DevPool()
    with console.status(f"Starting {args.nodes} MinIO nodes..."):
        cfg = dp.up(args.nodes, args.replicas, profile=args.profile, drives=args.drives, tls=args.tls)
    from sync_agent.api import Pool

    with Pool(cfg) as pool:
        errors = pool.init_buckets()
    for name, why in errors.items():
        console.print(f"[yellow]{name}: could not create the bucket: {why}[/]")
    console.print(f"[green]Dev pool up:[/] {len(cfg.nodes)} nodes, {cfg.replicas} copies of each file.")
    _print_status(dp, args)
    console.print(f"Pool config: {cfg.path}")
    console.print(f"Credentials: {dp.credentials_file} (mode 0600, generated for this pool)")
    if args.tls:
        console.print(f"TLS: the nodes' certificates are signed by {dp.ca.cert} (the pool config trusts it)")
    return 0


def _print_status(dp: DevPool, args: argparse.Namespace) -> None:
    rows = dp.status()
    if getattr(args, "json", False):
        print_json(rows)
        return
    colour = {"up": "green", "down": "red", "frozen": "yellow"}
    shaped = any(r.link for r in rows)
    table(["Node", "State", "S3 endpoint", "Console", "PID", *(["Link"] if shaped else [])],
          [(r.name, f"[{colour.get(r.state, 'yellow')}]{r.state}[/]",
            f"{'https' if r.secure else 'http'}://{r.endpoint}", r.console, r.pid or "-",
            *([r.link] if shaped else [])) for r in rows])


def cmd_status(args: argparse.Namespace) -> int:
    dp = api.DevPool()
    _print_status(dp, args)
    return 0 if all(r.state == "up" for r in dp.status()) else 1


def cmd_down(args: argparse.Namespace) -> int:
    dp = api.DevPool()
    if not dp.exists():
        console.print("No dev pool is running.")
        return 0
    stopped = dp.down(purge=args.purge)
    console.print(f"Stopped {stopped} node(s)." + (" Data and config deleted." if args.purge else ""))
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    dp = api.DevPool()
    node = getattr(dp, args.node_action)(args.node)
    verb = {"kill": "killed (SIGKILL)", "stop": "stopped", "start": "started", "freeze": "frozen (SIGSTOP)"}
    console.print(f"{node.name} {verb[args.node_action]}.")
    return 0


def cmd_shape(args: argparse.Namespace) -> int:
    dp = api.DevPool()
    shaping = dp.shaping() if dp.exists() else None
    _, node = dp.node(args.node)
    base = Link(label="custom") if args.clear or shaping is None else shaping.links[node.name]
    try:
        link = changed_link(base, rtt_ms=args.rtt, jitter_ms=args.jitter, rate_mbit=args.rate, resets=args.resets,
                       slow_close_ms=args.slow_close)
    except ValueError as e:
        raise DevPoolError(f"Cannot shape {node.name}: {e}.") from None
    dp.shape(node.name, link)
    console.print(f"{node.name}: {link.describe()}")
    return 0
