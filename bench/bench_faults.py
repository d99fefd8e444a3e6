#!/usr/bin/env python3
"""A node that freezes (SIGSTOP) while people work: what it costs them, against the same work with every
node answering, in the same run.

    .venv/bin/python bench/bench_faults.py [--compare REV] [--runs 3]

Each scenario starts a fresh 4-node dev pool (R=2) and runs once with no fault (the peer) and once with a
node frozen and not yet known to be frozen:
* save: the real agent holds 200 files; 12 new files and 6 edits are saved at once; seconds until each has
  R copies verified on the live nodes (the worst file counts);
* device to device: two real agents; a file saved on A, seconds until it is in B's folder, node1 (where
  the change journal is written first) frozen just before;
* many small downloads: `get_tree` of 300 files of 4 KB, one holder of about half of them frozen;
* a large download: `get_file` of 250 MB read from both holders at once, one frozen 0.3 s in.
``--compare REV`` runs the same scenarios on that commit too (a git worktree), for before/after figures.
Each figure is the median of ``--runs``. Written to bench/results/faults-<date>.json and .md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("save", "device_to_device", "small_downloads", "large_download")
LABELS = {"save": "save -> R copies, worst of 18 files, s", "device_to_device": "save on A -> on B, s",
          "small_downloads": "get_tree of 300 x 4 KB, s", "large_download": "get_file of 250 MB, s"}


def _wait(cond, timeout: float, every: float = 0.05) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise TimeoutError("gave up waiting")
        time.sleep(every)
    return time.monotonic() - start


class _Agent:
    """One device's agent, run from ``root`` (the code under test)."""

    def __init__(self, root: Path, work: Path, name: str, cfg_file: Path, runtime: Path) -> None:
        from sync_agent.sync.ipc import AgentClient

        self.root, self.folder = root, work / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime),
                        **{k: str(work / f"{name}-{k.lower()}") for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME",
                                                                          "XDG_DATA_HOME")})
        self.cfg_file = cfg_file
        self.client = AgentClient(self.folder, timeout=30)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(self.cfg_file),
                                      "sync", "run", "--folder", str(self.folder)], cwd=self.root, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(self.client.running, 120)
        _wait(self.idle, 300, every=0.2)

    def idle(self) -> bool:
        try:
            s = self.client.status()
        except Exception:
            return False
        return s["state"] == "idle" and s["last_sync"] > 0 and not s.get("transfers")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)


def _pool(work: Path):  # type: ignore[no-untyped-def]
    from sync_agent import credentials, paths
    from sync_agent.devpool import DevPool
    from sync_agent.pool import Pool

    for k in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        os.environ[k] = str(work / f"dp-{k.lower()}")
    dp = DevPool()
    cfg = dp.up(4, 2)
    with Pool(cfg, catalog_path=work / "init.sqlite3") as p:
        p.init_buckets()
    cfg_file = work / "pool.toml"
    shutil.copy(paths.pools_dir() / f"{cfg.name}.toml", cfg_file)
    runtime = work / "runtime"
    runtime.mkdir(mode=0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    return dp, cfg, cfg_file, runtime, credentials.credentials_for(cfg, "node1")


def save(root: Path, work: Path, frozen: bool) -> float:
    import urllib3
    from minio import Minio

    dp, cfg, cfg_file, runtime, creds = _pool(work)
    try:
        a = _Agent(root, work, "A", cfg_file, runtime)
        for i in range(200):
            p = a.folder / f"d{i // 100}" / f"f{i:04d}.txt"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(os.urandom(2000))
        a.start()
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=0.5, read=0.5), retries=False)
        live = [Minio(n.endpoint, creds.access_key, creds.secret_key, secure=False, http_client=http)
                for n in cfg.nodes if not (frozen and n.name == "node2")]
        if frozen:
            dp.freeze("node2")
        want = {}
        for i in range(18):
            key = f"new/n{i:03d}.txt" if i < 12 else f"d0/f{i:04d}.txt"
            body = f"save {i} {time.time()}".encode() * 30
            (a.folder / key).parent.mkdir(parents=True, exist_ok=True)
            (a.folder / key).write_bytes(body)
            want[key] = hashlib.sha256(body).hexdigest()

        def copies(key: str, sha: str) -> int:
            n = 0
            for c in live:
                try:
                    n += c.stat_object(cfg.bucket, key).metadata.get("x-amz-meta-pd-sha256") == sha
                except Exception:
                    pass
            return n

        start = time.monotonic()
        pending = dict(want)
        while pending:
            if time.monotonic() - start > 120:
                raise TimeoutError(f"{len(pending)} saves never reached their copies")
            for key, sha in list(pending.items()):
                if copies(key, sha) >= 2:
                    del pending[key]
            time.sleep(0.05)
        took = time.monotonic() - start
        if frozen:
            dp.start("node2")
        a.stop()
        return took
    finally:
        dp.down(purge=True)


