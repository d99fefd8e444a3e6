"""A folder renamed on one device reaches another device, both through their real agent processes."""

from __future__ import annotations

import os
from pathlib import Path

from tests.sync.test_agent_process import AgentProcess, pool_file, wait_until  # noqa: F401 - fixture


def test_a_folder_renamed_on_one_device_is_renamed_on_the_other(pool_file, tmp_path: Path) -> None:  # noqa: F811
    """Device A's agent moves the 120 files on the pool one by one; device B's agent renames its own copies
    (the same inodes) rather than trashing them and downloading them again. B must not take the new path of
    a move alone: not from a folder listing made for other paths, nor from a node's notification (one key
    each), before the journal entry that names both paths. And A must see the move as one, however its
    watcher hands it over: on a busy machine inotify reported the new folder's files a pass before the old
    path (A uploaded all 120 again and deleted the old ones a pass later; B trashed up to 118 of its copies
    and downloaded them again)."""
    cfg, _ = pool_file
    a_folder, b_folder = tmp_path / "device A", tmp_path / "device B"
    (a_folder / "photos 2025").mkdir(parents=True)
    for i in range(120):
        (a_folder / "photos 2025" / f"img{i:03d}.jpg").write_bytes(os.urandom(3000 + i))
    a = AgentProcess(cfg, a_folder, "--interval", "3600").start()
    b = None
    b_cfg = tmp_path / "device-b.toml"  # its own catalog, as on another machine (the catalog is per pool name)
    b_cfg.write_text(cfg.read_text().replace('name = "agentpool"', 'name = "agentpool-b"'))
    try:
        b = AgentProcess(b_cfg, b_folder, "--interval", "3600").start()
        wait_until(lambda: len(list((b_folder / "photos 2025").glob("*.jpg"))) == 120, timeout=60,
                   what="device B's first sync")
        inodes = {p.name: p.stat().st_ino for p in (b_folder / "photos 2025").iterdir()}
        (a_folder / "archive").mkdir()
        (a_folder / "photos 2025").rename(a_folder / "archive" / "photos 2025")
        moved = b_folder / "archive" / "photos 2025"
        took = wait_until(lambda: not (b_folder / "photos 2025").exists() and moved.is_dir()
                          and len(list(moved.glob("*.jpg"))) == 120, timeout=120, what="the folder moved on B")
        print(f"\nfolder of 120 files renamed on A -> on B in {took:.1f} s")
        renamed = sum(inodes.get(p.name) == p.stat().st_ino for p in moved.iterdir())
        trashed = list((b_folder / ".pooldrive" / "trash").rglob("*.jpg"))
        print(f"{renamed} of 120 renamed on B, {len(trashed)} trashed and downloaded again")
        assert renamed == 120 and not trashed, (renamed, len(trashed))
    finally:
        a.stop()
        if b is not None:
            b.stop()
