"""Where the time of downloading many small files goes (#16): is 1.5x rclone reachable on this machine?

One fresh 4-node dev pool; COUNT files of KB KB. Each measured RUNS times, with the CPU seconds of the client
process and of the MinIO servers (from /proc) beside the wall time:
  * `pooldrive get` of the folder (the real command, files written and verified);
  * `rclone copy` of the same files from one node (best of --transfers 8 and 32);
  * the floor of a Python client on obstore: the same GETs (by version id, from the node holding each copy)
    with nothing else, from 16 threads, and from one asyncio loop (obstore's async API, 32 at once); no file
    is written, nothing verified;
  * the same GETs from 16 threads, all from one server (rclone's copies on node1): what the servers spend
    per GET when one process serves them all, as for rclone, against four processes on the same cores.

    .venv/bin/python bench/bench_small_get_floor.py [--count 2000] [--kb 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import BIN, ROOT, isolated_env, setup_peers, tool


def server_cpu() -> float:
    """CPU seconds used so far by every MinIO server process of this machine."""
    total = 0.0
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if b"minio" in (p / "cmdline").read_bytes() and b"server" in (p / "cmdline").read_bytes():
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def in_process(fn: Callable[[], None]) -> tuple[float, float]:
    c, t = self_cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t, self_cpu() - c


Row = tuple[float, float, float]  # wall s, client CPU s, servers CPU s


def measurer(rows: dict[str, list[Row]], width: int = 50) -> Callable[[str, Callable[[], tuple[float, float]]], Row]:
    """``measure(name, fn)``: runs ``fn`` (which returns its wall and client CPU seconds), adds the servers' CPU
    over the same span, keeps the row under ``name`` and prints it."""
    def measure(name: str, fn: Callable[[], tuple[float, float]]) -> Row:
        s = server_cpu()
        wall, cpu = fn()
        row = (wall, cpu, server_cpu() - s)
        rows.setdefault(name, []).append(row)
        print(f"  {name:{width}s} wall {wall:5.2f} s  client cpu {cpu:5.2f} s  servers cpu {row[2]:5.2f} s",
              flush=True)
        return row

    return measure


def table_rows(med: dict[str, tuple[float, ...]], rows: dict[str, list[Row]], count: int, peer: float) -> list[str]:
    """One Markdown row per measurement: median wall (min-max), CPU, files/s, ratio to the peer's wall time
    ``peer`` (names in brackets are the peer's tries, left out)."""
    out = []
    for n, (w, c, s) in med.items():
        if not n.startswith("("):
            walls = [x[0] for x in rows[n]]
            out.append(f"| {n} | {w:.2f} ({min(walls):.2f}-{max(walls):.2f}) | {c:.2f} | {s:.2f} | "
                       f"{count / w:.0f} | {peer / w:.2f}x |")
    return out


def floor_args(doc: str | None) -> argparse.Namespace:
    """The options both floor benchmarks take."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--kb", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return ap.parse_args()


def main() -> int:
    args = floor_args(__doc__)
    rclone = tool("rclone")
    work, env = isolated_env("pooldrive-small-floor-")
    os.environ.update({k: v for k, v in env.items() if k.startswith("XDG_")})  # this process's pool too
    import obstore

    from sync_agent.devpool import DevPool
    from sync_agent.pool import Pool

    dp = DevPool()
    rows: dict[str, list[Row]] = {}  # name -> [(wall, client cpu, server cpu)]
    measure = measurer(rows)

    try:
        cfg = dp.up(4, 2)
        pool = Pool(cfg, catalog_path=work / "raw.sqlite3")
        peers = setup_peers(pool, env)
        data = Path(tempfile.mkdtemp(prefix="files-", dir=work))
        for i in range(args.count):
            (data / f"{i // 100:03d}").mkdir(exist_ok=True)
            (data / f"{i // 100:03d}" / f"f{i:05d}.bin").write_bytes(os.urandom(args.kb * 1024))
        pd = str(BIN / "pooldrive")
        subprocess.run([pd, "put", str(data), "--to", "small"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([rclone, "copy", "--transfers", "16", str(data), "node1:peers/small"], env=peers.rclone_env,
                       check=True, stderr=subprocess.DEVNULL)
        from sync_agent import rebuild

        rebuild.refresh(pool)
        jobs = [(f.path, n, f.current.replicas_version(n)) for f in pool.catalog.walk("small/")
                if f.current is not None for n in f.current.ok_nodes()[:1]]
        stores = {n: pool.client(n).small for n in pool.clients}
        assert all(stores.values()), "obstore is not usable for these nodes"
        from sync_agent.small_objects import SmallObjects

        node1 = pool.client("node1")
        one_server = SmallObjects(cfg.node("node1"), node1._creds, "peers", connect=5, read=30)
        peer_keys = [f"small/{j[0].split('/', 1)[1]}" for j in jobs]

        def from_one_server() -> None:
            with ThreadPoolExecutor(16) as ex:
                list(ex.map(lambda k: one_server.get(k, None, None, "bench"), peer_keys))

        def threads() -> None:
            with ThreadPoolExecutor(16) as ex:
                list(ex.map(lambda j: stores[j[1]].get(j[0], j[2], None, "bench"), jobs))  # type: ignore[union-attr]

        async def gathered() -> None:
            gate = asyncio.Semaphore(32)

            async def one(j: tuple[str, str, str | None]) -> bytes:
                async with gate:
                    r = await obstore.get_async(stores[j[1]].store, j[0],  # type: ignore[union-attr]
                                                options={"version": j[2]} if j[2] else {})
                    return bytes(await r.bytes_async())

            await asyncio.gather(*(one(j) for j in jobs))

        for r in range(args.runs):
            measure("pooldrive get (files written, verified)", lambda r=r: child(
                [pd, "get", "small", str(work / f"out{r}")], env))
            tried = [measure(f"(rclone --transfers {t})", lambda r=r, t=t: child(
                [rclone, "copy", "--transfers", str(t), "node1:peers/small", str(work / f"rc{r}{t}")],
                peers.rclone_env)) for t in (8, 32)]
            rows.setdefault("rclone copy, one node (best of --transfers 8, 32)", []).append(min(tried))
            measure("obstore GETs only, 16 threads (the floor)", lambda: in_process(threads))
            measure("obstore GETs only, asyncio, 32 at once", lambda: in_process(lambda: asyncio.run(gathered())))
            measure("obstore GETs only, 16 threads, all from one server", lambda: in_process(from_one_server))
        pool.close()
    finally:
        dp.down(purge=True)
        shutil.rmtree(work, ignore_errors=True)

    med = {n: tuple(statistics.median(x[i] for x in v) for i in range(3)) for n, v in rows.items()}
    rc = med["rclone copy, one node (best of --transfers 8, 32)"][0]
    per_get_server = statistics.median(x[2] for x in rows["obstore GETs only, 16 threads (the floor)"]) / args.count
    per_get_one = statistics.median(x[2] for x in rows["obstore GETs only, 16 threads, all from one server"]
                                    ) / args.count
    lines = [f"# Many small downloads: where the time goes, {date.today().isoformat()}, {os.cpu_count()} cores", "",
             f"{args.count} x {args.kb} KB on a 4-node dev pool; medians of {args.runs} runs (min-max of the wall "
             "time in brackets). CPU seconds of the client process and of all MinIO servers.", "",
             "| | wall s | client CPU s | servers CPU s | files/s | vs rclone |", "|---|---|---|---|---|---|"]
    lines += table_rows(med, rows, args.count, rc)
    need = rc / 1.5
    budget = need * (os.cpu_count() or 2)
    floor = med["obstore GETs only, 16 threads (the floor)"]
    lines += ["", f"MinIO spends {per_get_server * 1000:.2f} ms of CPU per GET here "
              f"({per_get_server * args.count:.2f} s for the {args.count} files), on the same {os.cpu_count()} "
              f"cores as the client. 1.5x rclone means {need:.2f} s of wall: at most {budget:.2f} CPU-s for the "
              f"servers and the client together. The obstore floor (GETs alone, nothing written or verified) "
              f"used {floor[1] + floor[2]:.2f} CPU-s, "
              + ("more than that." if floor[1] + floor[2] > budget else "within it."),
              "", f"The same GETs all from one server cost the servers {per_get_one * 1000:.2f} ms each: four MinIO "
              "processes sharing these cores spend more per request than one kept busy (rclone reads from one "
              "node). On a real pool each node has its own machine."]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"small-get-floor-{date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps({"cores": os.cpu_count(), "count": args.count, "kb": args.kb,
                                                     "runs": {n: v for n, v in rows.items()}}, indent=2))
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
