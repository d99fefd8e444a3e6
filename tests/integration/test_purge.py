"""Forgetting history for good (``pooldrive purge``): on real nodes, with another device, checked on the nodes
themselves with a plain S3 client, and through the real command."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sync_agent import history, rebuild
from sync_agent.errors import NameClashError, NotFoundError, RefusedError
from sync_agent.pool import Pool
from tests.conftest import fresh_bucket
from tests.integration.test_cli_real_paths import ROOT, home_env
from tests.nodepool import TEST_TIMEOUTS, NodePool
from tests.sync.test_agent_process import pool_file  # noqa: F401 - fixture


def stored(nodes: NodePool, bucket: str, key: str) -> list[tuple[str, str, bool]]:
    """What the nodes hold at ``key``: (node, S3 version id, is a delete marker), read without PoolDrive."""
    out = []
    for n in nodes.nodes:
        for o in nodes.raw_client(n.name).list_objects(bucket, prefix=key, include_version=True):
            if o.object_name == key:
                out.append((n.name, o.version_id, o.is_delete_marker))
    return out


def test_purge_forgets_replaced_versions_and_deleted_files_on_every_node_and_device(
        pool: Pool, shared_nodes: NodePool, tmp_path: Path) -> None:
    bucket = pool.cfg.bucket
    other = Pool(shared_nodes.config(bucket, name="other"), catalog_path=tmp_path / "other.sqlite3",
                 timeouts=TEST_TIMEOUTS)
    try:
        for text in (b"one", b"two", b"three"):
            pool.put_bytes("notes.txt", text)
        pool.put_bytes("old.txt", b"gone soon")
        pool.delete("old.txt")
        pool.put_bytes("photos", b"a file that was deleted; its name is wanted for a folder")
        pool.delete("photos")
        with pytest.raises(NameClashError):
            pool.put_bytes("photos/cat.jpg", b"cat")
        rebuild.refresh(other)
        cursor = other.journal.cursor()
        assert [v.number for v in other.versions("notes.txt")] == [3, 2, 1]

        doomed, report = pool.purge("notes.txt", dry_run=True)  # a dry run touches nothing
        assert sorted(d.number for d in doomed) == [1, 2] and report.bytes == (3 + 3) * 2
        assert len(stored(shared_nodes, bucket, "notes.txt")) == 6

        _, report = pool.purge("notes.txt")
        assert (report.versions, report.files, report.left) == (2, 0, [])
        assert [v.number for v in pool.versions("notes.txt")] == [3]
        current = {(r.node, r.version_id) for r in pool.stat("notes.txt").current.replicas}
        assert {(n, v) for n, v, _ in stored(shared_nodes, bucket, "notes.txt")} == current  # only these left
        assert pool.read_bytes("notes.txt") == b"three"

        _, report = pool.purge("old.txt")
        assert (report.versions, report.files) == (1, 1) and report.markers == 2
        assert stored(shared_nodes, bucket, "old.txt") == []  # nothing at all, not even a delete marker
        with pytest.raises(NotFoundError):
            pool.versions("old.txt")
        with pytest.raises(NotFoundError):  # said, not silently nothing
            pool.purge("old.txt")

        pool.purge("photos")
        pool.put_bytes("photos/cat.jpg", b"cat")  # the name is free for a folder now
        assert stored(shared_nodes, bucket, "photos") == []

        # the other device: the journal names what went; its catalog forgets the same
        pool.journal.flush()
        changes = other.journal.read(cursor)
        assert {"notes.txt", "old.txt", "photos"} <= changes.paths
        rebuild.refresh_paths(other, changes.paths, changes.folders)
        assert [v.number for v in other.versions("notes.txt")] == [3]
        assert other.catalog.get("old.txt", include_deleted=True) is None
        other.put_bytes("photos/dog.jpg", b"dog")  # no clash there either
        assert other.read_bytes("photos/cat.jpg") == b"cat"
    finally:
        other.close()


def test_purge_decides_on_what_the_nodes_hold_now_not_on_a_stale_catalog(pool: Pool, shared_nodes: NodePool,
                                                                          tmp_path: Path) -> None:
    """Another device restored a file this catalog still has as deleted: purging it keeps the restored version
    (and its own earlier ones are the only versions that go)."""
    other = Pool(shared_nodes.config(pool.cfg.bucket, name="other"), catalog_path=tmp_path / "other.sqlite3",
                 timeouts=TEST_TIMEOUTS)
    try:
        pool.put_bytes("report.txt", b"draft")
        pool.put_bytes("report.txt", b"final")
        pool.delete("report.txt")
        rebuild.refresh(other)
        assert other.catalog.get("report.txt") is None  # deleted, as far as this device knows
        pool.restore("report.txt", 2)  # meanwhile, elsewhere: back as version 3
        _, report = other.purge("report.txt")
        assert report.files == 0 and report.versions == 2  # versions 1 and 2, replaced; 3 is current
        assert pool.read_bytes("report.txt") == b"final"
        rebuild.refresh(pool)
        assert [v.number for v in pool.versions("report.txt")] == [3]
    finally:
        other.close()


def test_purge_by_age_keeps_what_is_recent_and_refuses_with_a_node_unreadable(fault_pool: Pool,
                                                                              fault_nodes: NodePool) -> None:
    fault_pool.put_bytes("a.txt", b"1")
    fault_pool.put_bytes("a.txt", b"2")
    fault_pool.put_bytes("dir/b.txt", b"b")
    fault_pool.delete("dir/b.txt")
    now = time.time()
    doomed, _ = history.purge(fault_pool, "", older_than_days=30, dry_run=True, now=now)
    assert doomed == []  # replaced and deleted a moment ago
    doomed, _ = history.purge(fault_pool, "", older_than_days=30, dry_run=True, now=now + 31 * history.DAY)
    assert sorted((d.path, d.number) for d in doomed) == [("a.txt", 1), ("dir/b.txt", 1)]
    holder = fault_pool.stat("a.txt").current.replicas[0].node
    fault_nodes[holder].freeze()
    try:
        with pytest.raises(RefusedError, match="Nothing was purged"):
            history.purge(fault_pool, "", older_than_days=30, now=now + 31 * history.DAY)
    finally:
        fault_nodes[holder].thaw()
    assert [v.number for v in fault_pool.versions("a.txt")] == [2, 1]


def test_the_purge_command(pool_file, tmp_path: Path) -> None:  # noqa: F811
    cfg, writer = pool_file
    home = tmp_path / "home"

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(cfg), *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, env=home_env(home), input=stdin)
        assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
        return r

    name = "Reports 2025/résumé final.txt"
    for text in (b"v1", b"v2"):
        writer.put_bytes(name, text)
    writer.put_bytes("Reports 2025/deleted.txt", b"x")
    writer.delete("Reports 2025/deleted.txt")
    writer.journal.flush()

    r = run("purge")
    assert r.returncode == 2 and "--older-than" in r.stderr
    r = run("purge", "Reports 2025", "--older-than", "soon")
    assert r.returncode == 2 and "not an age" in r.stderr
    r = run("purge", "Reports 2025", "--dry-run")
    assert r.returncode == 0 and "Would forget 2 version(s), 1 deleted file(s) whole" in r.stdout, r.stdout
    r = run("purge", "Reports 2025")  # not a terminal, no --yes: refused, nothing gone
    assert r.returncode == 2 and "--yes" in r.stderr
    r = run("purge", "Reports 2025", "--older-than", "30d", "--yes")
    assert r.returncode == 0 and "Nothing to purge" in r.stdout
    r = run("purge", "Reports 2025", "--yes", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"dry_run": False, "versions": 2, "files": 1, "bytes": 2 * 2 + 1 * 2,
                                    "markers": 2, "left": []}  # the deleted file's two markers too
    r = run("versions", name, "--json")
    assert r.returncode == 0 and [v["number"] for v in json.loads(r.stdout)] == [2]
    assert run("get", name, "-").stdout == "v2"
    r = run("purge", "no such thing", "--yes")
    assert r.returncode == 2 and "no history" in r.stderr


def test_a_share_recipient_cannot_purge(shared_nodes: NodePool, tmp_path: Path) -> None:
    """The history of a shared folder is its owner's: the recipient's PoolDrive refuses before any request."""
    import dataclasses

    cfg = dataclasses.replace(shared_nodes.config(fresh_bucket(), name="from-alice"), prefix="photos",
                              shared_by="alice")
    recipient = Pool(cfg, catalog_path=tmp_path / "recipient.sqlite3", timeouts=TEST_TIMEOUTS)
    try:
        before = sum(c.requests for c in recipient.clients.values())
        with pytest.raises(RefusedError, match="alice"):
            recipient.purge("photos/old.jpg")
        assert sum(c.requests for c in recipient.clients.values()) == before
    finally:
        recipient.close()
