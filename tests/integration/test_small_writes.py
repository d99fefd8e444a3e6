"""#16: a folder of new small files goes up in batches (small_writes), and whatever a batch cannot do
exactly right (a path someone else took meanwhile, a node that died) goes the full way, losing nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sync_agent import api, writer
from sync_agent.errors import ChangedMeanwhileError
from sync_agent.placement import write_order
from sync_agent.pool import Pool
from tests.conftest import count_in_flight, fresh_bucket
from tests.nodepool import NodePool


def _tree(root: Path, count: int) -> dict[str, bytes]:
    """``count`` small files (0 B to 70 KB) in three folders, names with spaces and accents; pool name -> bytes."""
    out = {}
    for i in range(count):
        rel = f"d{i % 3}/f {i:03d} é.bin"
        data = os.urandom((i * 977) % 70_000)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        out[f"up/{rel}"] = data
    return out


def _stored(nodes: NodePool, pool: Pool, prefix: str) -> dict[tuple[str, str], list[str | None]]:
    """(node, key) -> every version id a running node holds under ``prefix``, read from the nodes themselves."""
    out: dict[tuple[str, str], list[str | None]] = {}
    for n in nodes.nodes:
        if not n.running():
            continue
        for o in nodes.raw_client(n.name).list_objects(pool.cfg.bucket, prefix=prefix, recursive=True,
                                                       include_version=True):
            out.setdefault((n.name, o.object_name), []).append(o.version_id)
    return out


def test_a_folder_of_small_files_goes_up_in_batches_with_every_copy_recorded(
        pool: Pool, shared_nodes: NodePool, tmp_path: Path, handed_back: list[int]) -> None:
    src = tmp_path / "src"
    files = _tree(src, 150)
    big = os.urandom(3 * 1024 * 1024)  # past the batch's size: the full path, in the same upload
    (src / "big.bin").write_bytes(big)
    files["up/big.bin"] = big
    cat = pool.catalog
    commits = cat._group.commits + cat._atomic_commits
    requests = sum(pool.client(n.name).requests for n in pool.cfg.nodes)
    seen: list[tuple[str, int, object]] = []

    result = api.put_tree(pool, src, "up", on_file=lambda name, size, err: seen.append((name, size, err)))

    assert result.ok and sorted(result.done) == sorted(files) and result.bytes == sum(map(len, files.values()))
    assert sorted(n for n, _, e in seen if e is None) == sorted(files)
    # the work per file is its copies; the catalog is written per batch, not per file. A file handed back
    # costs its own commits (on a loaded machine a node's answers can stay past the batch's 50 ms)
    assert sum(pool.client(n.name).requests for n in pool.cfg.nodes) - requests <= 2 * len(files) + 30
    assert cat._group.commits + cat._atomic_commits - commits <= 2 * (150 // 64 + 1) + 6 + 3 * sum(handed_back), \
        handed_back
    specs = pool.specs()
    recorded: dict[tuple[str, str], list[str | None]] = {}
    for key, data in files.items():
        info = cat.get(key)
        assert info is not None and info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)
        assert sorted(info.replicas) == sorted(write_order(key, specs, 2, [n.name for n in pool.cfg.nodes])[:2])
        for node in info.replicas:
            recorded[(node, key)] = [info.current.replicas_version(node)]  # type: ignore[union-attr]
        assert pool.read_bytes(key) == data
    writer.recover_intents(pool)  # as the next start: a copy whose answer was lost (a loaded machine) is settled
    assert _stored(shared_nodes, pool, "up/") == recorded  # exactly the recorded copies, no stray one
    assert not cat.intents("put")


def test_a_folder_of_small_files_keeps_many_requests_in_flight(
        pool: Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small files go SMALL_IN_FLIGHT at once both ways (MinIO spends less CPU per request when many arrive
    together; see ``transfer.SMALL_IN_FLIGHT``), where a folder of large files on a LAN moves 8 or so."""
    from sync_agent.transfer import FEWEST_IN_FLIGHT, SMALL_IN_FLIGHT

    assert pool.files_in_flight(small=True) == max(SMALL_IN_FLIGHT, pool.files_in_flight())
    src = tmp_path / "src"
    files = _tree(src, 120)
    peak = count_in_flight(pool, monkeypatch)
    assert api.put_tree(pool, src, "up").ok
    went_up, peak[0] = peak[0], 0
    result = api.get_tree(pool, "up", tmp_path / "back")
    assert result.ok and len(result.done) == len(files)
    assert went_up >= 2 * FEWEST_IN_FLIGHT and peak[0] >= 2 * FEWEST_IN_FLIGHT, (went_up, peak[0])  # 24 here
    assert all((tmp_path / "back" / k.removeprefix("up/")).read_bytes() == d for k, d in files.items())

