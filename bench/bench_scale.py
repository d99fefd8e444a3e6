#!/usr/bin/env python3
"""The sync agent at real size: the real agent processes (``pooldrive sync run``) holding N files.

    .venv/bin/python bench/bench_scale.py [--sizes 10000 100000] [--edits 40] [--idle 120]
    .venv/bin/python bench/bench_scale.py --sizes 10000 --initial-runs 3   # the initial sync only, 3 times

For each size, on a fresh 4-node dev pool (R=2), two devices (each its own catalog and state):
* initial sync of N files of 1 KB by agent A (files/s) against `rclone sync` of the same tree to the same
  two nodes' worth of copies (two rclone runs in parallel, one per node), same run;
* device B's agent fetching the N files;
* agent A idle: CPU averaged over ``--idle`` s starting ``--idle-wait`` s after it reports idle, and RSS;
* local save -> R copies verified on the nodes (SHA-256 in each copy's metadata, read back with stat);
* save on device A -> the file on device B, through the two agents;
* a folder of 500 files renamed on device A -> in place under its new name on device B;
* agent restart with N files synced: time until it reports idle again;
* ``pooldrive sync now`` (a full refresh from every node, also what a start after days off runs): time
  until idle, and the agent's peak RSS during it (the peak is reset through /proc/PID/clear_refs).
Figures are printed side by side per size and written to bench/results/scale-<date>.json and .md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def wait(cond, timeout: float, what: str, every: float = 0.01) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - start


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int, field: str = "VmRSS:") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


AGENT_ARGS: list[str] = []  # more arguments for every agent (--agent-parallel)


class Device:
    """One machine: its own XDG dirs (catalog, state), one agent process for its folder."""

    def __init__(self, work: Path, name: str, cfg_file: Path, runtime: Path) -> None:
        self.name, self.cfg_file = name, cfg_file
        self.folder = work / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", XDG_RUNTIME_DIR=str(runtime))
        for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
            self.env[k] = str(work / f"{name}-{k.lower()}")
        self.proc: subprocess.Popen[bytes] | None = None
        from sync_agent.sync.ipc import AgentClient

        self.client = AgentClient(self.folder, timeout=30)

    def start(self) -> None:
        log = open(self.folder.parent / f"{self.name}-agent.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(self.cfg_file),
                                      "sync", "run", "--folder", str(self.folder), *AGENT_ARGS], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        try:
            wait(self.client.running, 120, f"agent {self.name}'s socket")
        except SystemExit:
            print((self.folder.parent / f"{self.name}-agent.log").read_text()[-3000:])
            raise

    def idle(self) -> bool:
        try:
            s = self.client.status()
        except Exception:
            return False
        return s["state"] == "idle" and s["last_sync"] > 0 and not s.get("transfers")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
        self.proc = None


def copies_on_nodes(clients: list, key: str, sha: str) -> int:  # type: ignore[type-arg]
    n = 0
    for c in clients:
        try:
            if c.stat_object("pooldrive", key).metadata.get("x-amz-meta-pd-sha256") == sha:
                n += 1
        except Exception:
            pass
    return n


def rclone_sync(cfg, tree: Path, creds) -> float | None:  # type: ignore[no-untyped-def]
    rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    if not rclone:
        return None
    env = dict(os.environ)
    for n in cfg.nodes:
        tag = n.name.upper()
        env.update({f"RCLONE_CONFIG_{tag}_TYPE": "s3", f"RCLONE_CONFIG_{tag}_PROVIDER": "Minio",
                    f"RCLONE_CONFIG_{tag}_ENDPOINT": n.url, f"RCLONE_CONFIG_{tag}_ACCESS_KEY_ID": creds.access_key,
                    f"RCLONE_CONFIG_{tag}_SECRET_ACCESS_KEY": creds.secret_key})
    start = time.monotonic()
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda n: subprocess.run([rclone, "sync", "--transfers", "16", "--checkers", "16", str(tree),
                                              f"{n}:rclone-bench/tree"], env=env, check=True, capture_output=True),
                    ["node3", "node4"]))
    return time.monotonic() - start


def start_pool(dp, work: Path):  # type: ignore[no-untyped-def]
    """A fresh 4-node dev pool (R=2) with its config file and a runtime dir for the agents' sockets."""
    from sync_agent import credentials, paths
    from sync_agent.pool import Pool

    cfg = dp.up(4, 2)
    with Pool(cfg, catalog_path=work / "init.sqlite3") as p:
        p.init_buckets()
    cfg_file = work / "pool.toml"
    shutil.copy(paths.pools_dir() / f"{cfg.name}.toml", cfg_file)
    runtime = work / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)  # where the agents' sockets are, for the status queries
    return cfg, cfg_file, credentials.credentials_for(cfg, "node1"), runtime