def device_to_device(root: Path, work: Path, frozen: bool) -> float:
    dp, _, cfg_file, runtime, _ = _pool(work)
    try:
        a, b = _Agent(root, work, "A", cfg_file, runtime), _Agent(root, work, "B", cfg_file, runtime)
        (a.folder / "seed.txt").write_bytes(b"seed")
        a.start()
        b.start()
        _wait(lambda: (b.folder / "seed.txt").exists(), 60)
        time.sleep(3)
        if frozen:
            dp.freeze("node1")
        body = f"from A {time.time()}".encode()
        (a.folder / "moved over.txt").write_bytes(body)
        target = b.folder / "moved over.txt"

        def arrived() -> bool:
            try:
                return target.read_bytes() == body
            except OSError:
                return False

        took = _wait(arrived, 120)
        if frozen:
            dp.start("node1")
        a.stop()
        b.stop()
        return took
    finally:
        dp.down(purge=True)


def small_downloads(root: Path, work: Path, frozen: bool) -> float:
    from sync_agent import batch
    from sync_agent.pool import Pool

    dp, cfg, _, _, _ = _pool(work)
    try:
        src = work / "src"
        for i in range(300):
            p = src / f"d{i // 100}" / f"f{i:04d}.bin"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(os.urandom(4096))
        with Pool(cfg, catalog_path=work / "c.sqlite3") as pool:
            assert batch.put_tree(pool, src, "t").ok
        with Pool(cfg, catalog_path=work / "c.sqlite3") as pool:
            pool.refresh_health(max_age=0)
            if frozen:
                dp.freeze("node2")
            start = time.monotonic()
            result = batch.get_tree(pool, "t", work / "out")
            took = time.monotonic() - start
            assert result.ok and len(result.done) == 300
            if frozen:
                dp.start("node2")
        return took
    finally:
        dp.down(purge=True)


def large_download(root: Path, work: Path, frozen: bool) -> float:
    from sync_agent.pool import Pool

    dp, cfg, _, _, _ = _pool(work)
    try:
        src = work / "big.bin"
        with open(src, "wb") as f:
            for _ in range(250):
                f.write(os.urandom(1 << 20))
        with Pool(cfg, catalog_path=work / "c.sqlite3") as pool:
            info = pool.put_file(src, "big.bin")
            pool.refresh_health(max_age=0)
            if frozen:
                threading.Timer(0.3, dp.freeze, (info.replicas[0],)).start()
            start = time.monotonic()
            pool.get_file("big.bin", work / "out.bin")
            took = time.monotonic() - start
            if frozen:
                dp.start(info.replicas[0])
        if hashlib.sha256((work / "out.bin").read_bytes()).hexdigest() != info.sha256:
            raise AssertionError("the download does not match")
        return took
    finally:
        dp.down(purge=True)


def _one(root: Path, scenario: str, frozen: bool) -> float:
    """Runs in a child process whose code is ``root``'s (see main)."""
    work = Path(tempfile.mkdtemp(prefix=f"faults-{scenario}-"))
    try:
        return globals()[scenario](root, work, frozen)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(root: Path, scenario: str, frozen: bool) -> float:
    """One measurement, in a fresh process that imports the code under ``root``."""
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2]); "
            "import bench_faults as b; from pathlib import Path; "
            "print(json.dumps(b._one(Path(sys.argv[1]), sys.argv[3], sys.argv[4] == '1')))")
    out = subprocess.run([sys.executable, "-c", code, str(root), str(ROOT / "bench"), scenario, "1" if frozen else "0"],
                         cwd=root, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{scenario} ({'frozen' if frozen else 'no fault'}) on {root} failed:\n{out.stderr[-3000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compare", help="a commit to measure too (before/after)")
    ap.add_argument("--only", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    args = ap.parse_args()
    roots = {"this code": ROOT}
    worktree = None
    if args.compare:
        worktree = Path(tempfile.mkdtemp(prefix="faults-old-"))
        subprocess.run(["git", "worktree", "add", "-f", "--detach", str(worktree), args.compare], cwd=ROOT, check=True,
                       capture_output=True)
        roots[args.compare] = worktree
    rows: dict[str, dict[str, list[float]]] = {}
    try:
        for scenario in args.only:
            for label, root in roots.items():
                for frozen in (False, True):
                    key = f"{label}, {'node frozen' if frozen else 'no fault'}"
                    for _ in range(args.runs):
                        took = _run(root, scenario, frozen)
                        rows.setdefault(scenario, {}).setdefault(key, []).append(took)
                        print(f"{scenario:18} {key:32} {took:6.2f} s", flush=True)
    finally:
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True)
    today = date.today().isoformat()
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"faults-{today}.json").write_text(json.dumps(rows, indent=2))
    columns = [f"{label}, {f}" for label in roots for f in ("no fault", "node frozen")]
    lines = [f"# A node frozen while people work, {today}, {os.cpu_count()} cores", "",
             f"Median of {args.runs} runs (min-max), seconds; the ratio is frozen / no fault of the same code.", "",
             "| | " + " | ".join(columns) + " | " + " | ".join(f"ratio ({label})" for label in roots) + " |",
             "|---|" + "---|" * (len(columns) + len(roots))]
    for scenario, by in rows.items():
        cells = [f"{statistics.median(by[c]):.2f} ({min(by[c]):.2f}-{max(by[c]):.2f})" for c in columns]
        ratios = [f"{statistics.median(by[f'{label}, node frozen']) / statistics.median(by[f'{label}, no fault']):.1f}x"
                  for label in roots]
        lines.append(f"| {LABELS[scenario]} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    (out / f"faults-{today}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
