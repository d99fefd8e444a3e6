"""File commands: put, get, ls, mv, rm, stat, versions, restore, conflicts."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.markup import escape

from sync_agent import api
from sync_agent.api import NotFoundError, UsageError, keys
from sync_agent.cli.common import open_pool
from sync_agent.cli.output import (
    console,
    err_console,
    human_size,
    human_time,
    print_json,
    table,
    transfer_progress,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("put", help="upload files or folders")
    p.add_argument("local", nargs="+", type=Path)
    p.add_argument("--to", dest="remote", default=None,
                   help="pool path (a folder when it ends with '/'; default: the file or folder name)")
    p.set_defaults(func=cmd_put)
    g = sub.add_parser("get", help="download a file or folder")
    g.add_argument("remote")
    g.add_argument("local", nargs="?", type=Path, default=Path("."),
                   help="where to put it (default: here; '-': one file to standard output)")
    g.add_argument("--version", type=int, help="a specific version (files only)")
    g.set_defaults(func=cmd_get)
    ls = sub.add_parser("ls", help="list a folder")
    ls.add_argument("path", nargs="?", default="")
    ls.add_argument("-l", dest="long", action="store_true", help="sizes, dates and where each file lives")
    ls.add_argument("-R", dest="recursive", action="store_true", help="list everything below")
    ls.set_defaults(func=cmd_ls)
    mv = sub.add_parser("mv", help="move or rename a file or folder")
    mv.add_argument("src")
    mv.add_argument("dst")
    mv.set_defaults(func=cmd_mv)
    rm = sub.add_parser("rm", help="delete (versions stay restorable)")
    rm.add_argument("path")
    rm.add_argument("-r", "--recursive", action="store_true")
    rm.set_defaults(func=cmd_rm)
    st = sub.add_parser("stat", help="replicas, versions and checksum of a file")
    st.add_argument("path")
    st.set_defaults(func=cmd_stat)
    v = sub.add_parser("versions", help="a file's versions")
    v.add_argument("path")
    v.set_defaults(func=cmd_versions)
    r = sub.add_parser("restore", help="make an old version current again (also undeletes)")
    r.add_argument("path")
    r.add_argument("--version", type=int, required=True)
    r.set_defaults(func=cmd_restore)
    c = sub.add_parser("conflicts", help="list conflicted copies, or settle one by keeping a side")
    c.add_argument("copy", nargs="?", help="a conflicted copy to settle (its pool path)")
    keep = c.add_mutually_exclusive_group()
    keep.add_argument("--keep-original", dest="keep", action="store_const", const="original",
                      help="delete the conflicted copy (it stays restorable)")
    keep.add_argument("--keep-copy", dest="keep", action="store_const", const="copy",
                      help="make the copy's content the file's next version, then delete the copy")
    c.set_defaults(func=cmd_conflicts)


def _report(result: api.BatchResult, verb: str, seconds: float) -> int:
    for path in result.symlinks:
        err_console.print(f"[yellow]Skipped symlink (not followed):[/] {escape(str(path))}")
    for path, e in result.failed:
        err_console.print(f"[red]Failed:[/] {escape(str(path))}: {escape(e.message)}")
    rate = result.bytes / seconds if seconds > 0 else 0
    console.print(f"{verb} {len(result.done)} file(s), {human_size(result.bytes)} in {seconds:.1f} s "
                  f"({human_size(rate)}/s); {len(result.skipped)} unchanged; {len(result.failed)} failed.")
    if result.ok:
        return 0
    codes = {e.exit_code for _, e in result.failed}
    if not result.done and not result.skipped and len(codes) == 1:
        return codes.pop()  # nothing got through, for one reason: its own exit code (e.g. 4 credentials)
    return 1


def _batch_with_progress(run, total_hint: str, quiet: bool):
    start = time.monotonic()
    with transfer_progress(not quiet) as progress:
        task = progress.add_task(total_hint, total=None)
        control = api.TransferControl(on_progress=lambda done, total: progress.update(task, completed=done,
                                                                                  total=total))
        result = run(control)
    return result, time.monotonic() - start


def cmd_put(args: argparse.Namespace) -> int:
    sources: list[tuple[Path, str | None]] = []
    for local in args.local:
        remote = args.remote
        if remote is not None and len(args.local) > 1 and not remote.endswith("/"):
            remote += "/"
        if remote is not None and remote.endswith("/"):
            remote = remote + local.resolve().name
        sources.append((local, remote))
    with open_pool(args) as pool:
        what = args.local[0].name if len(args.local) == 1 else f"{len(args.local)} items"
        result, secs = _batch_with_progress(lambda c: api.put_trees(pool, sources, control=c),
                                            f"Uploading {what}", args.json)
        if args.json:
            print_json({"done": result.done, "skipped": result.skipped,
                        "failed": [{"path": p, **e.to_dict()} for p, e in result.failed]})
            return 0 if result.ok else 1
        return _report(result, "Uploaded", secs)


def cmd_get(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        if str(args.local) == "-":
            return _get_to_stdout(pool, args.remote, args.version)
        if args.version is not None:
            out = pool.get_file(args.remote, args.local, version=args.version)
            console.print(f"Downloaded version {args.version} to {escape(str(out))}")
            return 0
        result, secs = _batch_with_progress(lambda c: api.get_tree(pool, args.remote, args.local, control=c),
                                            f"Downloading {args.remote}", args.json)
        return _report(result, "Downloaded", secs)


def _get_to_stdout(pool: api.Pool, remote: str, version: int | None) -> int:
    """``get FILE -``: the file's bytes on standard output, once verified (a private temporary copy first:
    nothing that fails its checksum reaches the pipe)."""
    key = keys.normalize(remote)
    if pool.catalog.get(key) is None and key and pool.catalog.is_dir(key):
        raise UsageError(f"'{remote}' is a folder; '-' (standard output) takes one file.", paths=[remote])
    with tempfile.TemporaryDirectory(prefix="pooldrive-get-") as tmp:
        out = pool.get_file(remote, Path(tmp) / "file", version=version)
        try:
            with open(out, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # 'pooldrive get FILE - | head': the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        entries: list[dict[str, Any]]
        if args.recursive:
            entries = [{"path": f.path, "size": f.size, "is_dir": False, "sha256": f.sha256,
                        "mtime": f.mtime, "version": f.version, "replicas": f.replicas}
                       for f in pool.walk(args.path)]
        else:
            info = pool.catalog.get(keys.normalize(args.path)) if args.path.strip("/") else None
            items = [api.DirEntry(keys.basename(info.path), info.path, False, info.size, info.mtime, info.sha256,
                              tuple(info.replicas))] if info else pool.list(args.path)
            entries = [{"path": e.path + ("/" if e.is_dir else ""), "size": e.size, "is_dir": e.is_dir,
                        "sha256": e.sha256 or None, "mtime": e.mtime, "files": e.files if e.is_dir else None,
                        "replicas": list(e.replicas)} for e in items]
            if not entries and args.path.strip("/") and not pool.catalog.is_dir(keys.normalize(args.path)):
                raise NotFoundError(f"'{args.path}' is not in the pool.", paths=[args.path])
    if args.json:
        print_json(entries)
    elif args.long:
        table(["Size", "Modified", "Copies", "Name"],
              [(human_size(e["size"]), human_time(e["mtime"]),
                f"{e['files']} files" if e["is_dir"] else ",".join(e["replicas"]) or "[red]none[/]",
                f"[bold blue]{escape(e['path'])}[/]" if e["is_dir"] else escape(e["path"])) for e in entries])
    elif entries:  # one print: a line each cost rich a millisecond (2 of the 4 s of 'ls' of 2,000 files)
        console.print("\n".join(f"[bold blue]{escape(e['path'])}[/]" if e["is_dir"] else escape(e["path"])
                                 for e in entries), highlight=False, soft_wrap=True)
    return 0


def cmd_mv(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        moved = pool.move(args.src, args.dst)
    console.print(f"Moved {len(moved)} file(s).")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        gone = pool.delete(args.path, recursive=args.recursive)
    console.print(f"Deleted {len(gone)} file(s); 'pooldrive versions PATH' and 'restore' bring them back.")
    return 0


def cmd_stat(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        info = pool.stat(args.path)
        versions = pool.versions(args.path)
        pool.refresh_health(with_capacity=False)  # up or down is all it shows (free space loads minio-py)
        health = {n: pool.health.state(n).value for n in pool.clients}
    if args.json:
        print_json({"file": info, "versions": versions})
        return 0
    console.print(f"[bold]{info.path}[/]  {human_size(info.size)}  modified {human_time(info.mtime)}")
    console.print(f"SHA-256  {info.sha256}")
    console.print(f"Version  {info.version} of {len(versions)}   file id {info.id}")
    assert info.current is not None
    table(["Node", "State", "Node health", "S3 version id"],
          [(r.node, r.state, health.get(r.node, "removed"), r.version_id or "-") for r in info.current.replicas],
          title="Copies of the current version")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        versions = pool.versions(args.path)
    if args.json:
        print_json(versions)
        return 0
    table(["Version", "Size", "Saved", "SHA-256", "Copies", "Path"],
          [(v.number, human_size(v.size), human_time(v.created_at), v.sha256[:16],
            ",".join(v.ok_nodes()), v.key) for v in versions])
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    with open_pool(args) as pool:
        info = pool.restore(args.path, args.version)
    console.print(f"Restored '{escape(info.path)}': version {args.version} is now version {info.version}.")
    return 0


def cmd_conflicts(args: argparse.Namespace) -> int:
    if args.copy is not None and args.keep is None:
        raise UsageError("Say which side to keep: --keep-original or --keep-copy.")
    if args.copy is None and args.keep is not None:
        raise UsageError("Name the conflicted copy to settle (see 'pooldrive conflicts').")
    with open_pool(args) as pool:
        if args.copy is not None:
            c = api.resolve_conflict(pool, args.copy, args.keep)
            kept = "conflicted copy" if args.keep == "copy" else "original"
            console.print(f"'{escape(c.original)}': kept the {kept}; the other version stays restorable "
                          "('pooldrive versions').")
            return 0
        found = api.conflicts(pool)
    if args.json:
        print_json(found)
        return 0
    if not found:
        console.print("No conflicts.")
        return 0
    table(["File", "Conflicted copy", "From", "When"], [(c.original, c.copy, c.host, c.stamp) for c in found],
          title="Settle one with 'pooldrive conflicts COPY --keep-original' or '--keep-copy'")
    return 0
