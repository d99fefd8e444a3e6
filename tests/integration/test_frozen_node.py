"""A node that freezes (SIGSTOP) while files are saved or downloaded: the work goes on without it in
seconds, not after the read timeout, and whatever it stores once it runs again is taken back (#16)."""

from __future__ import annotations

import time
from pathlib import Path

from sync_agent import batch, rebuild
from sync_agent.monitor import HealthMonitor
from sync_agent.node_types import Timeouts
from sync_agent.placement import Health, write_order
from sync_agent.pool import Pool
from tests.nodepool import NodePool

READ_TIMEOUT = 30.0  # far above what a save may take here: a wait for it cannot pass unnoticed


def _wait(cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return bool(cond())


def test_an_edit_whose_arbiter_froze_is_saved_without_it_and_its_late_copy_taken_back(fault_nodes: NodePool,
                                                                                      tmp_path: Path) -> None:
    """The first copy of an edit goes to the path's arbiter (its compare-and-swap decides between two
    devices saving at once), and nothing races it. Frozen, it used to hold the save for the whole read
    timeout (20 s by default). Now the save waits ``answer_timeout`` (3 s on a LAN), writes its copies
    elsewhere and counts the silence against the node. The request stays on the frozen node's socket; once
    the node runs again it stores that copy, which the write never recorded, and it is taken back."""
    pool = fault_nodes.open_pool("arbiter-frozen", tmp_path / "c.sqlite3",
                                 timeouts=Timeouts(connect=3.0, read=READ_TIMEOUT, retries=0))
    try:
        key = "docs/plan.txt"
        first = pool.put_bytes(key, b"version one")
        arbiter = write_order(key, pool.specs(), 2, [n.name for n in pool.cfg.nodes])[0]
        assert arbiter in first.replicas
        fault_nodes[arbiter].freeze()
        try:
            start = time.monotonic()
            info = pool.put_bytes(key, b"version two")
            took = time.monotonic() - start
            assert took < READ_TIMEOUT / 3, took
            assert arbiter not in info.replicas and len(info.replicas) == 2
            assert pool.health.state(arbiter) != Health.UP  # the silence counted against it
            assert pool.read_bytes(key) == b"version two"
        finally:
            fault_nodes[arbiter].thaw()
        # the frozen node now answers the request it held: its copy of version two is taken back
        client = pool.client(arbiter)
        assert _wait(lambda: pool.health.get(arbiter).inflight == 0, READ_TIMEOUT)  # the held request answered
        one = first.current.sha256  # type: ignore[union-attr]
        assert _wait(lambda: client.stat(key).meta.get("sha256") == one, 10)  # its copy taken back (or never made)
        assert pool.catalog.intents() == []
        assert sorted(fault_nodes.holders(pool.cfg.bucket, key)) == sorted({*info.replicas, arbiter})
    finally:
        pool.close()


def test_a_node_that_fails_a_request_is_probed_at_once(fault_nodes: NodePool, tmp_path: Path) -> None:
    """One failed request makes a node degraded; the health monitor probes it at once instead of at its
    next round, so the second failure that makes it down (and writes stop choosing it) comes within the
    probe's timeout, not an interval later."""
    pool = fault_nodes.open_pool("probe-at-once", tmp_path / "c.sqlite3",
                                 timeouts=Timeouts(connect=3.0, read=READ_TIMEOUT, retries=0))
    monitor = HealthMonitor(pool, interval=120.0)
    try:
        pool.refresh_health(max_age=0)
        monitor.start()
        assert _wait(lambda: pool.health.get("node3").checked_at > 0, 10)
        time.sleep(0.5)  # the first round is over
        fault_nodes["node3"].freeze()
        try:
            pool.health.record("node3", False, error="no answer")  # as a write that waited in vain does
            assert pool.health.state("node3") == Health.DEGRADED
            assert _wait(lambda: pool.health.state("node3") == Health.DOWN, 15)  # the interval is 120 s
        finally:
            fault_nodes["node3"].thaw()
    finally:
        monitor.stop()
        pool.close()


def test_a_write_probes_only_the_nodes_not_heard_from(pool: Pool) -> None:
    """A write refreshes the nodes' health when it is stale. Any answer, or failure, counts as word from a
    node: one heard from lately is not probed again (with the agent's monitor running, a write never waits
    on the probe of a node that froze)."""
    pool.refresh_health(max_age=0)
    time.sleep(0.4)
    pool.health.record("node1", True, 0.001)  # an answer to some request, just now
    before = {n: pool.client(n).requests for n in pool.clients}
    pool.refresh_health(max_age=0.3)
    probed = {n for n in pool.clients if pool.client(n).requests > before[n]}
    assert probed == set(pool.clients) - {"node1"}
    before = {n: pool.client(n).requests for n in pool.clients}
    pool.refresh_health(max_age=10)  # what every write does first
    assert {n: pool.client(n).requests for n in pool.clients} == before


def test_bulk_transfers_with_a_frozen_node_wait_the_quick_timeout_not_the_read_timeout(fault_nodes: NodePool,
                                                                                       tmp_path: Path) -> None:
    """A folder of small files up and down while node2 is frozen and not yet known to be. The one-request
    fast paths (the batch's PUTs, the download's GETs) give up after ``Timeouts.quick`` and hand their file
    to the full path, which goes elsewhere; nothing waits for the read timeout."""
    pool = fault_nodes.open_pool("bulk-frozen", tmp_path / "c.sqlite3",
                                 timeouts=Timeouts(connect=3.0, read=READ_TIMEOUT, retries=0, quick=2.0))
    try:
        src = tmp_path / "src"
        files = {}
        for i in range(40):
            p = src / f"d{i % 4}" / f"f{i:03d}.txt"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(files.setdefault(f"old/d{i % 4}/f{i:03d}.txt", f"old file {i}".encode() * 50))
        assert batch.put_tree(pool, src, "old").ok
        on_node2 = [k for k in files if "node2" in pool.stat(k).replicas]
        assert on_node2
        pool.refresh_health(max_age=0)
        fault_nodes["node2"].freeze()
        try:
            start = time.monotonic()
            down = batch.get_tree(pool, "old", tmp_path / "down")
            took_down = time.monotonic() - start
            for i in range(40):
                (src / f"d{i % 4}" / f"new{i:03d}.txt").write_bytes(f"new file {i}".encode() * 50)
            start = time.monotonic()
            up = batch.put_tree(pool, src, "new")
            took_up = time.monotonic() - start
        finally:
            fault_nodes["node2"].thaw()
        assert down.ok and len(down.done) == 40
        for key, data in files.items():
            assert (tmp_path / "down" / key.removeprefix("old/")).read_bytes() == data
        assert up.ok and len(up.done) == 80
        for i in range(40):
            info = pool.stat(f"new/d{i % 4}/new{i:03d}.txt")
            assert len(info.replicas) == 2 and "node2" not in info.replicas
        assert took_down < READ_TIMEOUT / 3, took_down
        assert took_up < READ_TIMEOUT / 3, took_up
    finally:
        pool.close()


def test_the_change_journal_goes_round_a_frozen_node(fault_nodes: NodePool, tmp_path: Path) -> None:
    """Entries go to the first two healthy nodes in name order, and readers poll those. node1 frozen and
    not yet known to be: the writer puts the entry on both at once (node2 has it at once) and the reader's
    listing of node1 gives up after the quick timeout, so the change reaches the other device in seconds,
    not after two read timeouts (21.7 s between two real agents before); the look at the paths it names
    lists each node with the quick timeout too (a frozen node's copies stay as the catalog knew them)."""
    timeouts = Timeouts(connect=3.0, read=READ_TIMEOUT, retries=0)
    a = fault_nodes.open_pool("journal-frozen", tmp_path / "a.sqlite3", timeouts=timeouts)
    b = fault_nodes.open_pool("journal-frozen", tmp_path / "b.sqlite3", init=False, timeouts=timeouts)
    try:
        a.refresh_health(max_age=0)
        b.refresh_health(max_age=0)
        cursor = b.journal.cursor()
        assert b.journal.writer_nodes() == ["node1", "node2"]
        fault_nodes["node1"].freeze()
        try:
            start = time.monotonic()
            a.put_bytes("journal/x.txt", b"from a")  # node1 may hold a copy: the arbiter's wait counts too
            a.journal.flush()
            written = time.monotonic() - start
            start = time.monotonic()
            changes = b.journal.read(cursor, ["node1", "node2"])
            rebuild.refresh_paths(b, changes.paths)  # what the entry names, looked at on every node
            read = time.monotonic() - start
        finally:
            fault_nodes["node1"].thaw()
        assert "journal/x.txt" in changes.paths
        assert b.read_bytes("journal/x.txt") == b"from a"
        assert written < READ_TIMEOUT / 3, written
        assert read < READ_TIMEOUT / 3, read
    finally:
        a.close()
        b.close()


def test_a_large_download_from_both_copies_goes_on_without_a_frozen_one(fault_nodes: NodePool,
                                                                        tmp_path: Path) -> None:
    """A large file is read from both holders at once, range by range. One holder frozen: its streams wait
    the quick timeout, not the read timeout, for an answer or the next bytes, and the other holder's
    streams take its ranges. (The download used to sit at 100 % until the read timeout, waiting for them.)"""
    import os

    from sync_agent.striped_read import STRIPE_MIN

    pool = fault_nodes.open_pool("striped-frozen", tmp_path / "c.sqlite3",
                                 timeouts=Timeouts(connect=3.0, read=READ_TIMEOUT, retries=0))
    try:
        src = tmp_path / "big.bin"
        with open(src, "wb") as f:
            for _ in range(STRIPE_MIN // (1 << 20) + 16):
                f.write(os.urandom(1 << 20))
        info = pool.put_file(src, "big.bin")
        pool.refresh_health(max_age=0)
        fault_nodes[info.replicas[0]].freeze()
        try:
            start = time.monotonic()
            out = pool.get_file("big.bin", tmp_path / "out.bin")
            took = time.monotonic() - start
        finally:
            fault_nodes[info.replicas[0]].thaw()
        assert out.read_bytes() == src.read_bytes()
        assert took < READ_TIMEOUT / 3, took
    finally:
        pool.close()
