"""Two devices syncing through one real pool: the everyday cases and the dangerous ones."""

from __future__ import annotations

import os
import unicodedata

from tests.sync.conftest import Device


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