def initial_sync(n: int, a: Device, cfg, creds) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """N files of 1 KB synced by agent A from its start to idle, then rclone with the same tree."""
    out: dict[str, float] = {}
    for i in range(n):
        d = a.folder / f"d{i // 500:04d}"
        if i % 500 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}.txt").write_bytes(os.urandom(1024))
    print(f"[{n}] initial sync of {n} files of 1 KB by agent A ...", flush=True)
    start = time.monotonic()
    a.start()
    wait(a.idle, 4 * 3600, "agent A's initial sync", every=0.25)
    out["initial_s"] = time.monotonic() - start
    out["initial_files_s"] = n / out["initial_s"]
    theirs = rclone_sync(cfg, a.folder, creds)
    if theirs is not None:
        out["rclone_s"] = theirs
        out["rclone_files_s"] = n / theirs
        out["initial_vs_rclone"] = out["initial_files_s"] / out["rclone_files_s"]
    print(f"[{n}]   {out['initial_files_s']:.0f} files/s; rclone {out.get('rclone_files_s', 0):.0f} files/s",
          flush=True)
    return out


def initial_runs(n: int, runs: int, work: Path) -> dict[str, float]:
    """The initial sync against rclone ``runs`` times, each on a fresh pool: the medians and every ratio."""
    from sync_agent.devpool import DevPool

    ratios, ours, theirs = [], [], []
    for k in range(runs):
        dp = DevPool()
        a = None
        try:
            cfg, cfg_file, creds, runtime = start_pool(dp, work / f"run{k}")
            a = Device(work / f"run{k}", "A", cfg_file, runtime)
            got = initial_sync(n, a, cfg, creds)
            ours.append(got["initial_files_s"])
            theirs.append(got.get("rclone_files_s", 0.0))
            ratios.append(got.get("initial_vs_rclone", 0.0))
        finally:
            if a is not None:
                a.stop()
            dp.down(purge=True)
    med = sorted(ratios)[len(ratios) // 2]
    print(f"[{n}] initial sync / rclone over {runs} runs: {', '.join(f'{r:.2f}' for r in ratios)} "
          f"(median {med:.2f})", flush=True)
    return {"files": n, "runs": runs, "ratios": ratios, "initial_files_s": sorted(ours)[runs // 2],
            "rclone_files_s": sorted(theirs)[runs // 2], "initial_vs_rclone": med,
            "initial_vs_rclone_min": min(ratios), "initial_vs_rclone_max": max(ratios)}


def settled(d: Device, quiet: float = 3.0) -> bool:
    """No pass has ended for ``quiet`` seconds."""
    return time.time() - d.client.status()["last_sync"] >= quiet


def folder_move(a: Device, b: Device, n: int) -> dict[str, float]:
    """A folder of 500 files renamed on device A: the time until device B holds every file under the new
    name and none under the old one, and how many of them went through B's trash (a rename on the pool is a
    rename there, not a trash and a download)."""
    src = a.folder / "d0003"
    if n < 2000 or not src.is_dir():
        return {}
    names = sorted(p.name for p in src.iterdir())
    there = b.folder / "moved" / "d0003 renamed"
    (a.folder / "moved").mkdir()
    start = time.monotonic()
    src.rename(a.folder / "moved" / "d0003 renamed")
    wait(lambda: not (b.folder / "d0003").exists() and all((there / nm).exists() for nm in names), 1800,
         "the moved folder on device B", every=0.1)
    took = time.monotonic() - start
    trashed = sum(1 for _ in (b.folder / ".pooldrive" / "trash").rglob("*.txt"))
    print(f"[{n}]   a 500-file folder moved on A: in place on B in {took:.1f} s, {trashed} file(s) through B's trash",
          flush=True)
    return {"move_500_s": took, "move_500_trashed": trashed}


def one_size(n: int, args: argparse.Namespace, work: Path) -> dict[str, float]:
    from minio import Minio

    from sync_agent.devpool import DevPool

    out: dict[str, float] = {"files": n}
    dp = DevPool()
    devices: list[Device] = []
    try:
        cfg, cfg_file, creds, runtime = start_pool(dp, work)
        clients = [Minio(nd.endpoint, creds.access_key, creds.secret_key, secure=False) for nd in cfg.nodes]
        a, b = Device(work, "A", cfg_file, runtime), Device(work, "B", cfg_file, runtime)
        devices += [a, b]
        out.update(initial_sync(n, a, cfg, creds))
        start = time.monotonic()
        b.start()
        wait(lambda: b.idle() and sum(1 for _ in b.folder.rglob("*.txt")) >= n, 4 * 3600, "device B's download",
             every=0.5)
        out["download_files_s"] = n / (time.monotonic() - start)
        print(f"[{n}] idle: waiting {args.idle_wait:.0f} s, then measuring {args.idle:.0f} s ...", flush=True)
        wait(a.idle, 600, "agent A idle")
        time.sleep(args.idle_wait)
        assert a.proc is not None
        c0, t0 = proc_cpu(a.proc.pid), time.monotonic()
        for w in range(args.idle_windows):  # the idle period in 30 s windows, each printed: how much it swings
            c1, t1 = proc_cpu(a.proc.pid), time.monotonic()
            time.sleep(30)
            print(f"[{n}]   idle window {w + 1}: {(proc_cpu(a.proc.pid) - c1) / (time.monotonic() - t1) * 100:.2f} %",
                  flush=True)
        if not args.idle_windows:
            time.sleep(args.idle)
        out["idle_cpu_pct"] = (proc_cpu(a.proc.pid) - c0) / (time.monotonic() - t0) * 100
        out["rss_mb"] = proc_rss_mb(a.proc.pid)
        lat = []
        for i in range(args.edits):
            key = f"d0000/f{i % 500:06d}.txt"
            body = f"edit {i} at size {n}".encode() * 20
            sha = hashlib.sha256(body).hexdigest()
            start = time.monotonic()
            (a.folder / key).write_bytes(body)
            wait(lambda k=key, s=sha: copies_on_nodes(clients, k, s) >= cfg.replicas, 120, "R verified copies",
                 every=0.02)
            lat.append(time.monotonic() - start)
        out["save_p50_s"], out["save_p95_s"] = pct(lat, .5), pct(lat, .95)
        lat = []
        for i in range(args.edits):
            key = f"d0001/f{500 + i:06d}.txt"
            body = f"device edit {i}".encode()
            start = time.monotonic()
            (a.folder / key).write_bytes(body)
            target = b.folder / key
            wait(lambda t=target, bd=body: t.exists() and t.read_bytes() == bd, 120, "the edit on device B", every=0.02)
            lat.append(time.monotonic() - start)
        out["a_to_b_p50_s"], out["a_to_b_p95_s"] = pct(lat, .5), pct(lat, .95)
        out.update(folder_move(a, b, n))
        a.stop()
        start = time.monotonic()
        a.start()
        wait(a.idle, 1800, "agent A idle after the restart", every=0.1)
        out["restart_idle_s"] = time.monotonic() - start
        assert a.proc is not None
        # quiet first: a pass still ending (after the restart) met the wait below at once (0.1 s at 100,000 files)
        wait(lambda: a.idle() and settled(a), 600, "agent A quiet before 'sync now'", every=0.5)
        last = a.client.status()["last_sync"]
        Path(f"/proc/{a.proc.pid}/clear_refs").write_text("5")  # the peak from here on
        start = time.monotonic()
        a.client.sync_now()
        wait(lambda: a.idle() and a.client.status()["last_sync"] > last, 1800, "agent A's full refresh", every=0.1)
        out["refresh_s"] = time.monotonic() - start
        out["refresh_peak_mb"] = proc_rss_mb(a.proc.pid, "VmHWM:")
        out["refresh_after_mb"] = proc_rss_mb(a.proc.pid)
        print(f"[{n}] {json.dumps({k: round(v, 3) for k, v in out.items()})}", flush=True)
        a.stop()
        b.stop()
    finally:
        for d in devices:  # never leave an agent behind (an orphan would skew the next run)
            if d.proc is not None and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        dp.down(purge=True)
    return out


ROWS = [
    ("initial sync, files/s", "initial_files_s", "{:.0f}"),
    ("rclone sync, same tree, files/s", "rclone_files_s", "{:.0f}"),
    ("initial sync / rclone (target >= 1)", "initial_vs_rclone", "{:.2f}"),
    ("initial sync / rclone, lowest run", "initial_vs_rclone_min", "{:.2f}"),
    ("initial sync / rclone, highest run", "initial_vs_rclone_max", "{:.2f}"),
    ("device B download, files/s", "download_files_s", "{:.0f}"),
    ("idle CPU, % of a core (target < 0.5)", "idle_cpu_pct", "{:.2f}"),
    ("RSS, MB (target < 200)", "rss_mb", "{:.0f}"),
    ("save -> R copies p50, s", "save_p50_s", "{:.2f}"),
    ("save -> R copies p95, s (target < 1)", "save_p95_s", "{:.2f}"),
    ("A -> B p50, s", "a_to_b_p50_s", "{:.2f}"),
    ("A -> B p95, s (target < 3)", "a_to_b_p95_s", "{:.2f}"),
    ("500-file folder moved on A -> in place on B, s", "move_500_s", "{:.1f}"),
    ("... of those, through B's trash", "move_500_trashed", "{:.0f}"),
    ("restart -> idle, s (target < 30)", "restart_idle_s", "{:.1f}"),
    ("sync now (full refresh) -> idle, s", "refresh_s", "{:.1f}"),
    ("RSS peak during it, MB", "refresh_peak_mb", "{:.0f}"),
    ("RSS after it, MB", "refresh_after_mb", "{:.0f}"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--edits", type=int, default=40)
    ap.add_argument("--idle", type=float, default=120.0)
    ap.add_argument("--idle-wait", type=float, default=60.0)
    ap.add_argument("--idle-windows", type=int, default=0,
                    help="measure the idle period as this many 30 s windows, each printed (instead of --idle)")
    ap.add_argument("--initial-runs", type=int, default=0,
                    help="only the initial sync against rclone, this many times per size (medians reported)")
    ap.add_argument("--agent-parallel", type=int, default=0,
                    help="files each agent transfers at once (`sync run --parallel`; 0: the agent's default)")
    args = ap.parse_args()
    if args.agent_parallel:
        AGENT_ARGS.extend(["--parallel", str(args.agent_parallel)])
    results = []
    for n in args.sizes:
        work = Path(tempfile.mkdtemp(prefix=f"pooldrive-bench-scale-{n}-"))
        old = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")}
        for k in old:
            os.environ[k] = str(work / f"bench-{k.lower()}")
        try:
            results.append(initial_runs(n, args.initial_runs, work) if args.initial_runs
                           else one_size(n, args, work))
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            shutil.rmtree(work, ignore_errors=True)
    head = "| | " + " | ".join(f"{int(r['files']):,} files" for r in results) + " |"
    lines = [head, "|---" * (len(results) + 1) + "|"]
    for label, key, fmt in (row for row in ROWS if any(row[1] in r for r in results)):
        lines.append(f"| {label} | " + " | ".join(fmt.format(r[key]) if key in r else "-" for r in results) + " |")
    table = "\n".join(lines)
    print(table)
    res = ROOT / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d")
    name = f"scale-initial-{stamp}" if args.initial_runs else f"scale-{stamp}"
    what = f", initial sync only, median of {args.initial_runs} runs" if args.initial_runs else ""
    (res / f"{name}.json").write_text(json.dumps(results, indent=2))
    (res / f"{name}.md").write_text(f"# bench_scale, {stamp}, 4-node dev pool on 2 cores{what}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
