"""The agent as a real background process: socket API, pause/resume, and kill -9 at the worst moments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_agent import config
from sync_agent.pool import Pool
from sync_agent.sync.ipc import AgentClient, AgentNotRunning
from tests.conftest import fresh_bucket
from tests.nodepool import TEST_TIMEOUTS, NodePool

ROOT = Path(__file__).resolve().parents[2]


def on_pool(pool: Pool, path: str) -> bool:
    """Whether ``path`` is on the pool now (this test's catalog refreshed from the nodes first)."""
    from sync_agent import rebuild

    rebuild.refresh(pool)
    return pool.exists(path)


def wait_until(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


class AgentProcess:
    def __init__(self, cfg_file: Path, folder: Path, *extra: str) -> None:
        self.cfg_file, self.folder, self.extra = cfg_file, folder, extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = AgentClient(folder)

    def start(self) -> AgentProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(self.cfg_file),
                                      "sync", "run", "--folder", str(self.folder), "--interval", "5", *self.extra],
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.client.running, what="the agent's socket")
        wait_until(lambda: self.client.status()["last_sync"] > 0, what="the first sync pass")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.client.stop()
                self.proc.wait(timeout=30)
            except (AgentNotRunning, subprocess.TimeoutExpired):
                self.kill()


@pytest.fixture
def pool_file(shared_nodes: NodePool, tmp_path: Path) -> Iterator[tuple[Path, Pool]]:
    cfg = shared_nodes.config(fresh_bucket(), name="agentpool")
    path = config.save_pool(cfg, tmp_path / "agentpool.toml")
    pool = Pool(config.load_pool(str(path)), catalog_path=tmp_path / "writer.sqlite3", timeouts=TEST_TIMEOUTS)
    pool.init_buckets()
    yield path, pool
    pool.close()


