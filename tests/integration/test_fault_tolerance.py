"""Issue 4: repair, surplus cleanup, rebalance, drain, scrub and resumability on real MinIO nodes.

Copies are counted by asking the nodes directly (tests.nodepool), never the catalog.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sync_agent import repair
from sync_agent.errors import RefusedError
from sync_agent.monitor import HealthMonitor
from sync_agent.pool import Pool
from sync_agent.replica_plan import RepairMode
from tests.nodepool import TEST_TIMEOUTS, NodePool

ROOT = Path(__file__).resolve().parents[2]


def _fill(pool: Pool, n: int, prefix: str = "f") -> list[str]:
    keys = [f"{prefix}/{i:04d}.txt" for i in range(n)]
    for k in keys:
        pool.put_bytes(k, f"content of {k}".encode() * 3)
    return keys


def _copies(nodes: NodePool, bucket: str, keys: list[str]) -> dict[str, list[str]]:
    """key -> live nodes whose latest version of it is a live object, from one listing per node."""
    out: dict[str, list[str]] = {k: [] for k in keys}
    for n in nodes.nodes:
        if not n.running() or n.frozen():
            continue
        for o in nodes.raw_client(n.name).list_objects(bucket, recursive=True):
            if o.object_name in out:
                out[o.object_name].append(n.name)
    return out


def _wait_for_two_copies(nodes: NodePool, bucket: str, keys: list[str], timeout: float = 60) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        copies = _copies(nodes, bucket, keys)
        if all(len(v) == 2 for v in copies.values()) or time.monotonic() > deadline:
            return copies
        time.sleep(0.5)


def _orphans(nodes: NodePool, pool: Pool) -> list[tuple[str, str, str]]:
    """Object versions on the nodes (with our metadata) that the catalog does not record."""
    known = set()
    for f in pool.catalog.walk():
        for v in pool.versions(f.path):
            known |= {(r.node, v.key, r.version_id) for r in v.replicas}
    out = []
    for n in nodes.nodes:
        if not n.running():
            continue
        for o in pool.client(n.name).list("", versions=True):
            if o.key.startswith(".pooldrive/"):  # the change journal's markers, not file data
                continue
            if not o.is_delete_marker and (n.name, o.key, o.version_id) not in known:
                out.append((n.name, o.key, o.version_id))
    return out


def test_node_loss_heals_and_surplus_is_cleaned_on_return(fault_nodes: NodePool, tmp_path: Path) -> None:
    pool = fault_nodes.open_pool("heal", tmp_path / "c.sqlite3")
    keys = _fill(pool, 300)
    assert all(len(v) == 2 for v in _copies(fault_nodes, pool.cfg.bucket, keys).values())
    victim = "node2"
    on_victim = [k for k, v in _copies(fault_nodes, pool.cfg.bucket, keys).items() if victim in v]
    fault_nodes[victim].kill()
    t0 = time.monotonic()
    monitor = HealthMonitor(pool, interval=0.3).start()
    loop = repair.RepairLoop(pool, grace=1.5, interval=0.5, parallel=4).start()
    try:
        for k in keys:  # every file stays readable during the outage
            assert pool.read_bytes(k) == f"content of {k}".encode() * 3
        copies = _wait_for_two_copies(fault_nodes, pool.cfg.bucket, keys)
        healed = time.monotonic() - t0
        assert all(len(v) == 2 and victim not in v for v in copies.values()), "not healed"
        print(f"\n{len(on_victim)} files lost a copy; healed in {healed:.1f} s (grace 1.5 s)")
        fault_nodes[victim].start()
        copies = _wait_for_two_copies(fault_nodes, pool.cfg.bucket, keys)
        assert Counter(len(v) for v in copies.values()) == {2: 300}, "surplus copies left after the node returned"
    finally:
        loop.stop()
        monitor.stop()
    assert _orphans(fault_nodes, pool) == []
    pool.close()


def test_manual_repair_counts_down_nodes_as_lost(fault_nodes: NodePool, tmp_path: Path) -> None:
    pool = fault_nodes.open_pool("manual", tmp_path / "c.sqlite3")
    keys = _fill(pool, 40)
    fault_nodes["node3"].kill()
    dry = repair.run(pool, RepairMode.REPAIR, lost={"node3"}, dry_run=True)
    affected = sum(c["in"] for c in dry.planned.values())
    assert affected == sum("node3" in v for v in pool.catalog.walk() for v in [v.replicas])
    report = repair.run(pool, RepairMode.REPAIR, lost={"node3"})
    assert report.copies_made == affected and not report.errors
    assert all(len(v) == 2 for v in _copies(fault_nodes, pool.cfg.bucket, keys).values())
    pool.close()


def test_added_node_takes_about_a_fifth(fault_nodes: NodePool, tmp_path: Path) -> None:
    pool = fault_nodes.open_pool("grow", tmp_path / "c.sqlite3")
    keys = _fill(pool, 300)
    pool.close()
    fault_nodes.add_node("node5")
    pool = fault_nodes.open_pool("grow", tmp_path / "c.sqlite3")
    before = _copies(fault_nodes, pool.cfg.bucket, keys)
    dry = repair.run(pool, RepairMode.REBALANCE, dry_run=True)
    report = repair.run(pool, RepairMode.REBALANCE)
    after = _copies(fault_nodes, pool.cfg.bucket, keys)
    moved_files = sum(1 for k in keys if set(after[k]) != set(before[k]))
    share = report.copies_made / (2 * len(keys))
    print(f"\nrebalance after adding node5: {report.copies_made} of {2 * len(keys)} copies moved "
          f"({share:.1%}), {moved_files} files touched; dry run planned {dry.planned}")
    assert 0.13 < share < 0.27
    assert all(len(v) == 2 for v in after.values())
    assert all(set(after[k]) - set(before[k]) <= {"node5"} for k in keys)  # nothing else moved
    assert report.copies_made == report.copies_removed == dry.planned["node5"]["in"]
    assert repair.run(pool, RepairMode.REBALANCE, dry_run=True).planned == {}
    pool.close()


def test_drain_then_remove_and_sole_copy_refusal(fault_nodes: NodePool, tmp_path: Path) -> None:
    pool = fault_nodes.open_pool("drain", tmp_path / "c.sqlite3")
    keys = _fill(pool, 60)
    pool.put_bytes("f/0000.txt", b"second version")  # history must move too
    report = repair.drain(pool, "node1")
    assert not report.errors
    assert pool.catalog.replicas_on_node("node1") == 0
    left = [o for o in pool.client("node1").list("", versions=True) if not o.key.startswith(".pooldrive/")]
    assert all(o.is_delete_marker for o in left), left  # no file data left on the drained node
    assert all(len(v) == 2 and "node1" not in v for v in _copies(fault_nodes, pool.cfg.bucket, keys).values())
    assert pool.read_bytes("f/0000.txt") == b"second version"
    assert [v.number for v in pool.versions("f/0000.txt")] == [2, 1]
    # a pool at R=1: a node holding the only copy of something cannot be removed
    from sync_agent import config
    from sync_agent.cli.main import main

    solo = fault_nodes.config("drain", replicas=1, name="solo")
    config.save_pool(solo)
    p1 = Pool(solo, timeouts=TEST_TIMEOUTS)
    p1.put_bytes("only/one.txt", b"1")
    holder = p1.stat("only/one.txt").replicas[0]
    p1.close()
    assert main(["--pool", "solo", "pool", "remove-node", holder]) == RefusedError.exit_code
    assert holder in [n.name for n in config.load_pool("solo").nodes]
    pool.close()


def test_scrub_finds_and_replaces_a_corrupt_copy(fault_nodes: NodePool, tmp_path: Path) -> None:
    pool = fault_nodes.open_pool("scrub", tmp_path / "c.sqlite3")
    pool.put_bytes("big.bin", os.urandom(1024 * 1024))
    _fill(pool, 10)
    victim = pool.stat("big.bin").replicas[0]
    part = sorted((fault_nodes[victim].data_dir / "scrub" / "big.bin").rglob("part.*"))[0]
    data = bytearray(part.read_bytes())
    data[1000] ^= 0xFF
    part.write_bytes(bytes(data))
    report = repair.scrub(pool)
    assert report.corrupt == [("big.bin", victim)]
    assert report.copies_made == 1
    copies = _copies(fault_nodes, pool.cfg.bucket, ["big.bin"])["big.bin"]
    assert len(copies) == 2 and victim not in pool.stat("big.bin").replicas
    assert repair.scrub(pool).corrupt == []
    pool.close()


REPAIRER = """
import sys
from pathlib import Path
from sync_agent.config import parse_pool
from sync_agent.pool import Pool
from sync_agent import repair
from sync_agent.replica_plan import RepairMode
from sync_agent.transfer import RateLimiter
from tests.nodepool import TEST_TIMEOUTS
pool = Pool(parse_pool(Path(sys.argv[1]).read_text()), catalog_path=Path(sys.argv[2]), timeouts=TEST_TIMEOUTS)
import threading
done = [0]
lock = threading.Lock()  # on_file comes from several threads
def on_file(w, err):
    with lock:
        done[0] += 1
        if done[0] == 20:
            print("HALFWAY", flush=True)
