"""When do a MinIO node's bucket notifications reach a listener? (#16: "measure whether multi-drive MinIO does")

For a single-drive node and a 4-drive erasure-coded node (each a fresh one-node dev pool): a listener opens a
ListenBucketNotification stream on the pool's bucket, then PUTS objects are written 0.5 s apart. Printed and
written to bench/results/notify-<date>.md: when the response headers came, and for each PUT how long its
event took to reach the listener (or that it never did within the wait).

    .venv/bin/python bench/probe_notifications.py [--puts 12] [--wait 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import threading
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import ROOT, isolated_env

META = {"sha256": "0" * 64}


def probe(drives: int, puts: int, wait: float) -> list[str]:
    from sync_agent.devpool import DevPool
    from sync_agent.node_client import NodeClient, Timeouts
    from sync_agent.pool import Pool

    work, _ = isolated_env(f"pooldrive-notify-{drives}-")  # before the dev pool: it lives in these dirs
    dp = DevPool()
    try:
        cfg = dp.up(1, 1, drives=drives)
        with Pool(cfg, catalog_path=work / "c.sqlite3") as pool:
            pool.init_buckets()
            node = cfg.nodes[0]
            c = NodeClient(node, pool.client(node.name)._creds, cfg.bucket, Timeouts(connect=2, read=60))
            t0 = time.monotonic()
            seen: dict[str, float] = {}
            headers: list[float] = []

            def listen() -> None:
                r = c.s3._execute("GET", c.bucket, preload_content=False,
                                  query_params={"prefix": "probe/", "suffix": "", "events": ["s3:ObjectCreated:*"]})
                headers.append(time.monotonic() - t0)
                buf = b""
                try:
                    while chunk := r.read1(65536):
                        buf += chunk
                        now = time.monotonic() - t0
                        for i in range(puts):
                            if f"probe/p{i:03d}".encode() in buf:
                                seen.setdefault(f"probe/p{i:03d}", now)
                except Exception:  # the node stopped at the end of the probe: the stream breaks
                    return

            threading.Thread(target=listen, daemon=True).start()
            time.sleep(2)  # the listener is open before the first PUT
            sent: dict[str, float] = {}
            for i in range(puts):
                key = f"probe/p{i:03d}"
                c.put_if(key, b"x", META, if_match=None)
                sent[key] = time.monotonic() - t0
                time.sleep(0.5)
            time.sleep(wait)
            lines = [f"### {'single drive' if drives == 1 else f'{drives} drives, erasure-coded'}", "",
                     f"listener opened at 0.00 s; response headers at "
                     f"{f'{headers[0]:.2f} s' if headers else 'never (within the wait)'}", "",
                     "| PUT | written at, s | event reached the listener at, s | delay, s |", "|---|---|---|---|"]
            for key, at in sent.items():
                got = seen.get(key)
                lines.append(f"| {key} | {at:.2f} | {f'{got:.2f}' if got else 'never'} | "
                             f"{f'{got - at:.2f}' if got else '-'} |")
            delays = sorted(seen[k] - sent[k] for k in sent if k in seen)
            spread = f"; delay median {statistics.median(delays):.2f} s, most {delays[-1]:.2f} s" if delays else ""
            lines += ["", f"delivered {len(delays)} of {puts} within {wait:.0f} s of the last PUT{spread}"]
            c.close()
            return [*lines, ""]
    finally:
        dp.down(purge=True)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--puts", type=int, default=12)
    ap.add_argument("--wait", type=float, default=5.0, help="seconds to wait for events after the last PUT")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    binary = os.environ.get("POOLDRIVE_MINIO_BIN") or "the dev pool's (built from the pinned source)"
    lines = [f"# Bucket notifications: when they reach a listener, {date.today().isoformat()}", "",
             f"One PUT every 0.5 s after the listener opened; MinIO binary: {binary}", ""]
    for drives in (1, 4):
        lines += probe(drives, args.puts, args.wait)
        print("\n".join(lines[-(args.puts + 9):]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"notify-{date.today().isoformat()}.md").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
