from __future__ import annotations

import os
from pathlib import Path

from sync_agent.placement import placement


def test_put_get_roundtrip_on_r_nodes(pool, shared_nodes, tmp_path: Path) -> None:
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello pool" * 1000)
    info = pool.put_file(src, "docs/hello.txt")
    assert len(info.replicas) == 2
    assert sorted(info.replicas) == sorted(placement("docs/hello.txt", pool.specs(), 2))
    assert sorted(shared_nodes.holders(pool.cfg.bucket, "docs/hello.txt")) == sorted(info.replicas)
    out = pool.get_file("docs/hello.txt", tmp_path / "out.txt")
    assert out.read_bytes() == src.read_bytes()
    assert abs(os.stat(out).st_mtime - os.stat(src).st_mtime) < 0.01
