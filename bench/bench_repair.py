#!/usr/bin/env python3
"""Repair benchmark: how fast a pool heals after losing a node, on a fresh 4-node dev pool.

    .venv/bin/python bench/bench_repair.py [--files 1000] [--kb 256] [--big 4] [--big-mb 64]

Fills the pool at R=2, kills one node (SIGKILL), runs the repair the background loop would run once the
grace period is over, and reports files/s and MB/s re-replicated, then the time a node outage takes to heal
with the defaults (grace period + this repair time). Also times the surplus clean-up when the node returns.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--kb", type=int, default=256)
    ap.add_argument("--big", type=int, default=4, help="number of large files")
    ap.add_argument("--big-mb", type=int, default=64)
    ap.add_argument("--parallel", type=int, default=4)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pooldrive-bench-repair-"))
    for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        os.environ[k] = str(work / k.lower())
    sys.path.insert(0, str(ROOT))
    from sync_agent import repair
    from sync_agent.devpool import DevPool
    from sync_agent.pool import Pool
    from sync_agent.repair import RepairLoop
    from sync_agent.replica_plan import RepairMode

    dp = DevPool()
    try:
        pool = Pool(dp.up(4, 2))
        pool.init_buckets()
        print(f"Filling: {args.files} x {args.kb} KB + {args.big} x {args.big_mb} MB at R=2")
        blob = os.urandom(args.kb * 1024)
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda i: pool.put_bytes(f"small/{i:05d}.bin", blob[i % 97:] + blob[:i % 97]),
                        range(args.files)))
        big = os.urandom(args.big_mb * 1024 * 1024)
        for i in range(args.big):
            pool.put_bytes(f"big/{i}.bin", big[i:] + big[:i])
        victim = "node2"
        on_victim = pool.catalog.files_on_node(victim)
        lost_bytes = sum(f.size for f in on_victim)
        dp.kill(victim)
        pool.refresh_health(max_age=0)
        t = time.monotonic()
        report = repair.run(pool, RepairMode.REPAIR, lost={victim}, parallel=args.parallel)
        secs = time.monotonic() - t
        print(f"Repair after losing {victim}: {report.copies_made} copies ({lost_bytes / 1e6:.0f} MB) in {secs:.1f} s"
              f" = {report.copies_made / secs:.0f} files/s, {report.bytes_copied / secs / 1e6:.0f} MB/s;"
              f" errors: {len(report.errors)}")
        grace = RepairLoop.__init__.__kwdefaults__["grace"]
        print(f"Heal time with the defaults: grace {grace:.0f} s + repair {secs:.0f} s = {grace + secs:.0f} s")
        dp.start(victim)
        time.sleep(0.5)
        pool.refresh_health(max_age=0)
        pool.refresh_health(max_age=0)
        t = time.monotonic()
        cleanup = repair.run(pool, RepairMode.REPAIR, parallel=args.parallel)
        print(f"Surplus clean-up when {victim} returned: {cleanup.copies_removed} copies removed in "
              f"{time.monotonic() - t:.1f} s")
        pool.close()
    finally:
        dp.down(purge=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
