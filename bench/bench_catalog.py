#!/usr/bin/env python3
"""The catalog at real size: lookups, folder listings, subtree walks and the reconcile's page query on a
catalog of N files (made through the catalog API, no nodes), against the same on a 10x smaller one.

    .venv/bin/python bench/bench_catalog.py [--files 1000000]

Layout: 100 top folders x 100 sub-folders x N/10,000 files, plus one folder holding 10,000 files directly
(the GUI opens it). Figures (median of repeated calls) printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fill(cat, n: int) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    per_leaf = max(1, n // 10_000)
    for top in range(100):
        with cat.atomic():  # one transaction per top folder
            for sub in range(100):
                for k in range(per_leaf):
                    path = f"d{top:03d}/s{sub:02d}/f{k:05d}.txt"
                    cat.commit_version(file_id=uuid.uuid4().hex, path=path, number=1, key=path, size=1024,
                                       sha256="0" * 64, mtime=1.7e9, replicas=[("node1", "v1"), ("node2", "v2")])
    with cat.atomic():
        for k in range(10_000):
            path = f"big/f{k:05d}.jpg"
            cat.commit_version(file_id=uuid.uuid4().hex, path=path, number=1, key=path, size=2048,
                               sha256="1" * 64, mtime=1.7e9, replicas=[("node3", "v3"), ("node4", "v4")])
    return time.monotonic() - start


def timed(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    values = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        values.append(time.perf_counter() - t)
    return statistics.median(values)


def measure(n: int) -> dict[str, float]:
    from sync_agent.catalog.store import Catalog

    work = Path(tempfile.mkdtemp(prefix="pooldrive-bench-catalog-"))
    cat = Catalog(work / "c.sqlite3")
    out: dict[str, float] = {"files": n + 10_000}
    out["fill_s"] = fill(cat, n)
    out["get_ms"] = timed(lambda: [cat.get(f"d050/s50/f{k:05d}.txt") for k in range(100)], 3) * 1000 / 100
    out["list_root_ms"] = timed(lambda: cat.list_dir("")) * 1000
    out["list_10k_folder_ms"] = timed(lambda: cat.list_dir("big/")) * 1000
    out["walk_1pct_subtree_ms"] = timed(lambda: list(cat.walk("d050/"))) * 1000
    out["reconcile_page_ms"] = timed(lambda: cat.current_on_node("node1", "d050/s00/", "d050/s10/")) * 1000
    out["db_mb"] = (work / "c.sqlite3").stat().st_size / 1e6
    cat.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1_000_000)
    args = ap.parse_args()
    rows = [measure(args.files // 10), measure(args.files)]
    labels = [("files in the catalog", "files", "{:,.0f}"), ("filling it through the API, s", "fill_s", "{:.0f}"),
              ("lookup by path, ms", "get_ms", "{:.3f}"), ("list the root (100 folders), ms", "list_root_ms", "{:.0f}"),
              ("list a folder of 10,000 files, ms", "list_10k_folder_ms", "{:.0f}"),
              ("walk a subtree of 1 %, ms", "walk_1pct_subtree_ms", "{:.0f}"),
              ("reconcile page query, ms", "reconcile_page_ms", "{:.1f}"), ("catalog file, MB", "db_mb", "{:.0f}")]
    table = "\n".join(["| | smaller | full |", "|---|---|---|"]
                      + [f"| {label} | " + " | ".join(fmt.format(r[key]) for r in rows) + " |"
                         for label, key, fmt in labels])
    print(table)
    res = ROOT / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d")
    (res / f"catalog-{stamp}.json").write_text(json.dumps(rows, indent=2))
    (res / f"catalog-{stamp}.md").write_text(f"# bench_catalog, {stamp}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
