"""Issue 3: placement on real nodes, verified transfers, failover, quorum, corruption, rebuild, names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import pytest

from sync_agent import rebuild, resolve
from sync_agent.catalog.models import ReplicaState
from sync_agent.errors import InvalidPathError, QuorumError
from sync_agent.placement import placement
from sync_agent.pool import Pool
from sync_agent.transfer import TransferControl
from tests.nodepool import TEST_TIMEOUTS, NodePool


def _file(path: Path, size: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(min(size, 1 << 20)) if seed == 0 else bytes([seed % 256]) * min(size, 1 << 20)
    with open(path, "wb") as f:
        left = size
        while left:
            f.write(block[:left])
            left -= min(left, len(block))
    return path


def test_replicas_are_where_the_scheduler_says(pool: Pool, shared_nodes: NodePool, tmp_path: Path) -> None:
    for i in range(12):
        key = f"spread/file-{i}.bin"
        info = pool.put_file(_file(tmp_path / f"f{i}", 1000 + i), key)
        expected = sorted(placement(key, pool.specs(), 2))
        assert sorted(info.replicas) == expected
        assert sorted(shared_nodes.holders(pool.cfg.bucket, key)) == expected  # asked the nodes themselves


def test_multipart_upload_and_verified_download(pool: Pool, tmp_path: Path) -> None:
    src = _file(tmp_path / "big.bin", 40 * 1024 * 1024 + 123)
    info = pool.put_file(src, "big/big.bin")
    out = pool.get_file("big/big.bin", tmp_path / "out.bin")
    assert out.stat().st_size == src.stat().st_size
    assert info.sha256 == __import__("hashlib").sha256(out.read_bytes()).hexdigest()
    assert not list(tmp_path.glob(".*pooldrive-part"))


def test_unchanged_upload_makes_no_new_version(pool: Pool, tmp_path: Path) -> None:
    src = _file(tmp_path / "a", 100)
    v1 = pool.put_file(src, "same")
    v2 = pool.put_file(src, "same")
    assert v1.version == v2.version == 1


def test_read_survives_kill_of_the_preferred_node_mid_download(fault_pool: Pool, fault_nodes: NodePool,
                                                               tmp_path: Path) -> None:
    src = _file(tmp_path / "big.bin", 48 * 1024 * 1024)
    info = fault_pool.put_file(src, "movie.bin")
    first = fault_pool.health.views(info.replicas)
    from sync_agent.placement import read_order

    preferred = read_order(first)[0]
    killed = []

    def on_progress(done: int, total: int) -> None:
        if done > 8 * 1024 * 1024 and not killed:
            fault_nodes[preferred].kill()
            killed.append(preferred)

    out = fault_pool.get_file("movie.bin", tmp_path / "movie.bin", control=TransferControl(on_progress=on_progress))
    assert killed == [preferred]
    assert out.read_bytes() == src.read_bytes()


def test_write_with_a_frozen_node_finishes_at_quorum_or_fails_cleanly(fault_nodes: NodePool, tmp_path: Path) -> None:
    pool = fault_nodes.open_pool("frozen", tmp_path / "c.sqlite3")
    key = "during-freeze.bin"
    target = placement(key, pool.specs(), 2)
    fault_nodes[target[0]].freeze()
    try:
        start = time.monotonic()
        try:
            info = pool.put_file(_file(tmp_path / "x", 3 * 1024 * 1024), key)
        except QuorumError:
            assert pool.catalog.get(key) is None
        else:
            assert len(info.replicas) >= pool.cfg.quorum and target[0] not in info.replicas
            live = fault_nodes.holders(pool.cfg.bucket, key)
            assert sorted(live) == sorted(info.replicas)
        elapsed = time.monotonic() - start
        assert elapsed < 3 * (TEST_TIMEOUTS.read + TEST_TIMEOUTS.connect) + 5, elapsed
    finally:
        fault_nodes[target[0]].thaw()
        pool.close()


def test_quorum_not_reached_leaves_nothing(fault_nodes: NodePool, tmp_path: Path) -> None:
    pool = fault_nodes.open_pool("quorum", tmp_path / "c.sqlite3", replicas=3)
    fault_nodes["node1"].kill()
    fault_nodes["node2"].kill()
    with pytest.raises(QuorumError) as e:
        pool.put_file(_file(tmp_path / "x", 1000), "needs-three.txt")
    assert "node1" in e.value.message and "node2" in e.value.message
    assert pool.catalog.get("needs-three.txt") is None
    assert fault_nodes.holders(pool.cfg.bucket, "needs-three.txt") == []
    assert pool.catalog.intents() == []
    pool.close()


def test_lower_quorum_accepts_and_remembers_missing_copies(fault_nodes: NodePool, tmp_path: Path) -> None:
    pool = fault_nodes.open_pool("quorum-one", tmp_path / "c.sqlite3", replicas=3, write_quorum=2)
    fault_nodes["node1"].kill()
    fault_nodes["node2"].kill()
    info = pool.put_file(_file(tmp_path / "x", 1000), "two-of-three.txt")
    assert len(info.replicas) == 2
    pool.close()


def _minio_part_files(node_dir: Path, bucket: str, key: str) -> list[Path]:
    return sorted((node_dir / bucket / key).rglob("part.*"))


def test_corrupt_replica_is_detected_and_served_from_the_other(pool: Pool, shared_nodes: NodePool,
                                                              tmp_path: Path) -> None:
    src = _file(tmp_path / "doc.bin", 2 * 1024 * 1024)
    info = pool.put_file(src, "corrupt/doc.bin")
    from sync_agent.placement import read_order

    victim = read_order(pool.health.views(info.replicas))[0]
    parts = _minio_part_files(shared_nodes[victim].data_dir, pool.cfg.bucket, "corrupt/doc.bin")
    assert parts, "MinIO stores objects above 128 KiB in part files"
    with open(parts[0], "r+b") as f:
        f.seek(4096)
        b = f.read(16)
        f.seek(4096)
        f.write(bytes(x ^ 0xFF for x in b))
    out = pool.get_file("corrupt/doc.bin", tmp_path / "out.bin")
    assert out.read_bytes() == src.read_bytes()
    states = {r.node: r.state for r in pool.stat("corrupt/doc.bin").current.replicas}
    assert states[victim] == ReplicaState.CORRUPT


def _snapshot(pool: Pool) -> dict:
    out = {}
    for path in sorted({f.path for f in pool.catalog.walk()} | {"gone.txt", "renamed/b.txt"}):
        info = pool.catalog.get(path, include_deleted=True)
        if info is None:
            continue
        out[path] = (info.id, info.version, info.deleted, info.sha256, info.size, sorted(info.replicas),
                     [(v.number, v.key, v.sha256, sorted(v.ok_nodes())) for v in pool.versions(path)])
    return out


def test_catalog_rebuild_from_the_nodes_equals_the_original(shared_nodes: NodePool, tmp_path: Path) -> None:
    from tests.conftest import fresh_bucket

    bucket = fresh_bucket()
    pool = shared_nodes.open_pool(bucket, tmp_path / "c1.sqlite3")
    for i in range(5):
        pool.put_bytes(f"docs/{i}.txt", f"v1 {i}".encode())
    pool.put_bytes("docs/0.txt", b"v2")
    pool.put_bytes("a.txt", b"to move")
    pool.move("a.txt", "renamed/b.txt")
    pool.put_bytes("gone.txt", b"bye")
    pool.delete("gone.txt")
    before = _snapshot(pool)
    pool.close()
    (tmp_path / "c1.sqlite3").unlink()
    fresh = shared_nodes.open_pool(bucket, tmp_path / "c2.sqlite3")
    assert fresh.catalog.count() == (0, 0)
    rebuild.rebuild(fresh)
    after = _snapshot(fresh)
    assert after == before
    assert fresh.catalog.get("gone.txt") is None  # a rebuild never resurrects a deleted file
    assert fresh.read_bytes("docs/0.txt") == b"v2"
    fresh.close()


def test_refresh_sees_another_devices_changes(pool: Pool, shared_nodes: NodePool, tmp_path: Path) -> None:
    other = Pool(shared_nodes.config(pool.cfg.bucket), catalog_path=tmp_path / "other.sqlite3", timeouts=TEST_TIMEOUTS)
    pool.put_bytes("shared/a.txt", b"one")
    pool.put_bytes("shared/b.txt", b"two")
    changes = rebuild.refresh(other)
    assert sorted((c.path, c.kind) for c in changes) == [("shared/a.txt", "added"), ("shared/b.txt", "added")]
    pool.put_bytes("shared/a.txt", b"one, edited")
    pool.delete("shared/b.txt")
    changes = rebuild.refresh(other)
    assert sorted((c.path, c.kind) for c in changes) == [("shared/a.txt", "modified"), ("shared/b.txt", "deleted")]
    assert rebuild.refresh(other) == []
    assert other.read_bytes("shared/a.txt") == b"one, edited"
    other.close()


def test_objects_from_other_s3_tools_are_adopted(pool: Pool, shared_nodes: NodePool) -> None:
    import io

    raw = shared_nodes.raw_client("node3")
    raw.put_object(pool.cfg.bucket, "console/upload.txt", io.BytesIO(b"from the console"), 16)
    changes = rebuild.refresh(pool)
    assert [(c.path, c.kind) for c in changes] == [("console/upload.txt", "added")]
    info = pool.stat("console/upload.txt")
    assert info.replicas == ["node3"] and len(info.sha256) == 64
    assert pool.read_bytes("console/upload.txt") == b"from the console"


ODD_NAMES = [
    unicodedata.normalize("NFC", "café/naïve résumé.txt"), unicodedata.normalize("NFD", "Zoë/déjà vu.txt"),
    "with spaces/  two  spaces .txt", "percent/100% sure.txt", "hash/#1 #2.txt", "plus/a+b=c.txt",
    "emoji/🙂 smile.txt", "long/" + "n" * 250 + ".txt", "/".join(f"d{i}" for i in range(30)) + "/deep.txt",
    "quote/it's \"quoted\".txt", "amp/a&b;c?.txt",
]


def test_odd_names_round_trip(pool: Pool, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i, name in enumerate(ODD_NAMES):
        _file(src / name, 10 + i, seed=i + 1)
    from sync_agent import batch

    up = batch.put_tree(pool, src, "odd")
    assert not up.failed, up.failed
    assert len(up.done) == len(ODD_NAMES)
    down = batch.get_tree(pool, "odd", tmp_path / "dst")
    assert not down.failed, down.failed
    for name in ODD_NAMES:
        nfc = unicodedata.normalize("NFC", name)
        assert (tmp_path / "dst" / nfc).read_bytes() == (src / name).read_bytes()


def test_keys_cannot_escape_the_download_folder(pool: Pool, tmp_path: Path) -> None:
    for bad in ("../x", "../../etc/passwd", "a/../../x"):
        with pytest.raises(InvalidPathError):
            pool.get_file(bad, tmp_path / "dl")
        with pytest.raises(InvalidPathError):
            pool.put_bytes(bad, b"x")
    pool.put_bytes("etc/passwd", b"not the real one")
    out = pool.get_file("/etc/passwd", tmp_path / "dl" / "p")
    assert out == (tmp_path / "dl" / "p").resolve() or out == tmp_path / "dl" / "p"
    assert Path("/etc/passwd").read_bytes() != b"not the real one"


def test_versions_move_delete_restore(pool: Pool) -> None:
    pool.put_bytes("notes.txt", b"one")
    pool.put_bytes("notes.txt", b"two")
    assert [v.number for v in pool.versions("notes.txt")] == [2, 1]
    pool.move("notes.txt", "archive/notes.txt")
    assert not pool.exists("notes.txt") and pool.read_bytes("archive/notes.txt") == b"two"
    pool.delete("archive/notes.txt")
    assert not pool.exists("archive/notes.txt")
    restored = pool.restore("archive/notes.txt", 1)
    assert pool.read_bytes("archive/notes.txt") == b"one" and restored.version == 4


WRITER = """
import sys, threading, time
from pathlib import Path
from sync_agent.config import parse_pool
from sync_agent.pool import Pool
from sync_agent.transfer import TransferControl
from tests.nodepool import TEST_TIMEOUTS
pool = Pool(parse_pool(Path(sys.argv[1]).read_text()), catalog_path=Path(sys.argv[2]), timeouts=TEST_TIMEOUTS)
said = threading.Lock()  # parts go up in several threads: say it once
def slow(done, total):
    if done > 20 * 1024 * 1024:
        if said.acquire(blocking=False):
            print("HALFWAY", flush=True)
        time.sleep(60)
