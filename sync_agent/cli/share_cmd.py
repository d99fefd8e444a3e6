"""`pooldrive share`: share folders with people, accept invitations, revoke, extend, and file links."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.markup import escape

from sync_agent import api
from sync_agent.api import ConfigError, ShareMode
from sync_agent.cli.common import ask_secret, open_pool
from sync_agent.cli.output import console, count_progress, err_console, human_time, print_json, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("share", help="share folders and files")
    s = p.add_subparsers(dest="action", required=True)
    f = s.add_parser("folder", help="share a folder with someone (a scoped key on every node)")
    f.add_argument("path")
    mode = f.add_mutually_exclusive_group(required=True)
    mode.add_argument("--read-only", dest="mode", action="store_const", const=ShareMode.READ_ONLY)
    mode.add_argument("--read-write", dest="mode", action="store_const", const=ShareMode.READ_WRITE)
    f.add_argument("--expires", default="30d", help="e.g. 30d, 12h, or 'never' (default: 30d); at least 15 minutes")
    f.add_argument("--label", default="", help="who it is for, e.g. 'Anna'")
    f.add_argument("--seal", action="store_true", help="seal the invitation with a passphrase (prompted)")
    f.add_argument("--out", type=Path, help="write the invitation to this file instead of printing it")
    f.add_argument("--with-history", action="store_true",
                   help="they may also read earlier versions and deleted files. Without it (read-only shares "
                        "only) their key reads a copy of the folder's current files kept for them, and nothing "
                        "else; read-write shares always come with history")
    f.set_defaults(func=cmd_folder)
    a = s.add_parser("accept", help="accept an invitation: the text, a file holding it, or '-' for stdin "
                                    "(stdin keeps the key out of your shell history)")
    a.add_argument("invitation", nargs="?", default="-")
    a.add_argument("--name", help="name for the shared pool view (default: shared-FOLDER)")
    a.add_argument("--passphrase-stdin", action="store_true", help="read a sealed invitation's passphrase from stdin")
    a.set_defaults(func=cmd_accept)
    s.add_parser("list", help="folders you shared").set_defaults(func=cmd_list)
    r = s.add_parser("revoke", help="remove a share's key from every node")
    r.add_argument("id")
    r.set_defaults(func=cmd_revoke)
    e = s.add_parser("extend", help="give a share a new expiry, counted from now")
    e.add_argument("id")
    e.add_argument("--expires", required=True)
    e.set_defaults(func=cmd_extend)
    link = s.add_parser("link", help="pre-signed download links for a file (one per node holding it)")
    link.add_argument("path")
    link.add_argument("--expires", default="24h", help="at most 7d")
    link.set_defaults(func=cmd_link)
    unlink = s.add_parser("unlink", help="stop every link made to a file (each link has a key of its own, "
                                         "which is deleted)")
    unlink.add_argument("path")
    unlink.set_defaults(func=cmd_unlink)


def _passphrase(confirm: bool) -> str:
    how = "Give the passphrase on standard input (one line), e.g. with --passphrase-stdin." if not confirm else \
        "Give it on standard input, twice (two lines)."
    first = ask_secret("Passphrase: ", how)
    if confirm and ask_secret("Again: ", how) != first:
        raise ConfigError("The two passphrases differ.")
    if confirm and len(first) < api.MIN_PASSPHRASE:
        raise ConfigError(f"Use a passphrase of at least {api.MIN_PASSPHRASE} characters: it guards a key "
                          "to your folder.")
    if not first:
        raise ConfigError("An empty passphrase seals nothing.")
    return first


def cmd_folder(args: argparse.Namespace) -> int:
    expires = None if args.expires in ("never", "", None) else api.parse_duration(args.expires)
    with open_pool(args) as pool, count_progress() as progress:
        task = progress.add_task(f"Copying '{escape(args.path)}' for the share", total=None, visible=False)
        info, inv = api.create_share(pool, args.path, args.mode, expires=expires, label=args.label,
                                     history=True if args.with_history else None,
                                     progress=lambda done, total: progress.update(task, completed=done,
                                                                                  total=total, visible=True))
    text = api.encode_invitation(inv, _passphrase(confirm=True) if args.seal else None)
    if args.out:
        api.write_private(args.out, text + "\n")
    if args.json:
        print_json({"share": info, "invitation": None if args.out else text})
        return 0
    mode = "read-only" if args.mode == ShareMode.READ_ONLY else "read-write"
    console.print(f"Shared '{escape(info.folder)}' {mode} (share {info.id}"
                  + (f", for {escape(info.label)}" if info.label else "")
                  + (f", until {human_time(info.expires_at)}" if info.expires_at else "") + ").")
    console.print("They can also read the folder's earlier versions and deleted files." if info.history else
                  "They see the files in it now, never its past: a copy of those is kept on the nodes for them "
                  "and follows your changes while your agent runs.")
    if args.out:
        console.print(f"Invitation written to {args.out} (mode 0600). Send it to the recipient; they run "
                      f"'pooldrive share accept {args.out.name}'.")
    else:
        console.print("Send this invitation to the recipient (it holds a key to the folder: treat it like a "
                      "password" + ("; tell them the passphrase another way" if args.seal else "") + "):")
        print(text)
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    raw = args.invitation
    if raw == "-":
        if sys.stdin.isatty():
            console.print("Paste the invitation, then press Enter:")
        raw = sys.stdin.readline()
    elif not api.looks_like_invitation(raw):
        try:
            raw = Path(raw).expanduser().read_text()
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise api.InvitationError(
                "That is neither an invitation (it starts with 'pooldrive-invite') nor a file holding one"
                f" ({type(e).__name__}). Paste it on stdin: 'pooldrive share accept -'.") from None
    passphrase = None
    if api.is_sealed(raw):
        passphrase = sys.stdin.readline().rstrip("\n") if args.passphrase_stdin else _passphrase(confirm=False)
    inv = api.decode_invitation(raw, passphrase)
    cfg = api.accept_invitation(inv, args.name)
    from sync_agent.api import Pool

    with Pool(cfg) as pool:
        pool.refresh_health(max_age=0, with_capacity=False)
        up = [n for n in pool.clients if not pool.health.is_down(n)]

        changes = api.refresh_catalog(pool) if up else []
    mode = "read-only" if cfg.read_only else "read-write"
    console.print(f"Added '{inv.folder}' shared by {cfg.shared_by} ({mode}) as pool '{cfg.name}': "
                  f"{len(changes)} file(s), {len(up)} of {len(cfg.nodes)} nodes reachable.")
    console.print(f"Browse it with 'pooldrive --pool {cfg.name} ls -R'.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        rows = api.list_shares(pool)
    if args.json:
        print_json([{**r.__dict__, "status": r.status} for r in rows])
        return 0
    if not rows:
        console.print("You have not shared anything yet ('pooldrive share folder PATH --read-only').")
        return 0
    table(["ID", "Folder", "For", "Mode", "Expires", "Status", "Key on nodes"],
          [(r.id, r.folder, r.label or "-", "link" if r.mode == "link" else
            r.access,
            human_time(r.expires_at) if r.expires_at else "never", r.status,
            ", ".join(r.revoke_pending) + " (to revoke)" if r.revoke_pending else
            ("-" if r.revoked else ", ".join(r.nodes))) for r in rows])
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        info = api.revoke_share(pool, args.id)
    if info.revoke_pending:
        console.print(f"[yellow]Revoked on every reachable node; {', '.join(info.revoke_pending)} will drop the key "
                      "when it is back ('pooldrive share list' retries).[/]")
    else:
        console.print(f"Revoked share {info.id}: its key is gone from every node.")
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        info = api.extend_share(pool, args.id, api.parse_duration(args.expires))
    console.print(f"Share {info.id} now expires {human_time(info.expires_at)}.")
    return 0


def cmd_link(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        urls = api.file_links(pool, args.path, api.parse_duration(args.expires),
                                on_note=lambda text: err_console.print(f"[yellow]{text}[/]"))
    if args.json:
        print_json([{"node": n, "url": u} for n, u in urls])
        return 0
    console.print(f"Links to '{args.path}', valid for {args.expires} (any one works; the others are spares for "
                  f"when a node is down). 'pooldrive share unlink {args.path}' stops them sooner:")
    for _node, url in urls:
        print(url)
    return 0


def cmd_unlink(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        revoked = api.revoke_links(pool, args.path)
    if not revoked:
        console.print(f"No live link to '{args.path}'.")
        return 0
    pending = sorted({n for r in revoked for n in r.revoke_pending})
    console.print(f"Stopped {len(revoked)} link(s) to '{args.path}'" + (
        f"; {', '.join(pending)} will drop the key when it is back." if pending else "."))
    return 0
