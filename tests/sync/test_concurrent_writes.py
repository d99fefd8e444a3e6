"""Two devices writing one path at the same moment: one current version on every node, one identity,
nothing hidden, the loser told (and, in the sync agent, kept as a conflicted copy)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter
from pathlib import Path

import pytest

from sync_agent import metadata, rebuild, writer
from sync_agent.errors import ChangedMeanwhileError, PreconditionFailed
from sync_agent.placement import write_order
from sync_agent.replication import copy_replica
from sync_agent.writer import undo_stray_versions
from tests.nodepool import NodePool
from tests.sync.conftest import Device, make_device


def _newest_on_holders(d: Device, path: str) -> set[str | None]:
    """The SHA-256 of the newest live version of ``path`` on each node that holds one, as the nodes say."""
    latest = set()
    for client in d.pool.clients.values():
        objs = [o for o in client.list(path.rsplit("/", 1)[0] + "/", versions=True) if o.key == path and o.is_latest]
        if objs and not objs[0].is_delete_marker:
            latest.add(objs[0].meta.get("sha256"))
    return latest


def _race(a: Device, b: Device, path: str, round_: int, files: dict[str, Path] | None = None,
          data: dict[str, bytes] | None = None) -> dict[str, object]:
    """Both devices save ``path`` at once (bytes naming the round, each its bytes in ``data``, or each its
    file in ``files``)."""
    results: dict[str, object] = {}
    go = threading.Barrier(2)

    def put(d: Device) -> None:
        go.wait()
        try:
            if files is None:
                body = data[d.name] if data is not None else f"{d.name} round {round_}".encode()
                results[d.name] = d.pool.put_bytes(path, body)
            else:
                results[d.name] = d.pool.put_file(files[d.name], path)
        except ChangedMeanwhileError as e:
            results[d.name] = e

    threads = [threading.Thread(target=put, args=(d,)) for d in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_simultaneous_puts_converge_on_one_version(devices: tuple[Device, Device]) -> None:
    a, b = devices
    outcomes: Counter[str] = Counter()
    for round_ in range(12):
        results = _race(a, b, "race/x.txt", round_)
        won = [n for n, r in results.items() if not isinstance(r, Exception)]
        lost = [n for n, r in results.items() if isinstance(r, ChangedMeanwhileError)]
        assert len(won) >= 1, results  # never both refused
        outcomes["one won" if len(won) == 1 else "both"] += 1
        latest = _newest_on_holders(a, "race/x.txt")  # every node holding the path agrees on its newest content
        assert len(latest) == 1, (round_, latest, results)
        for d in lost:  # the loser's catalog already knows the winner's version
            loser = a if d == a.name else b
            assert loser.pool.stat("race/x.txt").sha256 in latest
        for d in (a, b):
            rebuild.refresh(d.pool)
    assert a.pool.stat("race/x.txt").id == b.pool.stat("race/x.txt").id  # one identity for the path
    ids = {v.number for v in a.pool.versions("race/x.txt")}
    assert ids == {v.number for v in b.pool.versions("race/x.txt")}  # one history, seen alike
    for d in (a, b):
        s = rebuild.rebuild(d.pool)
        assert d.pool.exists("race/x.txt"), s.bad  # never vanishes after a rebuild
        assert len([f for f in s.files.values() if f.path == "race/x.txt"]) == 1


def test_simultaneous_creation_is_one_file(devices: tuple[Device, Device]) -> None:
    a, b = devices
    results = _race(a, b, "new/both.txt", 0)
    assert sum(isinstance(r, ChangedMeanwhileError) for r in results.values()) == 1, results
    for d in (a, b):
        rebuild.refresh(d.pool)
    assert a.pool.stat("new/both.txt").id == b.pool.stat("new/both.txt").id
    assert len(a.pool.versions("new/both.txt")) == 1


def test_sync_agents_saving_at_once_keep_both_as_a_conflict(devices: tuple[Device, Device]) -> None:
    a, b = devices
    a.write("doc.txt", b"base")
    a.sync()
    b.sync()
    a.write("doc.txt", b"laptop")
    b.write("doc.txt", b"desktop")
    go = threading.Barrier(2)

    def one(d: Device) -> None:
        go.wait()
        d.engine.sync({"doc.txt"}, refresh_remote=False)

    threads = [threading.Thread(target=one, args=(d,)) for d in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(2):
        for d in (a, b):
            d.engine.sync({"doc.txt", *d.engine.retry}, refresh_remote=False)
            d.engine.retry.clear()
        a.sync()
        b.sync()
    files_a, files_b = a.files(), b.files()
    assert files_a == files_b
    assert sorted(v for k, v in files_a.items()) == [b"desktop", b"laptop"]  # nothing lost
    assert any("conflicted copy" in k for k in files_a)


def test_simultaneous_large_puts_converge_on_one_version(devices: tuple[Device, Device], tmp_path: Path) -> None:
    """Files of several parts: the parts go up to every node at once, the completions wait for the arbiter's
    conditional one. Of two devices saving the same new or changed 20 MB file, one wins everywhere and the
    other is told; nothing is left half-written on any node."""
    a, b = devices
    srcs = {d.name: tmp_path / f"{d.name}.bin" for d in (a, b)}
    outcomes: Counter[str] = Counter()
    for round_ in range(3):
        for src in srcs.values():
            src.write_bytes(os.urandom(20 * 1024 * 1024))
        results = _race(a, b, "race/big.bin", round_, srcs)
        won = [n for n, r in results.items() if not isinstance(r, Exception)]
        assert len(won) >= 1, results
        outcomes["one won" if len(won) == 1 else "both"] += 1
        latest = _newest_on_holders(a, "race/big.bin")
        for client in a.pool.clients.values():
            assert not client.s3._list_multipart_uploads(client.bucket, prefix="race/").uploads  # none left
        assert len(latest) == 1, (round_, latest, results)
        for d in (a, b):
            rebuild.refresh(d.pool)
    assert outcomes["one won"] >= 2, outcomes  # 20 MB uploads started together overlap
    assert a.pool.stat("race/big.bin").id == b.pool.stat("race/big.bin").id


def test_simultaneous_large_put_bytes_are_arbitrated_too(devices: tuple[Device, Device]) -> None:
    """put_bytes of more than one part (the API, the GUI) races like a file: one wins, the other is told."""
    from sync_agent.writer import SMALL

    a, b = devices
    data = {d.name: d.name.encode() * ((SMALL + 1024) // len(d.name) + 1) for d in (a, b)}
    results = _race(a, b, "big/blob.bin", 0, data=data)
    assert sum(isinstance(r, ChangedMeanwhileError) for r in results.values()) == 1, results
    assert len(_newest_on_holders(a, "big/blob.bin")) == 1
    for d in (a, b):
        rebuild.refresh(d.pool)
    assert a.pool.stat("big/blob.bin").id == b.pool.stat("big/blob.bin").id


def test_a_device_that_missed_a_file_made_while_the_arbiter_was_down_makes_a_conflict(
        fault_nodes: NodePool, tmp_path: Path) -> None:
    """The arbiter is the first usable node of a path's ranking, so it changes while that node is down.
    Device A creates the file then (it lands on the next nodes). Device B, which has not heard of it,
    passes the returned arbiter with If-None-Match: * but must fail on a node that holds A's file: its
    write becomes the conflict, undone everywhere, instead of a second file at the path (seed 37)."""
    a = make_device(fault_nodes, "arbiter", tmp_path, "laptop")
    b = make_device(fault_nodes, "arbiter", tmp_path, "desktop")
    path = "docs/c.txt"
    arbiter = write_order(path, a.pool.specs(), 2, sorted(a.pool.clients))[0]
    fault_nodes[arbiter].kill()
    for d in (a, b):
        d.pool.refresh_health(max_age=0)
    a.pool.put_bytes(path, b"laptop, arbiter down")
    assert arbiter not in a.pool.stat(path).replicas
    fault_nodes[arbiter].start()
    for d in (a, b):
        d.pool.refresh_health(max_age=0)
        d.pool.refresh_health(max_age=0)
    with pytest.raises(ChangedMeanwhileError):
        b.pool.put_bytes(path, b"desktop, never heard of it")
    assert _newest_on_holders(a, path) == {a.pool.stat(path).sha256}  # B's arbiter copy was undone
    assert b.pool.stat(path).id == a.pool.stat(path).id  # B learnt A's file: one identity
    for d in (a, b):
        rebuild.rebuild(d.pool)
        assert d.pool.read_bytes(path) == b"laptop, arbiter down"
        d.close()


def test_a_holder_whose_newest_entry_is_an_older_version_is_brought_in_line(devices: tuple[Device, Device]) -> None:
    """A copy of version 1 put on top of a node that holds version 2 (a repair that acted on an old
    catalog, an older PoolDrive): every device still takes version 2 as current (the version numbers
    order one file's versions), and the refresh restates version 2 on top of that node, with version 1
    kept below it."""
    a, b = devices
    path = "agree/x.txt"
    a.pool.put_bytes(path, b"one")
    v1 = a.pool.stat(path)
    a.pool.put_bytes(path, b"two")
    v2 = a.pool.stat(path)
    node = sorted(v2.replicas)[0]
    client = a.pool.client(node)
    old = next(o for o in client.list(path, versions=True) if o.meta.get("sha256") == v1.sha256) \
        if node in v1.replicas else None
    if old is None:  # the node never held version 1: put one there, as another tool would
        src = a.pool.client(sorted(v1.replicas)[0])
        old = next(o for o in src.list(path, versions=True) if o.meta.get("sha256") == v1.sha256)
        client.put_if(path, b"one", old.meta, if_match=False)
    else:
        client.copy_if(path, old.version_id, old.meta, if_match=False)
    assert _newest_on_node(client, path) == v1.sha256  # the node now says version 1
    rebuild.rebuild(b.pool)
    assert b.pool.stat(path).sha256 == v2.sha256 and b.pool.read_bytes(path) == b"two"
    assert _newest_on_node(client, path) == v2.sha256  # restated on top
    assert {o.meta.get("sha256") for o in client.list(path, versions=True)} >= {v1.sha256, v2.sha256}
    rebuild.refresh(a.pool)  # a second device finds nothing left to do
    assert len([o for o in client.list(path, versions=True) if o.meta.get("sha256") == v2.sha256]) == 2


def test_a_copy_of_an_old_version_never_becomes_the_nodes_newest(devices: tuple[Device, Device]) -> None:
    """A drain moves every version of a file; copying version 1 onto a node that holds version 2 must
    leave version 2 as that node's newest entry."""
    a, _ = devices
    path = "agree/drained.txt"
    a.pool.put_bytes(path, b"first")
    a.pool.put_bytes(path, b"second")
    f = a.pool.stat(path)
    dest = sorted(f.replicas)[0]
    v1 = next(v for v in a.pool.catalog.versions_by_id(f.id) if v.number != f.version)
    copy_replica(a.pool, f.id, v1, dest)
    assert _newest_on_node(a.pool.client(dest), path) == f.sha256


def _newest_on_node(client: object, path: str) -> str | None:
    latest = [o for o in client.list(path, versions=True) if o.key == path and o.is_latest]  # type: ignore[attr-defined]
    return latest[0].meta.get("sha256") if latest and not latest[0].is_delete_marker else None


def test_copy_if_is_a_compare_and_swap_even_though_minio_ignores_the_headers(devices: tuple[Device, Device]) -> None:
    """MinIO checks only the copy source's conditions on CopyObject: the restate of a holder must still
    never land on top of a write it did not expect."""
    a, _ = devices
    a.pool.put_bytes("cas/x.txt", b"one")
    a.pool.put_bytes("cas/x.txt", b"two")
    f = a.pool.stat("cas/x.txt")
    node = sorted(f.replicas)[0]
    client = a.pool.client(node)
    entries = [o for o in client.list("cas/x.txt", versions=True) if o.key == "cas/x.txt"]
    newest, older = entries[0], entries[1]
    with pytest.raises(PreconditionFailed):
        client.copy_if("cas/x.txt", older.version_id, older.meta, if_match=older.etag)  # not what is newest
    with pytest.raises(PreconditionFailed):
        client.copy_if("cas/x.txt", older.version_id, older.meta, if_match=None)  # 'nothing live' is wrong too
    assert [o.version_id for o in client.list("cas/x.txt", versions=True)] == [o.version_id for o in entries]
    vid, etag = client.copy_if("cas/x.txt", older.version_id, older.meta, if_match=newest.etag)
    assert _newest_on_node(client, "cas/x.txt") == older.meta["sha256"] and etag == older.etag and vid


def test_undoing_a_lost_write_never_takes_the_other_devices_copy_of_the_same_version(
        devices: tuple[Device, Device]) -> None:
    """Two devices that edited version 1 both write version 2 of the same file: the one that undoes its
    write removes its own copies only (matched by content and write time), never the winner's."""
    a, _ = devices
    a.pool.put_bytes("undo/x.txt", b"base")
    f = a.pool.stat("undo/x.txt")
    node = sorted(f.replicas)[0]
    theirs = metadata.object_meta(f.id, 2, "a" * 64, 6, 1.0, written=111.0)
    a.pool.client(node).put_if("undo/x.txt", b"theirs", theirs, if_match=False)
    mine = metadata.object_meta(f.id, 2, "b" * 64, 4, 1.0, written=222.0)
    a.pool.client(node).put_if("undo/x.txt", b"mine", mine, if_match=False)
    assert undo_stray_versions(a.pool, "undo/x.txt", f.id, 2, [node], sha256=mine["sha256"],
                               written=mine["written"])
    left = [o.meta.get("sha256") for o in a.pool.client(node).list("undo/x.txt", versions=True)]
    assert theirs["sha256"] in left and mine["sha256"] not in left


def test_a_drain_never_puts_a_delete_marker_over_a_file_that_lives_at_the_key(devices: tuple[Device, Device]) -> None:
    """A node whose newest entry at a key is an old delete marker gets a copy of the file that lives there
    now: the copy stays on top, no new marker (a marker that new would make the key deleted everywhere)."""
    a, _ = devices
    a.pool.put_bytes("marker/x.txt", b"first file")
    a.pool.delete("marker/x.txt")
    a.pool.put_bytes("marker/x.txt", b"second file")
    g = a.pool.stat("marker/x.txt")
    dest = next(n for n in sorted(a.pool.clients) if n not in g.replicas)
    a.pool.client(dest).delete("marker/x.txt")  # its newest entry: a marker (as a node that held the first)
    copy_replica(a.pool, g.id, g.current, dest)
    assert _newest_on_node(a.pool.client(dest), "marker/x.txt") == g.sha256
    rebuild.rebuild(a.pool)
    assert a.pool.read_bytes("marker/x.txt") == b"second file"


def test_a_copy_whose_answer_was_lost_is_recognised_as_this_write_not_a_conflict(
        devices: tuple[Device, Device]) -> None:
    """A link that resets after the node stored a copy loses the answer; the write goes on and asks that
    node again with If-None-Match: *, which it refuses because of the copy just made. That copy is this very
    write (same file, version, SHA-256 and write time): taken as done, never as another device's (a false
    'changed meanwhile' seen on the WAN profile's flaky node)."""
    a, _ = devices
    meta = metadata.object_meta("f" * 32, 1, hashlib.sha256(b"x").hexdigest(), 1, 1.0)
    node = sorted(a.pool.clients)[0]
    client = a.pool.client(node)
    stored = client.put_if("lost/x.txt", b"x", meta, if_match=None)  # the first attempt, answer lost
    expect = writer._Expect(a.pool, "lost/x.txt", "f" * 32, 1, None, meta)
    again = expect.write(node, lambda c: client.put_if("lost/x.txt", b"x", meta, if_match=c))
    assert again == stored and len(list(client.list("lost/x.txt", versions=True))) == 1
    other = dict(meta, written="2.000000")  # the same file and version from another write: a conflict
    with pytest.raises(ChangedMeanwhileError):
        writer._Expect(a.pool, "lost/x.txt", "f" * 32, 1, None, other).write(
            node, lambda c: client.put_if("lost/x.txt", b"x", other, if_match=c))
