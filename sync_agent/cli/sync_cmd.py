"""`pooldrive sync`: keep local folders and the pool in step (foreground or as a background agent).

Folder pairs (``sync add LOCAL --to POOL_FOLDER``) are served by one agent per pool; a folder given with
``--folder`` that is no pair is synced with the whole pool by an agent of its own (the mode before pairs)."""

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

from rich.markup import escape

from sync_agent import api
from sync_agent.cli.common import open_pool
from sync_agent.cli.output import console, err_console, human_size, print_json, table

if TYPE_CHECKING:
    from sync_agent.api import AgentStatus

DEFAULT_FOLDER = Path.home() / "PoolDrive"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sync", help="sync local folders with the pool")
    s = p.add_subparsers(dest="action", required=True)
    add = s.add_parser("add", help="sync a local folder with a pool folder (one agent serves all of a pool's pairs)")
    add.add_argument("local", type=Path, help="the local folder (made if missing)")
    add.add_argument("--to", dest="remote", required=True, help="the pool folder, '/' for the whole pool")
    add.set_defaults(func=lambda args: cmd_add(args))
    rm = s.add_parser("remove", help="stop syncing a local folder (its files stay, on both sides)")
    rm.add_argument("local", type=Path)
    rm.set_defaults(func=lambda args: cmd_remove(args))
    s.add_parser("list", help="the folder pairs and their state").set_defaults(func=lambda args: cmd_list(args))
    for name, text in (("run", "run the agent in the foreground"), ("start", "start the agent in the background"),
                       ("stop", "stop the background agent"), ("status", "what the agent is doing"),
                       ("pause", "pause syncing"), ("resume", "resume syncing"), ("now", "sync now"),
                       ("exclude", "stop syncing a remote folder here (selective sync)"),
                       ("include", "sync a remote folder here again"),
                       ("limit", "show or change the agent's bandwidth limits (kept across restarts)"),
                       ("verify", "read this folder's files back from the nodes; replace bad copies, and put "
                                  "back from here files the pool lost"),
                       ("log", "show the agent's log")):
        a = s.add_parser(name, help=text)
        a.add_argument("--folder", type=Path, default=None,
                       help=f"sync folder (default: the pool's first folder pair, else {DEFAULT_FOLDER})")
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
            a.add_argument("--parallel", type=_files_at_once, default=None,
                           help="files transferred at once (default 16, new small files 24)")
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


def _configured(args: argparse.Namespace) -> tuple[str, list[api.Pair]]:
    """The pool's name and its folder pairs on this device ('' and none when no pool can be named)."""
    try:
        name = api.load_pool(args.pool).name
    except api.PoolDriveError:
        return "", []
    return name, api.load_pairs(name)


def _target(args: argparse.Namespace) -> tuple[str, list[api.Pair] | None, Path]:
    """What ``sync run/start`` serves: the pool's pairs (one agent for them all), or one folder alone.
    Returns (pool name, the pairs or None, the folder whose client answers first)."""
    name, pairs = _configured(args)
    folder = args.folder.expanduser().resolve() if args.folder is not None else None
    if pairs and (folder is None or folder in {p.local for p in pairs}):
        return name, pairs, folder or pairs[0].local
    if pairs:  # a one-folder agent would sync the whole pool there, overlapping every pair
        raise api.UsageError(f"{folder} is not one of pool '{name}''s folder pairs "
                             f"({', '.join(str(p.local) for p in pairs)}). Add it with 'pooldrive sync add "
                             f"{folder} --to POOL_FOLDER', or start the pairs' agent with 'pooldrive sync start'.",
                             paths=[str(folder)])
    return name, None, folder or DEFAULT_FOLDER


def _folder(args: argparse.Namespace) -> Path:
    """The folder a command is about: --folder, else the pool's first pair, else the default folder."""
    if args.folder is not None:
        return args.folder.expanduser().resolve()
    _, pairs = _configured(args)
    return pairs[0].local if pairs else DEFAULT_FOLDER


