"""The pool over real, shaped links (Toxiproxy in front of real MinIO nodes): what the scheduler is for.

Not timed: each test counts which node served what, or checks health states and stored bytes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sync_agent.netshape.profiles import Link
from sync_agent.node_client import Timeouts
from sync_agent.placement import Health, write_order
from tests.conftest import fresh_bucket
from tests.nodepool import ShapedNodes

WAN_TIMEOUTS = Timeouts(connect=2.0, read=10.0, retries=0)


def _folder(src: Path, count: int, size: int) -> dict[str, bytes]:
    """``count`` files of ``size`` random bytes in ``src``, by the pool path an upload to 'up' gives them."""
    src.mkdir()
    files = {f"up/f{i:03d}.bin": os.urandom(size) for i in range(count)}
    for key, data in files.items():
        (src / key.removeprefix("up/")).write_bytes(data)
    return files


def _served(pool, names: list[str]) -> dict[str, int]:
    return {n: pool.client(n).requests for n in names}


def test_reads_go_to_the_replica_that_finishes_first(shaped_nodes: ShapedNodes, tmp_path: Path) -> None:
    """A replica on a short but thin link loses to one on a longer, fat link for a 2 MB file: the reader
    learns each link's throughput, not only its latency."""
    pool = shaped_nodes.open_pool(fresh_bucket(), tmp_path / "c.sqlite3", timeouts=WAN_TIMEOUTS,
                                  nodes=["node1", "node2"])
    data = os.urandom(2 * 1024 * 1024)
    pool.put_bytes("big.bin", data)
    shaped_nodes.shape("node1", Link(rtt_ms=2, rate_mbit=4))  # 4 s for the file
    shaped_nodes.shape("node2", Link(rtt_ms=40, rate_mbit=400))  # 0.1 s
    pool.refresh_health(max_age=0)
    pool.refresh_health(max_age=0)
    pool.journal.flush()  # its entry for big.bin is a request too
    assert pool.health.get("node1").latency < pool.health.get("node2").latency  # latency alone says node1
    sent = {"node1": 0, "node2": 0}  # body bytes each node sent to the reads (as the reader measures them)
    record_rate = pool.health.record_rate

    def counted(name: str, nbytes: int, seconds: float, *, partial: bool = False) -> None:
        sent[name] += nbytes
        record_rate(name, nbytes, seconds, partial=partial)

    pool.health.record_rate = counted  # type: ignore[method-assign]
    for _ in range(6):
        assert pool.read_bytes("big.bin") == data
        (tmp_path / "out.bin").unlink(missing_ok=True)
        pool.get_file("big.bin", tmp_path / "out.bin")
        assert (tmp_path / "out.bin").read_bytes() == data
    # at most the first read takes a part from the thin link, and leaves it as soon as it falls behind. A
    # hedge may still ask the thin node now and then (the fat link's first byte late on a busy machine), but
    # the bytes come from the fat one
    assert sent["node1"] <= len(data) and sent["node2"] >= 11 * len(data), sent
    pool.close()


