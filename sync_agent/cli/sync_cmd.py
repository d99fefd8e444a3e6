"""`pooldrive sync`: keep a local folder and the pool in step (foreground or as a background agent)."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING

from sync_agent import api
from sync_agent.cli.common import open_pool
from sync_agent.cli.output import console, human_size, print_json, table

if TYPE_CHECKING:
    from sync_agent.api import AgentStatus

DEFAULT_FOLDER = Path.home() / "PoolDrive"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sync", help="sync a local folder with the pool")
    s = p.add_subparsers(dest="action", required=True)
    for name, text in (("run", "run the agent in the foreground"), ("start", "start the agent in the background"),
                       ("stop", "stop the background agent"), ("status", "what the agent is doing"),
                       ("pause", "pause syncing"), ("resume", "resume syncing"), ("now", "sync now"),
                       ("exclude", "stop syncing a remote folder here (selective sync)"),
                       ("include", "sync a remote folder here again"),
                       ("limit", "show or change the agent's bandwidth limits (kept across restarts)"),
                       ("log", "show the agent's log")):
        a = s.add_parser(name, help=text)
        a.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help=f"sync folder (default {DEFAULT_FOLDER})")
        if name in ("exclude", "include"):
            a.add_argument("path")
        if name == "resume":
            held = a.add_mutually_exclusive_group()
            held.add_argument("--allow-deletes", action="store_true", help="apply deletes the mass-delete guard held")
            held.add_argument("--restore", action="store_true",
                              help="bring back the files whose deletion the mass-delete guard held")
        if name in ("run", "start"):
            a.add_argument("--interval", type=float, default=3600.0,
                           help="seconds between background reconcile rounds, which find changes made by other "
                                "S3 tools (PoolDrive's own changes arrive through the journal within a second)")
            a.add_argument("--parallel", type=int, default=16, help="files transferred at once")
        if name in ("run", "start", "limit"):
            a.add_argument("--limit-up", "--up", dest="limit_up", type=float, default=None,
                           help="upload limit in MB/s, 0 for none (default: as last set)")
            a.add_argument("--limit-down", "--down", dest="limit_down", type=float, default=None,
                           help="download limit in MB/s, 0 for none (default: as last set)")
        if name == "status":
            a.add_argument("--watch", action="store_true", help="follow changes (long-poll)")
        if name == "log":
            a.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
            a.add_argument("--lines", "-n", type=int, default=40, help="how many of the last lines (default 40)")
        a.set_defaults(func=lambda args, name=name: COMMANDS[name](args))


def cmd_run(args: argparse.Namespace) -> int:

    folder = args.folder.expanduser().resolve()  # made by the agent on first use, never in place of one
    root = logging.getLogger()  # the agent log: readable lines with a time stamp, rotated, the user's alone
    root.setLevel(min(root.level, logging.INFO))
    fmt = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    for h in list(root.handlers):
        if sys.stderr.isatty():
            h.setFormatter(fmt)
        else:  # started in the background: the rotating file below is the log (no unbounded copy)
            root.removeHandler(h)
    log_file = agent_log(folder)
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    log_file.chmod(0o600)
    handler = RotatingFileHandler(log_file, maxBytes=5 * 1024 * 1024, backupCount=3, encoding="utf-8")
    handler.setFormatter(fmt)
    root.addHandler(handler)
    for noisy in ("urllib3", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with open_pool(args, fill=False) as pool:
        console.print(f"Syncing {folder} with pool '{pool.cfg.name}' (Ctrl+C to stop).")
        return api.run_agent(pool, folder, parallel=args.parallel, reconcile_interval=args.interval,
                          reconcile_pause=min(2.0, args.interval / 50), limits=(args.limit_up, args.limit_down))


def cmd_start(args: argparse.Namespace) -> int:
    folder = args.folder.expanduser().resolve()
    client = api.AgentClient(folder)
    if client.running():
        console.print(f"The agent for {folder} is already running.")
        return 0
    log = api.state_dir_for(folder) / "agent.out"  # what the process prints before its log is set up
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    cmd = [sys.executable, "-m", "sync_agent.cli.main", *(["--pool", args.pool] if args.pool else []), "sync", "run",
           "--folder", str(folder), "--interval", str(args.interval), "--parallel", str(args.parallel),
           *(["--limit-up", str(args.limit_up)] if args.limit_up is not None else []),
           *(["--limit-down", str(args.limit_down)] if args.limit_down is not None else [])]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if client.running():
            console.print(f"Started the sync agent for {folder} (pid {proc.pid}); log: {agent_log(folder)} "
                          "('pooldrive sync log --follow')")
            return 0
        if proc.poll() is not None:
            console.print(f"[red]The agent stopped at once; its log says:[/]\n{log.read_text()[-1500:]}")
            return 1
        time.sleep(0.2)
    console.print(f"[yellow]The agent (pid {proc.pid}) has not answered yet; see {log}.[/]")
    return 1


def cmd_stop(args: argparse.Namespace) -> int:
    client = api.AgentClient(args.folder)
    try:
        client.stop()
    except api.AgentNotRunning:
        console.print("No agent is running for that folder.")
        return 0
    for _ in range(150):
        if not client.running():
            console.print("Stopped the sync agent.")
            return 0
        time.sleep(0.2)
    return 1


def _print_status(st: AgentStatus) -> None:
    colour = {"idle": "green", "syncing": "cyan", "paused": "yellow", "error": "red", "offline": "red"}
    state = st["state"]
    console.print(f"[{colour.get(state, 'white')}]{state}[/] {st.get('detail', '')}  folder {st['folder']}  "
                  f"pool {st['pool']}")
    if st["transfers"]:
        table(["Transfer", "Path", "Done"], [("↑" if t["direction"] == "up" else "↓", t["path"],
                                              f"{human_size(t['done'])} / {human_size(t['total'])}")
                                             for t in st["transfers"]])
    for r in st["recent"][:5]:
        console.print(f"  {time.strftime('%H:%M:%S', time.localtime(r['time']))} {r['action']}: {r['path']}")
    for i in st["issues"]:
        console.print(f"[yellow]{i['title']}:[/] {i['message']}")


def cmd_status(args: argparse.Namespace) -> int:
    client = api.AgentClient(args.folder)
    st = client.status()
    if args.json:
        print_json(st)
        return 0
    _print_status(st)
    while args.watch:
        st = client.wait(st["seq"], timeout=60)
        _print_status(st)
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    api.AgentClient(args.folder).pause()
    console.print("Paused.")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    if args.restore:
        n = api.AgentClient(args.folder).restore_held()
        console.print(f"Resumed; {n} file(s) whose deletion was held are being brought back from the pool.")
        return 0
    api.AgentClient(args.folder).resume(args.allow_deletes)
    console.print("Resumed.")
    return 0


def cmd_limit(args: argparse.Namespace) -> int:
    client = api.AgentClient(args.folder)
    if args.limit_up is None and args.limit_down is None:
        limits = client.status()["limits"]
    else:
        limits = client.set_limits(args.limit_up, args.limit_down)
    if args.json:
        print_json(limits)
        return 0
    for name in ("up", "down"):
        value = float(limits.get(name, 0) or 0)
        console.print(f"{'Upload' if name == 'up' else 'Download'}: {f'{value:g} MB/s' if value else 'no limit'}")
    return 0


def cmd_now(args: argparse.Namespace) -> int:
    api.AgentClient(args.folder).sync_now()
    return 0


def cmd_exclude(args: argparse.Namespace) -> int:
    kept = api.AgentClient(args.folder).exclude(args.path)
    console.print(f"'{args.path}' is no longer synced here." + (f" Kept {len(kept)} local file(s) that are not on "
                                                                 "the pool." if kept else ""))
    return 0


def cmd_include(args: argparse.Namespace) -> int:
    api.AgentClient(args.folder).include(args.path)
    console.print(f"'{args.path}' is synced here again.")
    return 0




def agent_log(folder: Path) -> Path:
    return api.state_dir_for(folder.expanduser().resolve()) / "agent.log"


def cmd_log(args: argparse.Namespace) -> int:
    path = agent_log(args.folder)
    if not path.exists():
        console.print(f"No agent has run for {args.folder.expanduser()} yet (no log at {path}).")
        return 0
    f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - reopened when the log rotates
    try:
        lines = f.readlines()
        sys.stdout.write("".join(lines[-args.lines:] if args.lines > 0 else []))
        sys.stdout.flush()
        while args.follow:
            line = f.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
                continue
            time.sleep(0.5)
            try:  # rotated (agent.log became agent.log.1): go on with the new file from its start
                if os.stat(path).st_ino != os.fstat(f.fileno()).st_ino:
                    f.close()
                    f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
            except FileNotFoundError:
                pass  # between the rename and the new file
    finally:
        f.close()
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run, "start": cmd_start, "stop": cmd_stop, "status": cmd_status, "pause": cmd_pause,
    "resume": cmd_resume, "limit": cmd_limit, "now": cmd_now, "exclude": cmd_exclude, "include": cmd_include,
    "log": cmd_log,
}