def _files_at_once(text: str) -> int:
    """A number of files to move at once: a whole number from 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of files: give a whole number from 1 (16, 4)")
    return int(text)


def cmd_run(args: argparse.Namespace) -> int:
    name, pairs, folder = _target(args)  # a folder is made by the agent on first use, never in place of one
    running = api.AgentClient.for_pool(name) if pairs is not None else api.AgentClient(folder)
    if running.running():  # said before anything else (the agent's own lock says it again, race-free)
        raise api.AlreadyRunning(f"A sync agent already runs for {running.folder}; 'pooldrive sync status' "
                                 "shows what it does.")
    root = logging.getLogger()  # the agent log: readable lines with a time stamp, rotated, the user's alone
    root.setLevel(min(root.level, logging.INFO))
    fmt = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    for h in list(root.handlers):
        if sys.stderr.isatty():
            h.setFormatter(fmt)
        else:  # started in the background: the rotating file below is the log (no unbounded copy)
            root.removeHandler(h)
    log_file = pool_log(name) if pairs is not None else agent_log(folder)
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    log_file.chmod(0o600)
    handler = RotatingFileHandler(log_file, maxBytes=5 * 1024 * 1024, backupCount=3, encoding="utf-8")
    handler.setFormatter(fmt)
    root.addHandler(handler)
    for noisy in ("urllib3", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with open_pool(args, fill=False) as pool:
        if pairs is not None:
            for p in pairs:
                console.print(f"Syncing {escape(p.describe())} of pool '{pool.cfg.name}'.")
            console.print("(Ctrl+C to stop.)")
        else:
            console.print(f"Syncing {folder} with pool '{pool.cfg.name}' (Ctrl+C to stop).")
        return api.run_agent(pool, pairs if pairs is not None else folder, parallel=args.parallel,
                             reconcile_interval=args.interval, reconcile_pause=min(2.0, args.interval / 50),
                             limits=(args.limit_up, args.limit_down))


def cmd_start(args: argparse.Namespace) -> int:
    name, pairs, folder = _target(args)
    client = api.AgentClient(folder)
    if client.running():
        console.print(f"The agent for {folder} is already running.")
        return 0
    log = (pool_log(name).with_suffix(".out") if pairs is not None  # what it prints before its log is set up
           else api.state_dir_for(folder) / "agent.out")
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    cmd = [sys.executable, "-m", "sync_agent.cli.main", *(["--pool", args.pool] if args.pool else []), "sync", "run",
           *(["--folder", str(folder)] if pairs is None or args.folder is not None else []),
           "--interval", str(args.interval), *(["--parallel", str(args.parallel)] if args.parallel is not None else []),
           *(["--limit-up", str(args.limit_up)] if args.limit_up is not None else []),
           *(["--limit-down", str(args.limit_down)] if args.limit_down is not None else [])]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                umask=api.user_umask())  # it writes the user's files with the user's modes
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if client.running():
            what = f"pool '{name}' ({len(pairs)} folder pair(s))" if pairs is not None else str(folder)
            where = pool_log(name) if pairs is not None else agent_log(folder)
            console.print(f"Started the sync agent for {what} (pid {proc.pid}); log: {where} "
                          "('pooldrive sync log --follow')")
            return 0
        if proc.poll() is not None:
            console.print(f"[red]The agent stopped at once; its log says:[/]\n{log.read_text()[-1500:]}")
            return 1
        time.sleep(0.2)
    console.print(f"[yellow]The agent (pid {proc.pid}) has not answered yet; see {log}.[/]")
    return 1


def cmd_stop(args: argparse.Namespace) -> int:
    client = api.AgentClient(_folder(args))
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
    pair = f" <-> {escape(st['remote'])}" if st.get("remote") else ""  # names and paths may hold [ ]
    console.print(f"[{colour.get(state, 'white')}]{state}[/] {escape(st.get('detail', ''))}  folder "
                  f"{escape(st['folder'])}{pair}  pool {st['pool']}")
    if st["transfers"]:
        table(["Transfer", "Path", "Done"], [("↑" if t["direction"] == "up" else "↓", escape(t["path"]),
                                              f"{human_size(t['done'])} / {human_size(t['total'])}")
                                             for t in st["transfers"]])
    for r in st["recent"][:5]:
        console.print(f"  {time.strftime('%H:%M:%S', time.localtime(r['time']))} {escape(r['action'])}: "
                      f"{escape(r['path'])}")
    for i in st["issues"]:
        console.print(f"[yellow]{escape(i['title'])}:[/] {escape(i['message'])}")


def cmd_status(args: argparse.Namespace) -> int:
    client = api.AgentClient(_folder(args))
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
    api.AgentClient(_folder(args)).pause()
    console.print("Paused.")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    if args.restore:
        n = api.AgentClient(_folder(args)).restore_held()
        console.print(f"Resumed; {n} file(s) whose deletion was held are being brought back from the pool.")
        return 0
    api.AgentClient(_folder(args)).resume(args.allow_deletes)
    console.print("Resumed.")
    return 0


def cmd_limit(args: argparse.Namespace) -> int:
    client = api.AgentClient(_folder(args))
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
    api.AgentClient(_folder(args)).sync_now()
    return 0


def cmd_exclude(args: argparse.Namespace) -> int:
    kept = api.AgentClient(_folder(args)).exclude(args.path)
    console.print(f"'{args.path}' is no longer synced here." + (f" Kept {len(kept)} local file(s) that are not on "
                                                                 "the pool." if kept else ""))
    return 0


def cmd_include(args: argparse.Namespace) -> int:
    api.AgentClient(_folder(args)).include(args.path)
    console.print(f"'{args.path}' is synced here again.")
    return 0




def agent_log(folder: Path) -> Path:
    return api.state_dir_for(folder.expanduser().resolve()) / "agent.log"


def pool_log(pool: str) -> Path:
    """The log of the agent serving a pool's folder pairs."""
    return api.pool_agent_dir() / f"{pool}.log"


