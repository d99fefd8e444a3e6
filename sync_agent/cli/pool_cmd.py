"""`pooldrive pool`: create a pool of your own nodes and manage its nodes, weights and zones."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from sync_agent import api
from sync_agent.api import ConfigError, NodeConfig, PoolConfig
from sync_agent.cli.common import ask_secret
from sync_agent.cli.output import console, print_json, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pool", help="create and configure pools")
    s = p.add_subparsers(dest="action", required=True)
    c = s.add_parser("create", help="create a pool")
    c.add_argument("name")
    c.add_argument("--bucket", help="bucket name on every node (default: pooldrive-NAME)")
    c.add_argument("--replicas", "-r", type=int, default=2, help="copies of each file (R, default 2)")
    c.add_argument("--quorum", type=int, default=0, help="copies a write needs before it counts (default R)")
    c.set_defaults(func=cmd_create)
    a = s.add_parser("add-node", help="add a node (its secret is read from a prompt or stdin)")
    a.add_argument("node")
    a.add_argument("endpoint", help="host:port of the node's S3 API")
    a.add_argument("--weight", type=float, default=1.0)
    a.add_argument("--zone", default="")
    a.add_argument("--secure", action="store_true", help="use https")
    a.add_argument("--ca-file", default="", help="https, trusting the CA in this PEM file (a private CA)")
    a.add_argument("--fingerprint", default="", help="https, trusting exactly the certificate with this SHA-256")
    a.add_argument("--access-key", help="access key (default: prompt)")
    a.add_argument("--secret-stdin", action="store_true", help="read the secret key from stdin")
    a.set_defaults(func=cmd_add_node)
    t = s.add_parser("trust", help="trust a node's TLS certificate: pin the one it presents now (shown first), "
                                   "or a given fingerprint, or a CA file")
    t.add_argument("node")
    t.add_argument("--ca-file", default="", help="trust the CA in this PEM file for the node")
    t.add_argument("--fingerprint", default="", help="trust the certificate with this SHA-256")
    t.add_argument("--yes", action="store_true", help="pin the certificate presented now without asking")
    t.set_defaults(func=cmd_trust)
    r = s.add_parser("remove-node", help="remove a node (refused while it holds the only copy of a file)")
    r.add_argument("node")
    r.add_argument("--force", action="store_true", help="remove even though copies on it are lost to the pool")
    r.set_defaults(func=cmd_remove_node)
    w = s.add_parser("set-weight", help="change a node's weight (then run 'pooldrive rebalance')")
    w.add_argument("node")
    w.add_argument("weight", type=float)
    w.set_defaults(func=cmd_set_weight)
    z = s.add_parser("set-zone", help="put a node in a failure domain")
    z.add_argument("node")
    z.add_argument("zone")
    z.set_defaults(func=cmd_set_zone)
    cr = s.add_parser("set-credentials", help="store a node's keys in the keyring")
    cr.add_argument("node")
    cr.add_argument("--access-key")
    cr.add_argument("--secret-stdin", action="store_true")
    cr.set_defaults(func=cmd_set_credentials)
    s.add_parser("show", help="show the pool's settings").set_defaults(func=cmd_show)
    s.add_parser("init", help="create the bucket (with versioning) on every node").set_defaults(func=cmd_init)
    s.add_parser("list", help="list configured pools").set_defaults(func=cmd_list)


def _read_secret(args: argparse.Namespace, node: str) -> api.Credentials:
    access = args.access_key or os.environ.get("POOLDRIVE_ACCESS_KEY")
    if not access:
        try:
            access = input(f"Access key for {node}: ")
        except EOFError:
            raise api.UsageError("No access key was given and there is no terminal to ask on. Give it with "
                                 "--access-key, or in POOLDRIVE_ACCESS_KEY.") from None
    if args.secret_stdin:
        secret = sys.stdin.readline().rstrip("\n")
    else:
        secret = os.environ.get("POOLDRIVE_SECRET_KEY") or ask_secret(
            f"Secret key for {node}: ", "Give it with --secret-stdin, or in POOLDRIVE_SECRET_KEY.")
    if not access or not secret:
        raise ConfigError("Both an access key and a secret key are needed.")
    return api.Credentials(access, secret)


def cmd_create(args: argparse.Namespace) -> int:
    if api.pool_file(args.name).exists():
        raise ConfigError(f"A pool named '{args.name}' exists already ({api.pool_file(args.name)}).")
    cfg = PoolConfig(name=args.name, bucket=args.bucket or f"pooldrive-{args.name}", replicas=args.replicas,
                     write_quorum=args.quorum)
    path = api.save_pool(cfg)
    console.print(f"Created pool '{args.name}' ({path}). Add nodes with 'pooldrive pool add-node --pool "
                  f"{args.name} NAME HOST:PORT'.")
    return 0


def _cfg(args: argparse.Namespace) -> PoolConfig:
    return api.load_pool(args.pool)


def _trust_options(args: argparse.Namespace) -> dict[str, str]:
    if args.ca_file and args.fingerprint:
        raise ConfigError("Give either a CA file or a fingerprint, not both.")
    if args.ca_file:
        ca = Path(args.ca_file).expanduser().resolve()
        if not ca.is_file():
            raise ConfigError(f"The CA file {ca} does not exist.", paths=[str(ca)])
        return {"ca_file": str(ca), "cert_sha256": ""}
    if args.fingerprint:
        return {"ca_file": "", "cert_sha256": api.normalize_fingerprint(args.fingerprint)}
    return {}


def cmd_add_node(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    trust = _trust_options(args)
    node = NodeConfig(args.node, args.endpoint, args.weight, args.zone, args.secure or bool(trust), **trust)
    new = cfg.with_nodes((*cfg.nodes, node))
    new.validate()
    if not node.secure and not node.is_loopback:
        console.print(f"[yellow]{node.url} is plain http: the keys' signatures and every file cross the network "
                      "unencrypted. Use https (--secure) for a node that is not on this machine.[/]")
    creds = _read_secret(args, args.node) if cfg.credentials == "keyring" else None

    try:
        with console.status(f"Checking {node.url}..."):
            _, check = api.add_node(cfg, node, creds)
    except api.NodeCheckFailed as e:
        if e.check.fingerprint:
            raise ConfigError(f"{e.message} If that is the certificate you expect, add the node with "
                              f"'--fingerprint {e.check.fingerprint}', or give its CA with '--ca-file'.",
                              title=e.title) from e
        raise
    if check is not None:
        console.print(f"[green]{check.title}:[/] {check.message}")
        if check.admin is False:
            console.print("[yellow]These keys have no admin rights: sharing folders will not work on this node.[/]")
    console.print(f"Added {args.node} ({node.url}, weight {args.weight}). Run 'pooldrive rebalance' to move "
                  "existing files onto it.")
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    node = cfg.node(args.node)
    trust = _trust_options(args)
    if not trust:
        fp = api.server_fingerprint(node.endpoint)
        console.print(f"{node.name} ({node.endpoint}) presents a certificate with SHA-256\n  "
                      f"[bold]{api.pretty_fingerprint(fp)}[/]\nCompare it with the one on the node (e.g. "
                      "'openssl x509 -in public.crt -noout -fingerprint -sha256').")
        if not args.yes:
            if not sys.stdin.isatty():
                raise ConfigError("Not trusted: confirm with --yes, or give --fingerprint.")
            if input("Trust this certificate? [y/N] ").strip().lower() not in ("y", "yes"):
                console.print("Not trusted; nothing changed.")
                return 1
        trust = {"ca_file": "", "cert_sha256": fp}
    trusted = replace(node, secure=True, ca_file=trust["ca_file"], cert_sha256=trust["cert_sha256"])
    api.save_pool(cfg.with_nodes(tuple(trusted if n.name == node.name else n for n in cfg.nodes)))
    how = f"the CA in {trusted.ca_file}" if trusted.ca_file else "exactly the certificate with SHA-256 " \
        f"{api.pretty_fingerprint(trusted.cert_sha256)}"
    console.print(f"{node.name} is now reached over https, trusting {how}.")
    return 0


def cmd_remove_node(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    cfg.node(args.node)
    from sync_agent.api import Pool

    with Pool(cfg) as pool:
        removal = api.remove_node(pool, args.node, force=args.force)
    if removal.copies_left:
        console.print(f"[yellow]{args.node} still held {removal.copies_left} copies; 'pooldrive repair' (or the "
                      "agent's background repair) recreates them elsewhere.[/]")
    console.print(f"Removed {args.node} from pool '{cfg.name}'.")
    return 0


def _update_node(args: argparse.Namespace, **changes: object) -> None:
    cfg = _cfg(args)
    cfg.node(args.node)
    api.save_pool(cfg.with_nodes(tuple(replace(n, **changes) if n.name == args.node else n  # type: ignore[arg-type]
                                          for n in cfg.nodes)))


def cmd_set_weight(args: argparse.Namespace) -> int:
    _update_node(args, weight=args.weight)
    console.print(f"{args.node} now has weight {args.weight}. 'pooldrive rebalance --dry-run' shows what moves.")
    return 0


def cmd_set_zone(args: argparse.Namespace) -> int:
    _update_node(args, zone=args.zone)
    console.print(f"{args.node} is now in zone '{args.zone}'.")
    return 0


def cmd_set_credentials(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    cfg.node(args.node)
    if cfg.credentials != "keyring":
        raise ConfigError(f"Pool '{cfg.name}' is a dev pool; its credentials live in {cfg.credentials_file}.")
    api.store_in_keyring(cfg.name, args.node, _read_secret(args, args.node))
    console.print(f"Stored the credentials of {args.node} in the keyring.")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    if args.json:
        print_json({"name": cfg.name, "bucket": cfg.bucket, "replicas": cfg.replicas, "quorum": cfg.quorum,
                    "nodes": list(cfg.nodes), "config": str(cfg.path)})
        return 0
    console.print(f"Pool [bold]{cfg.name}[/]: bucket '{cfg.bucket}', {cfg.replicas} copies per file, "
                  f"write quorum {cfg.quorum}. Config: {cfg.path}")
    table(["Node", "Endpoint", "Weight", "Zone"],
          [(n.name, n.url, f"{n.weight:g}", n.zone or "-") for n in cfg.nodes])
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from sync_agent.api import Pool

    with Pool(_cfg(args)) as pool:
        errors = pool.init_buckets()
    for n in pool.cfg.nodes:
        console.print(f"{n.name}: " + (f"[red]{errors[n.name]}[/]" if n.name in errors else "[green]ready[/]"))
    return 1 if errors else 0


def cmd_list(args: argparse.Namespace) -> int:
    pools = api.list_pools()
    if args.json:
        print_json(pools)
    elif pools:
        for name in pools:
            console.print(name)
    else:
        console.print("No pools yet. 'pooldrive devpool up' starts a local one.")
    return 0
