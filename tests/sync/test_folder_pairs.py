"""Issue 17: several folder pairs served by one agent per pool, driven through the real `pooldrive` command.

Everything here is what a person types: `sync add`, `sync start`, `sync list`, `sync remove`, `sync stop`,
with a home of its own (config, state, catalog), and real nodes on the other side.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sync_agent import rebuild
from sync_agent.errors import UsageError
from sync_agent.pool import Pool
from tests.integration.test_cli_real_paths import run
from tests.sync.test_agent_process import pool_file, wait_until  # noqa: F401 - fixture


def _on_pool(pool: Pool, key: str) -> bool:
    rebuild.refresh_paths(pool, [key])  # what the nodes hold now, not this test's catalog
    return pool.exists(key)


def _pairs(cfg: Path, home: Path) -> dict[str, dict]:
    r = run(cfg, home, "sync", "list", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return {p["folder"]: p for p in json.loads(r.stdout)}


def test_two_folder_pairs_on_one_agent_and_pairs_added_and_removed_while_it_runs(
        pool_file: tuple[Path, Pool], tmp_path: Path) -> None:  # noqa: F811
    cfg, pool = pool_file
    home = tmp_path / "home"
    photos, work, music = tmp_path / "Photos", tmp_path / "Work Files", tmp_path / "Müsik"
    pool.put_bytes("photos/on-pool.jpg", b"already there")  # a non-empty pool folder...
    pool.put_bytes("photos/both.txt", b"pool side")
    pool.put_bytes("elsewhere/not-mine.txt", b"x")
    photos.mkdir()
    (photos / "local.jpg").write_bytes(b"from the laptop")  # ...linked to a non-empty local folder
    (photos / "both.txt").write_bytes(b"local side")

    for local, remote in ((photos, "photos"), (work, "/work/")):
        r = run(cfg, home, "sync", "add", str(local), "--to", remote)
        assert r.returncode == 0, r.stdout + r.stderr
    # pairs never overlap, locally or on the pool, and say which pair is in the way
    for local, remote, why in ((photos / "sub", "other", "inside"), (tmp_path / "x", "photos/2024", "overlaps"),
                               (tmp_path / "y", "/", "whole pool"), (tmp_path, "z", "holds")):
        r = run(cfg, home, "sync", "add", str(local), "--to", remote)
        assert r.returncode == UsageError.exit_code and why in r.stdout + r.stderr, (local, remote, r.stdout)
    assert set(_pairs(cfg, home)) == {str(photos), str(work)}

    r = run(cfg, home, "sync", "start")
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        wait_until(lambda: all(p["state"] == "idle" for p in _pairs(cfg, home).values()), timeout=60,
                   what="both pairs idle")
        # both sides' content is kept: the pool's files arrive, the local ones go up, the clash keeps both
        assert (photos / "on-pool.jpg").read_bytes() == b"already there"
        wait_until(lambda: _on_pool(pool, "photos/local.jpg"), what="the local photo on the pool")
        conflicted = [p.name for p in photos.iterdir() if p.name.startswith("both")]
        assert len(conflicted) == 2, conflicted
        assert not (photos / "elsewhere").exists() and not (photos / "not-mine.txt").exists()
        # a change on the pool reaches the pair it belongs to, and no other
        pool.put_bytes("work/plan.txt", b"plan")
        wait_until(lambda: (work / "plan.txt").exists(), what="the pool's file in Work")
        assert not (photos / "plan.txt").exists() and not (photos / "work").exists()
        (work / "notes.txt").write_text("written on the laptop")
        wait_until(lambda: _on_pool(pool, "work/notes.txt"), what="the laptop's note on the pool")

        # a third pair, added while the agent runs, is served by the same agent at once
        pool.put_bytes("music/song.ogg", b"la")
        r = run(cfg, home, "sync", "add", str(music), "--to", "music")
        assert r.returncode == 0 and "syncs it now" in r.stdout, r.stdout + r.stderr
        wait_until(lambda: (music / "song.ogg").exists(), what="the new pair's first sync")
        pids = {json.loads(run(cfg, home, "sync", "status", "--json", "--folder", str(f)).stdout)["pid"]
                for f in (photos, work, music)}
        assert len(pids) == 1  # one agent, one socket

        # selective sync within a pair: a subfolder named by its path in the pair
        pool.put_bytes("photos/raw/big.raw", b"raw")
        wait_until(lambda: (photos / "raw" / "big.raw").exists(), what="the raw photo")
        r = run(cfg, home, "sync", "exclude", "raw", "--folder", str(photos))
        assert r.returncode == 0, r.stdout + r.stderr
        assert not (photos / "raw" / "big.raw").exists() and _on_pool(pool, "photos/raw/big.raw")
        pool.put_bytes("photos/raw/more.raw", b"more")
        pool.put_bytes("photos/after-exclude.jpg", b"x")
        wait_until(lambda: (photos / "after-exclude.jpg").exists(), what="a file beside the excluded folder")
        assert not (photos / "raw" / "more.raw").exists()

        # removed while running: its files stay, and it is no longer synced
        r = run(cfg, home, "sync", "remove", str(work))
        assert r.returncode == 0, r.stdout + r.stderr
        assert set(_pairs(cfg, home)) == {str(photos), str(music)}
        (work / "after.txt").write_text("not synced any more")
        (photos / "later.jpg").write_bytes(b"still synced")
        wait_until(lambda: _on_pool(pool, "photos/later.jpg"), what="a file of a pair still synced")
        assert not _on_pool(pool, "work/after.txt") and (work / "plan.txt").exists()
    finally:
        run(cfg, home, "sync", "stop")
    # the pairs are kept for the next start
    assert set(_pairs(cfg, home)) == {str(photos), str(music)}
    assert all(p["state"] == "stopped" for p in _pairs(cfg, home).values())


def test_a_folder_paired_again_with_another_pool_folder_loses_nothing(pool_file: tuple[Path, Pool],  # noqa: F811
                                                                     tmp_path: Path) -> None:
    """Its saved state belongs to the old pair: reused, every file it synced would look deleted on the new
    pool folder and be trashed. The state starts afresh instead; both sides' files are kept."""
    cfg, pool = pool_file
    home = tmp_path / "home"
    docs = tmp_path / "Docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"d{i}.txt").write_text(f"doc {i}")
    pool.put_bytes("archive/old.txt", b"in the archive")
    pool.put_bytes("archive/d0.txt", b"the archive's own d0")
    assert run(cfg, home, "sync", "add", str(docs), "--to", "docs").returncode == 0
    assert run(cfg, home, "sync", "start").returncode == 0
    try:
        wait_until(lambda: all(_on_pool(pool, f"docs/d{i}.txt") for i in range(5)), what="the docs on the pool")
    finally:
        run(cfg, home, "sync", "stop")
    assert run(cfg, home, "sync", "remove", str(docs)).returncode == 0
    assert run(cfg, home, "sync", "add", str(docs), "--to", "archive").returncode == 0
    assert run(cfg, home, "sync", "start").returncode == 0
    try:
        wait_until(lambda: (docs / "old.txt").exists(), what="the archive's file")
        wait_until(lambda: _on_pool(pool, "archive/d4.txt"), what="the folder's files in the archive")
        names = sorted(p.name for p in docs.iterdir() if p.is_file())
        assert [n for n in names if n.startswith("d") and "conflicted" not in n] == [f"d{i}.txt" for i in range(5)]
        assert len([n for n in names if n.startswith("d0") and "conflicted" in n]) == 1  # both d0 kept
        assert not (docs / ".pooldrive" / "trash").exists()  # nothing taken for deleted
    finally:
        run(cfg, home, "sync", "stop")


