"""A sync folder on a drive that is not mounted is gone, or an empty folder stands in its place: syncing that
would delete every file on the pool. The agent stops with 'Sync folder missing' instead, goes on by itself
when the folder is back, and fills a new, empty folder from the pool only when the user says so."""

from __future__ import annotations

import shutil

from sync_agent import rebuild
from sync_agent.sync.engine import MARKER
from sync_agent.sync.status import AgentState, IssueKind
from tests.sync.conftest import Device


def test_a_missing_or_replaced_sync_folder_deletes_nothing_and_comes_back(devices: tuple[Device, Device]) -> None:
    a, b = devices
    for i in range(3):
        a.write(f"docs/{i}.txt", f"file {i}".encode())
    a.sync()
    kept = a.folder.with_name("laptop-unmounted")
    a.folder.rename(kept)  # the drive is unmounted: the folder is gone
    a.sync()
    rebuild.refresh(b.pool)
    assert {f.path for f in b.pool.walk("docs")} == {"docs/0.txt", "docs/1.txt", "docs/2.txt"}
    issue = a.engine.activity.issues["*folder"]
    assert issue.kind == IssueKind.FOLDER_MISSING and "is gone" in issue.message
    assert a.engine.activity.state == AgentState.ERROR
    a.folder.mkdir()  # an empty mount point in its place: still not the synced folder
    a.sync()
    rebuild.refresh(b.pool)
    assert len(list(b.pool.walk("docs"))) == 3 and "marker" in a.engine.activity.issues["*folder"].message
    a.folder.rmdir()
    kept.rename(a.folder)  # mounted again: it syncs as before, by itself
    (a.folder / "docs/0.txt").write_bytes(b"edited while away")
    a.sync()
    assert "*folder" not in a.engine.activity.issues and a.engine.activity.state == AgentState.IDLE
    rebuild.refresh(b.pool)
    assert b.pool.read_bytes("docs/0.txt") == b"edited while away"


def test_a_new_empty_folder_is_filled_from_the_pool_when_the_user_says_so(devices: tuple[Device, Device]) -> None:
    a, _ = devices
    a.write("keep/x.txt", b"x")
    a.write("keep/y.txt", b"y")
    a.sync()
    shutil.rmtree(a.folder)
    a.folder.mkdir()
    a.sync()
    assert a.engine.activity.issues["*folder"].kind == IssueKind.FOLDER_MISSING
    assert a.engine.restore_held() == 2  # 'pooldrive sync resume --restore', or Restore in the window
    a.sync()
    assert a.files() == {"keep/x.txt": b"x", "keep/y.txt": b"y"} and (a.folder / MARKER).is_file()
    assert len(list(a.pool.walk("keep"))) == 2
