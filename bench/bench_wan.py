#!/usr/bin/env python3
"""PoolDrive over shaped links (the dev pool's WAN profile: Toxiproxy in front of each MinIO node) against
rclone and s5cmd on the same proxies, same run.

    .venv/bin/python bench/bench_wan.py [--runs 3] [--big-mb 1024] [--small-count 500] [--small-kb 256]

Profile 'wan': node1 LAN 1 ms; node2 VPS 40+-10 ms, 100 Mbit/s; node3 home 80 ms, 20 Mbit/s; node4 20+-5 ms,
5 % of connections reset. Measured, each the median of --runs runs with min and max:
- a large file at R=2 read by `pooldrive get` (ranges from both replicas) against rclone reading it from
  each of the two nodes that hold it (the better one is the peer); beside them the floor of this machine:
  ranged GETs alone (8 MB ranges, 4 streams, written in place into a file as every client does, nothing
  verified) from the first holder and from both holders, in this process: whether a second copy can add
  throughput here at all;
- --small-count files of --small-kb uploaded at R=2 by `pooldrive put` against rclone (--transfers 8 and
  32, its better) and s5cmd each writing the same two copies to node1 and node2 (the two fast links);
  beside them the floor: the same conditional PUTs with PoolDrive's metadata alone (bodies in memory, 24 at
  once, in this process), both copies where PoolDrive's placement puts them and to node1 and node2;
- p95 of 1 MB reads in-process, before and while node2's link is throttled to 1 Mbit/s (hedging).
Results: stdout, bench/results/wan-DATE.json and .md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
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

MOST_RETRIES = 32  # failed requests a floor tries again (node4's link resets 5 % of its connections)
PUT_FLOOR_PLACED = "floor: PUTs alone, copies as placed (small)"
PUT_FLOOR_PEERS = "floor: PUTs alone, to node1+node2 (small)"


def key_placed_on(nodes: list[str], all_nodes: list[str], stem: str) -> str:
    """A pool path whose two copies go to exactly ``nodes`` (so the peer reads from a known holder)."""
    from sync_agent.placement import NodeSpec, placement

    specs = [NodeSpec(n) for n in all_nodes]
    for i in range(10_000):
        key = f"{stem}-{i}.bin"
        if sorted(placement(key, specs, 2)) == sorted(nodes):
            return key
    raise SystemExit(f"no key lands on {nodes}")


def ranged_gets(cfg: object, key: str, nodes: list[str], dest: Path, streams: int = 4) -> tuple[float, int]:
    """Wall seconds of reading ``key`` into ``dest`` by 8 MB ranged GETs from ``streams`` streams spread over
    ``nodes``, written in place, nothing verified: what the links, servers, proxies and this disk allow."""
    import threading

    from sync_agent.pool import Pool

    with Pool(cfg) as pool:  # type: ignore[arg-type]
        v = pool.stat(key).current
        assert v is not None
        starts = list(range(0, v.size, 8 << 20))
        lock = threading.Lock()
        failed: list[str] = []

        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

        def stream(node: str) -> None:
            client = pool.client(node)
            while True:
                with lock:
                    if not starts:
                        return
                    start = starts.pop(0)
                pos = start
                try:  # a connection the link resets: the range again, as any client does
                    resp = client.get(v.key, v.replicas_version(node), offset=start,
                                      length=min(8 << 20, v.size - start))
                    try:
                        while piece := resp.read(256 * 1024):
                            os.pwrite(fd, piece, pos)
                            pos += len(piece)
                    finally:
                        resp.close()
                        resp.release_conn()
                except Exception as e:
                    with lock:
                        failed.append(f"{node}: {e}")
                        if len(failed) <= MOST_RETRIES:
                            starts.append(start)
                        else:  # a node that keeps failing is a broken run, not a floor
                            starts.clear()

        for n in nodes:
            pool.client(n).ready()
        threads = [threading.Thread(target=stream, args=(nodes[i % len(nodes)],)) for i in range(streams)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if len(failed) > MOST_RETRIES:
            raise SystemExit(f"ranged GETs of {key} failed {len(failed)} times: {failed[-1]}")
        os.close(fd)  # as a client closes the file it wrote (no fsync: none of them makes one)
        took = time.perf_counter() - t
    dest.unlink()
    return took, 0


def small_puts(cfg: object, bodies: list[tuple[str, bytes]], prefix: str, placed: bool) -> tuple[float, int]:
    """Wall seconds of PUTting both copies of ``bodies`` as PoolDrive's requests (conditional, versioned,
    its metadata), 24 at once, nothing else: to the nodes its placement picks (``placed``), else to node1
    and node2 as the peers do."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from sync_agent import metadata
    from sync_agent.errors import NodeUnreachableError
    from sync_agent.node_client import META_PREFIX
    from sync_agent.placement import write_order
    from sync_agent.pool import Pool
    from sync_agent.transfer import SMALL_IN_FLIGHT

    with Pool(cfg) as pool:  # type: ignore[arg-type]
        specs, everyone = pool.specs(), [n.name for n in pool.cfg.nodes]
        stores = {n: pool.client(n).small for n in everyone}
        jobs = [(n, f"{prefix}/{key}", body) for key, body in bodies
                for n in (write_order(f"{prefix}/{key}", specs, 2, everyone)[:2] if placed else ("node1", "node2"))]

        def one(job: tuple[str, str, bytes]) -> None:
            node, key, body = job
            meta = {META_PREFIX + k: v for k, v in
                    metadata.object_meta(uuid.uuid4().hex, 1, "0" * 64, len(body), 0.0).items()}
            for attempt in range(8):  # a real client tries a reset connection again (node4 resets 5 %)
                try:
                    stores[node].put(key, body, meta, None if attempt == 0 else False, "bench")  # type: ignore[union-attr]
                    return
                except NodeUnreachableError:
                    time.sleep(0.05)
            raise SystemExit(f"{node} refused {key} eight times")

        t = time.perf_counter()
        with ThreadPoolExecutor(SMALL_IN_FLIGHT) as ex:
            list(ex.map(one, jobs))
        return time.perf_counter() - t, 0


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="wan")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--big-mb", type=int, default=1024)
    ap.add_argument("--big-on", default="node1,node4", help="the two nodes holding the large file")
    ap.add_argument("--small-count", type=int, default=500)
    ap.add_argument("--small-kb", type=int, default=256)
    ap.add_argument("--reads", type=int, default=40, help="1 MB reads for the hedging figure")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    rclone = tool("rclone")

    work, env = isolated_env("pooldrive-wan-")
    from sync_agent.devpool import DevPool
    from sync_agent.netshape.profiles import changed
    from sync_agent.pool import Pool

    dp = DevPool()
    runs = Runs()
    hedging: dict[str, float] = {}
    try:
        cfg = dp.up(4, 2, profile=args.profile)
        shaping = dp.shaping()
        assert shaping is not None
        links = {n: link.describe() for n, link in shaping.links.items()}
        print("Links:", *(f"  {n}: {d}" for n, d in links.items()), sep="\n")
        with Pool(cfg) as pool:
            peers = setup_peers(pool, env)
        urls, renv, senv = peers.urls, peers.rclone_env, peers.s5cmd_env
        pd = str(BIN / "pooldrive")

        big = work / "big.bin"
        with open(big, "wb") as f:
            for _ in range(args.big_mb):
                f.write(os.urandom(1 << 20))
        holders = args.big_on.split(",")
        big_key = key_placed_on(holders, [n.name for n in cfg.nodes], "bench/big")
        mb = big.stat().st_size / 1e6
        print(f"\nLarge file: {args.big_mb} MB on {', '.join(holders)}")
        run_measured([pd, "put", str(big), "--to", big_key], env)
        for n in holders:
            run_measured([rclone, "copyto", str(big), f"{n}:peers/big.bin"], renv)
        small = work / "small"
        bodies: list[tuple[str, bytes]] = []
        for i in range(args.small_count):
            (small / f"{i // 100:03d}").mkdir(parents=True, exist_ok=True)
            bodies.append((f"{i // 100:03d}/f{i:05d}.bin", os.urandom(args.small_kb * 1024)))
            (small / bodies[-1][0]).write_bytes(bodies[-1][1])
        small_mb = args.small_count * args.small_kb * 1024 / 1e6
        out = work / "out"
        for r in range(args.runs):
            print(f"Run {r + 1} of {args.runs}")
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            runs.measure("pooldrive get (both replicas)", mb, 1,
                         run_measured, [pd, "get", big_key, str(out / "pd.bin")], env)
            for n in holders:
                runs.measure(f"rclone copyto from {n}", mb, 1,
                             run_measured, [rclone, "copyto", f"{n}:peers/big.bin",
                                                       str(out / f"rc-{n}.bin")], renv)
            runs.measure(f"floor: ranged GETs from {holders[0]}", mb, 1, ranged_gets, cfg, big_key, holders[:1],
                         out / "floor.bin")
            runs.measure("floor: ranged GETs from both holders", mb, 1, ranged_gets, cfg, big_key, holders,
                         out / "floor.bin")
            runs.measure("pooldrive put R=2 (small)", small_mb, args.small_count,
                         run_measured, [pd, "put", str(small), "--to", f"small{r}/"], env)
            for t in (8, 32):
                runs.measure(f"rclone copy x2 --transfers {t} (small)", small_mb, args.small_count,
                             parallel, [[rclone, "copy", "--transfers", str(t), str(small),
                                                    f"{n}:peers/small{r}-{t}"] for n in ("node1", "node2")], renv)
            runs.measure("s5cmd cp x2 (small)", small_mb, args.small_count,
                         parallel, [s5cmd_cmd(urls[n], "cp", f"{small}/", f"s3://peers/s5-{r}/")
                                           for n in ("node1", "node2")], senv)
            runs.measure(PUT_FLOOR_PLACED, small_mb, args.small_count, small_puts, cfg, bodies, f"fp{r}", True)
            runs.measure(PUT_FLOOR_PEERS, small_mb, args.small_count, small_puts, cfg, bodies, f"fn{r}", False)

        print(f"\nHedging: {args.reads} reads of 1 MB, then again while node2's link is throttled to 1 Mbit/s")
        with Pool(cfg, catalog_path=work / "hedge.sqlite3") as pool:
            names = [pool.put_bytes(f"hedge/{i:03d}.bin", os.urandom(1 << 20)).path for i in range(args.reads)]

            def timed_reads() -> list[float]:
                took = []
                for name in names:
                    t = time.monotonic()
                    pool.read_bytes(name)
                    took.append(time.monotonic() - t)
                return took

            timed_reads()  # the pool learns the links
            before = timed_reads()
            dp.shape("node2", changed(shaping.links["node2"], rate_mbit=1))
            during = timed_reads()
            shaping.server.api.set_enabled("node2", False)  # the floor: node2 gone, every read elsewhere
            without = timed_reads()
            shaping.server.api.set_enabled("node2", True)
            on_node2 = sum("node2" in pool.stat(n).replicas for n in names)
        hedging = {"p95_unthrottled_s": p95(before), "p95_node2_at_1mbit_s": p95(during),
                   "max_node2_at_1mbit_s": max(during), "p95_without_node2_s": p95(without),
                   "files_with_a_copy_on_node2": on_node2}
        print(f"  p95 {hedging['p95_unthrottled_s'] * 1000:.0f} ms unthrottled, "
              f"{hedging['p95_node2_at_1mbit_s'] * 1000:.0f} ms with node2 at 1 Mbit/s "
              f"(max {hedging['max_node2_at_1mbit_s'] * 1000:.0f} ms; {on_node2} of {len(names)} files have a copy "
              f"there); {hedging['p95_without_node2_s'] * 1000:.0f} ms with node2 cut off (the floor: the other "
              "copies' links)")
    finally:
        dp.down(purge=True)
        shutil.rmtree(work, ignore_errors=True)

    runs.print_table()
    peer_get = runs.best_of([f"rclone copyto from {n}" for n in holders])
    floor_get = runs.best_of([f"floor: ranged GETs from {holders[0]}", "floor: ranged GETs from both holders"])
    peer_put = runs.best_of([n for n in runs.seconds if n.startswith("rclone copy x2")], "files/s")
    targets = print_targets([
        (f"large download vs {peer_get}", runs.ratio("pooldrive get (both replicas)", peer_get), 1.5),
        ("floor: ranged GETs from both holders vs from one",
         runs.ratio("floor: ranged GETs from both holders", f"floor: ranged GETs from {holders[0]}"), 1.5),
        ("large download vs the better floor (no start, no checksum)",
         runs.ratio("pooldrive get (both replicas)", floor_get), 0.9),
        (f"small upload R=2 vs {peer_put}", runs.ratio("pooldrive put R=2 (small)", peer_put, "files/s"), 1.2),
        (f"floor: PUTs as placed vs {peer_put}", runs.ratio(PUT_FLOOR_PLACED, peer_put, "files/s"), 1.2),
        ("small upload R=2 vs the floor as placed", runs.ratio("pooldrive put R=2 (small)", PUT_FLOOR_PLACED,
                                                                "files/s"), 0.9),
        ("small upload R=2 vs s5cmd x2", runs.ratio("pooldrive put R=2 (small)", "s5cmd cp x2 (small)", "files/s"),
         1.0),
        ("1 MB read p95: unthrottled / node2 throttled (>= 0.5: under 2x)",
         hedging["p95_unthrottled_s"] / hedging["p95_node2_at_1mbit_s"], 0.5),
        ("1 MB read p95: node2 cut off / node2 throttled (1.0: hedging reaches the floor)",
         hedging["p95_without_node2_s"] / hedging["p95_node2_at_1mbit_s"], 0.9),
    ])
    write_results(args.out, "wan", f"WAN profile '{args.profile}'", runs, targets,
                  [f"Median of {args.runs} runs. Links:", *(f"- {n}: {d}" for n, d in links.items()), "",
                   f"1 MB reads: p95 {hedging['p95_unthrottled_s'] * 1000:.0f} ms; with node2 at 1 Mbit/s "
                   f"{hedging['p95_node2_at_1mbit_s'] * 1000:.0f} ms; with node2 cut off "
                   f"{hedging['p95_without_node2_s'] * 1000:.0f} ms (the floor: the other copies' links)"],
                  {"args": vars(args), "links": links, "hedging": hedging})
    return 0


if __name__ == "__main__":
    sys.exit(main())
