"""Randomized model test: two devices, random edits on both sides, agent restarts and a node killed, on a
real pool. After quiescence both folders and the pool agree, and no content that ever took part in a sync
was lost: each is the current content of some file, a conflicted copy, in the trash, or a restorable
version on the pool."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from pathlib import Path

import pytest

from sync_agent.errors import PoolDriveError
from sync_agent.sync.engine import SyncEngine
from sync_agent.sync.state import SyncState
from tests.nodepool import NodePool
from tests.sync.conftest import Device, make_device

NAMES = ["a.txt", "b.txt", "docs/c.txt", "docs/d.txt", "deep/x/e.txt"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _restart(dev: Device, root: Path) -> None:
    """The agent process dies and starts again: same folder, same state database, new engine."""
    remote_root = dev.engine.remote_root
    dev.engine.state.close()
    dev.engine = SyncEngine(dev.pool, dev.folder, SyncState(dev.folder, root / f"{dev.name}.state"), host=dev.name,
                            remote_root=remote_root)


def _all_pool_shas(dev: Device) -> set[str]:
    m = dev.pool.catalog.m
    return {v.sha256 for v in m.Version.select()}


def _local_shas(dev: Device) -> set[str]:
    return set(_local_contents(dev))


def _local_contents(dev: Device) -> dict[str, bytes]:
    return {_sha(b): b for b in (p.read_bytes() for p in dev.folder.rglob("*")
                                 if p.is_file() and ".pooldrive-part" not in p.name and ".pooldrive" not in p.parts)}


def _concurrently(devs: list[Device], name: str, counter: int, by_put: bool) -> list[str]:
    """Both devices at once: a sync pass each over ``name``, or a 'put' of their own content to it."""
    acked: list[str] = []
    go = threading.Barrier(len(devs))

    def one(d: Device) -> None:
        go.wait()
        try:
            if by_put:
                data = f"{d.name} put {counter}".encode()
                d.pool.put_bytes(d.engine.pool_key(name), data)
                acked.append(_sha(data))
            else:
                d.engine.sync({name}, refresh_remote=False)
        except PoolDriveError:
            pass  # lost the race, or a node just died: the content is still local / the put said so

    threads = [threading.Thread(target=one, args=(d,)) for d in devs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return acked


# CI runs eleven seeds, among them every one that ever failed (13, 56: lost content and split nodes, fixed in
# session 3; 8, 23, 26, 37, 40: holders and devices that disagreed, fixed in session 6; 50: an empty partial
# download left in one device's folder, fixed in session 7). By hand: POOLDRIVE_MODEL_SEEDS=$(seq -s, 1 120)
SEEDS = "1,2,3,8,13,23,26,37,40,50,56"
# the same history with both devices syncing a folder pair (a pool folder, not the whole pool); a file of the
# pool outside the pair must never move
PAIR_SEEDS = "4,5,6"
PAIR = "team/shared"


def _seeds(var: str, default: str, remote_root: str) -> list[tuple[int, str]]:
    return [(int(s), remote_root) for s in os.environ.get(var, default).split(",")]


@pytest.mark.parametrize(("seed", "remote_root"), _seeds("POOLDRIVE_MODEL_SEEDS", SEEDS, "")
                         + _seeds("POOLDRIVE_MODEL_PAIR_SEEDS", PAIR_SEEDS, PAIR))
def test_random_two_device_history_loses_nothing(fault_nodes: NodePool, tmp_path: Path, seed: int,
                                                 remote_root: str) -> None:
    rng = random.Random(seed)
    a = make_device(fault_nodes, "model", tmp_path, "laptop", remote_root)
    b = make_device(fault_nodes, "model", tmp_path, "desktop", remote_root)
    if remote_root:
        a.pool.put_bytes("team/outside.txt", b"not in the pair")
    devs = [a, b]
    synced_contents: dict[str, bytes] = {}  # SHA-256 -> content, for the message when one is lost
    acked: list[str] = []  # contents a 'put' reported as stored
    counter = 0
    killed = None
    for _step in range(24):
        dev = rng.choice(devs)
        op = rng.random()
        existing = [p for p in dev.files() if "conflicted" not in p]
        if op < 0.35 or not existing:
            counter += 1
            dev.write(rng.choice(NAMES), f"{dev.name} write {counter}".encode())
        elif op < 0.5:
            (dev.folder / rng.choice(existing)).unlink()
        elif op < 0.6:
            src = rng.choice(existing)
            dst = dev.folder / rng.choice(NAMES)
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                (dev.folder / src).rename(dst)
        elif op < 0.65:
            _restart(dev, tmp_path)
        elif op < 0.7 and killed is None:
            killed = rng.choice(["node1", "node2", "node3", "node4"])
            fault_nodes[killed].kill()
        elif op < 0.75 and killed is not None:
            fault_nodes[killed].start()
            killed = None
        elif op < 0.88:  # both devices save one path at the same moment, by the agent or by 'put'
            name = rng.choice(NAMES)
            counter += 1
            by_put = rng.random() < 0.4
            for d in devs:
                if not by_put:
                    d.write(name, f"{d.name} concurrent {counter}".encode())
                synced_contents |= _local_contents(d)
            acked.extend(_concurrently(devs, name, counter, by_put))
            continue
        synced_contents |= _local_contents(dev)
        try:
            dev.engine.sync()
        except PoolDriveError:
            pass  # a node just died under us: the next pass goes on
    if killed is not None:
        fault_nodes[killed].start()
    for dev in devs:  # a node that came back needs two good answers before it counts as up again
        dev.pool.refresh_health(max_age=0)
        dev.pool.refresh_health(max_age=0)
    for _ in range(3):  # quiescence
        for dev in devs:
            synced_contents |= _local_contents(dev)
            dev.engine.sync()
    assert a.files() == b.files()
    pool_now = {f.path: f.sha256 for f in a.pool.walk()}
    if remote_root:
        assert pool_now.pop("team/outside.txt") == _sha(b"not in the pair")
    assert pool_now == {a.engine.pool_key(k): _sha(v) for k, v in a.files().items()}
    kept = _all_pool_shas(a) | _all_pool_shas(b) | _local_shas(a) | _local_shas(b)
    trash = {_sha(p.read_bytes()) for d in devs for p in (d.folder / ".pooldrive/trash").rglob("*") if p.is_file()} \
        if any((d.folder / ".pooldrive/trash").exists() for d in devs) else set()
    lost = [synced_contents[h] for h in set(synced_contents) - (kept | trash)]
    assert not lost, f"content that was synced is gone: {lost}"
    assert set(acked) <= kept, "a 'put' that succeeded was lost"
    for f in a.pool.walk():  # every node holding the current copy reports it as its newest version
        for node in f.replicas:
            latest = [o for o in a.pool.client(node).list(f.path, versions=True) if o.key == f.path and o.is_latest]
            assert latest and latest[0].meta.get("sha256") == f.sha256, (f.path, node)
    for dev in devs:
        dev.close()