def _ctrl_c_as_in_a_terminal() -> None:
    """Ctrl+C reaches the command as in a terminal, however this suite was started: a shell without job
    control starts background commands with SIGINT ignored, and the child would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_socket_api_pause_resume_and_a_remote_edit_arrives(pool_file: tuple[Path, Pool], tmp_path: Path) -> None:
    cfg_file, pool = pool_file
    agent = AgentProcess(cfg_file, tmp_path / "folder").start()
    try:
        st = agent.client.status()
        assert st["state"] == "idle" and st["folder"] == str((tmp_path / "folder").resolve())
        pool.put_bytes("from-elsewhere.txt", b"hi")  # another device writes
        took = wait_until(lambda: (tmp_path / "folder/from-elsewhere.txt").exists(), what="the remote file")
        print(f"\nremote write -> local file in {took:.2f} s")
        agent.client.pause()
        assert agent.client.status()["state"] == "paused"
        (tmp_path / "folder/while-paused.txt").write_text("x")
        time.sleep(1.0)
        assert not on_pool(pool, "while-paused.txt")
        seq = agent.client.status()["seq"]
        agent.client.resume()
        st = agent.client.wait(seq, timeout=10)  # long-poll: answers as soon as something changes
        assert st["seq"] > seq
        wait_until(lambda: on_pool(pool, "while-paused.txt"), what="the upload after resume")
        with pytest.raises(Exception, match="already runs"):
            from sync_agent.sync import daemon

            daemon.run(pool, tmp_path / "folder")
    finally:
        agent.stop()
    assert not agent.client.running()


def test_kill_9_mid_download_then_restart(pool_file: tuple[Path, Pool], tmp_path: Path) -> None:
    cfg_file, pool = pool_file
    data = os.urandom(24 * 1024 * 1024)
    folder = tmp_path / "dl"
    agent = AgentProcess(cfg_file, folder, "--limit-down", "6").start()
    try:
        pool.put_bytes("big/movie.bin", data)
        wait_until(lambda: any(t["path"] == "big/movie.bin" and t["done"] > 2_000_000
                               for t in agent.client.status()["transfers"]), what="the download to be under way")
        agent.kill()
        target = folder / "big/movie.bin"
        assert not target.exists() or target.read_bytes() == data  # never half a file under the real name
        agent = AgentProcess(cfg_file, folder).start()
        wait_until(lambda: target.exists(), what="the download to finish")
        assert target.read_bytes() == data
        assert [p.name for p in folder.rglob("*conflicted*")] == []
        assert not [p for p in (folder / "big").iterdir() if p.name != "movie.bin"]
    finally:
        agent.stop()


def test_kill_9_mid_upload_then_restart(pool_file: tuple[Path, Pool], tmp_path: Path) -> None:
    cfg_file, pool = pool_file
    folder = tmp_path / "ul"
    agent = AgentProcess(cfg_file, folder, "--limit-up", "8").start()
    data = os.urandom(24 * 1024 * 1024)
    try:
        (folder / "upload.bin").write_bytes(data)
        wait_until(lambda: any(t["path"] == "upload.bin" and t["done"] > 4_000_000
                               for t in agent.client.status()["transfers"]), what="the upload to be under way")
        agent.kill()
        assert not on_pool(pool, "upload.bin")  # nothing half-written is visible on the pool
        agent = AgentProcess(cfg_file, folder).start()
        wait_until(lambda: on_pool(pool, "upload.bin"), what="the upload to finish")
        assert pool.read_bytes("upload.bin") == data
        assert [v.number for v in pool.versions("upload.bin")] == [1]
        assert sorted(p.name for p in folder.iterdir() if p.name != ".pooldrive") == ["upload.bin"]
    finally:
        agent.stop()


def test_the_agent_log_says_what_happened(pool_file: tuple[Path, Pool], tmp_path: Path) -> None:
    cfg_file, pool = pool_file
    agent = AgentProcess(cfg_file, tmp_path / "logged").start()
    try:
        (tmp_path / "logged/hello world.txt").write_text("hi")
        wait_until(lambda: on_pool(pool, "hello world.txt"), what="the upload")
        r = subprocess.run([sys.executable, "-m", "sync_agent.cli.main", "sync", "log", "--folder",
                            str(tmp_path / "logged"), "-n", "50"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0 and "hello world.txt: uploaded" in r.stdout, r.stdout + r.stderr
        from sync_agent.cli.sync_cmd import agent_log

        assert agent_log(tmp_path / "logged").stat().st_mode & 0o777 == 0o600
    finally:
        agent.stop()


def test_the_agent_survives_a_bug_in_a_pass_and_exits_non_zero_when_it_keeps_failing(
        shared_nodes: NodePool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A bug (not a node problem) in a pass: logged, retried with backoff; the agent goes on when the next
    pass works, and the daemon exits 1 (so a service manager restarts it) when it never does."""
    from sync_agent.sync import daemon
    from sync_agent.sync.agent import MAX_CRASHES, SyncAgent
    from sync_agent.sync.engine import SyncEngine
    from sync_agent.sync.state import SyncState

    pool = Pool(shared_nodes.config(fresh_bucket()), catalog_path=tmp_path / "c.sqlite3", timeouts=TEST_TIMEOUTS)
    pool.init_buckets()
    real_sync = SyncEngine.sync
    calls = {"n": 0}

    def flaky(self, *a, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= 2:
            raise KeyError("a bug")
        return real_sync(self, *a, **kw)

    monkeypatch.setattr(SyncEngine, "sync", flaky)
    folder = tmp_path / "flaky"
    (folder / "a.txt").parent.mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    agent = SyncAgent(pool, folder, state=SyncState(folder, tmp_path / "s1"), backoff=0.05, notifications=False,
                      repair=False, reconcile=False)
    t = agent.start_thread()
    wait_until(lambda: agent.passes >= 1, 30, "a pass after two failed ones")
    assert agent.failure is None and t.is_alive() and on_pool(pool, "a.txt")
    assert sum("unexpected error in a sync pass" in r.message for r in caplog.records) == 2
    agent.stop()
    t.join(10)

    monkeypatch.setattr(SyncEngine, "sync", lambda self, *a, **kw: {}["always a bug"])
    started = time.monotonic()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = daemon.run(pool, tmp_path / "broken", backoff=0.01, notifications=False, repair=False,
                          reconcile=False)
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)
    assert code == 1 and time.monotonic() - started < 30
    assert sum("unexpected error in a sync pass" in r.message for r in caplog.records) == 2 + MAX_CRASHES
    pool.close()


