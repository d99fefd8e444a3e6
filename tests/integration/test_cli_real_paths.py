"""The real `pooldrive` command with the paths people have: spaces, newlines, accents in both Unicode forms,
a deleted catalog, wrong credentials. Exit codes as documented, never a traceback."""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from sync_agent.minio_server import free_port
from tests.nodepool import NodePool
from tests.sync.test_agent_process import pool_file  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]


def home_env(home: Path) -> dict[str, str]:
    """The environment of a device whose config, data and state live under ``home``."""
    return {**os.environ, **{k: str(home / k.lower()) for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME",
                                                                 "XDG_STATE_HOME")}}


def run(cfg: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = home_env(home)
    r = subprocess.run([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(cfg), *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, env=env)
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


def test_odd_names_round_trip_and_normalization_clashes_lose_nothing(pool_file, tmp_path: Path) -> None:  # noqa: F811
    cfg, _ = pool_file
    home = tmp_path / "home"
    src = tmp_path / "src folder"
    src.mkdir()
    (src / "a b\nc.txt").write_bytes(b"a newline: refused by name, kept locally")
    (src / "rapport d'été 2026.txt").write_bytes(b"spaces and accents")
    (src / unicodedata.normalize("NFC", "café.txt")).write_bytes(b"precomposed")
    (src / unicodedata.normalize("NFD", "café.txt")).write_bytes(b"combining")
    r = run(cfg, home, "put", str(src), "--to", "odd dir")
    assert r.returncode == 1, r.stdout + r.stderr  # partly failed: the clash is named, not silently merged
    assert "Unicode normalization" in r.stdout + r.stderr and "control character" in r.stdout + r.stderr
    listing = json.loads(run(cfg, home, "ls", "-R", "odd dir", "--json").stdout)
    assert [e["path"] for e in listing] == ["odd dir/rapport d'été 2026.txt"]
    out = tmp_path / "out dir"
    out.mkdir()
    assert run(cfg, home, "get", "odd dir/rapport d'été 2026.txt", str(out)).returncode == 0
    assert (out / "rapport d'été 2026.txt").read_bytes() == b"spaces and accents"
    (src / "notes [b] [i].txt").write_bytes(b"brackets: rich markup, shown as they are")
    assert run(cfg, home, "put", str(src / "notes [b] [i].txt"), "--to", "odd dir/").returncode == 0
    for args in (("ls", "odd dir"), ("ls", "-l", "odd dir")):
        r = run(cfg, home, *args)
        assert r.returncode == 0 and "odd dir/notes [b] [i].txt" in r.stdout, r.stdout + r.stderr


def test_two_arguments_with_one_name_are_refused_before_any_byte_moves(pool_file, tmp_path: Path) -> None:  # noqa: F811
    cfg, _ = pool_file
    home = tmp_path / "home"
    for d, text in (("a", "from a"), ("b", "from b")):
        (tmp_path / d).mkdir()
        (tmp_path / d / "report.txt").write_text(text)
    (tmp_path / "b" / "other.txt").write_text("other")
    r = run(cfg, home, "put", str(tmp_path / "a" / "report.txt"), str(tmp_path / "b" / "report.txt"),
            str(tmp_path / "b" / "other.txt"), "--to", "two args/")
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "same name" in out and str(tmp_path / "a" / "report.txt") in out.replace("\n", "")
    listing = json.loads(run(cfg, home, "ls", "-R", "two args", "--json").stdout)
    assert [e["path"] for e in listing] == ["two args/other.txt"]  # neither report replaced the other


@pytest.mark.parametrize("order", [("node1", "node3"), ("node3", "node1")])
def test_a_file_another_s3_tool_wrote_to_two_nodes_is_one_file_with_two_copies(
        shared_nodes: NodePool, pool_file, tmp_path: Path, order: tuple[str, str]) -> None:  # noqa: F811
    cfg, pool = pool_file
    body = b"written by rclone, or mc, or a script"
    for name in order:  # each node's copy at its own time, in either order
        shared_nodes.raw_client(name).put_object(pool.cfg.bucket, "imported/by hand.txt", io.BytesIO(body),
                                                 len(body))
        time.sleep(1.1)  # the nodes' clocks have a second's resolution in listings
    home = tmp_path / "home"
    assert run(cfg, home, "catalog", "rebuild").returncode == 0
    r = run(cfg, home, "stat", "imported/by hand.txt", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    info = json.loads(r.stdout)
    assert len(info["versions"]) == 1, info  # one file, one version, not two files or a 'deleted' twin
    assert sorted(r["node"] for r in info["file"]["current"]["replicas"]) == sorted(order), info
    r = run(cfg, home, "ls", "-R", "--json")
    assert [e["path"] for e in json.loads(r.stdout)] == ["imported/by hand.txt"]
    r = run(cfg, home, "get", "imported", str(tmp_path / "out"))
    assert r.returncode == 0 and (tmp_path / "out" / "by hand.txt").read_bytes() == body, r.stdout + r.stderr


def test_a_deleted_catalog_is_read_back_from_the_nodes(pool_file, tmp_path: Path) -> None:  # noqa: F811
    cfg, pool = pool_file
    pool.put_bytes("kept/report.txt", b"still here")
    home = tmp_path / "fresh-device"
    r = run(cfg, home, "ls", "-R", "--json")
    assert r.returncode == 0 and [e["path"] for e in json.loads(r.stdout)] == ["kept/report.txt"]


def test_an_incomplete_or_unreadable_catalog_is_never_shown_as_the_pool(pool_file, tmp_path: Path) -> None:  # noqa: F811
    cfg, pool = pool_file
    for i in range(12):
        pool.put_bytes(f"kept/f{i}.txt", b"still here")
    text = cfg.read_text()
    endpoints = [line.split('endpoint = "')[1].split('"')[0] for line in text.splitlines() if 'endpoint = "' in line]
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there: a real refused connection
    none_up = tmp_path / "none-up.toml"
    none_up.write_text(functools.reduce(lambda t, e: t.replace(e, closed), endpoints, text))
    half_up = tmp_path / "half-up.toml"
    half_up.write_text(functools.reduce(lambda t, e: t.replace(e, closed), endpoints[:2], text))
    home = tmp_path / "new-device"

    r = run(none_up, home, "ls", "-R")
    assert r.returncode == 5 and "no node could be read" in r.stderr, r.stdout + r.stderr
    r = run(none_up, home, "ls", "-R")  # the failed fill left nothing that could pass for the pool
    assert r.returncode == 5, r.stdout + r.stderr

    r = run(half_up, home, "ls", "-R", "--json")  # two of four nodes: what they hold, and a warning
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Not every node could be read" in r.stderr and "node1" in r.stderr
    r = run(cfg, home, "ls", "-R", "--json")  # every node back: the next command completes the catalog
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 12, r.stdout + r.stderr
    assert "not complete" not in run(cfg, home, "ls").stderr

    catalog = next((home / "xdg_data_home").rglob("*.sqlite3"))
    catalog.write_bytes(os.urandom(4096))
    r = run(cfg, home, "ls")
    assert r.returncode == 3 and "catalog rebuild" in r.stderr and "Traceback" not in r.stderr, r.stdout + r.stderr
    r = run(cfg, home, "catalog", "rebuild")
    assert r.returncode == 0 and "set aside" in r.stdout, r.stdout + r.stderr
    assert list(catalog.parent.glob("*.unreadable-*"))
    r = run(cfg, home, "ls", "-R", "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 12


def test_state_an_older_version_left_readable_is_made_private_on_the_next_start(pool_file, tmp_path: Path) -> None:  # noqa: F811
    cfg, _ = pool_file
    home = tmp_path / "old-device"
    assert run(cfg, home, "ls").returncode == 0
    old_files = [home / "xdg_config_home/pooldrive/pools/work.toml",
                 home / "xdg_state_home/pooldrive/sync/Docs-0123456789abcdef/agent.log.1",
                 home / "xdg_state_home/pooldrive/sync/Docs-0123456789abcdef/agent.lock"]
    for f in old_files:  # as an older PoolDrive with the default umask wrote them
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
    made = [p for base in ("xdg_config_home", "xdg_data_home", "xdg_state_home")
            for p in (home / base).rglob("*") if "devpool" not in p.parts]
    assert any(p.suffix == ".sqlite3" for p in made)
    for p in made + [home / b / "pooldrive" for b in ("xdg_config_home", "xdg_data_home", "xdg_state_home")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    assert run(cfg, home, "ls").returncode == 0
    for p in made:
        assert p.stat().st_mode & 0o777 == (0o700 if p.is_dir() else 0o600), p


def test_the_commands_changed_this_session_through_the_real_command(pool_file, tmp_path: Path) -> None:  # noqa: F811
    """drain/undrain, share with history, a link and its unlink, resume --restore without an agent: each as a
    person types it, with a clear answer and no traceback on a bad argument."""
    cfg, pool = pool_file
    home = tmp_path / "home"
    for i in range(6):
        pool.put_bytes(f"team docs/é{i}.txt", f"{i}".encode())
    node = pool.stat("team docs/é0.txt").replicas[0]
    r = run(cfg, home, "node", "drain", node)
    assert r.returncode == 0 and "is empty" in r.stdout, r.stdout + r.stderr
    r = run(cfg, home, "node", "undrain", node)
    assert r.returncode == 0 and "takes new copies again" in r.stdout
    r = run(cfg, home, "node", "undrain", "no-such-node")
    assert r.returncode == 2 and "no node named" in r.stderr, r.stdout + r.stderr
    r = run(cfg, home, "share", "folder", "team docs", "--read-only", "--with-history", "--label", "Anna")
    assert r.returncode == 0 and "pooldrive-invite:" in r.stdout, r.stdout + r.stderr
    assert "read-only, with history" in run(cfg, home, "share", "list").stdout
    r = run(cfg, home, "share", "folder", "team docs", "--read-only", "--label", "Ben")
    assert r.returncode == 0 and "never its past" in r.stdout, r.stdout + r.stderr
    assert "read-only, current files" in run(cfg, home, "share", "list").stdout
    r = run(cfg, home, "share", "folder", "team docs", "--read-write")
    assert r.returncode == 0 and "earlier versions" in r.stdout, r.stdout + r.stderr
    r = run(cfg, home, "share", "link", "team docs/é1.txt", "--expires", "1h")
    assert r.returncode == 0 and r.stdout.count("http") == 2, r.stdout + r.stderr
    r = run(cfg, home, "share", "unlink", "team docs/é1.txt")
    assert r.returncode == 0 and "Stopped 1 link(s)" in r.stdout, r.stdout + r.stderr
    assert "No live link" in run(cfg, home, "share", "unlink", "team docs/é1.txt").stdout
    r = run(cfg, home, "share", "link", "team docs/missing.txt")
    assert r.returncode == 2 and "not in the pool" in r.stderr
    r = run(cfg, home, "sync", "resume", "--restore", "--folder", str(tmp_path / "no agent"))
    assert r.returncode == 12 and "No sync agent runs" in r.stderr
    r = run(cfg, home, "sync", "resume", "--restore", "--allow-deletes", "--folder", str(tmp_path))
    assert r.returncode == 2 and "not allowed with" in r.stderr  # one answer or the other


def test_wrong_credentials_exit_4_naming_the_node(pool_file, tmp_path: Path) -> None:  # noqa: F811
    cfg, _ = pool_file
    creds_file = next(line.split("=", 1)[1].strip().strip('"') for line in cfg.read_text().splitlines()
                      if line.startswith("credentials_file"))
    data = json.loads(Path(creds_file).read_text())
    for v in data.values():
        v["secret_key"] = "not-the-secret"
    bad = tmp_path / "bad-creds.json"
    bad.write_text(json.dumps(data))
    bad.chmod(0o600)
    bad_cfg = tmp_path / "bad.toml"
    bad_cfg.write_text(cfg.read_text().replace(creds_file, str(bad)))
    r = run(bad_cfg, tmp_path / "home", "put", str(cfg), "--to", "x.toml")
    assert r.returncode == 4, r.stdout + r.stderr
    assert "node1" in r.stdout + r.stderr


def test_conflicts_listed_and_settled_through_the_real_command(pool_file, tmp_path: Path) -> None:  # noqa: F811
    from sync_agent.sync.conflicts import conflict_name

    cfg, pool = pool_file
    home = tmp_path / "home"
    copy = f"année 2024/{conflict_name('rapport final.txt', 'Anna’s laptop', time.time())}"
    pool.put_bytes("année 2024/rapport final.txt", b"pool")
    pool.put_bytes(copy, b"laptop")
    r = run(cfg, home, "conflicts")
    assert r.returncode == 0 and "rapport final.txt" in r.stdout and "Anna’s laptop" in r.stdout, r.stdout + r.stderr
    listed = json.loads(run(cfg, home, "--json", "conflicts").stdout)
    assert [c["copy"] for c in listed] == [copy]
    r = run(cfg, home, "conflicts", copy)
    assert r.returncode == 2 and "--keep-original or --keep-copy" in r.stderr
    r = run(cfg, home, "conflicts", "année 2024/rapport final.txt", "--keep-copy")
    assert r.returncode == 2 and "is not a conflicted copy" in r.stderr, r.stdout + r.stderr
    r = run(cfg, home, "conflicts", copy, "--keep-copy")
    assert r.returncode == 0 and "kept the conflicted copy" in r.stdout, r.stdout + r.stderr
    assert run(cfg, home, "get", "année 2024/rapport final.txt", str(tmp_path / "out.txt")).returncode == 0
    assert (tmp_path / "out.txt").read_bytes() == b"laptop"
    assert "No conflicts" in run(cfg, home, "conflicts").stdout
    r = run(cfg, home, "conflicts", copy, "--keep-original")  # settled already
    assert r.returncode == 2 and "not in the pool" in r.stderr, r.stdout + r.stderr


def test_sync_limit_through_the_real_command(pool_file, tmp_path: Path) -> None:  # noqa: F811
    from tests.sync.test_agent_process import AgentProcess

    cfg, _ = pool_file
    folder = tmp_path / "my folder é"

    def cli(*args: str) -> subprocess.CompletedProcess:  # the same state dirs as the agent's
        r = subprocess.run([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(cfg), *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
        return r

    agent = AgentProcess(cfg, folder).start()
    try:
        r = cli("sync", "limit", "--folder", str(folder))
        assert r.returncode == 0 and "Upload: no limit" in r.stdout, r.stdout + r.stderr
        r = cli("sync", "limit", "--up", "3", "--folder", str(folder))
        assert r.returncode == 0 and "Upload: 3 MB/s" in r.stdout and "Download: no limit" in r.stdout
        r = cli("sync", "limit", "--down", "-1", "--folder", str(folder))
        assert r.returncode == 2 and "is a number of MB/s" in r.stderr, r.stdout + r.stderr
        r = cli("sync", "limit", "--down", "fast", "--folder", str(folder))
        assert r.returncode == 2 and "invalid float value" in r.stderr
        assert json.loads(cli("--json", "sync", "limit", "--folder", str(folder)).stdout) == \
            {"up": 3.0, "down": 0.0}
    finally:
        agent.stop()
    r = cli("sync", "limit", "--up", "1", "--folder", str(folder))
    assert r.returncode == 12 and "No sync agent runs" in r.stderr


def test_a_node_removed_without_draining_is_not_read_and_its_copies_made_again(
        pool_file, tmp_path: Path) -> None:  # noqa: F811
    """`pool remove-node` of a node still holding copies (not the only ones): reads go to the other copies
    (they failed with an internal error, exit 70, on every file that had a copy there), listings stop naming
    it, and repair makes the copies it held elsewhere."""
    cfg, _ = pool_file
    home = tmp_path / "home"
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"f{i:02d}.txt").write_bytes(f"file {i}".encode() * 100)
    assert run(cfg, home, "put", str(src), "--to", "rm").returncode == 0
    listed = json.loads(run(cfg, home, "ls", "-R", "--json", "rm").stdout)
    on_node4 = [e["path"] for e in listed if "node4" in e["replicas"]]
    assert on_node4
    r = run(cfg, home, "pool", "remove-node", "node4")
    assert r.returncode == 0 and "repair" in r.stdout, r.stdout + r.stderr
    out = tmp_path / "out"
    r = run(cfg, home, "get", "rm", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in out.rglob("*.txt")) == sorted(p.name for p in src.iterdir())
    listed = json.loads(run(cfg, home, "ls", "-R", "--json", "rm").stdout)
    assert all("node4" not in e["replicas"] for e in listed)
    assert {e["path"]: len(e["replicas"]) for e in listed if e["path"] in on_node4} == dict.fromkeys(on_node4, 1)
    assert run(cfg, home, "repair").returncode == 0
    listed = json.loads(run(cfg, home, "ls", "-R", "--json", "rm").stdout)
    assert all(len(e["replicas"]) == 2 and "node4" not in e["replicas"] for e in listed)


def test_a_server_already_in_the_pool_is_not_added_again_under_another_name(
        pool_file, tmp_path: Path) -> None:  # noqa: F811
    """Two node names for one server would put both copies of a file on one machine: refused, nothing saved."""
    cfg, pool = pool_file
    home = tmp_path / "home"
    before = cfg.read_bytes()
    endpoint = pool.cfg.nodes[0].endpoint
    for again in (endpoint, endpoint.replace("127.0.0.1", "LOCALHOST")):
        r = run(cfg, home, "pool", "add-node", "again", again)
        assert r.returncode == 3 and "already" in r.stdout + r.stderr, r.stdout + r.stderr
        assert cfg.read_bytes() == before


def test_a_file_and_a_folder_never_share_a_name(pool_file, tmp_path: Path) -> None:  # noqa: F811
    """On a MinIO node an object 'a' hides every key under 'a/' from listings (and 'a/...' hides 'a'), even
    when 'a' is only history (a deleted file's versions): a rebuild then lost the hidden files. So a file
    where a folder is, a folder where a file is or was, are refused with the reason, and nothing is lost."""
    cfg, _ = pool_file
    home = tmp_path / "home"
    src = tmp_path / "src"
    (src / "d1").mkdir(parents=True)
    (src / "d1" / "inner.txt").write_bytes(b"inside the folder")
    (src / "note.txt").write_bytes(b"a file")
    assert run(cfg, home, "put", str(src / "d1"), "--to", "c/d1").returncode == 0
    assert run(cfg, home, "put", str(src / "note.txt"), "--to", "c/plan").returncode == 0
    r = run(cfg, home, "put", str(src / "note.txt"), "--to", "c/d1")  # a file where a folder is
    assert r.returncode == 2 and "'c/d1' is a folder in the pool" in r.stdout + r.stderr, r.stdout + r.stderr
    r = run(cfg, home, "put", str(src / "d1"), "--to", "c/plan")  # a folder where a file is
    assert r.returncode == 2 and "'c/plan' is a file in the pool" in r.stdout + r.stderr, r.stdout + r.stderr
    assert run(cfg, home, "rm", "c/plan").returncode == 0  # deleted, its history kept
    r = run(cfg, home, "put", str(src / "d1"), "--to", "c/plan")
    assert r.returncode == 2 and "keeps its history" in r.stdout + r.stderr, r.stdout + r.stderr
    r = run(cfg, home, "mv", "c/d1", "c/plan/d1")
    assert r.returncode == 2 and "Name taken" in r.stdout + r.stderr, r.stdout + r.stderr
    listed = {e["path"] for e in json.loads(run(cfg, home, "ls", "-R", "--json", "c").stdout)}
    assert listed == {"c/d1/inner.txt"}
    assert run(cfg, home, "catalog", "rebuild").returncode == 0  # what the nodes list: nothing hidden
    listed = {e["path"] for e in json.loads(run(cfg, home, "ls", "-R", "--json", "c").stdout)}
    assert listed == {"c/d1/inner.txt"}
    assert run(cfg, home, "restore", "c/plan", "--version", "1").returncode == 0  # the history is whole


def test_a_folder_moved_onto_a_name_taken_inside_moves_nothing(pool_file, tmp_path: Path) -> None:  # noqa: F811
    cfg, _ = pool_file
    home = tmp_path / "home"
    for rel in ("d1/a.txt", "d1/f1.txt", "docs/d1/f1.txt"):
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_bytes(rel.encode())
    assert run(cfg, home, "put", str(tmp_path / "src"), "--to", "m").returncode == 0
    r = run(cfg, home, "mv", "m/d1", "m/docs")
    assert r.returncode == 2 and "nothing was moved" in r.stdout + r.stderr, r.stdout + r.stderr
    listed = {e["path"] for e in json.loads(run(cfg, home, "ls", "-R", "--json", "m").stdout)}
    assert listed == {"m/d1/a.txt", "m/d1/f1.txt", "m/docs/d1/f1.txt"}


def test_ctrl_c_during_a_large_put_stops_it_and_keeps_nothing(pool_file, tmp_path: Path) -> None:  # noqa: F811
    """Ctrl+C once the upload has begun: the command stops at the next part, undoes what it sent, says
    'Stopped' (exit 130) without a traceback, and the file is not on the pool. It used to finish the
    upload, commit it, and only then say it had stopped."""
    import signal
    import sqlite3

    cfg, _ = pool_file
    home = tmp_path / "home"
    src = tmp_path / "big file.bin"
    with open(src, "wb") as f:
        for _ in range(300):
            f.write(os.urandom(1 << 20))
    env = {**os.environ, **{k: str(home / k.lower()) for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")}}
    proc = subprocess.Popen([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(cfg), "put", str(src), "--to",
                             "int/big file.bin"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def uploading() -> bool:  # the write's intent names its multipart uploads once they have begun
        for db in home.rglob("*.sqlite3"):
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                    for (payload,) in con.execute("SELECT payload FROM intent"):
                        if json.loads(payload).get("uploads"):
                            return True
            except sqlite3.Error:
                pass
        return False

    deadline = time.monotonic() + 60
    while not uploading():
        assert proc.poll() is None and time.monotonic() < deadline, "the upload never began"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Stopped" in out + err and "Traceback" not in out + err, out + err
    assert run(cfg, home, "stat", "int/big file.bin").returncode == 2


def test_get_to_standard_output_gives_the_verified_bytes(pool_file, tmp_path: Path) -> None:  # noqa: F811
    """'get FILE -' writes the file to standard output (it wrote a file named '-'); a reader that stops
    early ('| head') ends it quietly; a folder is refused, as there is one stream."""
    cfg, _ = pool_file
    home = tmp_path / "home"
    body = os.urandom(3 * 1024 * 1024)
    (tmp_path / "rapport d'été.bin").write_bytes(body)
    assert run(cfg, home, "put", str(tmp_path / "rapport d'été.bin"), "--to", "a dir/").returncode == 0
    env = home_env(home)
    cmd = [sys.executable, "-m", "sync_agent.cli.main", "--pool", str(cfg), "get"]
    r = subprocess.run([*cmd, "a dir/rapport d'été.bin", "-"], cwd=tmp_path, capture_output=True, timeout=120,
                       env=env)
    assert r.returncode == 0 and r.stdout == body and not (tmp_path / "-").exists(), r.stderr
    head = subprocess.Popen([*cmd, "a dir/rapport d'été.bin", "-"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert head.stdout is not None and head.stderr is not None
    assert head.stdout.read(10) == body[:10]
    head.stdout.close()  # the reader goes away, as 'head -c 10' does
    assert head.wait(timeout=120) == 0
    assert b"Traceback" not in head.stderr.read()
    r = run(cfg, home, "get", "a dir", "-")
    assert r.returncode == 2 and "is a folder" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_downloads_get_the_users_modes_not_private_ones(pool_file, tmp_path: Path, umask: int) -> None:  # noqa: F811
    """The command keeps its own files private (umask 077), but what it downloads for the user gets the
    modes the user's umask gives: 0644 files and 0755 folders with 022 (they were 0600 and 0700)."""
    cfg, pool = pool_file
    pool.put_bytes("site/css/style.css", b"body {}")
    pool.put_bytes("site/index.html", b"<html>")
    home = tmp_path / "home"
    env = home_env(home)
    out = tmp_path / "out"
    for args in (["site", str(out)], ["site/index.html", str(tmp_path / "single" / "index.html")]):
        r = subprocess.run([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(cfg), "get", *args],
                           cwd=ROOT, capture_output=True, text=True, timeout=120, env=env, umask=umask)
        assert r.returncode == 0, r.stdout + r.stderr
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    for f in (out / "index.html", out / "css/style.css", tmp_path / "single" / "index.html"):
        assert f.stat().st_mode & 0o777 == file_mode, (f, oct(f.stat().st_mode))
    for d in (out, out / "css", tmp_path / "single"):
        assert d.stat().st_mode & 0o777 == dir_mode, (d, oct(d.stat().st_mode))
