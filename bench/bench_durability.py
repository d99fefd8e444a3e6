"""Durability classes (#17): how long raising and lowering a folder's class takes through the real command.

On a fresh 4-node dev pool in two zones, FILES files of KB KB go to `photos/` at R=2; then, each timed as
the real `pooldrive` command in a fresh process:
  * `policy set photos --copies 3 --zones 2` (one more copy of every file, made node to node, verified);
  * the peer in the same run: `rclone copy` of the same folder from one node to another (one copy of every
    file through the client, unverified beyond rclone's own checks) at its best of --transfers 4, 16;
  * `policy show` (the class and how many files meet it, read from the catalog);
  * `policy set photos --copies 1` (two copies of every file removed, after the check that one is left).

    .venv/bin/python bench/bench_durability.py [--files 2000] [--kb 16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import BIN, ROOT, isolated_env, setup_peers, tool


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.decode()[-1500:]}")
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--kb", type=int, default=16)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    rclone = tool("rclone")
    work, env = isolated_env("pooldrive-durability-")
    from sync_agent import config
    from sync_agent.devpool import DevPool
    from sync_agent.pool import Pool

    dp = DevPool()
    rows: dict[str, float] = {}
    try:
        cfg = dp.up(4, 2)
        zones = {n.name: ("home" if i < 2 else "office") for i, n in enumerate(cfg.nodes)}
        cfg = cfg.with_nodes(tuple(replace(n, zone=zones[n.name]) for n in cfg.nodes))
        config.save_pool(cfg, cfg.path)
        pool = Pool(cfg, catalog_path=work / "raw.sqlite3")
        peers = setup_peers(pool, env)
        data = Path(tempfile.mkdtemp(prefix="files-", dir=work))
        for i in range(args.files):
            (data / f"p{i:05d}.jpg").write_bytes(os.urandom(args.kb * 1024))
        pd = str(BIN / "pooldrive")
        subprocess.run([pd, "put", str(data), "--to", "photos"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([rclone, "copy", "--transfers", "16", str(data), "node1:peers/photos"], env=peers.rclone_env,
                       check=True)
        rows["policy set --copies 3 --zones 2"] = timed([pd, "policy", "set", "photos", "--copies", "3", "--zones",
                                                         "2"], env)
        best = min(timed([rclone, "copy", "--transfers", str(t), "node1:peers/photos", f"node3:peers/photos{t}"],
                         peers.rclone_env) for t in (4, 16))
        rows["rclone copy node1 -> node3 (best of --transfers 4, 16)"] = best
        rows["policy show"] = timed([pd, "policy", "show"], env)
        shown = json.loads(subprocess.run([pd, "policy", "show", "photos", "--json"], env=env, check=True,
                                          capture_output=True, text=True).stdout)[0]
        rows["policy set --copies 1"] = timed([pd, "policy", "set", "photos", "--copies", "1"], env)
        pool.close()
    finally:
        dp.down(purge=True)
        shutil.rmtree(work, ignore_errors=True)

    up, peer = rows["policy set --copies 3 --zones 2"], rows["rclone copy node1 -> node3 (best of --transfers 4, 16)"]
    lines = [f"# Durability classes, {date.today().isoformat()}, {os.cpu_count()} cores", "",
             f"{args.files} files of {args.kb} KB in `photos/` on a 4-node dev pool in two zones, R=2; each row is "
             "the wall time of the real command in a fresh process.", "",
             "| | seconds | files/s |", "|---|---|---|"]
    lines += [f"| {name} | {s:.1f} | {args.files / s:.0f} |" for name, s in rows.items()]
    lines += ["", f"Raising the class made one verified copy of each file at {args.files / up:.0f} files/s, "
              f"{peer / up:.2f}x rclone's rate for one unverified copy of the same files; afterwards "
              f"{shown['meeting']} of {shown['files']} files met 3 copies in 2 zones."]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"durability-{date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps({"cores": os.cpu_count(), "files": args.files, "kb": args.kb,
                                                     "seconds": rows, "after": shown}, indent=2))
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nWritten: {stem}.json, {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
