"""Two devices syncing through one real pool: the everyday cases and the dangerous ones."""

from __future__ import annotations

import os
import time
import unicodedata
from pathlib import Path

from sync_agent.journal import Changes
from sync_agent.pool import Pool
from tests.conftest import fresh_bucket
from tests.nodepool import TEST_TIMEOUTS, NodePool
from tests.sync.conftest import Device, make_device


def test_create_edit_delete_flow_both_ways(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write("docs/plan.txt", b"v1")
    a.write("photos/cat.jpg", os.urandom(50_000))
    a.sync()
    b.sync()
    assert b.files() == a.files()
    b.write("docs/plan.txt", b"v2 from desktop")
    b.sync()
    a.sync()
    assert a.read("docs/plan.txt") == b"v2 from desktop"
    (a.folder / "photos/cat.jpg").unlink()
    a.sync()
    b.sync()
    assert "photos/cat.jpg" not in b.files()
    trashed = list((b.folder / ".pooldrive/trash").rglob("cat.jpg"))
    assert len(trashed) == 1  # a remote delete never unlinks: the file is in the trash
    assert [v.number for v in a.pool.versions("photos/cat.jpg")]  # and restorable on the pool


def test_conflict_keeps_both_versions(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write("report.txt", b"base")
    a.sync()
    b.sync()
    a.write("report.txt", b"laptop edit")
    b.write("report.txt", b"desktop edit")
    a.sync()
    b.sync()
    a.sync()
    files_b = b.files()
    assert files_b["report.txt"] == b"laptop edit"  # the pool's version keeps the name
    copies = [k for k in files_b if "conflicted copy from desktop" in k]
    assert len(copies) == 1 and files_b[copies[0]] == b"desktop edit" and copies[0].endswith(".txt")
    assert a.files() == files_b  # the conflict copy reached the other device too


def test_a_conflict_on_a_name_of_255_bytes_keeps_both_versions(devices: tuple[Device, Device]) -> None:
    """The conflicted copy's name is shortened to fit the file system's 255 bytes (it failed with 'File name
    too long', and the two devices stayed out of step)."""
    a, b = devices
    name = "é" * 125 + "L.txt"  # 255 bytes in UTF-8
    assert len(name.encode()) == 255
    a.write(name, b"base")
    a.sync()
    b.sync()
    a.write(name, b"laptop edit")
    b.write(name, b"desktop edit")
    a.sync()
    b.sync()
    a.sync()
    files_b = b.files()
    assert files_b[name] == b"laptop edit"
    copies = [k for k in files_b if "conflicted copy from desktop" in k]
    assert len(copies) == 1 and files_b[copies[0]] == b"desktop edit" and copies[0].endswith(".txt")
    assert len(copies[0].encode()) <= 255
    assert a.files() == files_b
    # the copy names a shortened original; the Conflicts list and settling it find the real one
    from sync_agent import resolve

    found = resolve.conflicts(a.pool)
    assert [(c.copy, c.original) for c in found] == [(copies[0], name)]
    resolve.resolve(a.pool, copies[0], "copy", seen=found[0])
    assert a.pool.read_bytes(name) == b"desktop edit" and not a.pool.exists(copies[0])


def test_identical_change_is_not_a_conflict(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write("same.txt", b"x")
    b.write("same.txt", b"x")
    a.sync()
    b.sync()
    assert not [k for k in b.files() if "conflicted" in k]


def test_edit_beats_delete(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write("keep.txt", b"1")
    a.sync()
    b.sync()
    (a.folder / "keep.txt").unlink()
    b.write("keep.txt", b"edited")
    b.sync()
    a.sync()
    assert a.read("keep.txt") == b"edited"


def test_local_move_is_a_server_side_move(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write("old/name.bin", os.urandom(100_000))
    a.sync()
    b.sync()
    (a.folder / "new").mkdir()
    os.replace(a.folder / "old/name.bin", a.folder / "new/name.bin")
    plan = a.engine.sync()
    assert [(s.path, s.target) for s in plan.moves] == [("old/name.bin", "new/name.bin")]
    b.sync()
    assert "new/name.bin" in b.files() and "old/name.bin" not in b.files()


def test_a_move_is_a_move_when_its_new_end_comes_alone(devices: tuple[Device, Device]) -> None:
    """A folder moved into a folder made a moment before reaches the agent in two parts: inotify reports
    the new folder's files at once, the old path only once it stops waiting for the rename's other half
    (device A's agent uploaded all 120 files again and deleted the old ones a pass later on a busy machine;
    device B then trashed its copies and downloaded them again). The pass that sees the new files alone
    looks at where their content was, and moves them on the pool."""
    a, b = devices
    for i in range(20):
        a.write(f"photos 2025/img{i:02d}.jpg", os.urandom(2000 + i))
    a.write("elsewhere/img00 copy.jpg", (a.folder / "photos 2025/img00.jpg").read_bytes())  # a copy stays put
    a.sync()
    b.sync()
    ids = {p: a.pool.stat(p).id for p in (f"photos 2025/img{i:02d}.jpg" for i in range(20))}
    (a.folder / "archive").mkdir()
    (a.folder / "photos 2025").rename(a.folder / "archive" / "photos 2025")
    plan = a.engine.sync({"archive"}, refresh_remote=False)  # what the watcher handed over first
    assert len(plan.moves) == 20 and not plan.transfers, plan
    for old, file_id in ids.items():
        assert a.pool.stat("archive/" + old).id == file_id  # the same file, moved: not a new upload
    assert a.pool.catalog.get("photos 2025/img00.jpg") is None
    assert (a.folder / "elsewhere/img00 copy.jpg").exists()
    b.sync()
    assert sorted(b.files()) == sorted(["elsewhere/img00 copy.jpg",
                                        *(f"archive/photos 2025/img{i:02d}.jpg" for i in range(20))])


def test_content_already_here_is_copied_not_downloaded(devices: tuple[Device, Device], monkeypatch) -> None:
    """A folder copied on one device: the other copies the content it already holds (checked against each
    version's SHA-256 as it is read) instead of downloading it again; a source changed since it was synced
    is not trusted for it."""
    from sync_agent.sync import engine

    a, b = devices
    photos = {f"photos/{i}.jpg": os.urandom(100_000 + i) for i in range(3)}
    for rel, data in photos.items():
        a.write(rel, data)
    a.sync()
    b.sync()
    fetched: list[str] = []
    for name in ("get_small_version", "get_version"):
        real = getattr(engine, name)
        monkeypatch.setattr(engine, name, lambda pool, v, *args, _real=real, **kw: fetched.append(v.key)
                            or _real(pool, v, *args, **kw))
    (b.folder / "photos/2.jpg").write_bytes(b"edited on B, not synced yet" * 5000)  # not as synced: not used
    for rel, data in photos.items():
        a.write(rel.replace("photos/", "backup/"), data)
    a.sync()
    b.engine.sync(refresh_remote=True)
    assert sorted(fetched) == ["backup/2.jpg"]  # 0 and 1 were copied from B's own photos
    for i in range(3):
        assert b.read(f"backup/{i}.jpg") == photos[f"photos/{i}.jpg"]
    assert (b.folder / "backup/0.jpg").stat().st_ino != (b.folder / "photos/0.jpg").stat().st_ino


def test_unicode_names_and_ignored_files(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write(unicodedata.normalize("NFD", "Café/résumé.txt"), b"accents")
    a.write("notes.txt.swp", b"vim swap")
    a.write(".pooldriveignore", b"build/\n*.log\n")
    a.write("build/out.o", b"obj")
    a.write("debug.log", b"log")
    a.sync()
    b.sync()
    assert set(b.files()) == {unicodedata.normalize("NFC", "Café/résumé.txt"), ".pooldriveignore"}
    a.sync()  # the NFD name on the laptop is the same file as the NFC key: nothing to do
    assert not a.engine.sync().transfers


def test_a_folder_or_file_that_cannot_be_read_is_never_taken_for_deleted(devices: tuple[Device, Device],
                                                                           monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """No permission on a folder, an I/O error on a file: what is under them is unknown, so nothing of it is
    deleted on the pool (the planner saw them missing and deleted them, before). The errors are injected:
    these tests run as root, whom chmod does not stop."""
    from sync_agent.errors import LocalIOError
    from sync_agent.sync import local_scan

    a, _ = devices
    a.write("locked/one.txt", b"1")
    a.write("locked/two.txt", b"2")
    a.write("bad-disk.txt", b"old")
    a.sync()
    a.write("bad-disk.txt", b"new content")  # changed, so it is read again, and that read fails
    locked, bad = str(a.folder / "locked"), a.folder / "bad-disk.txt"
    real_scandir, real_digest = os.scandir, local_scan.digest_file

    def scandir(path):  # type: ignore[no-untyped-def]
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    def digest(path):  # type: ignore[no-untyped-def]
        if Path(path) == bad:  # as digest_file reports a failed read
            raise LocalIOError(f"Cannot read {path}: Input/output error.") from OSError(5, "Input/output error")
        return real_digest(path)

    monkeypatch.setattr(local_scan.os, "scandir", scandir)
    monkeypatch.setattr(local_scan, "digest_file", digest)
    plan = a.engine.sync()
    assert not plan.deletes and not plan.transfers
    assert a.pool.read_bytes("locked/one.txt") == b"1" and a.pool.read_bytes("bad-disk.txt") == b"old"
    issues = {k: i.message for k, i in a.engine.activity.issues.items()}
    assert "cannot be read" in issues["locked"] and "cannot be read" in issues["bad-disk.txt"], issues
    monkeypatch.undo()  # readable again: the edit goes up, and the issues go
    a.engine.sync()
    assert a.pool.read_bytes("bad-disk.txt") == b"new content"
    assert a.pool.read_bytes("locked/two.txt") == b"2"
    assert not {"locked", "bad-disk.txt"} & set(a.engine.activity.issues)


def test_symlinks_are_reported_not_followed(devices: tuple[Device, Device]) -> None:
    a, _ = devices
    a.write("real.txt", b"r")
    (a.folder / "link.txt").symlink_to(a.folder / "real.txt")
    a.sync()
    assert not a.pool.exists("link.txt")
    assert any("symbolic link" in i.message for i in a.engine.activity.issues.values())


def test_mass_delete_guard(devices: tuple[Device, Device]) -> None:
    a, b = devices
    for i in range(30):
        a.write(f"many/{i}.txt", str(i).encode())
    a.sync()
    b.sync()
    for i in range(30):
        (a.folder / f"many/{i}.txt").unlink()
    plan = a.engine.sync()
    assert plan.held_deletes == 30 and a.pool.exists("many/0.txt")
    assert a.engine.activity.state.value == "paused"
    a.engine.allow_deletes = True
    a.engine.sync()
    assert not a.pool.exists("many/0.txt")
    a.write("one more.txt", b"1")
    a.sync()
    (a.folder / "one more.txt").unlink()  # one delete after the allowed ones: not a mass delete
    assert a.engine.sync({"one more.txt"}, refresh_remote=False).held_deletes == 0
    assert not a.pool.exists("one more.txt") and a.engine.activity.state.value == "idle"


def test_selective_sync_exclude_and_include(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write("big/video.bin", os.urandom(10_000))
    a.write("small/note.txt", b"n")
    a.sync()
    b.sync()
    b.write("big/local-only.txt", b"not on the pool yet")
    kept = b.engine.exclude("big")
    assert kept == ["big/local-only.txt"]  # never deleted: it is not on the pool
    assert not (b.folder / "big/video.bin").exists() and (b.folder / "big/local-only.txt").exists()
    a.write("big/more.bin", b"more")
    a.sync()
    b.sync()
    assert not (b.folder / "big/more.bin").exists()  # excluded folders are not touched
    assert a.pool.exists("big/video.bin")  # and nothing was deleted remotely
    b.engine.include("big")
    (b.folder / "big/local-only.txt").unlink()
    b.sync()
    assert (b.folder / "big/video.bin").exists() and (b.folder / "big/more.bin").exists()


def test_editor_atomic_save_is_one_change(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write("report.txt", b"v1")
    a.sync()
    b.sync()
    tmp = a.write("report.txt.tmp", b"v2, saved the way editors do")  # write a temp file, then rename over
    os.replace(tmp, a.folder / "report.txt")
    a.sync()
    b.sync()
    assert not a.pool.exists("report.txt.tmp")
    assert [v.number for v in a.pool.versions("report.txt")] == [2, 1]
    assert b.read("report.txt") == b"v2, saved the way editors do"
    assert not [k for k in b.files() if "conflicted" in k]


def test_a_name_this_file_system_cannot_hold_is_reported(devices: tuple[Device, Device]) -> None:
    a, b = devices
    bad = os.fsencode(str(a.folder)) + b"/caf\xe9.txt"  # Latin-1 bytes: not UTF-8, so no S3 name
    with open(bad, "wb") as f:
        f.write(b"x")
    a.sync()
    assert any("UTF-8" in i.message for i in a.engine.activity.issues.values())
    b.sync()
    assert b.files() == {}


def test_mass_delete_guard_adds_up_deletes_over_time(devices: tuple[Device, Device]) -> None:
    a, _ = devices
    for i in range(60):
        a.write(f"slow/{i}.txt", b"x")
    a.sync()
    held = 0
    for i in range(60):  # a few files a pass, as a script deleting 10 per second would
        (a.folder / f"slow/{i}.txt").unlink()
        if i % 3 == 2:
            held = max(held, a.engine.sync({f"slow/{i - 2}.txt", f"slow/{i - 1}.txt", f"slow/{i}.txt"},
                                           refresh_remote=False).held_deletes)
    assert held > 0  # the guard tripped before the folder was gone from the pool
    assert sum(a.pool.exists(f"slow/{i}.txt") for i in range(60)) >= 20


def test_a_device_whose_catalog_is_incomplete_never_trashes_what_it_cannot_see(fault_nodes: NodePool,
                                                                                tmp_path: Path) -> None:
    """The catalog deleted (or a new device) while two nodes are down: the files held only there are
    missing from it, and missing is not deleted. They stay in the folder until every node has been read."""
    bucket = fresh_bucket()
    dev = make_device(fault_nodes, bucket, tmp_path, "laptop")
    for i in range(30):
        dev.write(f"docs/f{i:02d}.txt", f"file {i}".encode())
    dev.sync()
    before = dev.files()
    catalog = dev.pool.catalog.path
    assert catalog is not None
    dev.pool.close()
    for suffix in ("", "-wal", "-shm"):
        catalog.with_name(catalog.name + suffix).unlink(missing_ok=True)
    fault_nodes["node1"].kill()
    fault_nodes["node2"].kill()
    try:
        dev.pool = Pool(fault_nodes.config(bucket), catalog_path=catalog, timeouts=TEST_TIMEOUTS)
        dev.engine.pool = dev.pool
        dev.engine.sync()  # with no node1/node2, the files held only there are unknown: keep them
        assert not dev.pool.catalog.filled
        assert dev.files() == before
        assert not list((dev.folder / ".pooldrive").rglob("trash/**/*.txt"))
        assert "*incomplete" in dev.engine.activity.issues
    finally:
        fault_nodes["node1"].start()
        fault_nodes["node2"].start()
    deadline = time.monotonic() + 30
    while any(dev.pool.health.is_down(n) for n in ("node1", "node2")) and time.monotonic() < deadline:
        dev.pool.refresh_health(max_age=0)  # what the agent's monitor does: the nodes are seen back
    dev.engine.sync()
    assert dev.pool.catalog.filled and "*incomplete" not in dev.engine.activity.issues
    assert dev.files() == before
    dev.pool.delete("docs/f00.txt")  # a delete the catalog has seen is applied as before
    dev.engine.sync()
    assert "docs/f00.txt" not in dev.files()
    dev.close()


def test_a_folder_named_in_nfd_gets_remote_changes_in_place(devices: tuple[Device, Device]) -> None:
    """Passes that look only at what changed find a local NFD name by its real name: the other device's
    edit lands in the file itself and a new file in the same folder, never in an NFC twin beside it."""
    a, b = devices
    nfd = unicodedata.normalize("NFD", "Café")
    a.write(f"{nfd}/a.txt", b"first")
    a.sync()
    b.sync()
    key_a, key_new = unicodedata.normalize("NFC", "Café/a.txt"), unicodedata.normalize("NFC", "Café/new.txt")
    b.write(key_a, b"edited on the desktop")
    b.write(key_new, b"new on the desktop")
    b.sync()
    a.engine.sync(set(), remote=Changes(paths={key_a, key_new}))  # the agent's delta pass
    assert sorted(os.listdir(a.folder / nfd)) == ["a.txt", "new.txt"]
    assert [n for n in os.listdir(a.folder) if n != ".pooldrive"] == [nfd]  # one folder, its own name
    assert (a.folder / nfd / "a.txt").read_bytes() == b"edited on the desktop"
    (a.folder / nfd / "a.txt").write_bytes(b"edited on the laptop")
    a.engine.sync({key_a})  # the watcher names the NFC key of an NFD file
    b.sync()
    assert b.read(key_a) == b"edited on the laptop"


def test_two_local_forms_of_one_name_sync_the_same_one_every_time(devices: tuple[Device, Device]) -> None:
    a, b = devices
    nfc, nfd = unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")
    a.write(nfd, b"decomposed")
    a.write(nfc, b"composed")
    a.sync()
    b.sync()
    assert b.files() == {nfc: b"composed"}  # the one already in the key's form, whatever the disk order
    issues = [i.message for i in a.engine.activity.issues.values()]
    assert any("only that one is synced" in m for m in issues), issues
    assert a.read(nfd) == b"decomposed"  # nothing renamed, nothing lost


def test_no_false_issues_when_a_folder_and_its_files_change_in_one_pass(devices: tuple[Device, Device]) -> None:
    """Seen before: 'has the same name as ... once normalized' for every file of a folder that arrived in
    the same pass as the folder, and for a file next to its conflicted copy."""
    a, b = devices
    for i in range(40):
        a.write(f"new folder/é{i:02d}.txt", f"{i}".encode())
    a.sync()
    b.sync()  # the folder and its 40 files arrive in one pass
    assert len(b.files()) == 40
    b.engine.sync({"new folder", "new folder/é00.txt", "new folder/é01.txt"})  # folder and files named at once
    a.write("new folder/é00.txt", b"laptop")
    b.write("new folder/é00.txt", b"desktop")
    a.sync()
    b.sync()  # a conflicted copy beside the file
    a.sync()
    for dev in (a, b):
        false = [i.message for i in dev.engine.activity.issues.values() if "normalized" in i.message
                 or i.title == "Not synced"]
        assert not false, false
    assert sum("conflicted copy" in n or "conflict" in n.lower() for n in b.files()) == 1


def _record_events(folder: Path) -> tuple[object, list[str]]:
    """Every path the folder's watcher is told about, as watchdog reports them."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    seen: list[str] = []

    class Recorder(FileSystemEventHandler):
        def on_any_event(self, event) -> None:  # type: ignore[no-untyped-def]
            seen.extend([os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")])

    observer = Observer()
    observer.schedule(Recorder(), str(folder), recursive=True)
    observer.start()
    return observer, seen


def test_downloads_move_into_the_folder_whole_and_leave_nothing_behind(devices: tuple[Device, Device]) -> None:
    """A small download is written in the state dir's 'incoming' (same file system as the folder) and moved
    into place: the folder's watcher never sees its temporary file (six events per file cost a large share
    of a big download's CPU). A large one still goes through its resumable partial next to the file. What
    a killed agent left in 'incoming' goes, and what lands is verified, complete and at the pool's mtime."""
    a, b = devices
    small = {f"docs/n{i:02d}.txt": f"note {i}".encode() * (i + 1) for i in range(12)}
    for rel, body in small.items():
        a.write(rel, body)
    big = os.urandom(300 * 1024)  # past the one-request size: the full path
    a.write("media/big.bin", big)
    a.sync()
    incoming = b.engine.state.dir / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    (incoming / "0123abcd.140.pooldrive-part").write_bytes(b"half of a file from a killed agent")
    b.folder.mkdir(parents=True, exist_ok=True)
    observer, seen = _record_events(b.folder)
    try:
        b.sync()
        time.sleep(0.5)  # the last events reach the recorder
    finally:
        observer.stop()  # type: ignore[attr-defined]
        observer.join()  # type: ignore[attr-defined]
    assert b.files() == {**small, "media/big.bin": big}
    assert list(incoming.iterdir()) == []
    parts = {Path(p).parent.name for p in seen if p.endswith(".pooldrive-part")}
    assert parts <= {"media"}, parts  # only the large file's partial was ever in the folder
    for rel in small:
        assert abs(os.stat(b.folder / rel).st_mtime - os.stat(a.folder / rel).st_mtime) < 1e-5  # kept in µs
    assert b.engine.state.get("docs/n03.txt") is not None
    b.engine.sync()  # found exactly as synced: nothing moves
    assert b.files() == {**small, "media/big.bin": big}


def test_a_file_replaced_by_a_folder_of_its_name_is_reported_not_hidden(devices: tuple[Device, Device]) -> None:
    """A synced file deleted and a folder of the same name made in its place: on the nodes the file's kept
    history would hide the folder's files from every listing (another device, a rebuild would lose them).
    The delete syncs; the folder's files stay here, reported with the reason, and nothing is lost."""
    a, b = devices
    a.write("notes", b"a file called notes")
    a.sync()
    b.sync()
    assert b.files() == {"notes": b"a file called notes"}
    (a.folder / "notes").unlink()
    a.write("notes/monday.txt", b"now a folder")
    a.sync()
    assert not a.pool.exists("notes") and not a.pool.exists("notes/monday.txt")
    assert any("keeps its history" in i.message for i in a.engine.activity.issues.values())
    assert (a.folder / "notes/monday.txt").read_bytes() == b"now a folder"
    b.sync()
    assert b.files() == {}


def test_a_folder_moved_on_one_device_is_renamed_on_the_other_not_downloaded_again(
        devices: tuple[Device, Device]) -> None:
    """The laptop moves a folder; the desktop renames its files (the same inodes: a download writes a new
    file; nothing in its trash), instead of trashing them and downloading them again. A file edited on the
    desktop meanwhile is not renamed over: it stays, and the moved copy arrives beside it."""
    a, b = devices
    for i in range(30):
        a.write(f"projects/site/page{i:02d}.html", os.urandom(20_000 + i))
    a.write("projects/site/same-a.txt", b"identical content")
    a.write("projects/site/same-b.txt", b"identical content")
    a.write("projects/site/edited there.txt", b"before")
    a.sync()
    b.sync()
    inodes = {p.name: p.stat().st_ino for p in (b.folder / "projects/site").iterdir()}
    (a.folder / "archive").mkdir()
    (a.folder / "projects/site").rename(a.folder / "archive/site 2025")
    b.write("projects/site/edited there.txt", b"after, on the desktop")
    a.sync()
    b.sync()
    moved = b.folder / "archive/site 2025"
    assert {p.name: p.stat().st_ino for p in moved.iterdir() if p.name != "edited there.txt"} == \
        {n: ino for n, ino in inodes.items() if n != "edited there.txt"}
    assert (moved / "same-a.txt").read_bytes() == (moved / "same-b.txt").read_bytes() == b"identical content"
    assert not list((b.folder / ".pooldrive/trash").rglob("*.html"))
    assert b.read("projects/site/edited there.txt") == b"after, on the desktop"  # an edit beats the move's delete
    assert b.read("archive/site 2025/edited there.txt") == b"before"
    a.sync()
    assert a.files() == b.files()