def test_sync_log_follow_goes_on_after_the_log_rotates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sync_agent.sync.state import state_dir_for

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    env = {**os.environ}
    folder = tmp_path / "folder"
    folder.mkdir()
    sdir = state_dir_for(folder)  # where the command looks for the log
    sdir.mkdir(parents=True)
    log = sdir / "agent.log"
    log.write_text("first line\n")
    follow = subprocess.Popen([sys.executable, "-m", "sync_agent.cli.main", "sync", "log", "--follow", "--folder",
                               str(folder)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
                              preexec_fn=_ctrl_c_as_in_a_terminal)
    try:
        assert follow.stdout is not None
        assert "first line" in follow.stdout.readline()  # it runs (a fixed sleep was too short under load)
        with open(log, "a") as f:
            f.write("before rotation\n")
        time.sleep(1)
        log.rename(sdir / "agent.log.1")
        log.write_text("after rotation\n")
        time.sleep(2)
    finally:
        follow.send_signal(signal.SIGINT)
        try:
            out, _ = follow.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            follow.kill()  # never left running after the test
            raise
    assert "before rotation" in out and "after rotation" in out, out


_COMMANDS = ["status", "wait", "pause", "resume", "sync_now", "exclude", "include", "restore_held", "nope", ""]
_JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=40),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                  max_size=4), max_leaves=12)


# a long-poll answers when its time is up (up to 300 s), so a 'wait' asking for longer than the 30 s this test
# gives each answer is no malformed request: its time is any JSON but a number above 5 s
_SHORT_WAIT = _JSON.filter(lambda v: not (isinstance(v, int | float) and v > 5))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.binary(max_size=300),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"cmd": st.sampled_from(_COMMANDS)},
                          optional={"path": _JSON, "since": _JSON, "wait_timeout": _SHORT_WAIT,
                                    "allow_deletes": _JSON}).map(lambda v: json.dumps(v).encode())))
def test_the_agents_socket_answers_any_request_and_keeps_running(running_agent: AgentProcess,
                                                                   request_bytes: bytes) -> None:
    """Whatever arrives on the socket (it is the user's own, but a buggy script or client is real): one
    JSON answer, ok or a clear error, and the agent goes on."""
    reply = json.loads(running_agent.client.exchange(request_bytes, timeout=30))
    assert reply["ok"] is True or (reply["error"]["title"] and isinstance(reply["error"]["message"], str))
    assert running_agent.proc.poll() is None
    assert running_agent.client.status()["folder"]


@pytest.fixture
def running_agent(pool_file: tuple[Path, Pool], tmp_path: Path) -> Iterator[AgentProcess]:
    agent = AgentProcess(pool_file[0], tmp_path / "fuzzed").start()
    yield agent
    agent.stop()


def test_files_named_in_nfd_sync_from_the_watcher_without_a_full_pass(pool_file: tuple[Path, Pool],
                                                                      tmp_path: Path) -> None:
    """A name written decomposed (NFD: 'e' and a combining diaeresis, as macOS and some apps write it): the
    watcher's event reaches the agent under the folder's key (NFC), so a new file and an edit are uploaded
    at once. They used to wait for the hourly full pass, with the status saying idle."""
    import unicodedata

    cfg_file, pool = pool_file
    folder = tmp_path / "folder"
    agent = AgentProcess(cfg_file, folder).start()
    try:
        nfd = unicodedata.normalize("NFD", "Zoë.txt")
        assert nfd != "Zoë.txt"
        (folder / nfd).write_bytes(b"first")

        def content() -> bytes | None:
            return pool.read_bytes("Zoë.txt") if on_pool(pool, "Zoë.txt") else None

        wait_until(lambda: content() == b"first", timeout=15, what="the new NFD-named file on the pool")
        (folder / nfd).write_bytes(b"edited")
        wait_until(lambda: content() == b"edited", timeout=15, what="the edit of the NFD-named file")
    finally:
        agent.stop()


def test_a_file_saved_while_every_node_was_down_goes_up_when_they_are_back(fault_nodes: NodePool,
                                                                           tmp_path: Path) -> None:
    """Its upload fails (no node for R copies) and the status says why; it used to stay there until the
    next full pass or a 'sync now'. Now failed files are tried again when a node comes back up (and on a
    doubling timer besides)."""
    cfg = fault_nodes.config("all-down", name="alldown")
    cfg_file = config.save_pool(cfg, tmp_path / "alldown.toml")
    with Pool(config.load_pool(str(cfg_file)), catalog_path=tmp_path / "init.sqlite3") as first:
        first.init_buckets()
    folder = tmp_path / "folder"
    agent = AgentProcess(cfg_file, folder).start()
    try:
        for node in fault_nodes.nodes:
            node.stop()
        (folder / "while all down.txt").write_bytes(b"saved during the outage")
        wait_until(lambda: agent.client.status()["state"] == "offline", timeout=30, what="the agent offline")
        for node in fault_nodes.nodes:
            node.start()
        reader = Pool(config.load_pool(str(cfg_file)), catalog_path=tmp_path / "reader.sqlite3",
                      timeouts=TEST_TIMEOUTS)
        try:
            wait_until(lambda: on_pool(reader, "while all down.txt"), timeout=25, what="the upload once nodes are back")
            assert reader.read_bytes("while all down.txt") == b"saved during the outage"
        finally:
            reader.close()
        wait_until(lambda: agent.client.status()["state"] == "idle", timeout=10, what="the agent idle again")
    finally:
        agent.stop()


