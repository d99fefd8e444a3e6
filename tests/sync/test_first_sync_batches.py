"""#16: a first sync's new small files go up in batches (small_writes), and a path another device took
meanwhile still becomes a conflicted copy, as it does for one file saved at a time."""

from __future__ import annotations

import os

import pytest

from sync_agent import writer
from sync_agent.sync.engine import FILES_IN_FLIGHT
from tests.conftest import count_in_flight
from tests.sync.conftest import Device


def test_a_first_sync_uploads_in_batches_and_keeps_both_sides_of_a_path_taken_meanwhile(
        devices: tuple[Device, Device], handed_back: list[int]) -> None:
    a, b = devices
    mine = {f"photos/{i:03d}.jpg": os.urandom(i * 300) for i in range(200)}
    mine["photos/050.jpg"] = b"the laptop's version"
    for rel, data in mine.items():
        a.write(rel, data)
    b.pool.put_bytes("photos/050.jpg", b"the desktop's version, saved first")  # the laptop has not heard of it
    cat = a.pool.catalog
    commits = cat._group.commits + cat._atomic_commits

    a.sync()

    # per batch of 64, not per file: 200 files one by one made 400 commits. A file the batch hands back costs
    # its own (a copy past the quick timeout with the cores loaded on purpose: 127 commits once)
    assert handed_back and cat._group.commits + cat._atomic_commits - commits <= 40 + 3 * sum(handed_back), \
        handed_back
    b.sync()
    theirs = b.files()
    assert theirs["photos/050.jpg"] == b"the desktop's version, saved first"
    [copy] = [rel for rel, data in theirs.items() if data == b"the laptop's version"]
    assert copy.startswith("photos/050") and copy != "photos/050.jpg"
    assert {rel: data for rel, data in theirs.items() if rel not in (copy, "photos/050.jpg")} == \
        {rel: data for rel, data in mine.items() if rel != "photos/050.jpg"}
    assert a.files() == theirs
    before = sum(c.requests for c in a.pool.clients.values())
    a.engine.sync(refresh_remote=False)
    assert sum(c.requests for c in a.pool.clients.values()) - before <= 2  # nothing is uploaded again
    writer.recover_intents(a.pool)  # as the next start: a copy whose answer was lost (3 s on a loaded machine)
    assert not cat.intents("put")


def test_an_agent_sends_a_first_syncs_small_files_many_at_once_unless_told(
        devices: tuple[Device, Device], monkeypatch: pytest.MonkeyPatch) -> None:
    """New small files go up SMALL_IN_FLIGHT at once from an agent too (one request each; MinIO spends less
    CPU per request when many arrive together), unless `pooldrive sync --parallel N` says otherwise."""
    a, b = devices
    a.engine.parallel = None  # as the agent makes its engines unless told
    b.engine.parallel = 4
    for i in range(120):
        a.write(f"notes/{i:03d}.txt", os.urandom(2000))
        b.write(f"drafts/{i:03d}.txt", os.urandom(2000))
    peak = count_in_flight(a.pool, monkeypatch)
    a.sync()
    assert peak[0] > FILES_IN_FLIGHT, peak  # 24 here; at most 16 (all transfers) before
    told = count_in_flight(b.pool, monkeypatch)
    b.sync()
    assert told[0] <= 4 + 2, told  # its transfers, and a probe or journal read beside them
    assert len(a.pool.list("notes")) == 120 and len(b.pool.list("drafts")) == 120