def test_a_one_file_download_does_not_wait_on_a_probe_of_every_node(
        shared_nodes: NodePool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """How many files move at once follows the nodes' round trips, measured by a probe of every node when
    none was made yet: a round trip to the farthest node (0.1 s of a one-file `pooldrive get` over the WAN
    profile) that a batch of no more files than the fewest in flight does not need."""
    bucket, catalog = fresh_bucket(), tmp_path / "catalog.sqlite3"
    with shared_nodes.open_pool(bucket, catalog) as first:
        first.put_bytes("docs/one.bin", b"x" * 300_000)
        first.put_bytes("docs/two.bin", b"y" * 1000)
    with shared_nodes.open_pool(bucket, catalog, init=False) as pool:  # a new process: no health known yet
        probed: list[str] = []
        probe = pool.probe
        monkeypatch.setattr(pool, "probe", lambda name: probed.append(name) or probe(name))
        assert api.get_tree(pool, "docs/one.bin", tmp_path / "one.bin").ok
        assert api.get_tree(pool, "docs", tmp_path / "docs").ok
        assert probed == []
        assert (tmp_path / "one.bin").read_bytes() == b"x" * 300_000
        assert (tmp_path / "docs" / "two.bin").read_bytes() == b"y" * 1000
        pool.files_in_flight()  # a larger batch does measure them (those the reads did not hear from)
        assert probed



def test_a_batch_copy_that_lands_after_the_batch_gave_it_up_is_replaced_not_a_conflict(
        pool: Pool, shared_nodes: NodePool, tmp_path: Path) -> None:
    """A batch copy whose answer was lost (a connection cut on the client's side) can reach its node after
    the batch looked for it and handed the file to the full path, which met it as another device's write
    ('changed on the pool by another device': what `pooldrive put` said over the WAN profile's flaky
    link, where the look was skipped). The batch keeps its intent for such a copy; the full path
    recognises the copy by it and writes over it, and the next start takes the given-up version away."""
    import time
    import uuid

    from sync_agent import metadata

    key, body = "late/report é.txt", b"a new report\n" * 300
    local = tmp_path / "report.txt"
    local.write_bytes(body)
    sha = hashlib.sha256(body).hexdigest()
    file_id, node = uuid.uuid4().hex, write_order(key, pool.specs(), 2, [n.name for n in pool.cfg.nodes])[0]
    meta = metadata.object_meta(file_id, 1, sha, len(body), local.stat().st_mtime, time.time())
    # what the batch leaves for a copy whose answer was lost: its intent, kept (as small_writes._prepare makes it)
    pool.catalog.add_intent("put", key, file_id, 1, nodes=[node], owner=os.getpid(), sha256=sha,
                            written=meta["written"], mtime=local.stat().st_mtime)
    pool.client(node).put_if(key, body, meta, if_match=None)  # the request itself, landing late

    writer.put_file(pool, local, key)

    info = pool.catalog.get(key)
    assert info is not None and info.current is not None and info.sha256 == sha and len(info.replicas) == 2
    assert info.id != file_id  # the full path's own write, not the batch's
    assert writer.recover_intents(pool) == 1  # the next start (here: this process, the owner being itself)
    held = [v.version_id for v in shared_nodes.raw_client(node).list_objects(
        pool.cfg.bucket, prefix=key, include_version=True)]
    assert held == [info.current.replicas_version(node)]  # the given-up version is gone, the new one stays
    assert pool.read_bytes(key) == body and not pool.catalog.intents("put")


def test_a_long_running_process_settles_a_lost_copy_in_its_repair_round_and_no_write_in_progress(
        pool: Pool, shared_nodes: NodePool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy whose answer was lost leaves an intent that watches for it; an agent runs for weeks, so its
    repair rounds settle such intents (after ``writer.WATCH_FOR``), this process's own included, while an
    intent of a write still in progress (no ``watch``) is left alone, whoever owns it."""
    import time
    import uuid

    from sync_agent import metadata
    from sync_agent.repair import RepairLoop

    key, body = "lost/notes é.txt", b"notes\n" * 500
    local = tmp_path / "notes.txt"
    local.write_bytes(body)
    info, _ = writer.put_file(pool, local, key)
    assert info.current is not None
    spare = next(n.name for n in pool.cfg.nodes if n.name not in info.replicas)
    meta = metadata.object_meta(info.id, 1, info.sha256, len(body), local.stat().st_mtime,
                                info.current.created_at)
    # as writer._watch_lost_copies leaves a copy whose answer was lost: landed, unrecorded, watched
    pool.client(spare).put_if(key, body, meta, if_match=None)
    pool.catalog.add_intent("put", key, info.id, 1, nodes=[spare], owner=os.getpid(), watch=True,
                            sha256=info.sha256, written=meta["written"], mtime=local.stat().st_mtime)
    # a write in progress in this very process: its copy is there, its commit not yet
    busy_key, busy_id = "lost/in progress.txt", uuid.uuid4().hex
    busy_meta = metadata.object_meta(busy_id, 1, info.sha256, len(body), 0.0, time.time())
    pool.client(spare).put_if(busy_key, body, busy_meta, if_match=None)
    pool.catalog.add_intent("put", busy_key, busy_id, 1, nodes=[spare], owner=os.getpid(), sha256=info.sha256,
                            written=busy_meta["written"], mtime=0.0)

    loop = RepairLoop(pool)
    loop.run_once()
    assert len(pool.catalog.intents("put")) == 2  # too young: a late copy may still be on its way

    monkeypatch.setattr(writer, "WATCH_FOR", 0.0)
    loop.run_once()

    def held(k: str) -> list[str]:
        return [o.object_name for o in shared_nodes.raw_client(spare).list_objects(
            pool.cfg.bucket, prefix=k, include_version=True)]

    assert held(key) == [] and held(busy_key) == [busy_key]
    assert [i.path for i in pool.catalog.intents("put")] == [busy_key]
    assert pool.read_bytes(key) == body and sorted(pool.stat(key).replicas) == sorted(info.replicas)


def test_a_path_another_device_created_meanwhile_is_never_overwritten(shared_nodes: NodePool, tmp_path: Path) -> None:
    bucket = fresh_bucket()
    mine = shared_nodes.open_pool(bucket, tmp_path / "mine.sqlite3")
    theirs = shared_nodes.open_pool(bucket, tmp_path / "theirs.sqlite3", init=False)
    try:
        src = tmp_path / "src"
        files = _tree(src, 40)
        taken = "up/d1/f 007 é.bin"
        theirs.put_bytes(taken, b"written by the other device first")  # this device has not heard of it

        result = api.put_tree(mine, src, "up")

        [(name, err)] = result.failed
        assert name == taken and isinstance(err, ChangedMeanwhileError)
        assert sorted(result.done) == sorted(k for k in files if k != taken)
        assert theirs.read_bytes(taken) == b"written by the other device first"
        info = mine.catalog.get(taken)  # what won is learned, so the next decision is informed
        assert info is not None and info.sha256 == hashlib.sha256(b"written by the other device first").hexdigest()
        held = _stored(shared_nodes, mine, taken)
        assert held and all(len(v) == 1 for v in held.values())  # their one version, nothing of ours left
        assert not mine.catalog.intents("put")
    finally:
        mine.close()
        theirs.close()


def test_a_node_that_dies_before_the_batch_costs_its_copies_nothing_else(fault_nodes: NodePool,
                                                                          tmp_path: Path) -> None:
    pool = fault_nodes.open_pool("batch-dead", tmp_path / "c.sqlite3")
    try:
        pool.refresh_health(max_age=0)  # every node up, as far as this device knows
        src = tmp_path / "src"
        files = _tree(src, 60)
        fault_nodes["node2"].kill()  # SIGKILL: the batch finds out by its first request there

        result = api.put_tree(pool, src, "up")

        assert result.ok and sorted(result.done) == sorted(files)
        recorded: dict[tuple[str, str], list[str | None]] = {}
        for key, data in files.items():
            info = pool.catalog.get(key)
            assert info is not None and len(info.replicas) == 2 and "node2" not in info.replicas
            for node in info.replicas:
                recorded[(node, key)] = [info.current.replicas_version(node)]  # type: ignore[union-attr]
            assert pool.read_bytes(key) == data
        assert _stored(fault_nodes, pool, "up/") == recorded  # copies made before node2 failed: taken back
        assert not pool.catalog.intents("put")
    finally:
        pool.close()



def test_a_node_that_freezes_mid_batch_loses_nothing_and_leaves_nothing_behind(fault_nodes: NodePool,
                                                                                tmp_path: Path) -> None:
    """node2 stops (SIGSTOP) with the batch's requests on it: its copies time out, the files whose answer
    was lost go the full way (elsewhere), the others carry on; the full path, which starts on them while
    the batches go on, may meet the frozen node too and overtake it. Whatever the frozen node took in and
    stores once it runs again is taken back by the next start: in the end the nodes hold exactly what the
    catalog records."""
    from sync_agent.node_types import Timeouts

    pool = fault_nodes.open_pool("batch-frozen", tmp_path / "c.sqlite3",
                                 timeouts=Timeouts(connect=2.0, read=5.0, retries=0))
    try:
        pool.refresh_health(max_age=0)
        src = tmp_path / "src"
        files = _tree(src, 60)
        fault_nodes["node2"].freeze()
        try:
            result = api.put_tree(pool, src, "up")
        finally:
            fault_nodes["node2"].thaw()
        assert result.ok and sorted(result.done) == sorted(files)
        recorded: dict[tuple[str, str], list[str | None]] = {}
        for key, data in files.items():
            info = pool.catalog.get(key)
            assert info is not None and len(info.replicas) == 2
            for node in info.replicas:
                recorded[(node, key)] = [info.current.replicas_version(node)]  # type: ignore[union-attr]
            assert pool.read_bytes(key) == data
        pool.close()  # waits for copies still running (a write overtook its frozen node and went on)
        pool = fault_nodes.open_pool("batch-frozen", tmp_path / "c.sqlite3", init=False,
                                     timeouts=Timeouts(connect=2.0, read=5.0, retries=0))
        pool.refresh_health(max_age=0)
        pool.recover()  # as the next start does
        assert _stored(fault_nodes, pool, "up/") == recorded
        assert not pool.catalog.intents("put")
    finally:
        pool.close()
