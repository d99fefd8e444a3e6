"""At real size, the cost of a change follows the change, not the pool: requests counted at the node client.

Nothing here is timed; the S3 requests one change makes are counted and must not depend on how many files
the folder holds.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from sync_agent import journal
from sync_agent.journal import Changes
from sync_agent.metadata import try_parse
from sync_agent.sync.agent import SyncAgent
from tests.sync.conftest import Device

FILES = 1500


def requests(d: Device) -> int:
    return sum(c.requests for c in d.pool.clients.values())


def populate(a: Device, b: Device, n: int = FILES) -> None:
    for i in range(n):
        a.write(f"bulk/d{i % 30}/f{i}.txt", f"file {i}".encode())
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda d: d.engine.sync(), [a]))
    a.pool.journal.flush()
    b.engine.sync()
    assert len(b.files()) == n


def test_one_local_change_costs_a_bounded_number_of_requests(devices: tuple[Device, Device]) -> None:
    a, b = devices
    populate(a, b)
    cursor = b.pool.journal.cursor()
    a.pool.refresh_health(max_age=0)
    before = requests(a)
    a.write("bulk/d3/f3.txt", b"edited on the laptop")
    a.engine.sync({"bulk/d3/f3.txt"}, refresh_remote=False)
    a.pool.journal.flush()
    local_cost = requests(a) - before
    # two replicas written and one journal entry on two nodes; no listing of the pool
    assert local_cost <= 8, f"a one-file save made {local_cost} requests"

    b.pool.refresh_health(max_age=0)
    before = requests(b)
    changes = b.pool.journal.read(cursor)
    assert changes.paths == {"bulk/d3/f3.txt"}
    b.engine.sync(set(), refresh_remote=False, remote=changes)
    remote_cost = requests(b) - before
    assert b.read("bulk/d3/f3.txt") == b"edited on the laptop"
    # 4 journal listings + 2 entry reads + 4 exact-key listings + 1-2 downloads (+ a hedge)
    assert remote_cost <= 16, f"applying one remote change made {remote_cost} requests"


def test_idle_journal_poll_is_one_listing_per_node(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write("x.txt", b"x")
    a.engine.sync()
    cursor = b.pool.journal.cursor()
    b.pool.journal.read(dict(cursor))  # a process's first look at a node also asks for its region, once
    before = requests(b)
    for _ in range(5):
        assert not b.pool.journal.read(cursor)
    assert requests(b) - before == 5 * len(b.pool.clients)


def test_own_writes_are_not_read_back(devices: tuple[Device, Device]) -> None:
    a, _ = devices
    cursor = a.pool.journal.cursor()
    a.write("mine.txt", b"mine")
    a.engine.sync()
    a.pool.journal.flush()
    assert not a.pool.journal.read(cursor)  # entries of this process are skipped


def test_journal_entries_are_untrusted_hints(devices: tuple[Device, Device]) -> None:
    import io
    import time

    a, b = devices
    cursor = b.pool.journal.cursor()
    client = a.pool.client("node1")

    def put(key: str, body: bytes) -> None:
        client.put(key, io.BytesIO(body), len(body), {}, part_size=5 * 1024 * 1024)

    for i, body in enumerate((b"null", b"\xff\xfe", b'{"paths": "x"}', b'{"paths": [1, 2, {"a": 1}]}', b"[" * 10000,
                              json.dumps({"paths": ["ok.txt", "/etc/passwd", "../../x", "a/../b", "bad\u0000nul",
                                                    ""], "folders": [7, "/", "../", "fine/"]}).encode())):
        put(journal.entry_key(time.time_ns() + i, "0123456789ab"), body)
    put(journal.PREFIX + "zz-not-an-entry", b'{"paths": ["stray.txt"]}')  # never read, never moves a cursor
    put(journal.entry_key(time.time_ns() + 10**15, "0123456789ab"), b'{"paths": ["future.txt"]}')
    changes = b.pool.journal.read(cursor)
    assert changes.paths == {"ok.txt"} and changes.folders == {"fine/"}
    assert all(journal.entry_time(k) is not None and journal.entry_time(k) < time.time_ns() + 10**12
               for k in cursor.values() if k)
    b.engine.sync(set(), refresh_remote=False, remote=changes)  # a path that does not exist: nothing happens


def test_a_late_entry_behind_the_cursor_is_still_read(devices: tuple[Device, Device]) -> None:
    import io
    import time

    a, b = devices
    cursor = b.pool.journal.cursor()
    t0 = time.time_ns()
    body = b'{"paths": ["late.txt"]}'
    newer = journal.entry_key(t0, "aaaaaaaaaaaa")
    early = b'{"paths": ["early.txt"]}'
    for node in b.pool.clients:
        a.pool.client(node).put(newer, io.BytesIO(early), len(early), {}, part_size=5 * 1024 * 1024)
    assert b.pool.journal.read(cursor).paths == {"early.txt"}
    late = journal.entry_key(t0 - 5 * 10**9, "bbbbbbbbbbbb")  # stamped before, uploaded after (a slow PUT)
    for node in b.pool.clients:
        a.pool.client(node).put(late, io.BytesIO(body), len(body), {}, part_size=5 * 1024 * 1024)
    assert b.pool.journal.read(cursor).paths == {"late.txt"}
    assert not b.pool.journal.read(cursor)  # and only once


def test_a_move_arrives_as_a_move(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write("docs/old name.txt", b"content")
    a.sync()
    b.sync()
    cursor = b.pool.journal.cursor()
    (a.folder / "docs/old name.txt").rename(a.folder / "docs/new name.txt")
    a.engine.sync({"docs/old name.txt", "docs/new name.txt"}, refresh_remote=False)
    a.pool.journal.flush()
    changes = b.pool.journal.read(cursor)
    b.engine.sync(set(), refresh_remote=False, remote=changes)
    assert b.files() == {"docs/new name.txt": b"content"}
    assert b.pool.stat("docs/new name.txt").id == a.pool.stat("docs/new name.txt").id


def test_reconcile_finds_what_another_s3_tool_wrote(devices: tuple[Device, Device]) -> None:
    import io

    from sync_agent.reconcile import Reconciler

    a, b = devices
    for i in range(30):
        a.write(f"r/f{i:02d}.txt", b"v")
    a.engine.sync()
    b.engine.sync()
    data = b"written by another tool"
    for node in ("node1", "node2"):
        a.pool.client(node).put("r/foreign.txt", io.BytesIO(data), len(data), {}, part_size=5 * 1024 * 1024)
    found: list[Changes] = []
    rec = Reconciler(b.pool, b.engine.state, found.append, page=10, pause=0)
    assert rec.run_round() >= 1
    assert {"r/foreign.txt"} <= set().union(*(c.paths for c in found))
    assert rec.pages >= 2 * len(b.pool.clients)  # paged: 60 copies on 4 nodes, read 10 keys a request
    merged = Changes()
    for c in found:
        merged.update(c)
    b.engine.sync(set(), refresh_remote=False, remote=merged)
    assert b.read("r/foreign.txt") == data
    assert rec.run_round() == 0  # the next round finds nothing new (the adoption is in the catalog)
    assert not isinstance(try_parse(b.pool.client("node1").stat("r/foreign.txt").meta), str)  # adopted: ours now


def test_a_restarted_reader_does_not_read_again_the_entry_its_cursor_names(devices: tuple[Device, Device]) -> None:
    """The saved cursor names the last entry read. A new process knows no entry it read before, so without
    this it read that entry again at every start (a bulk upload's last entry: a batch of paths relisted)."""
    a, b = devices
    cursor = b.pool.journal.cursor()
    a.write("x.txt", b"x")
    a.engine.sync({"x.txt"}, refresh_remote=False)
    a.pool.journal.flush()
    assert b.pool.journal.read(cursor).paths == {"x.txt"}
    saved = dict(cursor)
    b.pool.journal._read_keys.clear()  # what a restarted agent starts with
    before = requests(b)
    assert not b.pool.journal.read(saved)
    assert requests(b) - before == len(b.pool.clients)  # one listing per node, no entry read


def test_an_entry_the_node_did_not_serve_is_read_at_the_next_poll(devices: tuple[Device, Device],
                                                                  monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A GET of an entry that fails (the link dropped between the listing and the read) is not taken as
    read: neither the set of read keys nor the cursor passes it, so the next poll reads it. The failure is
    injected into that one request; the node and everything else are real."""
    from sync_agent.errors import NodeUnreachableError
    from sync_agent.node_client import NodeClient

    a, b = devices
    cursor = b.pool.journal.cursor()
    a.write("flaky.txt", b"f")
    a.engine.sync({"flaky.txt"}, refresh_remote=False)
    a.pool.journal.flush()
    real_get = NodeClient.get
    failures: list[str] = []  # the nodes whose first entry read failed: every copy of the entry, once

    def get(self, key, *args, **kwargs):  # type: ignore[no-untyped-def]
        if key.startswith(".pooldrive/journal/") and self.name not in failures:
            failures.append(self.name)
            raise NodeUnreachableError(f"{self.name}: connection reset (injected)")
        return real_get(self, key, *args, **kwargs)

    monkeypatch.setattr(NodeClient, "get", get)
    first = b.pool.journal.read(cursor)
    assert failures and "flaky.txt" not in first.paths
    assert b.pool.journal.read(cursor).paths == {"flaky.txt"}  # the next poll
    assert not b.pool.journal.read(cursor)  # and only once


def test_agent_restart_resumes_from_the_saved_cursor(devices: tuple[Device, Device]) -> None:
    import threading
    import time

    a, b = devices
    a.write("one.txt", b"1")
    a.engine.sync()
    agent = SyncAgent(b.pool, b.folder, state=b.engine.state, reconcile=False, repair=False)
    agent.engine = b.engine
    agent.activity = b.engine.activity
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while agent.passes < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.read("one.txt") == b"1"
    a.write("two.txt", b"2")
    a.engine.sync({"two.txt"}, refresh_remote=False)
    a.pool.journal.flush()
    while not (b.folder / "two.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.read("two.txt") == b"2"
    agent.stop()
    t.join(10)
    assert isinstance(b.engine.state.setting("journal_cursor"), dict)
    # while stopped, a change happens; the restarted agent gets it as a delta from the saved cursor
    a.write("three.txt", b"3")
    a.engine.sync({"three.txt"}, refresh_remote=False)
    a.pool.journal.flush()
    agent2 = SyncAgent(b.pool, b.folder, state=b.engine.state, reconcile=False, repair=False)
    assert agent2._saved_cursor() is not None
    agent2.engine = b.engine
    agent2.activity = b.engine.activity
    t = threading.Thread(target=agent2.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not (b.folder / "three.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    agent2.stop()
    t.join(10)
    assert b.read("three.txt") == b"3"


def test_a_bulk_change_in_one_folder_is_one_listing_per_node(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write("other/keep.txt", b"k")
    a.engine.sync()
    a.pool.journal.flush()
    b.engine.sync()
    cursor = b.pool.journal.cursor()
    for i in range(40):
        a.write(f"album/p{i:02d}.jpg", f"photo {i}".encode())
    a.write("album/sub/deeper.jpg", b"deeper")
    a.engine.sync({"album"}, refresh_remote=False)
    a.pool.journal.flush()
    changes = b.pool.journal.read(cursor)
    assert len(changes.paths) == 41
    before = {n: c.requests for n, c in b.pool.clients.items()}
    from sync_agent import rebuild

    got = rebuild.refresh_paths(b.pool, changes.paths, changes.folders)
    listings = {n: c.requests - before[n] for n, c in b.pool.clients.items()}
    assert {c.path for c in got} == changes.paths
    assert all(v <= 2 for v in listings.values()), listings  # 'album/' level + 'album/sub/deeper.jpg'


def test_bulk_uploads_pause_notifications_and_listening_resumes(devices: tuple[Device, Device],
                                                                monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Notifications of our own bulk upload cost the nodes half as much again per write and bring nothing
    (the journal names every PoolDrive write): the agent stops listening while it uploads in bulk and
    listens again after. Another device's bulk writes pause it too."""
    import threading
    import time

    from sync_agent.sync import remote_watch

    monkeypatch.setattr(remote_watch, "HUSH", 30.0)  # outlasts the bulk upload on a slow machine too
    a, b = devices
    agent = SyncAgent(a.pool, a.folder, state=a.engine.state, reconcile=False, repair=False, debounce=0.05)
    agent.engine = a.engine
    agent.activity = a.engine.activity
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while agent.passes < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        remote = agent.remote
        assert remote is not None and remote.hushes == 0
        n = 2 * remote_watch.BULK
        for i in range(n):
            a.write(f"bulk/f{i:03d}.txt", f"file {i}".encode())
        while len(a.pool.catalog.live_shas()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(a.pool.catalog.live_shas()) == n
        assert remote.hushes >= 1
        assert remote.events <= 4  # of 2 x 100 notifications, at most one per stream got through
        remote._hush_until = 0.0  # the hush is over (as 30 s later): listening goes on
        time.sleep(1.5)
        assert all(th.is_alive() for th in remote._threads)

        # the other device's bulk upload arrives through the journal: this agent's listening pauses as well
        hushes = remote.hushes
        for i in range(remote_watch.BULK + 5):
            b.write(f"theirs/f{i:03d}.txt", f"from the desktop {i}".encode())
        b.engine.sync()
        b.pool.journal.flush()
        deadline = time.monotonic() + 30
        while len(list((a.folder / "theirs").glob("*.txt"))) < remote_watch.BULK + 5 \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert remote.hushes > hushes
    finally:
        agent.stop()
        t.join(10)


def test_a_bulk_pass_is_one_line_in_the_log_and_a_small_one_a_line_per_file(devices: tuple[Device, Device],
                                                                             caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from sync_agent.sync import engine

    a, _ = devices
    for i in range(engine.BULK + 10):
        a.write(f"many/f{i:03d}.txt", f"{i}".encode())
    with caplog.at_level(logging.INFO, logger="sync_agent.sync.status"):
        a.engine.sync()
        a.write("one.txt", b"1")
        a.engine.sync({"one.txt"}, refresh_remote=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "sync_agent.sync.status"]
    assert any(line.startswith(f"{engine.BULK + 10} uploaded in ") for line in lines), lines
    assert [line for line in lines if line.endswith(": uploaded")] == ["one.txt: uploaded"]


def test_a_quiet_pool_keeps_the_agent_log_quiet(devices: tuple[Device, Device], tmp_path,  # type: ignore[no-untyped-def]
                                                 caplog) -> None:
    """A single-drive MinIO answers a notification request only with the first event, so on a quiet pool
    every request runs into the read timeout: that is 'nothing happened', asked again, never a line in the
    log (an idle agent wrote four 'notifications stopped' lines a minute, all day)."""
    import logging
    import time

    from sync_agent.node_client import Timeouts
    from sync_agent.pool import Pool
    from sync_agent.sync.remote_watch import RemoteWatcher

    a, _ = devices
    quick = Pool(a.pool.cfg, catalog_path=tmp_path / "quiet.sqlite3", timeouts=Timeouts(connect=1.0, read=1.0))
    watcher = RemoteWatcher(quick, lambda *_: None, poll=0.5)
    with caplog.at_level(logging.INFO, logger="sync_agent.sync.remote_watch"):
        watcher.start()
        time.sleep(3.5)  # three read timeouts per node
        watcher.stop()
    assert not [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()]
    quick.close()