def test_a_stalling_replica_is_left_mid_read(shaped_nodes: ShapedNodes, tmp_path: Path) -> None:
    """The replica a read started on slows to a trickle: the read continues from the other copy at the same
    offset instead of waiting for it."""
    pool = shaped_nodes.open_pool(fresh_bucket(), tmp_path / "c.sqlite3", timeouts=WAN_TIMEOUTS,
                                  nodes=["node1", "node2"])
    data = os.urandom(6 * 1024 * 1024)
    pool.put_bytes("big.bin", data)
    for _ in range(3):  # both links known fast
        assert pool.read_bytes("big.bin") == data
    first = pool.stat("big.bin").replicas[0]
    order = pool.read_order_for("big.bin")
    shaped_nodes.shape(order[0], Link(rate_mbit=0.5))  # 100 s for the file from the best replica
    pool.get_file("big.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    assert first in pool.stat("big.bin").replicas  # a slow link is not a bad copy
    assert pool.health.state(order[0]) != Health.DOWN
    pool.close()


def test_a_node_250_ms_away_is_not_marked_down(shaped_nodes: ShapedNodes, tmp_path: Path) -> None:
    pool = shaped_nodes.open_pool(fresh_bucket(), tmp_path / "c.sqlite3", timeouts=WAN_TIMEOUTS)
    shaped_nodes.shape("node3", Link(rtt_ms=250, jitter_ms=60))
    states = []
    for i in range(8):
        pool.refresh_health(max_age=0)
        info = pool.put_bytes(f"f/{i}.txt", os.urandom(4096))
        assert pool.read_bytes(info.path)
        states.append(pool.health.state("node3"))
    assert Health.DOWN not in states, states
    assert pool.health.get("node3").latency > 0.15
    assert "node3" in pool.writable_nodes()
    pool.close()


def test_an_upload_over_a_link_that_resets_resumes_from_the_last_good_part(shaped_nodes: ShapedNodes,
                                                                            tmp_path: Path) -> None:
    """Two nodes, R=2: no other node to fall back to. node1's link drops every connection after 12 MB, so the
    second 8 MB part on a connection is cut; the part is sent again on a new connection and the upload
    completes without starting over."""
    pool = shaped_nodes.open_pool(fresh_bucket(), tmp_path / "c.sqlite3", timeouts=WAN_TIMEOUTS,
                                  nodes=["node1", "node2"])
    shaped_nodes.server.api.add_toxic(f"{shaped_nodes.tag}-node1", {
        "name": "cut", "type": "limit_data", "stream": "upstream", "toxicity": 1.0,
        "attributes": {"bytes": 12 * 1024 * 1024}})
    src = tmp_path / "video.bin"
    src.write_bytes(os.urandom(40 * 1024 * 1024))
    info = pool.put_file(src, "video.bin")
    assert sorted(info.replicas) == ["node1", "node2"]
    shaped_nodes.shape("node1", Link())
    for node in ("node1", "node2"):
        obj = shaped_nodes.raw_client(node).get_object(pool.cfg.bucket, "video.bin")
        assert obj.read() == src.read_bytes()
    assert pool.client("node1").retries >= 1
    pool.close()


def test_a_large_file_is_read_from_both_replicas_and_a_thin_link_does_not_hold_the_tail(
        shaped_nodes: ShapedNodes, tmp_path: Path) -> None:
    pool = shaped_nodes.open_pool(fresh_bucket(), tmp_path / "c.sqlite3", timeouts=WAN_TIMEOUTS,
                                  nodes=["node1", "node2"])
    src = tmp_path / "film.bin"
    src.write_bytes(os.urandom(72 * 1024 * 1024))  # 9 ranges
    pool.put_file(src, "film.bin")
    pool.journal.flush()
    before = _served(pool, ["node1", "node2"])
    pool.get_file("film.bin", tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == src.read_bytes()
    mid = _served(pool, ["node1", "node2"])
    assert mid["node1"] - before["node1"] >= 2 and mid["node2"] - before["node2"] >= 2, (before, mid)
    shaped_nodes.shape("node2", Link(rate_mbit=8))  # 8 s per range
    pool.get_file("film.bin", tmp_path / "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == src.read_bytes()
    after = _served(pool, ["node1", "node2"])
    assert after["node1"] - mid["node1"] >= 7, (mid, after)  # the fast link took nearly every range
    assert not list(tmp_path.glob(".*pooldrive-part"))
    pool.close()


def test_a_thin_link_does_not_hold_a_write_another_node_can_take(shaped_nodes: ShapedNodes, tmp_path: Path) -> None:
    """R=2 over three nodes; the second node in a file's write order crawls at 0.3 Mbit/s (27 s for 1 MB). The
    third node races it (the first, the arbiter of concurrent writes, must be waited for: every writer has
    to agree on it) and the write finishes with two fast copies; the crawling copy is taken back when it
    ends, so the nodes hold exactly what the catalog says."""
    pool = shaped_nodes.open_pool(fresh_bucket(), tmp_path / "c.sqlite3", timeouts=WAN_TIMEOUTS,
                                  nodes=["node1", "node2", "node3"])
    key = "slow/report.pdf"
    slow = write_order(key, pool.specs(), 2, ["node1", "node2", "node3"])[1]
    shaped_nodes.shape(slow, Link(rate_mbit=0.3))
    data = os.urandom(1024 * 1024)
    info = pool.put_bytes(key, data)
    assert slow not in info.replicas and len(info.replicas) == 2
    assert pool.read_bytes(key) == data
    shaped_nodes.shape(slow, Link())  # the overtaken copy now ends at once, and is taken back
    deadline = time.monotonic() + 20
    while slow in shaped_nodes.holders(pool.cfg.bucket, key) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(shaped_nodes.holders(pool.cfg.bucket, key)) == sorted(info.replicas)
    pool.close()


def test_a_download_over_a_link_that_keeps_dropping_resumes_from_where_it_stopped(shaped_nodes: ShapedNodes,
                                                                                  tmp_path: Path) -> None:
    """The only reachable copy sits behind a link that cuts every connection after 12 MB: a 40 MB file still
    arrives whole, each new connection continuing at the byte where the last one stopped."""
    pool = shaped_nodes.open_pool(fresh_bucket(), tmp_path / "c.sqlite3", timeouts=WAN_TIMEOUTS,
                                  nodes=["node1", "node2"])
    src = tmp_path / "video.bin"
    src.write_bytes(os.urandom(40 * 1024 * 1024))
    pool.put_file(src, "video.bin")
    shaped_nodes.cut("node2")
    shaped_nodes.server.api.add_toxic(f"{shaped_nodes.tag}-node1", {
        "name": "cut", "type": "limit_data", "stream": "downstream", "toxicity": 1.0,
        "attributes": {"bytes": 12 * 1024 * 1024}})
    before = pool.client("node1").requests
    pool.get_file("video.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    gets = pool.client("node1").requests - before
    assert 4 <= gets <= 6, gets  # one request per 12 MB: never from the start again
    shaped_nodes.cut("node2", False)
    pool.close()


def test_a_folder_upload_leaves_a_thin_link_to_the_path_that_races_it(shaped_nodes: ShapedNodes,
                                                                      tmp_path: Path) -> None:
    """New small files go up in batches, which do not race a slow node. node2's link is thin (0.5 Mbit/s) with a
    LAN's round trip, so nothing says so before its first copies: those take long, node2 is left to the full
    path for the rest of the upload, and there the next node races it. Every file has its two copies, and
    fewer files than placed there wait on node2's link. (Toxiproxy limits each connection, not the link.)"""
    from sync_agent import api

    pool = shaped_nodes.open_pool(fresh_bucket(), tmp_path / "c.sqlite3", timeouts=WAN_TIMEOUTS,
                                  nodes=["node1", "node2", "node3"])
    pool.refresh_health(max_age=0)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(48):
        (src / f"f{i:02d}.bin").write_bytes(os.urandom(64 * 1024))
    shaped_nodes.shape("node2", Link(rate_mbit=0.5))  # per connection: 1 s for each 64 KB copy
    result = api.put_tree(pool, src, "up")
    assert result.ok and len(result.done) == 48
    names = [f"up/f{i:02d}.bin" for i in range(48)]
    everyone = ["node1", "node2", "node3"]
    meant = [k for k in names if "node2" in write_order(k, pool.specs(), 2, everyone)[:2]]
    held = [k for k in names if "node2" in pool.catalog.get(k).replicas]  # type: ignore[union-attr]
    assert all(len(pool.catalog.get(k).replicas) == 2 for k in names)  # type: ignore[union-attr]
    assert len(held) < len(meant), (len(held), len(meant))
    shaped_nodes.shape("node2", Link())
    pool.close()


def test_a_folder_upload_over_a_link_that_resets_connections_loses_nothing_and_conflicts_with_nothing(
        shaped_nodes: ShapedNodes, tmp_path: Path) -> None:
    """node2's link resets a third of its connections once they carry data. A batch copy cut after its
    request went out may be on the node: it is looked for, and whatever the full path then meets there is
    known as this device's own given-up write, never as another device's (a reset was once taken for a
    failed connect, and `pooldrive put` failed with 'changed on the pool by another device'). Every file
    ends with its two copies, and once the intents are settled no node holds a copy the catalog does not
    record."""
    from sync_agent import api, writer

    pool = shaped_nodes.open_pool(fresh_bucket(), tmp_path / "c.sqlite3", timeouts=WAN_TIMEOUTS,
                                  nodes=["node1", "node2", "node3"])
    pool.refresh_health(max_age=0)
    src = tmp_path / "src"
    files = _folder(src, 60, 48 * 1024)
    shaped_nodes.shape("node2", Link(resets=0.33))
    try:
        result = api.put_tree(pool, src, "up")
        assert result.ok and len(result.done) == len(files), result.failed
    finally:
        shaped_nodes.shape("node2", Link())
    writer.recover_intents(pool)
    assert not pool.catalog.intents("put")
    recorded = {(n, k) for k in files for n in pool.catalog.get(k).replicas}  # type: ignore[union-attr]
    assert all(len(pool.catalog.get(k).replicas) == 2 for k in files)  # type: ignore[union-attr]
    held = {(n, o.object_name) for n in ("node1", "node2", "node3")
            for o in shaped_nodes.raw_client(n).list_objects(pool.cfg.bucket, prefix="up/", recursive=True)}
    assert held == recorded, (sorted(held - recorded), sorted(recorded - held))
    assert all(pool.read_bytes(k) == d for k, d in files.items())
    pool.close()


def test_a_folder_upload_starts_the_files_for_a_far_node_while_its_batches_go_on(
        shaped_nodes: ShapedNodes, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Batches take only copies for near nodes; a file with a copy for a node 120 ms away is handed to the
    full path, which races that node. It starts as soon as it is handed back, not after the last batch:
    one phase after the other left a WAN upload's cores a quarter idle."""
    from sync_agent import api, batch, small_writes

    pool = shaped_nodes.open_pool(fresh_bucket(), tmp_path / "c.sqlite3", timeouts=WAN_TIMEOUTS,
                                  nodes=["node1", "node2", "node3"])
    shaped_nodes.shape("node3", Link(rtt_ms=120))
    try:
        pool.refresh_health(max_age=0)
        src = tmp_path / "src"
        files = _folder(src, 200, 8 * 1024)
        full_starts: list[float] = []
        batches_end: list[float] = []
        put_file, put_new = batch.writer.put_file, small_writes.put_new

        def full(*args, **kw):  # type: ignore[no-untyped-def]
            full_starts.append(time.monotonic())
            return put_file(*args, **kw)

        def batches(*args, **kw):  # type: ignore[no-untyped-def]
            try:
                return put_new(*args, **kw)
            finally:
                batches_end.append(time.monotonic())

        monkeypatch.setattr(batch.writer, "put_file", full)
        monkeypatch.setattr(small_writes, "put_new", batches)
        result = api.put_tree(pool, src, "up")
        assert result.ok and len(result.done) == len(files), result.failed
        assert full_starts and batches_end and min(full_starts) < batches_end[0]
        assert all(len(pool.catalog.get(k).replicas) == 2 for k in files)  # type: ignore[union-attr]
        assert all(pool.read_bytes(k) == d for k, d in files.items())
    finally:
        shaped_nodes.shape("node3", Link())
        pool.close()
