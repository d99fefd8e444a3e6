"""A read-write share as people use it: the recipient writes into the shared folder with the key of the
invitation (which may not write the pool's change journal), and the owner's running agent brings those
writes into the owner's synced folder within seconds, not at the hourly reconcile."""

from __future__ import annotations

from pathlib import Path

from sync_agent import rebuild
from sync_agent.pool import Pool
from sync_agent.sharing import invitation, shares
from sync_agent.sharing.policy import ShareMode
from tests.nodepool import TEST_TIMEOUTS
from tests.sync.test_agent_process import AgentProcess, pool_file, wait_until  # noqa: F401 - fixture


def test_a_recipients_writes_reach_the_owners_synced_folder_within_seconds(pool_file, tmp_path: Path) -> None:  # noqa: F811
    cfg, owner = pool_file
    owner.put_bytes("work/plan.txt", b"the plan")
    folder = tmp_path / "owner folder"
    agent = AgentProcess(cfg, folder, "--interval", "3600").start()  # the reconcile would find them within the hour
    try:
        wait_until(lambda: (folder / "work/plan.txt").exists(), what="the owner's file")
        _, inv = shares.create_share(owner, "work", ShareMode.READ_WRITE, label="Bob")
        them_cfg = shares.accept_invitation(invitation.decode(invitation.encode(inv), None), name="bobs-view")
        them = Pool(them_cfg, catalog_path=tmp_path / "bob.sqlite3", timeouts=TEST_TIMEOUTS)
        try:
            rebuild.refresh(them)
            them.put_bytes("work/from bob.txt", b"hello from bob")
            took = wait_until(lambda: (folder / "work/from bob.txt").exists(), timeout=30,
                              what="bob's new file in the owner's folder")
            print(f"\nrecipient's new file -> owner's folder in {took:.2f} s")
            them.put_bytes("work/plan.txt", b"the plan, edited by bob")
            wait_until(lambda: (folder / "work/plan.txt").read_bytes() == b"the plan, edited by bob", timeout=30,
                       what="bob's edit in the owner's folder")
            them.delete("work/from bob.txt")
            wait_until(lambda: not (folder / "work/from bob.txt").exists(), timeout=30,
                       what="bob's delete in the owner's folder")
        finally:
            them.close()
    finally:
        agent.stop()
