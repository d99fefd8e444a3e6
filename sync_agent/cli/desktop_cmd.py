"""`pooldrive desktop` and `pooldrive autostart`: menu entry, icons and start at login, per user."""

from __future__ import annotations

import argparse
from pathlib import Path

from sync_agent import api
from sync_agent.cli.output import console


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("desktop", help="add PoolDrive to (or remove it from) the application menu")
    ds = d.add_subparsers(dest="action", required=True)
    ds.add_parser("install").set_defaults(func=cmd_install)
    ds.add_parser("uninstall").set_defaults(func=cmd_uninstall)
    a = sub.add_parser("autostart", help="start the tray app and the sync agent at login")
    a.add_argument("state", choices=["on", "off", "status"])
    a.add_argument("--folder", type=Path, help="the sync folder whose agent starts at login")
    a.add_argument("--no-systemd", action="store_true", help="use only an XDG autostart entry")
    a.set_defaults(func=cmd_autostart)
    s = sub.add_parser("session", help="start the sync agent, then the tray app (what autostart runs)")
    s.add_argument("--folder", type=Path, required=True)
    s.set_defaults(func=cmd_session)


def cmd_install(args: argparse.Namespace) -> int:
    out = api.install_desktop_entries()
    console.print(f"Installed the menu entry and icons ({len(out.files)} files under {out.files[0].parents[1]}).")
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    console.print(f"Removed {len(api.uninstall_desktop_entries())} files.")
    return 0


def cmd_autostart(args: argparse.Namespace) -> int:
    if args.state == "status":
        console.print("on" if api.autostart_enabled() else "off")
        return 0
    if args.state == "off":
        gone = api.autostart_off()
        console.print("Autostart is off." + (f" Removed {', '.join(map(str, gone))}." if gone else ""))
        return 0
    folder = args.folder.expanduser().resolve() if args.folder else None
    written = api.autostart_on(folder, use_systemd=False if args.no_systemd else None)
    for p in written:
        console.print(f"Wrote {p}")
    return 0


def cmd_session(args: argparse.Namespace) -> int:
    api.start_desktop_session(args.folder)
    return 0