repair.run(pool, RepairMode.REPAIR, lost={sys.argv[3]}, parallel=2, limiter=RateLimiter(2e6), on_file=on_file)
print("DONE", flush=True)
"""


def test_repair_killed_halfway_resumes_without_loss_or_orphans(fault_nodes: NodePool, tmp_path: Path) -> None:
    pool = fault_nodes.open_pool("resume", tmp_path / "c.sqlite3")
    keys = [f"r/{i:03d}.bin" for i in range(80)]
    for k in keys:
        pool.put_bytes(k, os.urandom(64 * 1024))
    cfg = tmp_path / "pool.toml"
    cfg.write_text(pool.cfg.to_toml())
    victim = "node4"
    fault_nodes[victim].kill()
    pool.close()
    proc = subprocess.Popen([sys.executable, "-c", REPAIRER, str(cfg), str(tmp_path / "c.sqlite3"), victim],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "HALFWAY"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    pool = fault_nodes.open_pool("resume", tmp_path / "c.sqlite3", init=False)
    pool.refresh_health(max_age=0)
    report = repair.run(pool, RepairMode.REPAIR, lost={victim})
    assert not report.errors and not report.unrecoverable
    copies = _copies(fault_nodes, pool.cfg.bucket, keys)
    assert all(len(v) == 2 and victim not in v for v in copies.values()), copies
    assert _orphans(fault_nodes, pool) == []
    assert [i for i in pool.catalog.intents() if i.kind in ("replicate", "trim")] == []
    pool.close()