def test_a_sync_folder_moved_away_is_reported_and_picked_up_again_when_back(pool_file: tuple[Path, Pool],
                                                                            tmp_path: Path) -> None:
    """Moving the sync folder sends the agent no event. It looks every 2 s: the folder missing is said at
    once (it waited for the next change from the pool), what the pool changed meanwhile waits for it, and
    once the folder is back that change arrives and the issue goes, by itself (it needed 'sync now')."""
    cfg_file, pool = pool_file
    folder = tmp_path / "folder"
    agent = AgentProcess(cfg_file, folder).start()
    try:
        (folder / "mine.txt").write_bytes(b"here")
        wait_until(lambda: on_pool(pool, "mine.txt"), what="the first upload")
        wait_until(lambda: agent.client.status()["state"] == "idle", what="idle")
        away = tmp_path / "moved away"
        folder.rename(away)

        def missing() -> bool:
            st = agent.client.status()
            return st["state"] == "error" and any(i["title"] == "Sync folder missing" for i in st["issues"])

        wait_until(missing, timeout=10, what="the missing folder reported")
        pool.put_bytes("while away.txt", b"from another device")
        time.sleep(3)
        assert not (away / "while away.txt").exists() and on_pool(pool, "mine.txt")  # nothing touched meanwhile
        away.rename(folder)
        wait_until(lambda: (folder / "while away.txt").exists(), timeout=15, what="the change made meanwhile")
        wait_until(lambda: agent.client.status()["state"] == "idle" and not missing(), timeout=10,
                   what="the issue cleared")
        assert (folder / "while away.txt").read_bytes() == b"from another device"
    finally:
        agent.stop()


def test_synced_files_get_the_users_modes_and_keep_their_own(pool_file: tuple[Path, Pool], tmp_path: Path) -> None:
    """The agent keeps its own state private, but a file another device wrote arrives with the mode the
    user's umask gives (0644, not 0600), a new folder 0755; a file the user made executable stays so when a
    new version arrives."""
    cfg_file, pool = pool_file
    folder = tmp_path / "folder"
    agent = AgentProcess(cfg_file, folder).start()  # this test's umask: 022
    try:
        pool.put_bytes("site/run.sh", b"echo one")
        wait_until(lambda: (folder / "site/run.sh").exists(), what="the remote file")
        assert (folder / "site/run.sh").stat().st_mode & 0o777 == 0o644
        assert (folder / "site").stat().st_mode & 0o777 == 0o755
        (folder / "site/run.sh").chmod(0o755)
        pool.put_bytes("site/run.sh", b"echo two")
        wait_until(lambda: (folder / "site/run.sh").read_bytes() == b"echo two", what="the new version")
        assert (folder / "site/run.sh").stat().st_mode & 0o777 == 0o755
    finally:
        agent.stop()


def test_paused_during_a_pass_stays_paused_when_the_pass_ends(pool_file: tuple[Path, Pool], tmp_path: Path) -> None:
    """Pause while a pass uploads: the upload under way finishes, and the agent still says 'paused' after it
    (the pass's end said 'idle', so the window and the tray showed a paused agent as idle)."""
    cfg_file, pool = pool_file
    folder = tmp_path / "folder"
    agent = AgentProcess(cfg_file, folder, "--limit-up", "0.5").start()  # 2 copies of 1 MB: about 4 s
    try:
        (folder / "big.bin").write_bytes(os.urandom(1 << 20))
        wait_until(lambda: agent.client.status()["state"] == "syncing", what="the pass uploading")
        agent.client.pause()
        wait_until(lambda: on_pool(pool, "big.bin"), what="the upload under way to finish")
        time.sleep(1.0)  # the pass's last steps
        assert agent.client.status()["state"] == "paused"
        (folder / "later.txt").write_text("waits for resume")
        time.sleep(1.5)
        assert not on_pool(pool, "later.txt") and agent.client.status()["state"] == "paused"
        agent.client.resume()
        wait_until(lambda: on_pool(pool, "later.txt"), what="the upload after resume")
    finally:
        agent.stop()