pool.put_file(sys.argv[3], "crash/big.bin", control=TransferControl(on_progress=slow))
"""


def test_writer_killed_mid_upload_leaves_no_trace_and_resumes(fault_nodes: NodePool, tmp_path: Path) -> None:
    pool = fault_nodes.open_pool("crash", tmp_path / "c.sqlite3")
    cfg_path = tmp_path / "pool.toml"
    cfg_path.write_text(pool.cfg.to_toml())
    pool.close()
    src = _file(tmp_path / "big.bin", 40 * 1024 * 1024)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(cfg_path), str(tmp_path / "c.sqlite3"), str(src)],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "HALFWAY"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reopened = fault_nodes.open_pool("crash", tmp_path / "c.sqlite3")
    reopened.recover()  # an explicit step (never in the constructor): the resumable upload is kept
    assert reopened.catalog.get("crash/big.bin") is None  # nothing half-written is visible
    for n in fault_nodes.nodes:
        assert list(reopened.client(n.name).list("crash/", versions=True)) == []
    kept = reopened.catalog.intents()
    assert [i.kind for i in kept] == ["put"] and kept[0].payload["uploads"]  # resumable
    sent = []
    for c in reopened.clients.values():
        real = c.s3._upload_part
        c.s3._upload_part = lambda *a, real=real: sent.append(1) or real(*a)
    info = reopened.put_file(src, "crash/big.bin")
    parts = -(-src.stat().st_size // (8 * 1024 * 1024))
    assert len(sent) < 2 * parts, (len(sent), parts)  # parts the nodes already had were not sent again
    assert reopened.read_bytes("crash/big.bin") == src.read_bytes()
    assert sorted(fault_nodes.holders("crash", "crash/big.bin")) == sorted(info.replicas)
    assert reopened.catalog.intents() == []
    for n in fault_nodes.nodes:  # exactly one version per copy, nothing stray
        versions = list(reopened.client(n.name).list("crash/", versions=True))
        assert len(versions) == (1 if n.name in info.replicas else 0)
    reopened.close()


def test_opening_a_pool_touches_no_node_and_recovery_is_an_explicit_step(pool: Pool, tmp_path: Path) -> None:
    """The window opens pools on its GUI thread: the constructor must not do network I/O (#15). Undoing a
    killed writer's half-done write is ``Pool.recover``, which the CLI, the agent and a worker call."""
    pool.put_bytes("stale/x.txt", b"one")
    info = pool.stat("stale/x.txt")
    pool.catalog.add_intent("put", "stale/x.txt", info.id, 2, nodes=sorted(info.replicas), owner=2**22 + 7)
    again = Pool(pool.cfg, catalog_path=Path(pool.catalog.path), timeouts=pool.timeouts)
    try:
        assert sum(c.requests for c in again.clients.values()) == 0
        assert [i.path for i in again.catalog.intents("put")] == ["stale/x.txt"]
        assert again.recover() == 1 and again.catalog.intents("put") == []
    finally:
        again.close()


def test_an_interrupted_upload_of_other_content_is_abandoned(pool: Pool, tmp_path: Path) -> None:
    src = _file(tmp_path / "a.bin", 20 * 1024 * 1024)
    stop = []

    def interrupt(done: int, total: int) -> None:
        if done > 12 * 1024 * 1024 and not stop:
            stop.append(1)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pool.put_file(src, "x/a.bin", control=TransferControl(on_progress=interrupt))
    assert pool.catalog.intents("put")  # kept for a resume
    _file(src, 20 * 1024 * 1024)  # new content under the same name: the old upload is dropped
    info = pool.put_file(src, "x/a.bin")
    assert pool.read_bytes("x/a.bin") == src.read_bytes() and info.version == 1
    assert pool.catalog.intents() == []


def test_cli_ls_json(pool: Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                     ) -> None:
    from sync_agent import config
    from sync_agent.cli.main import main

    cfg_file = config.save_pool(pool.cfg, tmp_path / "p.toml")
    monkeypatch.setattr("sync_agent.pool.Pool.open",
                        lambda ref: Pool(config.load_pool(ref), catalog=pool.catalog, timeouts=TEST_TIMEOUTS))
    pool.put_bytes("cli/a.txt", b"a")
    pool.put_bytes("cli/sub/b.txt", b"bb")
    capsys.readouterr()
    assert main(["ls", "cli", "-l", "--json", "--pool", str(cfg_file)]) == 0
    entries = json.loads(capsys.readouterr().out)
    by_path = {e["path"]: e for e in entries}
    assert by_path["cli/sub/"]["is_dir"] is True
    a = by_path["cli/a.txt"]
    assert a["size"] == 1 and len(a["sha256"]) == 64
    assert sorted(a["replicas"]) == sorted(pool.stat("cli/a.txt").replicas)
    assert main(["ls", "-R", "--json", "--pool", str(cfg_file), "cli"]) == 0
    assert {e["path"] for e in json.loads(capsys.readouterr().out)} == {"cli/a.txt", "cli/sub/b.txt"}
    assert main(["stat", "nope.txt", "--pool", str(cfg_file)]) == 2


def test_a_frozen_replica_costs_a_hedge_delay_not_a_timeout(fault_pool: Pool, fault_nodes: NodePool,
                                                            tmp_path: Path) -> None:
    from sync_agent.placement import read_order

    data = os.urandom(300_000)
    fault_pool.put_bytes("hedge/a.bin", data)
    fault_pool.put_bytes("hedge/b.bin", data[::-1])
    preferred = read_order(fault_pool.health.views(fault_pool.stat("hedge/a.bin").replicas))[0]
    fault_nodes[preferred].freeze()
    try:
        start = time.monotonic()
        assert fault_pool.read_bytes("hedge/a.bin") == data
        first = time.monotonic() - start
        out = fault_pool.get_file("hedge/b.bin", tmp_path / "b.bin")
        assert out.read_bytes() == data[::-1]
        total = time.monotonic() - start
    finally:
        fault_nodes[preferred].thaw()
    assert first < TEST_TIMEOUTS.read / 2, first  # the read timeout is 4 s here; the hedge fires at 0.25 s
    assert total < TEST_TIMEOUTS.read, total


def test_a_file_changed_during_upload_is_not_committed(pool: Pool, tmp_path: Path) -> None:
    from sync_agent.errors import LocalIOError

    src = _file(tmp_path / "live.bin", 30 * 1024 * 1024)
    touched = []

    def edit_midway(done: int, total: int) -> None:
        if done > 10 * 1024 * 1024 and not touched:
            with open(src, "r+b") as f:
                f.write(b"edited by the user")
            touched.append(1)

    with pytest.raises(LocalIOError, match="changed while"):
        pool.put_file(src, "live.bin", control=TransferControl(on_progress=edit_midway))
    assert pool.catalog.get("live.bin") is None and pool.catalog.intents() == []
    info = pool.put_file(src, "live.bin")  # the retry stores what the file holds now
    assert pool.read_bytes("live.bin") == src.read_bytes() and info.version == 1


def test_copy_damaged_deep_inside_is_marked_bad_at_once(pool: Pool, shared_nodes: NodePool, tmp_path: Path) -> None:
    """The node streams the good part, then cuts the body where its bit-rot check fails: the read goes on
    from another copy and that copy is marked bad now, not at the next scrub."""
    src = _file(tmp_path / "deep.bin", 4 * 1024 * 1024)
    info = pool.put_file(src, "corrupt/deep.bin")
    from sync_agent.placement import read_order

    victim = read_order(pool.health.views(info.replicas))[0]
    parts = _minio_part_files(shared_nodes[victim].data_dir, pool.cfg.bucket, "corrupt/deep.bin")
    with open(parts[0], "r+b") as f:
        f.seek(3 * 1024 * 1024)
        b = f.read(64)
        f.seek(3 * 1024 * 1024)
        f.write(bytes(x ^ 0xFF for x in b))
    out = pool.get_file("corrupt/deep.bin", tmp_path / "deep-out.bin")
    assert out.read_bytes() == src.read_bytes()
    deadline = time.monotonic() + 10  # checked in the background once the read is done
    while time.monotonic() < deadline:
        states = {r.node: r.state for r in pool.stat("corrupt/deep.bin").current.replicas}
        if states[victim] == ReplicaState.CORRUPT:
            break
        time.sleep(0.05)
    assert states[victim] == ReplicaState.CORRUPT
    assert all(s == ReplicaState.OK for n, s in states.items() if n != victim)


def test_a_copy_found_bad_is_replaced_by_the_background_repair_at_once(pool: Pool, shared_nodes: NodePool,
                                                                       tmp_path: Path) -> None:
    """The agent's repair loop runs hourly; a copy a read found damaged wakes it, so the file is back at R
    good copies within seconds instead of within the hour."""
    from sync_agent.repair import RepairLoop

    src = _file(tmp_path / "mend.bin", 1024 * 1024)
    info = pool.put_file(src, "corrupt/mend.bin")
    loop = RepairLoop(pool, grace=600, interval=3600).start()
    try:
        time.sleep(0.5)  # its first round (nothing to do) is over
        from sync_agent.placement import read_order

        victim = read_order(pool.health.views(info.replicas))[0]  # the copy the read will ask first
        for part in _minio_part_files(shared_nodes[victim].data_dir, pool.cfg.bucket, "corrupt/mend.bin"):
            with open(part, "r+b") as f:
                f.seek(1000)
                f.write(b"\0" * 64)
        assert pool.get_file("corrupt/mend.bin", tmp_path / "mend-out.bin").read_bytes() == src.read_bytes()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            cur = pool.stat("corrupt/mend.bin").current
            if len(cur.ok_nodes()) >= pool.cfg.replicas and victim not in cur.ok_nodes():
                break
            time.sleep(0.2)
        assert len(cur.ok_nodes()) >= pool.cfg.replicas and victim not in cur.ok_nodes(), cur
    finally:
        loop.stop()


def test_a_conflict_is_settled_only_as_it_was_seen(pool) -> None:  # type: ignore[no-untyped-def]
    import time

    import pytest

    from sync_agent.errors import ChangedMeanwhileError, NotFoundError
    from sync_agent.sync.conflicts import conflict_name

    copy = conflict_name("plan.txt", "desktop", time.time())
    pool.put_bytes("plan.txt", b"pool")
    pool.put_bytes(copy, b"desktop")
    [seen] = resolve.conflicts(pool)
    pool.put_bytes("plan.txt", b"a third device saved meanwhile")
    with pytest.raises(ChangedMeanwhileError):
        resolve.resolve(pool, copy, "copy", seen=seen)
    assert pool.read_bytes("plan.txt") == b"a third device saved meanwhile" and pool.exists(copy)
    pool.delete("plan.txt")
    with pytest.raises(NotFoundError, match="neither"):
        resolve.resolve(pool, copy, "original")  # it would leave no version at all
    resolve.resolve(pool, copy, "copy")  # the copy takes the deleted original's place
    assert pool.read_bytes("plan.txt") == b"desktop" and not pool.exists(copy)


def test_a_frozen_node_is_found_down_by_its_probe_timeout_not_the_read_timeout(fault_nodes: NodePool,
                                                                                tmp_path: Path) -> None:
    """A write looks at the nodes' health when it is stale; a node frozen on the LAN (SIGSTOP) must not hold
    it for the 30 s a data request may wait for an answer: the probe follows the node's round trips (3 s at
    least). One probe without an answer makes the node degraded, the next one down (no flapping on one
    late answer)."""
    from sync_agent.node_types import Timeouts
    from sync_agent.placement import Health

    pool = fault_nodes.open_pool("probe-timeout", tmp_path / "c.sqlite3",
                                 timeouts=Timeouts(connect=3.0, read=30.0, retries=0))
    try:
        pool.refresh_health(max_age=0)
        assert pool.health.get("node3").latency < 0.3
        fault_nodes["node3"].freeze()
        try:
            for state in (Health.DEGRADED, Health.DOWN):
                start = time.monotonic()
                pool.refresh_health(max_age=0)
                assert time.monotonic() - start < 10
                assert pool.health.state("node3") == state
            assert pool.put_bytes("during-freeze.txt", b"x").replicas  # written elsewhere
        finally:
            fault_nodes["node3"].thaw()
    finally:
        pool.close()



def test_the_background_repair_waits_for_the_first_pass_even_when_woken(pool: Pool) -> None:
    """An agent that just started leaves its first pass the CPU: the repair's first round (every file of
    the catalog read) comes once ``ready()`` says the pass is done, even if a node comes up or a damaged
    copy wakes it meanwhile; ``first_delay`` caps the wait."""
    from sync_agent.repair import RepairLoop

    first_pass_done = threading.Event()
    loop = RepairLoop(pool, grace=600, interval=3600, first_delay=60, ready=first_pass_done.is_set).start()
    capped = RepairLoop(pool, grace=600, interval=3600, first_delay=1.0, ready=lambda: False).start()
    try:
        loop._wake.set()  # as a damaged copy found by a read does
        time.sleep(1.5)
        assert loop.last is None
        first_pass_done.set()
        deadline = time.monotonic() + 20
        while (loop.last is None or capped.last is None) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert loop.last is not None and capped.last is not None  # the pass is done; the cap is reached
    finally:
        loop.stop()
        capped.stop()


def test_a_full_refresh_asks_the_catalog_once_not_per_file(pool: Pool, tmp_path: Path) -> None:
    """A refresh compares what the nodes hold with the catalog's one walk; asking the catalog for each
    file (three queries) made it 0.75 ms a file, 80 % of a refresh at 100,000 files. Files changed
    meanwhile are still seen."""
    from sync_agent import rebuild

    for i in range(30):
        pool.put_bytes(f"many/f{i:02d}.txt", f"{i}".encode())
    asked: list[str] = []
    real = pool.catalog.get_by_id

    def counting(file_id: str):  # type: ignore[no-untyped-def]
        asked.append(file_id)
        return real(file_id)

    pool.catalog.get_by_id = counting  # type: ignore[method-assign]
    try:
        assert rebuild.refresh(pool, "many/") == []
        assert asked == []
        other = Pool(pool.cfg, catalog_path=tmp_path / "other.sqlite3")  # another device edits one file
        try:
            rebuild.refresh(other, "many/")
            other.put_bytes("many/f07.txt", b"edited elsewhere")
        finally:
            other.close()
        changes = rebuild.refresh(pool, "many/")
        assert [(c.path, c.kind) for c in changes] == [("many/f07.txt", "modified")]
        assert pool.read_bytes("many/f07.txt") == b"edited elsewhere"
    finally:
        del pool.catalog.get_by_id


def test_a_full_refresh_reads_the_catalog_in_pages_and_sees_moves_both_ways(
        pool: Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full refresh reads the catalog a page at a time beside the scan, in path order, instead of
    holding the whole catalog (522-619 MB at 100,000 files). Moves to a path before and after the old one,
    a delete, a file replaced by another at the same path and an edit are all seen across page
    boundaries, and the catalog ends as a rebuild from the nodes would make it."""
    from sync_agent import rebuild

    monkeypatch.setattr(rebuild, "MERGE_PAGE", 2)  # a page boundary between most files
    for name in ("b", "c", "d", "e", "f", "g", "h"):
        pool.put_bytes(f"pg/m/{name}.txt", name.encode())
    other = Pool(pool.cfg, catalog_path=tmp_path / "other.sqlite3")  # another device changes them
    try:
        rebuild.refresh(other)
        other.move("pg/m/b.txt", "pg/a.txt")  # moved to a path walked before its old one
        other.move("pg/m/c.txt", "pg/z/c.txt")  # and after
        other.delete("pg/m/d.txt")
        other.delete("pg/m/e.txt")
        other.put_bytes("pg/m/e.txt", b"another file at the same path")
        other.put_bytes("pg/m/f.txt", b"f, edited")
    finally:
        other.close()
    walked: list[str] = []
    real_walk = pool.catalog.walk
    monkeypatch.setattr(pool.catalog, "walk", lambda *a, **k: walked.append("walk") or real_walk(*a, **k))
    changes = rebuild.refresh(pool)
    assert walked == []  # the whole catalog is never read at once
    assert sorted((c.path, c.kind) for c in changes) == [
        ("pg/a.txt", "added"), ("pg/m/b.txt", "deleted"), ("pg/m/c.txt", "deleted"), ("pg/m/d.txt", "deleted"),
        ("pg/m/e.txt", "modified"), ("pg/m/f.txt", "modified"), ("pg/z/c.txt", "added")]  # e: the same file again
    assert rebuild.refresh(pool) == []
    assert pool.read_bytes("pg/a.txt") == b"b" and pool.read_bytes("pg/m/e.txt") == b"another file at the same path"
    fresh = Pool(pool.cfg, catalog_path=tmp_path / "fresh.sqlite3")
    try:
        rebuild.rebuild(fresh)
        def state(p: Pool) -> list[tuple[str, str, int, str]]:
            return [(f.path, f.id, f.version, f.sha256) for f in p.walk("pg/")]
        assert state(pool) == state(fresh)
    finally:
        fresh.close()


def test_filling_an_empty_catalog_commits_a_batch_of_files_at_a_time(
        pool: Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new device fills its catalog from the nodes in one transaction per ``MERGE_TX`` files: a commit
    and three peewee queries per file made a fill of 22,000 files take 33 s (12 s now). Counted, not timed."""
    from sync_agent import rebuild

    monkeypatch.setattr(rebuild, "MERGE_TX", 4)
    for i in range(10):
        pool.put_bytes(f"fill/f{i:02d}.txt", f"file {i}".encode())
    fresh = Pool(pool.cfg, catalog_path=tmp_path / "fresh.sqlite3")
    try:
        before = fresh.catalog.data_version() >> 32  # this process's commits
        changes = rebuild.refresh(fresh)
        commits = (fresh.catalog.data_version() >> 32) - before
        files = len(list(fresh.walk()))
        assert {c.path for c in changes if c.kind == "added"} >= {f"fill/f{i:02d}.txt" for i in range(10)}
        assert commits <= -(-files // 4) + 4, (commits, files)
        assert fresh.read_bytes("fill/f07.txt") == b"file 7"
        assert rebuild.refresh(fresh) == []
    finally:
        fresh.close()


def test_a_file_written_while_a_refresh_lists_the_nodes_is_not_taken_for_deleted(
        pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing misses a file this device writes after it began; the merge must not read that as the
    file gone from every node (it used to mark it deleted, and the sync engine would delete it here)."""
    from sync_agent import rebuild

    pool.put_bytes("late/old.txt", b"old")
    real_scan = rebuild.scan

    def scan_then_write(*a, **k):  # type: ignore[no-untyped-def]
        s = real_scan(*a, **k)
        pool.put_bytes("late/new.txt", b"written while the nodes were being listed")
        return s

    monkeypatch.setattr(rebuild, "scan", scan_then_write)
    assert rebuild.refresh(pool) == []
    monkeypatch.undo()
    assert pool.read_bytes("late/new.txt") == b"written while the nodes were being listed"
    assert rebuild.refresh(pool) == []


def test_ctrl_c_stops_a_large_upload_at_its_next_part_and_leaves_nothing(pool: Pool, tmp_path: Path) -> None:
    """Ctrl+C during 'pooldrive put' of a large file: the upload stops at its next part and is undone. It
    went on to the end, was committed, and only then did the command say 'Stopped: Interrupted.'."""
    from sync_agent import api

    src = _file(tmp_path / "big.bin", 200 * 1024 * 1024)
    main = threading.main_thread().ident
    assert main is not None
    threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT)).start()  # Ctrl+C, to the main thread
    with pytest.raises(KeyboardInterrupt):
        api.put_trees(pool, [(src, "interrupted/big.bin")], control=TransferControl())
    assert pool.catalog.get("interrupted/big.bin") is None and pool.catalog.intents() == []
    for node in pool.clients:
        assert not [o for o in pool.client(node).list("interrupted/", versions=True)]


def test_a_read_begun_before_a_node_was_removed_takes_the_other_copy(pool: Pool, tmp_path: Path) -> None:
    """A job that read the catalog before a node left the pool (the window removing it while a download
    runs) still holds versions listing a copy there: that copy is skipped as down, never a crash."""
    import dataclasses

    from sync_agent import reader
    from sync_agent.errors import NodeError

    pool.put_bytes("gone/small.txt", b"small body")
    big = os.urandom(600 * 1024)  # past the one-request size: streamed through minio-py
    pool.put_bytes("gone/big.bin", big)
    small_v, big_v = pool.stat("gone/small.txt").current, pool.stat("gone/big.bin").current
    assert small_v is not None and big_v is not None
    leaving = small_v.ok_nodes()[0]
    pool.use_config(dataclasses.replace(pool.cfg, nodes=tuple(n for n in pool.cfg.nodes if n.name != leaving)))
    if reader.get_small_version(pool, small_v, tmp_path / "small.txt"):  # (False: the caller goes the full way)
        assert (tmp_path / "small.txt").read_bytes() == b"small body"
    reader.get_version(pool, small_v, tmp_path / "small2.txt")
    reader.get_version(pool, big_v, tmp_path / "big.bin")
    assert (tmp_path / "small2.txt").read_bytes() == b"small body"
    assert (tmp_path / "big.bin").read_bytes() == big
    assert [v.health.name for v in pool.health.views([leaving])] == ["DOWN"]
    with pytest.raises(NodeError, match="no longer in the pool"):
        pool.client(leaving)
