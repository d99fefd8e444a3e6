from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from sync_agent.catalog.migrations import current_version
from sync_agent.catalog.models import SCHEMA_VERSION
from sync_agent.catalog.store import Catalog, _Op
from sync_agent.errors import CatalogUnreadableError, ConfigError


def _commit(cat: Catalog, path: str, number: int, fid: str = "f1", nodes=("a", "b")) -> None:
    cat.commit_version(file_id=fid, path=path, number=number, key=path, size=number, sha256=f"s{number}",
                       mtime=1.0, replicas=[(n, f"v{number}{n}") for n in nodes])


def test_versions_deletes_and_listing(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    _commit(cat, "docs/a.txt", 1)
    _commit(cat, "docs/a.txt", 2)
    _commit(cat, "docs/sub/b.txt", 1, fid="f2")
    info = cat.get("docs/a.txt")
    assert info and info.version == 2 and sorted(info.replicas) == ["a", "b"]
    assert [v.number for v in cat.versions("docs/a.txt")] == [2, 1]
    names = [(e.name, e.is_dir) for e in cat.list_dir("docs/")]
    assert names == [("sub", True), ("a.txt", False)]
    cat.mark_deleted("docs/a.txt")
    assert cat.get("docs/a.txt") is None
    assert cat.get("docs/a.txt", include_deleted=True).deleted  # history kept, restorable
    assert cat.file_id_for("docs/a.txt") == ("f1", 3)  # a new file there continues the history
    assert cat.count() == (1, 1)


def test_a_new_file_replaces_the_live_one_at_its_path(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    _commit(cat, "x", 1, fid="old")
    _commit(cat, "x", 1, fid="new")
    assert cat.get("x").id == "new"
    assert cat.get_by_id("old").deleted


def test_schema_version_recorded_and_migration_backs_up_first(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cat = Catalog(path)
    assert current_version(cat.db, cat.m) == SCHEMA_VERSION
    cat.close()
    # pretend the file came from schema 0 with data in it: opening it must back it up before migrating
    con = sqlite3.connect(path)
    con.execute("DELETE FROM schema_version")
    con.execute("DROP TABLE intent")
    con.commit()
    con.close()
    Catalog(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(ConfigError, match="newer PoolDrive"):
        Catalog(path)


def test_a_catalog_is_filled_only_by_a_complete_read_and_an_unreadable_one_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cat = Catalog(path)
    assert cat.fresh and not cat.filled
    cat.mark_filled()
    cat.close()
    cat = Catalog(path)
    assert not cat.fresh and cat.filled
    cat.clear()  # a rebuild starts over: not filled until it completes
    assert not cat.filled
    cat.close()
    empty = tmp_path / "empty.sqlite3"
    empty.write_bytes(b"")
    assert not Catalog(empty).filled
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(os.urandom(8192))
    with pytest.raises(CatalogUnreadableError, match="catalog rebuild"):
        Catalog(junk)
    assert Catalog(None).filled  # an in-memory catalog (pure tests) has no nodes to wait for


def test_intents(tmp_path: Path) -> None:
    cat = Catalog(None)
    i = cat.add_intent("put", "a", "f", 1, nodes=[])
    cat.update_intent(i, nodes=["n1"])
    assert cat.intents("put")[0].payload == {"nodes": ["n1"]}
    cat.remove_intent(i)
    assert cat.intents() == []


def test_a_version_1_catalog_is_backed_up_then_migrated(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    Catalog(path).close()
    con = sqlite3.connect(path)  # make it look like a catalog written by schema 1, with a file in it
    con.execute("DROP TABLE share")
    con.execute("ALTER TABLE replica DROP COLUMN etag")
    con.execute("DROP TABLE catalog_meta")
    con.execute("DROP INDEX version_key")
    con.execute("DELETE FROM schema_version WHERE version > 1")
    con.execute("INSERT INTO file (id, path, size, sha256, mtime, version, deleted, updated_at) "
                "VALUES ('f', 'kept.txt', 1, 's', 0, 0, 0, 0)")
    con.commit()
    con.close()
    cat = Catalog(path)
    assert current_version(cat.db, cat.m) == SCHEMA_VERSION == 7
    assert "version_key" in {i.name for i in cat.db.get_indexes("version")}
    assert not cat.filled  # an older catalog may hold a partial read: the next complete one says filled
    assert {"history", "view"} <= {c.name for c in cat.db.get_columns("share")}
    assert cat.db.table_exists("share")
    assert "etag" in {c.name for c in cat.db.get_columns("replica")}
    assert cat.get("kept.txt") is not None
    backups = list(tmp_path.glob("c.sqlite3.v1.*.bak"))
    assert len(backups) == 1
    old = sqlite3.connect(backups[0])
    assert old.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1
    old.close()


def test_writes_from_many_threads_commit_together_and_each_gets_its_own_result(tmp_path: Path) -> None:
    """Group commit: writes queued while another commit runs go in one transaction; a write that fails
    fails alone (the others are committed, each caller sees its own result)."""
    import threading
    import time

    cat = Catalog(tmp_path / "c.sqlite3")
    results: dict[int, object] = {}

    intents = {i: cat.add_intent("put", f"f{i}.txt", f"id{i}", 1, nodes=["a", "b"]) for i in range(30)}

    def write(i: int) -> None:
        try:
            cat.commit_write(intents[i], file_id=f"id{i}", path=f"f{i}.txt", number=1, key=f"f{i}.txt", size=i,
                             sha256=f"s{i}", mtime=1.0, replicas=[("a", "v1"), ("b", "v2")])
            results[i] = intents[i]
        except Exception as e:  # pragma: no cover - shown by the assert below
            results[i] = e

    def broken() -> None:
        try:
            cat._group.run(lambda: cat.db.execute_sql("INSERT INTO no_such_table VALUES (1)"))
        except Exception as e:
            results[-1] = e

    def wave(targets: list) -> None:  # type: ignore[type-arg]
        """All of them arrive while a commit is in progress: the first leads (and waits for the lock the test
        holds), every other one queues behind it (waited for, not slept for: a busy machine is slow to start
        threads)."""
        with cat._write_lock:
            threads = [threading.Thread(target=t, args=a) for t, a in targets]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 20
            while len(cat._group._queue) < len(targets) - 1 and time.monotonic() < deadline:
                time.sleep(0.01)
        for t in threads:
            t.join(10)

    before = cat._group.commits
    wave([(write, (i,)) for i in range(24)])
    assert all(isinstance(v, int) for v in results.values()) and len(set(results.values())) == 24, results
    assert cat._group.commits - before == 2  # the leader's own write, then the 23 queued behind it at once
    wave([(write, (i,)) for i in range(24, 30)] + [(broken, ())])
    assert "no such table" in str(results.pop(-1))  # its own error, and only its own
    assert all(isinstance(v, int) for v in results.values()) and len(results) == 30, results
    assert not cat.intents("put")
    assert sorted(f.path for f in cat.walk()) == sorted(f"f{i}.txt" for i in range(30))


def test_a_writer_interrupted_while_waiting_passes_on_the_lead_it_was_handed() -> None:
    """Ctrl+C while a write waits for its commit: left holding the lead of the next commit, it would make
    every later catalog write wait forever; it gives up its place and the next writer leads."""
    cat = Catalog(None)
    group = cat._group
    handed, behind = _Op(lambda: 1), _Op(lambda: 2)
    group._busy, handed.lead, group._queue = True, True, [handed, behind]
    group._leave(handed)
    assert group._queue == [behind] and behind.lead and behind.wake.acquire(blocking=False)
    group._leave(behind)  # the last one: no commit runs any more, the next write leads at once
    assert not group._busy and not group._queue
    assert cat.add_intent("put", "a.txt", "f", 1) > 0


def test_a_catalog_gives_back_its_page_cache_and_keeps_its_rows(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    for i in range(50):
        cat.commit_version(file_id=f"f{i}", path=f"p{i}.txt", number=1, key=f"p{i}.txt", size=1, sha256="0" * 64,
                           mtime=0.0, replicas=[("node1", None)])
    cat.shrink()
    assert len(list(cat.walk())) == 50


def test_a_walk_by_pages_yields_what_one_walk_does(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    for i in range(11):
        _commit(cat, f"docs/f{i:02d}.txt", 1, fid=f"d{i}", nodes=("a", "b", "c")[: 1 + i % 3])
    _commit(cat, "docs-other/x.txt", 1, fid="o1")  # beside the folder, not in it
    _commit(cat, "top.txt", 2, fid="t1")
    cat.mark_deleted("docs/f03.txt")
    for prefix in ("", "docs/"):
        whole = list(cat.walk(prefix))
        for page in (1, 3, 10, 2000):
            assert list(cat.walk_pages(prefix, page=page)) == whole, (prefix, page)
    assert len(list(cat.walk_pages("docs/", page=3))) == 10


def test_a_transaction_that_reads_first_still_writes_after_another_process_committed(tmp_path: Path) -> None:
    """A full refresh merges hundreds of files per transaction, reading before it writes, while the agent or a
    command commits to the same catalog from another connection. A transaction that only took SQLite's write
    lock at its first write could then not write at all ('database is locked': its snapshot was stale)."""
    import threading
    import time

    mine, theirs = Catalog(tmp_path / "c.sqlite3"), Catalog(tmp_path / "c.sqlite3")
    _commit(mine, "a.txt", 1, fid="fa")
    _commit(mine, "b.txt", 1, fid="fb")
    other = threading.Thread(target=lambda: (time.sleep(0.1), theirs.mark_deleted("b.txt")))
    with mine.atomic():
        assert mine.get("a.txt") is not None  # the transaction reads first
        other.start()
        time.sleep(0.4)  # the other connection's commit comes now, or waits for this one
        mine.mark_deleted("a.txt")
    other.join()
    assert mine.get("a.txt") is None and mine.get("b.txt") is None
    mine.close()
    theirs.close()
