"""Issue 17: durability classes per folder, on real nodes, set through the real `pooldrive policy` command.

Copies are counted on the nodes themselves (a plain S3 client per node), never taken from the catalog.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from sync_agent import config, node_admin, repair
from sync_agent.errors import RefusedError
from sync_agent.pool import Pool
from sync_agent.replica_plan import RepairMode
from tests.integration.test_cli_real_paths import run
from tests.nodepool import TEST_TIMEOUTS, NodePool

ZONES = {"node1": "home", "node2": "home", "node3": "office", "node4": "office"}


def _pool_file(nodes: NodePool, tmp_path: Path, bucket: str) -> Path:
    cfg = nodes.config(bucket, name="classes")
    cfg = cfg.with_nodes(tuple(replace(n, zone=ZONES[n.name]) for n in cfg.nodes))
    return config.save_pool(cfg, tmp_path / "classes.toml")


def _open(cfg_file: Path, catalog: Path) -> Pool:
    return Pool(config.load_pool(str(cfg_file)), catalog_path=catalog, timeouts=TEST_TIMEOUTS)


def _spread(nodes: NodePool, bucket: str, key: str) -> tuple[int, int]:
    holders = nodes.holders(bucket, key)
    return len(holders), len({ZONES[n] for n in holders})


def test_a_folder_class_of_three_copies_in_two_zones_holds_through_a_node_kill(fault_nodes: NodePool,
                                                                                  tmp_path: Path) -> None:
    assert sorted(n.name for n in fault_nodes.nodes) == sorted(ZONES)
    cfg_file = _pool_file(fault_nodes, tmp_path, "classes")
    home = tmp_path / "home"
    pool = _open(cfg_file, tmp_path / "a.sqlite3")
    pool.init_buckets()
    photos = [f"photos/p{i}.jpg" for i in range(8)]
    cache = [f"cache/c{i}.bin" for i in range(4)]
    for key in photos + cache:
        pool.put_bytes(key, key.encode())
    assert all(_spread(fault_nodes, "classes", k)[0] == 2 for k in photos + cache)

    r = run(cfg_file, home, "policy", "set", "photos", "--copies", "3", "--zones", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 copies in 2 zones" in r.stdout
    for key in photos:
        assert _spread(fault_nodes, "classes", key) == (3, 2), key
    assert all(_spread(fault_nodes, "classes", k) == (2, _spread(fault_nodes, "classes", k)[1]) for k in cache)

    # a new file in the folder is written with the class at once, by a process that learned it from the nodes
    pool.fetch_classes()
    pool.put_bytes("photos/new.jpg", b"new")
    assert _spread(fault_nodes, "classes", "photos/new.jpg") == (3, 2)
    photos.append("photos/new.jpg")

    # a node dies: repair brings the folder back to 3 copies over both zones on the three left
    victim = "node1"
    fault_nodes[victim].kill()
    pool.refresh_health(max_age=0)
    report = repair.run(pool, RepairMode.REPAIR, lost={victim})
    assert not report.errors and not report.unrecoverable
    for key in photos:
        assert _spread(fault_nodes, "classes", key) == (3, 2), key
    fault_nodes[victim].start()
    pool.refresh_health(max_age=0)
    repair.run(pool, RepairMode.REPAIR)  # the surplus made while it was down goes again

    # down to one copy for the cache; the class wins over R
    r = run(cfg_file, home, "policy", "set", "cache", "--copies", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(_spread(fault_nodes, "classes", k)[0] == 1 for k in cache)

    # classes the pool cannot meet are refused, and change nothing
    r = run(cfg_file, home, "policy", "set", "photos", "--copies", "5")
    assert r.returncode == RefusedError.exit_code and "has 4 nodes" in r.stdout + r.stderr
    r = run(cfg_file, home, "policy", "set", "photos", "--copies", "3", "--zones", "3")
    assert r.returncode == RefusedError.exit_code and "2 zones" in r.stdout + r.stderr
    r = run(cfg_file, home, "policy", "set", "photos", "--copies", "0")
    assert r.returncode == RefusedError.exit_code and "at least 1" in r.stdout + r.stderr

    # another device learns the classes from the nodes alone (its catalog rebuilt), and sees them met
    r = run(cfg_file, home / "other", "catalog", "rebuild")
    assert r.returncode == 0, r.stdout + r.stderr
    shown = {c["folder"]: c for c in json.loads(run(cfg_file, home / "other", "policy", "show", "--json").stdout)}
    assert (shown["photos"]["copies"], shown["photos"]["zones"], shown["photos"]["files"]) == (3, 2, 9)
    assert shown["photos"]["meeting"] == 9 and shown["cache"]["copies"] == 1 and shown[""]["copies"] == 2

    # cleared: the folder goes back to the pool's R
    r = run(cfg_file, home, "policy", "clear", "photos")
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(_spread(fault_nodes, "classes", k)[0] == 2 for k in photos)
    pool.close()


def test_the_deepest_folder_wins_and_bad_records_on_the_nodes_are_skipped(shared_nodes: NodePool,
                                                                          tmp_path: Path) -> None:
    import io

    from sync_agent import durability_store

    pool = shared_nodes.open_pool("classes-deep", tmp_path / "c.sqlite3")
    pool.set_class("work", 3)
    pool.set_class("work/scratch", 1)
    assert pool.durability("work/a.txt").copies == 3
    assert pool.durability("work/scratch/b.txt").copies == 1
    assert pool.durability("workshop/c.txt").copies == 2  # a sibling with the same start is not inside
    # someone with the pool's keys writes garbage where the classes live: skipped, never fatal
    raw = shared_nodes.raw_client("node1")
    for key, body in ((durability_store.PREFIX + "junk", b"{not json"),
                      (durability_store.PREFIX + "x", json.dumps({"folder": "work", "copies": 99, "zones": 1,
                                                                  "set_at": 9e12}).encode()),
                      (durability_store.record_key("work"), json.dumps({"folder": "work", "copies": True,
                                                                        "set_at": 9e12}).encode())):
        raw.put_object("classes-deep", key, io.BytesIO(body), len(body))
    classes = pool.fetch_classes()
    assert classes["work"].copies == 3 and classes["work/scratch"].copies == 1
    # a class whose record only one node holds (set while the others were down) survives that node being
    # down, and is copied to the others once it answers
    key = durability_store.record_key("work")
    for name in ("node2", "node3", "node4"):
        for o in list(shared_nodes.raw_client(name).list_objects("classes-deep", prefix=key, include_version=True)):
            shared_nodes.raw_client(name).remove_object("classes-deep", o.object_name, version_id=o.version_id)
    pool.health.record("node1", False, hard=True, error="down for the test")
    assert pool.fetch_classes()["work"].copies == 3
    pool.health.record("node1", True, 0.001)
    pool.health.record("node1", True, 0.001)
    assert pool.fetch_classes()["work"].copies == 3
    assert all(list(shared_nodes.raw_client(n).list_objects("classes-deep", prefix=key))
               for n in ("node2", "node3", "node4"))
    # a node cannot leave while a class needs it
    pool.set_class("all-four", 4)
    with pytest.raises(RefusedError, match="all-four"):
        node_admin.remove_node(pool, "node1")
    assert len(pool.cfg.nodes) == 4
    pool.close()
