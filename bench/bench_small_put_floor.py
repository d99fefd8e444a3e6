"""Where the time of uploading many small files at R=2 goes (#16): is 1.5x rclone reachable on this machine?

One fresh 4-node dev pool; COUNT files of KB KB, each written twice. Each measured RUNS times, with the CPU
seconds of the client processes and of the MinIO servers (from /proc) beside the wall time:
  * `pooldrive put` of the folder at R=2 (the real command: files read, hashed, placed, recorded);
  * rclone and s5cmd writing the same two copies (one process per node, to node1 and node2, into an
    unversioned bucket, as bench_transfer.py runs them; rclone's better of --transfers 8 and 32);
  * the floor of a Python client on obstore, from 16 threads, the bodies already in memory, nothing hashed
    or recorded: the same 2 x COUNT PUTs (a) into the pool's versioned bucket with PoolDrive's six metadata
    headers, (b) the same as compare-and-swaps (If-None-Match: *), as PoolDrive sends every copy of a new
    file: what its own requests cost the servers, and (c) into the peers' unversioned bucket without
    metadata, what rclone's cost them, and (d) PoolDrive's requests spread over the four nodes as its
    placement puts the copies (the peers write to node1 and node2 only; spreading the same requests over
    four servers on the same cores costs them more, as bench_small_get_floor.py found for GETs).

    .venv/bin/python bench/bench_small_put_floor.py [--count 2000] [--kb 64] [--runs 3]
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_small_get_floor import Row, child, floor_args, in_process, measurer, table_rows
from bench.peers import BIN, isolated_env, s5cmd_cmd, setup_peers, tool

RCLONE = "rclone copy x2 (best of --transfers 8, 32)"
FLOOR = "obstore PUTs only, versioned + metadata"
CAS = "obstore PUTs only, versioned + metadata + If-None-Match (PoolDrive's requests), on node1 and node2"
PLACED = "the same, spread over the 4 nodes as PoolDrive places the copies (its floor)"


def children(cmds: list[list[str]], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of several children run at once (one per node)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    with ThreadPoolExecutor(len(cmds)) as ex:
        list(ex.map(lambda c: subprocess.run(c, env=env, check=True, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL), cmds))
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    args = floor_args(__doc__)
    rclone = tool("rclone")
    work, env = isolated_env("pooldrive-small-put-floor-")
    from sync_agent import metadata
    from sync_agent.devpool import DevPool
    from sync_agent.node_client import META_PREFIX
    from sync_agent.placement import write_order
    from sync_agent.pool import Pool
    from sync_agent.small_objects import SmallObjects

    dp = DevPool()
    rows: dict[str, list[Row]] = {}  # name -> [(wall, client cpu, server cpu)]
    measure = measurer(rows, 62)

    try:
        cfg = dp.up(4, 2)
        pool = Pool(cfg, catalog_path=work / "raw.sqlite3")
        peers = setup_peers(pool, env)
        data = Path(tempfile.mkdtemp(prefix="files-", dir=work))
        bodies: list[tuple[str, bytes]] = []
        for i in range(args.count):
            (data / f"{i // 100:03d}").mkdir(exist_ok=True)
            body = os.urandom(args.kb * 1024)
            (data / f"{i // 100:03d}" / f"f{i:05d}.bin").write_bytes(body)
            bodies.append((f"{i // 100:03d}/f{i:05d}.bin", body))
        pd = str(BIN / "pooldrive")
        nodes = ("node1", "node2")
        region = "us-east-1"
        c1 = pool.client("node1")
        versioned = {n.name: pool.client(n.name).small for n in cfg.nodes}
        plain = {n: SmallObjects(cfg.node(n), c1._creds, "peers", region=region, connect=5, read=30) for n in nodes}
        assert all(versioned.values()), "obstore is not usable for these nodes"

        specs, everyone = pool.specs(), [n.name for n in cfg.nodes]

        def floor(stores: dict[str, SmallObjects | None], prefix: str, with_meta: bool,
                  conditional: bool = False, placed: bool = False) -> None:
            def one(job: tuple[str, tuple[str, bytes]]) -> None:
                node, (key, body) = job
                meta = {META_PREFIX + k: v for k, v in metadata.object_meta(
                    uuid.uuid4().hex, 1, "0" * 64, len(body), 0.0).items()} if with_meta else {}
                stores[node].put(f"{prefix}/{key}", body, meta, None if conditional else False,  # type: ignore[union-attr]
                                 "bench")

            with ThreadPoolExecutor(16) as ex:
                list(ex.map(one, [(n, b) for b in bodies for n in (
                    write_order(f"{prefix}/{b[0]}", specs, 2, everyone)[:2] if placed else nodes)]))

        for r in range(args.runs):
            measure("pooldrive put R=2 (files read, hashed, recorded)", lambda r=r: child(
                [pd, "put", str(data), "--to", f"small{r}"], env))
            tried = [measure(f"(rclone --transfers {t})", lambda r=r, t=t: children(
                [[rclone, "copy", "--transfers", str(t), str(data), f"{n}:peers/rc{r}-{t}"] for n in nodes],
                peers.rclone_env)) for t in (8, 32)]
            rows.setdefault(RCLONE, []).append(min(tried))
            measure("s5cmd cp x2", lambda r=r: children(
                [s5cmd_cmd(peers.urls[n], "cp", f"{data}/", f"s3://peers/s5-{r}/") for n in nodes], peers.s5cmd_env))
            measure(FLOOR, lambda r=r: in_process(lambda: floor(versioned, f"floor{r}", True)))
            measure(CAS, lambda r=r: in_process(lambda: floor(versioned, f"cas{r}", True, conditional=True)))
            measure(PLACED, lambda r=r: in_process(lambda: floor(versioned, f"placed{r}", True, conditional=True,
                                                                 placed=True)))
            measure("obstore PUTs only, unversioned, no metadata (rclone's requests)",
                    lambda r=r: in_process(lambda: floor(plain, f"plain{r}", False)))  # type: ignore[arg-type]
        pool.close()
    finally:
        dp.down(purge=True)
        shutil.rmtree(work, ignore_errors=True)

    med = {n: tuple(statistics.median(x[i] for x in v) for i in range(3)) for n, v in rows.items()}
    rc = med[RCLONE][0]
    cores = os.cpu_count() or 2
    lines = [f"# Many small uploads at R=2: where the time goes, {date.today().isoformat()}, {cores} cores", "",
             f"{args.count} x {args.kb} KB, two copies each, on a 4-node dev pool; medians of {args.runs} runs "
             "(min-max of the wall time in brackets). CPU seconds of the client processes and of all MinIO "
             "servers.", "",
             "| | wall s | client CPU s | servers CPU s | files/s | vs rclone |", "|---|---|---|---|---|---|"]
    lines += table_rows(med, rows, args.count, rc)
    need = rc / 1.5
    budget = need * cores
    fl, plain_put, placed = med[CAS], med[FLOOR], med[PLACED]
    per_put = fl[2] / (2 * args.count)
    lines += ["", f"MinIO spends {per_put * 1000:.2f} ms of CPU per conditional versioned PUT with PoolDrive's "
              f"metadata ({fl[2]:.2f} s for the {2 * args.count} copies; {plain_put[2]:.2f} s unconditional), "
              f"on the same {cores} cores as the client. 1.5x "
              f"rclone means {need:.2f} s of wall: at most {budget:.2f} CPU-s for the servers and the client "
              f"together. The obstore floor (the PUTs alone, bodies in memory, nothing hashed or recorded) used "
              f"{fl[1] + fl[2]:.2f} CPU-s, " + ("more than that." if fl[1] + fl[2] > budget else "within it."),
              "", f"Spread over the four nodes as PoolDrive places them, the same requests cost the servers "
              f"{placed[2]:.2f} CPU-s ({placed[2] / (2 * args.count) * 1000:.2f} ms a PUT) and took {placed[0]:.2f} s: "
              f"{rc / placed[0]:.2f}x rclone, the most a client that spreads its copies reaches here."]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"small-put-floor-{date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps({"cores": cores, "count": args.count, "kb": args.kb,
                                                     "runs": rows}, indent=2))
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
