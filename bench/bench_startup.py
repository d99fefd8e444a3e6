"""How fast the `pooldrive` command starts (#15): `--version`, `--help` and `ls` of a folder on a dev pool
that holds FILES files, each the median of RUNS runs of the real command in a fresh process, beside the
interpreter's own start (`python -c pass`, the floor for any Python tool) and the peers' (`rclone version`,
`rclone lsf` of the same folder on one node, `s5cmd version`).

Target: `pooldrive --version` and `pooldrive ls` under 150 ms.
    .venv/bin/python bench/bench_startup.py [--runs 15] [--files 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import BIN, ROOT, isolated_env, setup_peers, tool

TARGET_MS = 150.0


def wall_ms(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        out.append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.decode()[-1000:]}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    rclone, s5cmd = tool("rclone"), tool("s5cmd")
    work, env = isolated_env("pooldrive-startup-")
    from sync_agent.devpool import DevPool
    from sync_agent.pool import Pool

    dp = DevPool()
    rows: dict[str, list[float]] = {}
    try:
        cfg = dp.up(4, 2)
        pool = Pool(cfg, catalog_path=work / "raw.sqlite3")
        peers = setup_peers(pool, env)
        data = Path(tempfile.mkdtemp(prefix="files-", dir=work))
        for i in range(args.files):
            (data / f"f{i:05d}.txt").write_bytes(b"x" * 100)
        pd = str(BIN / "pooldrive")
        subprocess.run([pd, "put", str(data), "--to", "many"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([rclone, "copy", "--transfers", "32", str(data), "node1:peers/many"], env=peers.rclone_env,
                       check=True)
        cases = [
            ("python -c pass (the floor)", [sys.executable, "-c", "pass"], env),
            ("pooldrive --version", [pd, "--version"], env),
            ("pooldrive --help", [pd, "--help"], env),
            (f"pooldrive ls many ({args.files} files)", [pd, "ls", "many"], env),
            ("rclone version", [rclone, "version"], peers.rclone_env),
            (f"rclone lsf node1:peers/many ({args.files} files)", [rclone, "lsf", "node1:peers/many"],
             peers.rclone_env),
            ("s5cmd version", [s5cmd, "version"], peers.s5cmd_env),
        ]
        for name, cmd, e in cases:
            wall_ms(cmd, e, 2)  # warm the page cache: every tool starts from the same footing
            rows[name] = wall_ms(cmd, e, args.runs)
            print(f"  {name:45s} median {statistics.median(rows[name]):7.1f} ms  "
                  f"(min {min(rows[name]):.1f}, max {max(rows[name]):.1f})", flush=True)
        pool.close()
    finally:
        dp.down(purge=True)
        shutil.rmtree(work, ignore_errors=True)

    table = [{"name": n, "median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v), "runs": len(v)}
             for n, v in rows.items()]
    med = {r["name"]: r["median_ms"] for r in table}
    version, ls = med["pooldrive --version"], med[f"pooldrive ls many ({args.files} files)"]
    targets = [{"what": "pooldrive --version", "ms": version, "target_ms": TARGET_MS, "met": version < TARGET_MS},
               {"what": "pooldrive ls", "ms": ls, "target_ms": TARGET_MS, "met": ls < TARGET_MS}]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"startup-{date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps({"cores": os.cpu_count(), "results": table,
                                                     "targets": targets}, indent=2))
    lines = [f"# Command start-up, {date.today().isoformat()}, {os.cpu_count()} cores", "",
             f"Wall time of the real command in a fresh process, median of {args.runs} runs (after 2 warm-up "
             "runs); `ls` reads this device's catalog, `rclone lsf` lists the same folder on one node.", "",
             "| | median ms | min | max | vs python -c pass |", "|---|---|---|---|---|"]
    floor = med["python -c pass (the floor)"]
    lines += [f"| {r['name']} | {r['median_ms']:.0f} | {r['min_ms']:.0f} | {r['max_ms']:.0f} | "
              f"{r['median_ms'] / floor:.1f}x |" for r in table]
    lines += ["", "| target | measured | wanted | |", "|---|---|---|---|"]
    lines += [f"| {t['what']} | {t['ms']:.0f} ms | < {TARGET_MS:.0f} ms | {'met' if t['met'] else 'NOT met'} |"
              for t in targets]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[6:]))
    print(f"\nWritten: {stem}.json, {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