def cmd_log(args: argparse.Namespace) -> int:
    name, pairs = _configured(args)
    folder = _folder(args)
    path = pool_log(name) if any(p.local == folder for p in pairs) else agent_log(folder)
    if not path.exists():
        console.print(f"No agent has run for {folder} yet (no log at {path}).")
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


def cmd_add(args: argparse.Namespace) -> int:
    name = api.load_pool(args.pool).name
    pair = api.make_pair(args.local, args.remote)
    if api.AgentClient(pair.local).running() and pair.local not in {p.local for p in api.load_pairs(name)}:
        raise api.UsageError(f"A one-folder sync agent already syncs {pair.local} with the whole pool; stop it "
                             f"first ('pooldrive sync stop --folder {pair.local}').", paths=[str(pair.local)])
    pairs = api.add_pair(name, pair)
    console.print(f"Pool '{name}': {escape(pair.describe())} added ({len(pairs)} folder pair(s)).")
    client = api.AgentClient.for_pool(name)
    if client.running():
        try:
            client.add_pair(pair.local, pair.remote)
            console.print("The running agent syncs it now.")
        except api.PoolDriveError as e:
            console.print(f"[yellow]The running agent did not take it ({escape(e.message)}); restart it "
                          "('pooldrive sync stop', then 'pooldrive sync start').[/]")
    else:
        console.print("Start syncing with 'pooldrive sync start'.")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    name = api.load_pool(args.pool).name
    client = api.AgentClient.for_pool(name)
    local = args.local.expanduser().resolve()
    paired = local in {p.local for p in api.load_pairs(name)}
    if not paired:
        if api.AgentClient(local).running():  # a one-folder agent (the whole pool, no pair)
            raise api.UsageError(f"{local} is synced by a one-folder agent, not as a pair; stop it with "
                                 f"'pooldrive sync stop --folder {local}'.", paths=[str(local)])
        raise api.NotFoundError(f"{local} is not a synced folder of pool '{name}' ('pooldrive sync list' "
                                "shows them).", paths=[str(local)])
    if client.running():
        client.remove_pair(local)  # the agent stops the pair's worker
    gone = api.remove_pair(name, local)
    console.print(f"{escape(str(local))} is no longer synced with {escape(gone.remote or 'the whole pool')}; its "
                  "files stay where they are.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    name = api.load_pool(args.pool).name
    pairs = api.load_pairs(name)
    client = api.AgentClient.for_pool(name)
    live = {p["folder"]: p for p in client.pairs()} if pairs and client.running() else {}
    rows = [(p, live.get(str(p.local))) for p in pairs]
    if args.json:
        print_json([{"folder": str(p.local), "remote": p.remote, "state": st["state"] if st else "stopped",
                     "issues": st["issues"] if st else 0} for p, st in rows])
        return 0
    if not pairs:
        console.print(f"No folder pairs for pool '{name}' yet: 'pooldrive sync add LOCAL --to POOL_FOLDER'.")
        return 0
    table(["Local folder", "Pool folder", "State", "Issues"],
          [(escape(str(p.local)), escape(p.remote or "(whole pool)"), st["state"] if st else "stopped",
            st["issues"] if st else "-") for p, st in rows], title=f"Folder pairs of pool '{name}'")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    folder = _folder(args)
    with console.status(f"Reading the files of {escape(str(folder))} back from the nodes..."):
        r = api.AgentClient(folder).verify()
    console.print(f"Checked {r['checked']} copies of {r['files']} files: {r['bad']} bad, {r['repaired']} replaced "
                  f"from good copies, {r['put_back']} put back from this folder.")
    if r["lost"]:
        err_console.print(f"[red]{r['lost']} file(s) have no good copy left on the pool or here;[/] "
                          "'pooldrive sync status' names them.")
        return 1
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run, "start": cmd_start, "stop": cmd_stop, "status": cmd_status, "pause": cmd_pause,
    "resume": cmd_resume, "limit": cmd_limit, "now": cmd_now, "exclude": cmd_exclude, "include": cmd_include,
    "log": cmd_log, "verify": cmd_verify,
}
