"""Faults from the machine around the pool: a node whose disk fills up, and the real OS keyring."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sync_agent.errors import QuorumError
from tests.nodepool import NodePool


def _mount_small_disk(path: Path, mb: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(path)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small disk here to fill up ({r.stderr.strip()}); needs root")


def test_a_full_node_is_skipped_and_nothing_is_lost(fault_nodes: NodePool, tmp_path: Path) -> None:
    full = fault_nodes["node3"]
    full.stop()
    shutil.rmtree(full.data_dir, ignore_errors=True)
    _mount_small_disk(full.data_dir, 40)
    try:
        full.start()
        pool = fault_nodes.open_pool("fill", tmp_path / "c.sqlite3")
        written = {}
        for i in range(60):  # up to 480 MB at R=2: node3's 40 MB disk fills on the way
            data = os.urandom(4 * 1024 * 1024)
            info = pool.put_bytes(f"fill/{i:02d}.bin", data)
            assert len(info.replicas) == 2
            written[info.path] = data
            if "node3" in pool.unusable_nodes():
                break
        assert "full" in pool.unusable_nodes().get("node3", "")
        for i in range(4):  # later writes go around the full node
            info = pool.put_bytes(f"after/{i}.bin", b"small")
            assert "node3" not in info.replicas and len(info.replicas) == 2
        for path, data in written.items():
            assert pool.read_bytes(path) == data
            assert sorted(fault_nodes.holders("fill", path)) == sorted(pool.stat(path).replicas)
        # with R equal to the usable nodes plus the full one, the error says which node is full: a fresh
        # process may see the disk just under the threshold (MinIO refuses writes a few MB before the end),
        # so it learns it from the node's refusal of a file larger than what is left
        strict = fault_nodes.open_pool("fill", tmp_path / "c2.sqlite3", init=False, replicas=4)
        with pytest.raises(QuorumError, match=r"node3\b.*full"):
            strict.put_bytes("needs-four.bin", os.urandom(12 * 1024 * 1024))
        assert "full" in strict.unusable_nodes().get("node3", "")
        assert fault_nodes.holders("fill", "needs-four.bin") == []  # the write was undone everywhere
        strict.close()
        pool.close()
    finally:
        full.stop()
        subprocess.run(["umount", str(full.data_dir)], check=False)


KEYRING_ROUND_TRIP = textwrap.dedent("""
    import keyring
    from sync_agent import credentials
    from sync_agent.config import PoolConfig
    assert credentials.keyring_available(), keyring.get_keyring()
    credentials.store_in_keyring("home", "nas", credentials.Credentials("AK", "SK-secret"))
    got = credentials.credentials_for(PoolConfig(name="home", bucket="pooldrive-home"), "nas")
    assert got.secret_key == "SK-secret", got
    credentials.delete_from_keyring("home", "nas")
    print("keyring:", type(keyring.get_keyring()).__module__)
""")


def test_credentials_round_trip_through_a_real_secret_service(tmp_path: Path) -> None:
    if not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")):
        pytest.skip("dbus-run-session and gnome-keyring-daemon are installed by scripts/setup")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "run"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    (tmp_path / "run").mkdir(mode=0o700)
    script = tmp_path / "roundtrip.py"
    script.write_text(KEYRING_ROUND_TRIP)
    cmd = (f'eval "$(printf pw | gnome-keyring-daemon --unlock --components=secrets)"; '
           f'"{sys.executable}" "{script}"')
    r = subprocess.run(["dbus-run-session", "--", "bash", "-c", cmd], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "keyring: keyring.backends.SecretService" in r.stdout, r.stdout
    assert "SK-secret" not in "".join(p.read_text(errors="ignore") for p in tmp_path.rglob("*.json"))
