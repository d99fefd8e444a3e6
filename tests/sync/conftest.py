from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sync_agent.pool import Pool
from sync_agent.sync.engine import SyncEngine
from sync_agent.sync.state import SyncState
from tests.conftest import fresh_bucket
from tests.nodepool import TEST_TIMEOUTS, NodePool


@dataclass
class Device:
    """One simulated machine: its own folder, catalog and sync state, against the shared pool."""

    name: str
    folder: Path
    pool: Pool
    engine: SyncEngine

    def sync(self, times: int = 2) -> None:
        for _ in range(times):  # a second pass uploads conflict copies made by the first
            self.engine.sync()

    def write(self, rel: str, data: bytes) -> Path:
        p = self.folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    def read(self, rel: str) -> bytes:
        return (self.folder / rel).read_bytes()

    def files(self) -> dict[str, bytes]:
        return {p.relative_to(self.folder).as_posix(): p.read_bytes() for p in sorted(self.folder.rglob("*"))
                if p.is_file() and ".pooldrive" not in p.parts}

    def close(self) -> None:
        self.engine.state.close()
        self.pool.close()


def make_device(nodes: NodePool, bucket: str, root: Path, name: str, remote_root: str = "") -> Device:
    """``remote_root``: the device syncs this pool folder (a folder pair), not the whole pool."""
    pool = Pool(nodes.config(bucket), catalog_path=root / f"{name}.catalog.sqlite3", timeouts=TEST_TIMEOUTS)
    pool.init_buckets()
    folder = root / name
    engine = SyncEngine(pool, folder, SyncState(folder, root / f"{name}.state"), host=name, parallel=4,
                        remote_root=remote_root)
    return Device(name, folder, pool, engine)


@pytest.fixture
def devices(shared_nodes: NodePool, tmp_path: Path) -> Iterator[tuple[Device, Device]]:
    bucket = fresh_bucket()
    a = make_device(shared_nodes, bucket, tmp_path, "laptop")
    b = make_device(shared_nodes, bucket, tmp_path, "desktop")
    yield a, b
    a.close()
    b.close()
