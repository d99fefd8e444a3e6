"""Issue 2: real MinIO nodes start, fail for real, come back, and are always reaped."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sync_agent.devpool import DevPool
from sync_agent.errors import DevPoolError, MinioBinaryMissingError
from sync_agent.minio_server import find_minio_binary, is_live
from sync_agent.processes import pid_alive
from tests.nodepool import NodePool

pytestmark = pytest.mark.minio  # starts dev pools through the real command


def test_four_nodes_each_store_and_serve(fault_nodes: NodePool) -> None:
    for n in fault_nodes.nodes:
        c = fault_nodes.raw_client(n.name)
        c.make_bucket("probe")
        c.put_object("probe", "hello.txt", io.BytesIO(n.name.encode()), len(n.name))
        assert c.get_object("probe", "hello.txt").read() == n.name.encode()


def test_kill_stop_freeze_and_restart(fault_nodes: NodePool) -> None:
    n2, n3, n4 = fault_nodes["node2"], fault_nodes["node3"], fault_nodes["node4"]
    n2.kill()
    assert not n2.running() and not is_live(n2.endpoint, 0.5, secure=n2.certs_dir is not None)
    n3.freeze()
    assert n3.frozen() and not is_live(n3.endpoint, 0.5, secure=n3.certs_dir is not None)
    n4.stop()
    assert not n4.running()
    n3.thaw()
    assert is_live(n3.endpoint, 2, secure=n3.certs_dir is not None)
    n2.start()
    n4.restart()
    for n in (n2, n4):
        assert n.running() and is_live(n.endpoint, 2, secure=n.certs_dir is not None)


def test_fixture_leaves_no_minio_process(tmp_path: Path) -> None:
    pool = NodePool(tmp_path / "nodes", 2)
    pids = [n.pid for n in pool.nodes]
    pool.nodes[0].freeze()  # even a frozen node must be reaped
    pool.close()
    assert not any(pid_alive(p) for p in pids)


def test_missing_binary_says_what_to_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("POOLDRIVE_MINIO_BIN", raising=False)
    with pytest.raises(MinioBinaryMissingError, match="scripts/setup-minio"):
        find_minio_binary()
    monkeypatch.setenv("POOLDRIVE_MINIO_BIN", str(tmp_path / "nope"))
    with pytest.raises(MinioBinaryMissingError, match="POOLDRIVE_MINIO_BIN"):
        find_minio_binary()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_agent.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_devpool_cli_up_status_down(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    try:
        up = _cli("devpool", "up", "--nodes", "4", env=env)
        assert up.returncode == 0, up.stderr
        assert "Dev pool up: 4 nodes" in up.stdout and up.stdout.count("http://127.0.0.1:") >= 8
        creds = tmp_path / "state/pooldrive/devpool/credentials.json"
        assert (creds.stat().st_mode & 0o777) == 0o600 and "minioadmin" not in creds.read_text()
        again = _cli("devpool", "up", "--nodes", "4", env=env)
        assert again.returncode != 0 and "already running" in again.stderr
        status = _cli("devpool", "status", env=env)
        assert status.returncode == 0 and status.stdout.count(" up ") == 4
        assert _cli("devpool", "kill", "2", env=env).returncode == 0
        status = _cli("devpool", "status", env=env)
        assert status.returncode == 1 and "node2 │ down" in status.stdout
        assert _cli("devpool", "start", "2", env=env).returncode == 0
        pool_status = _cli("status", env=env)
        assert pool_status.returncode == 0, pool_status.stdout + pool_status.stderr
    finally:
        pids = [n.pid for n in DevPool(tmp_path / "state/pooldrive/devpool").nodes()]
        down = _cli("devpool", "down", "--purge", env=env)
    assert down.returncode == 0 and "Stopped 4 node(s)" in down.stdout
    time.sleep(0.1)
    assert not any(pid_alive(p) for p in pids)
    with pytest.raises(DevPoolError, match="devpool up"):
        DevPool(tmp_path / "state/pooldrive/devpool").nodes()


def test_devpool_wan_profile_with_erasure_coded_nodes(tmp_path: Path) -> None:
    """`devpool up --profile wan --drives 4`: each node one erasure-coded MinIO server over 4 drives, reached
    through its own shaped Toxiproxy link; `devpool shape` changes a link while files move."""
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    root = tmp_path / "state/pooldrive/devpool"
    try:
        up = _cli("devpool", "up", "--nodes", "4", "--profile", "wan", "--drives", "4", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "VPS: 40 ms RTT" in up.stdout and "flaky" in up.stdout
        assert sorted(p.name for p in (root / "data/node1").iterdir()) == ["drive1", "drive2", "drive3", "drive4"]
        shaping = DevPool(root).shaping()
        assert shaping is not None and shaping.server.running()
        src = tmp_path / "photo one.jpg"
        src.write_bytes(os.urandom(300_000))
        put = _cli("put", str(src), env=env)
        assert put.returncode == 0, put.stderr
        shaped = _cli("devpool", "shape", "2", "--rtt", "300", "--rate", "2", env=env)
        assert shaped.returncode == 0 and "node2: VPS: 300 ms RTT +-10, 2 Mbit/s" in shaped.stdout, shaped.stdout
        got = _cli("get", "photo one.jpg", str(tmp_path / "back.jpg"), env=env)
        assert got.returncode == 0, got.stderr
        assert (tmp_path / "back.jpg").read_bytes() == src.read_bytes()
        bad = _cli("devpool", "shape", "2", "--resets", "3", env=env)
        assert bad.returncode == 9 and "between 0 and 1" in bad.stderr and "Traceback" not in bad.stderr
        assert _cli("devpool", "shape", "9", "--rtt", "1", env=env).returncode == 9
        status = _cli("devpool", "status", env=env)
        assert status.returncode == 0 and "300 ms RTT" in status.stdout
    finally:
        pids = [n.pid for n in DevPool(root).nodes()]
        shaping = DevPool(root).shaping()
        down = _cli("devpool", "down", "--purge", env=env)
    assert down.returncode == 0, down.stderr
    time.sleep(0.1)
    assert not any(pid_alive(p) for p in pids)
    assert shaping is not None and not pid_alive(shaping.server.pid)
