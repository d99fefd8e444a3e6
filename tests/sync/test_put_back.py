"""Issue 17: repair from a device. Every copy of a file on the pool is destroyed on the nodes' disks; the
device that synced it puts its copy back (`pooldrive sync verify`, the real command against the real agent)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import urllib3
from minio import Minio

from sync_agent import rebuild
from sync_agent.pool import Pool
from tests.integration.test_cli_real_paths import ROOT
from tests.nodepool import NodePool
from tests.sync.test_agent_process import AgentProcess, pool_file, wait_until  # noqa: F401 - fixture


def _destroy(nodes: NodePool, bucket: str, key: str) -> list[str]:
    """Flip a byte in every copy's data on disk (MinIO's own bit-rot check then refuses to serve it)."""
    holders = nodes.holders(bucket, key)
    for name in holders:
        for part in sorted((nodes[name].data_dir / bucket / key).rglob("part.*")):
            data = bytearray(part.read_bytes())
            data[len(data) // 2] ^= 0xFF
            part.write_bytes(bytes(data))
    return holders


def _served(nodes: NodePool, bucket: str, key: str, name: str) -> str | None:
    """What the node serves now (None: it refuses), asked once: MinIO answers a damaged object with 503 and
    Retry-After, which a retrying client would wait on."""
    tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": str(nodes.ca.cert)} if nodes.ca is not None else {}
    http = urllib3.PoolManager(retries=urllib3.Retry(total=0, redirect=False), timeout=urllib3.Timeout(5, 20), **tls)
    client = Minio(nodes[name].endpoint, access_key=nodes.access_key, secret_key=nodes.secret_key,
                   secure=nodes.ca is not None, http_client=http)
    try:
        resp = client.get_object(bucket, key)
        try:
            return hashlib.sha256(resp.read()).hexdigest()
        finally:
            resp.close()
            resp.release_conn()
    except Exception:
        return None


def test_a_file_whose_every_copy_was_destroyed_is_put_back_from_the_device(
        pool_file: tuple[Path, Pool], shared_nodes: NodePool, tmp_path: Path) -> None:  # noqa: F811
    cfg, pool = pool_file
    folder = tmp_path / "folder"
    folder.mkdir()
    body = os.urandom(1024 * 1024)  # big enough that MinIO keeps it in a part file, not inline
    (folder / "precious.raw").write_bytes(body)
    agent = AgentProcess(cfg, folder).start()
    try:
        wait_until(lambda: len(shared_nodes.holders(pool.cfg.bucket, "precious.raw")) == 2,
                   what="two copies on the nodes")
        holders = _destroy(shared_nodes, pool.cfg.bucket, "precious.raw")
        assert all(_served(shared_nodes, pool.cfg.bucket, "precious.raw", n) != hashlib.sha256(body).hexdigest()
                   for n in holders)
        r = subprocess.run([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(cfg), "sync", "verify",
                            "--folder", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in r.stdout + r.stderr
        assert r.returncode == 0, r.stdout + r.stderr
        assert "1 put back from this folder" in r.stdout, r.stdout
        now = shared_nodes.holders(pool.cfg.bucket, "precious.raw")
        good = [n for n in now if _served(shared_nodes, pool.cfg.bucket, "precious.raw", n)
                == hashlib.sha256(body).hexdigest()]
        assert len(good) >= 2, (now, good)
        assert (folder / "precious.raw").read_bytes() == body  # the device's copy was only read
    finally:
        agent.stop()


def test_a_file_edited_here_since_is_not_put_back_and_the_damaged_copies_stay(
        pool_file: tuple[Path, Pool], shared_nodes: NodePool, tmp_path: Path) -> None:  # noqa: F811
    """The same size, so the saved state still matches: only reading the whole file tells. Nothing on the
    nodes is touched (the damaged copies may still be salvaged), and the command says the file is lost."""
    cfg, pool = pool_file
    folder = tmp_path / "folder"
    folder.mkdir()
    body = os.urandom(1024 * 1024)
    (folder / "edited.raw").write_bytes(body)
    agent = AgentProcess(cfg, folder).start()
    try:
        wait_until(lambda: len(shared_nodes.holders(pool.cfg.bucket, "edited.raw")) == 2, what="two copies")
        agent.client.pause()
        holders = _destroy(shared_nodes, pool.cfg.bucket, "edited.raw")
        st = (folder / "edited.raw").stat()
        with open(folder / "edited.raw", "r+b") as f:  # edited in place: same size, same time stamp
            f.write(b"an edit made while syncing was paused")
        os.utime(folder / "edited.raw", ns=(st.st_atime_ns, st.st_mtime_ns))
        r = subprocess.run([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(cfg), "sync", "verify",
                            "--folder", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in r.stdout + r.stderr
        assert r.returncode == 1 and "no good copy left" in r.stdout + r.stderr, r.stdout + r.stderr
        assert "0 put back" in r.stdout
        for name in holders:  # the damaged copies are still there, untouched
            assert sorted((shared_nodes[name].data_dir / pool.cfg.bucket / "edited.raw").rglob("part.*"))
            assert shared_nodes.holders(pool.cfg.bucket, "edited.raw") == holders
    finally:
        agent.stop()


def test_a_version_lost_on_every_node_is_put_back_over_the_older_one_they_still_hold(
        pool_file: tuple[Path, Pool], shared_nodes: NodePool, tmp_path: Path) -> None:  # noqa: F811
    """Version 2 was removed from every node (by version id, with another S3 tool): each node's newest entry
    is now version 1 of the same file. That is no change by another device, so the device puts version 2
    back on top of it."""
    cfg, pool = pool_file
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "doc.txt").write_bytes(b"version one")
    agent = AgentProcess(cfg, folder).start()
    try:
        wait_until(lambda: len(shared_nodes.holders(pool.cfg.bucket, "doc.txt")) == 2, what="two copies")
        (folder / "doc.txt").write_bytes(b"version two, the one to keep")
        bucket = pool.cfg.bucket

        def v2_everywhere() -> bool:
            return all(_served(shared_nodes, bucket, "doc.txt", n) == hashlib.sha256(b"version two, the one to "
                                                                                      b"keep").hexdigest()
                       for n in shared_nodes.holders(bucket, "doc.txt"))

        wait_until(v2_everywhere, what="version 2 on its nodes")
        holders = shared_nodes.holders(bucket, "doc.txt")
        for name in holders:  # version 2 removed by version id: version 1 is newest again on every node
            raw = shared_nodes.raw_client(name)
            latest = next(o for o in raw.list_objects(bucket, prefix="doc.txt", include_version=True) if o.is_latest)
            raw.remove_object(bucket, "doc.txt", version_id=latest.version_id)
        assert all(_served(shared_nodes, bucket, "doc.txt", n) == hashlib.sha256(b"version one").hexdigest()
                   for n in holders)
        r = subprocess.run([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(cfg), "sync", "verify",
                            "--folder", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in r.stdout + r.stderr
        # the check marks the copies bad, which also wakes the agent's background repair: either of the two
        # may put version 2 back first (the other then finds it there, or copies it once more and drops the
        # surplus copy). Either way version 2 is the pool's file again, at R copies, and nothing is lost
        assert r.returncode == 0 and "no good copy left" not in r.stdout + r.stderr, r.stdout + r.stderr
        v2 = hashlib.sha256(b"version two, the one to keep").hexdigest()

        def v2_current_again() -> bool:  # as another device reads the pool: from the nodes
            rebuild.refresh(pool)
            info = pool.stat("doc.txt")
            return info.sha256 == v2 and len(info.replicas) >= 2

        wait_until(v2_current_again, what="version 2 the pool's file again, at two copies")
        assert pool.read_bytes("doc.txt") == b"version two, the one to keep"
    finally:
        agent.stop()