def test_a_shared_folder_no_pair_syncs_follows_the_owners_other_devices_within_seconds(
        pool_file: tuple[Path, Pool], shared_nodes, tmp_path: Path) -> None:  # noqa: F811
    """The owner's agent syncs only 'docs'; 'photos' is shared read-only without history. Another device of
    the owner adds and deletes photos: the share's view follows within seconds, read through the pool's
    journal by the agent (not only at its 5-minute re-read of the shared folders)."""
    from sync_agent.sharing import invitation

    cfg, pool = pool_file
    home = tmp_path / "home"
    pool.put_bytes("photos/a.jpg", b"a")
    pool.put_bytes("photos/b.jpg", b"b")
    assert run(cfg, home, "sync", "add", str(tmp_path / "Docs"), "--to", "docs").returncode == 0
    r = run(cfg, home, "sync", "start")
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        r = run(cfg, home, "share", "folder", "photos", "--read-only", "--out", str(tmp_path / "inv.txt"))
        assert r.returncode == 0, r.stdout + r.stderr
        inv = invitation.decode((tmp_path / "inv.txt").read_text().strip())
        scoped = [shared_nodes.s3(n.name, inv.access_key, inv.secret_key) for n in pool.cfg.nodes]

        def view() -> set[str]:
            return {o.object_name or "" for c in scoped for o in c.list_objects(inv.bucket, prefix="photos/")}

        assert view() == {"photos/a.jpg", "photos/b.jpg"}
        time.sleep(3)  # the agent has read the share (its first round reads the folder from the nodes)
        pool.put_bytes("photos/c.jpg", b"c")  # the owner's other device
        pool.delete("photos/a.jpg")
        wait_until(lambda: view() == {"photos/b.jpg", "photos/c.jpg"}, timeout=45,
                   what="the other device's changes in the share's view")
    finally:
        run(cfg, home, "sync", "stop")
