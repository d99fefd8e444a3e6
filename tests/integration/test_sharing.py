"""Issue 7: folder shares enforced by MinIO itself, invitations, revoke, links. Two identities: the owner's
pool (root keys) and the recipient's, built only from the invitation."""

from __future__ import annotations

import io
import json
import os
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from minio import Minio
from minio.error import S3Error

from sync_agent import rebuild
from sync_agent.errors import AuthError, ConfigError, PoolDriveError, RefusedError
from sync_agent.journal import PREFIX as JOURNAL
from sync_agent.placement import placement
from sync_agent.pool import Pool
from sync_agent.sharing import invitation, links, shares, views
from sync_agent.sharing.invitation import InvitationError
from sync_agent.sharing.policy import ShareMode, folder_policy
from tests.nodepool import TEST_TIMEOUTS, NodePool


def _owner(nodes: NodePool, tmp_path: Path) -> Pool:
    pool = nodes.open_pool("owner-bucket", tmp_path / "owner.sqlite3")
    pool.put_bytes("photos/2024/cat.jpg", b"meow" * 100)
    pool.put_bytes("photos/dog.jpg", b"woof" * 100)
    pool.put_bytes("private/diary.txt", b"secret")
    return pool


def _recipient(inv_text: str, tmp_path: Path, passphrase: str | None = None, name: str = "") -> Pool:
    cfg = shares.accept_invitation(invitation.decode(inv_text, passphrase),
                                   name=name or f"shared-{len(inv_text) % 997}")
    return Pool(cfg, catalog_path=tmp_path / f"recipient-{cfg.name}.sqlite3", timeouts=TEST_TIMEOUTS)


def _scoped(nodes: NodePool, node: str, inv: invitation.Invitation) -> Minio:
    return nodes.s3(node, inv.access_key, inv.secret_key)


def _refused(fn) -> bool:
    try:
        fn()
    except S3Error as e:
        return e.code in ("AccessDenied", "InvalidAccessKeyId", "ExpiredToken")
    return False


def _view_keys(s3: Minio, bucket: str, prefix: str = "photos/") -> list[tuple[str, str | None]]:
    return sorted((o.object_name or "", o.version_id)
                  for o in s3.list_objects(bucket, prefix=prefix, recursive=True, include_version=True))


def test_a_read_only_share_without_history_reads_the_folder_as_it_is_now_and_nothing_of_its_past(
        fault_nodes: NodePool, tmp_path: Path) -> None:
    """Issue 13, finding 5, with the recipient's real key in a plain S3 client: earlier versions, files
    deleted before the share and files since moved out are out of its reach (not merely hidden by
    PoolDrive), and what it can read follows the owner's changes. With history asked for, the past is there."""
    owner = _owner(fault_nodes, tmp_path)
    owner.put_bytes("photos/draft.txt", b"first draft, embarrassing")
    old = owner.stat("photos/draft.txt").current
    owner.put_bytes("photos/draft.txt", b"final")
    owner.put_bytes("photos/ex.jpg", b"deleted before the share")
    owner.delete("photos/ex.jpg")
    owner.put_bytes("photos/moved.txt", b"moved out before the share")
    owner.move("photos/moved.txt", "private/moved.txt")
    _, inv = shares.create_share(owner, "photos", ShareMode.READ_ONLY)
    assert inv.history is False and inv.bucket == "pdshare-" + inv.share_id
    current = {"photos/2024/cat.jpg", "photos/dog.jpg", "photos/draft.txt"}
    for node in ("node1", "node2", "node3", "node4"):
        raw = _scoped(fault_nodes, node, inv)
        held = {f.path for f in owner.walk("photos/") if node in f.replicas}
        assert _view_keys(raw, inv.bucket) == sorted((k, "null") for k in held)  # one object each, no history
        for prefix in ("photos/", "private/", ""):  # the owner's bucket: nothing at all
            assert _refused(lambda p=prefix, c=raw: list(c.list_objects("owner-bucket", prefix=p,
                                                                        include_version=True)))
        assert _refused(lambda c=raw: c.get_object("owner-bucket", "photos/dog.jpg").read())
        assert _refused(lambda c=raw: list(c.list_objects(inv.bucket, prefix="photos")))  # the bare name
        assert _refused(lambda c=raw: c.put_object(inv.bucket, "photos/x", io.BytesIO(b"x"), 1))
        assert _refused(lambda c=raw: c.remove_object(inv.bucket, "photos/dog.jpg"))
    holder = old.replicas[0].node
    raw = _scoped(fault_nodes, holder, inv)
    assert _refused(lambda: raw.get_object("owner-bucket", "photos/draft.txt",
                                           version_id=old.replicas_version(holder)).read())
    assert raw.get_object(inv.bucket, "photos/draft.txt").read() == b"final"
    assert {f.path for f in owner.walk("photos/")} == current

    them = _recipient(invitation.encode(inv), tmp_path, name="shared-now")
    assert them.cfg.current_only and them.cfg.bucket == inv.bucket
    rebuild.refresh(them)
    assert {f.path for f in them.walk()} == current
    assert them.read_bytes("photos/draft.txt") == b"final"
    assert [v.number for v in them.versions("photos/draft.txt")] == [2]
    assert not them.catalog.deleted_files()

    owner.put_bytes("photos/draft.txt", b"final, v2")  # the owner goes on; the recipient's catalog is behind
    owner.delete("photos/dog.jpg")
    owner.move("photos/2024/cat.jpg", "private/cat.jpg")
    owner.put_bytes("photos/new.txt", b"new")
    keeper = views.Clients(owner)
    assert all(r.complete for r in views.keep(owner, keeper))  # what the owner's agent does after each change
    with pytest.raises(PoolDriveError):
        them.read_bytes("photos/draft.txt")  # refused by the ETag guard: never the newer bytes as the older
    rebuild.refresh(them)
    assert {f.path for f in them.walk()} == {"photos/draft.txt", "photos/new.txt"}
    assert them.read_bytes("photos/draft.txt") == b"final, v2"
    for node in ("node1", "node2", "node3", "node4"):
        held = {f.path for f in owner.walk("photos/") if node in f.replicas}
        assert _view_keys(_scoped(fault_nodes, node, inv), inv.bucket) == sorted((k, "null") for k in held)
    again = views.keep(owner, keeper, read_nodes=True)[0]
    assert again.copied == again.removed == 0  # in step: nothing to do
    keeper.close()

    _, inv2 = shares.create_share(owner, "photos", ShareMode.READ_ONLY, history=True)  # asked for: the past too
    assert inv2.bucket == "owner-bucket"
    them2 = _recipient(invitation.encode(inv2), tmp_path, name="shared-past")
    assert not them2.cfg.current_only
    rebuild.refresh(them2)
    assert [v.number for v in them2.versions("photos/draft.txt")] == [3, 2, 1]
    assert them2.catalog.deleted_files()  # photos/ex.jpg, restorable by the owner, visible to them

    with pytest.raises(RefusedError, match="always shows the folder's history"):
        shares.create_share(owner, "photos", ShareMode.READ_WRITE, history=False)
    _, rw = shares.create_share(owner, "photos", ShareMode.READ_WRITE)
    assert rw.history and rw.bucket == "owner-bucket"

    shares.revoke_share(owner, inv.share_id)  # the view goes with the share
    for node in ("node1", "node2", "node3", "node4"):
        assert not owner.client(node).s3.bucket_exists(inv.bucket)
    them.refresh_health(max_age=0)  # the recipient is told the share is gone, not that its nodes are down
    with pytest.raises(AuthError, match="revoked or has expired"):
        them.get_file("photos/draft.txt", tmp_path / "after revoke.txt")
    them.close()
    them2.close()
    owner.close()


def test_a_file_kept_only_on_nodes_added_after_the_share_still_reaches_its_view(fault_nodes: NodePool,
                                                                                tmp_path: Path) -> None:
    """A share made when the pool had node1 and node2 has its key and view there only. A file whose copies
    the scheduler later puts on node3 and node4 alone is brought into the view through this device."""
    from sync_agent.placement import write_order

    owner = _owner(fault_nodes, tmp_path)
    _, inv = shares.create_share(owner, "photos", ShareMode.READ_ONLY)
    row = owner.catalog.m.Share.get_by_id(inv.share_id)
    row.nodes = '["node1", "node2"]'  # as made before node3 and node4 joined
    row.save()
    names = (f"photos/new-{i}.jpg" for i in range(500))
    key = next(k for k in names if set(write_order(k, owner.specs(), 2, [n.name for n in owner.cfg.nodes])[:2])
               == {"node3", "node4"})
    owner.put_bytes(key, b"only on the new nodes")
    assert sorted(owner.stat(key).replicas) == ["node3", "node4"]
    keeper = views.Clients(owner)
    report = views.keep(owner, keeper)[0]
    assert report.complete and report.copied >= 1  # and any earlier file held only there
    them = _recipient(invitation.encode(inv), tmp_path, name="shared-new-nodes")
    rebuild.refresh(them)
    assert them.read_bytes(key) == b"only on the new nodes"  # metadata and checksum as the owner's copy
    assert views.keep(owner, keeper)[0].copied == 0  # in step
    keeper.close()
    them.close()
    owner.close()


def test_a_share_that_cannot_be_made_leaves_nothing_and_never_touches_a_bucket_it_did_not_make(
        fault_nodes: NodePool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = _owner(fault_nodes, tmp_path)
    taken = "pdshare-taken"
    s3 = owner.client("node3").s3
    s3.make_bucket(taken)  # someone else's bucket where the view would go on node3
    s3.put_object(taken, "theirs.txt", io.BytesIO(b"theirs"), 6)
    monkeypatch.setattr(views, "bucket_for", lambda _id: taken)
    with pytest.raises(RefusedError, match="already has a bucket"):
        shares.create_share(owner, "photos", ShareMode.READ_ONLY)
    assert s3.get_object(taken, "theirs.txt").read() == b"theirs"  # untouched
    assert not any(owner.client(n).s3.bucket_exists(taken) for n in ("node1", "node2", "node4"))  # ours: undone
    assert not shares.list_shares(owner)  # no key, no share left behind
    owner.close()


def test_the_owners_agent_keeps_a_share_view_in_step(fault_nodes: NodePool, tmp_path: Path) -> None:
    """Through the real commands: the owner's agent runs, 'pooldrive share folder --read-only' makes the
    view, and files saved, changed and deleted in the owner's synced folder reach the recipient's key (and
    leave it) with no command run; 'share revoke' removes the view from the nodes."""
    import json
    import subprocess
    import sys

    from sync_agent import config
    from tests.sync.test_agent_process import AgentProcess, wait_until

    owner = _owner(fault_nodes, tmp_path)
    cfg_file = config.save_pool(owner.cfg, tmp_path / "owner.toml")
    folder = tmp_path / "owner folder"
    agent = AgentProcess(cfg_file, folder).start()
    root = Path(__file__).resolve().parents[2]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sync_agent.cli.main", "--pool", str(cfg_file), *args],
                              cwd=root, text=True, capture_output=True, timeout=120)

    try:
        wait_until(lambda: (folder / "photos" / "dog.jpg").exists(), what="the owner's files")
        made = cli("share", "folder", "photos", "--read-only", "--out", str(tmp_path / "inv.txt"))
        assert made.returncode == 0 and "never its past" in made.stdout, made.stdout + made.stderr
        inv = invitation.decode((tmp_path / "inv.txt").read_text().strip())
        clients = [_scoped(fault_nodes, n, inv) for n in ("node1", "node2", "node3", "node4")]

        def seen() -> dict[str, bytes]:
            out: dict[str, bytes] = {}
            for c in clients:
                for key, _ in _view_keys(c, inv.bucket):
                    try:
                        out[key] = c.get_object(inv.bucket, key).read()
                    except S3Error:  # removed between the listing and the read: the keeper is at work
                        return {}
            return out

        assert seen() == {"photos/2024/cat.jpg": b"meow" * 100, "photos/dog.jpg": b"woof" * 100}
        (folder / "photos" / "new 1.txt").write_bytes(b"saved in the synced folder")
        (folder / "photos" / "dog.jpg").write_bytes(b"a new dog")
        (folder / "photos" / "2024" / "cat.jpg").unlink()
        now = {"photos/new 1.txt": b"saved in the synced folder", "photos/dog.jpg": b"a new dog"}
        wait_until(lambda: seen() == now, what="the owner's changes in the share's view")
        assert agent.proc is not None and agent.proc.poll() is None
        listed = cli("--json", "share", "list")
        assert listed.returncode == 0 and inv.share_id in listed.stdout
        assert json.loads(listed.stdout)
        revoked = cli("share", "revoke", inv.share_id)
        assert revoked.returncode == 0, revoked.stderr
        wait_until(lambda: not any(owner.client(n).s3.bucket_exists(inv.bucket)  # a round copying meanwhile:
                                   for n in ("node1", "node2", "node3", "node4")),  # the agent finishes it
                   what="the view removed from every node")
    finally:
        agent.stop()
        owner.close()


def test_read_only_share_is_enforced_by_minio(fault_nodes: NodePool, tmp_path: Path) -> None:
    owner = _owner(fault_nodes, tmp_path)
    _, inv = shares.create_share(owner, "photos", ShareMode.READ_ONLY, label="Anna")
    text = invitation.encode(inv)
    assert owner.client("node1")._creds.secret_key not in text  # the owner's keys never leave
    them = _recipient(text, tmp_path)
    assert them.cfg.read_only and them.cfg.prefix == "photos"
    rebuild.refresh(them)
    assert sorted(f.path for f in them.walk()) == ["photos/2024/cat.jpg", "photos/dog.jpg"]
    assert them.read_bytes("photos/2024/cat.jpg") == b"meow" * 100
    with pytest.raises(RefusedError, match="read-only share"):
        them.put_bytes("photos/new.jpg", b"x")
    for node in ("node1", "node2", "node3", "node4"):  # a plain S3 client with the scoped key
        s3 = _scoped(fault_nodes, node, inv)
        assert _refused(lambda s3=s3: s3.put_object("owner-bucket", "photos/x.jpg", io.BytesIO(b"x"), 1))
        assert _refused(lambda s3=s3: s3.remove_object("owner-bucket", "photos/dog.jpg"))
        assert _refused(lambda s3=s3: s3.get_object("owner-bucket", "private/diary.txt").read())
        assert _refused(lambda s3=s3: list(s3.list_objects("owner-bucket", prefix="private/")))
        assert _refused(lambda s3=s3: s3.put_object("owner-bucket", f"{JOURNAL}{time.time_ns():020d}-0123456789ab",
                                                    io.BytesIO(b"{}"), 2))
    them.close()
    owner.close()


def test_a_read_write_share_adds_journal_entries_and_nothing_else_there(fault_nodes: NodePool, tmp_path: Path) -> None:
    """A recipient's writes are announced in the change journal (so the owner's agents hear of them within a
    second), and its key may only add entries there: not list, read or delete them. A share made by an older
    version, without that right, gets it when extended."""
    owner = _owner(fault_nodes, tmp_path)
    info, inv = shares.create_share(owner, "photos", ShareMode.READ_WRITE, label="Ben")
    s3 = _scoped(fault_nodes, "node1", inv)
    entry = f"{JOURNAL}{time.time_ns():020d}-0123456789ab"
    s3.put_object("owner-bucket", entry, io.BytesIO(b'{"v": 2, "paths": ["photos/x.jpg"]}'), 35)
    assert _refused(lambda: list(s3.list_objects("owner-bucket", prefix=JOURNAL)))
    assert _refused(lambda: s3.get_object("owner-bucket", entry).read())
    assert _refused(lambda: s3.remove_object("owner-bucket", entry))
    assert _refused(lambda: s3.put_object("owner-bucket", ".pooldrive/other", io.BytesIO(b"x"), 1))
    old = folder_policy("owner-bucket", "photos", ShareMode.READ_WRITE)  # as an older version made it
    old["Statement"] = [st for st in old["Statement"] if JOURNAL not in json.dumps(st)]
    for node in owner.clients:
        owner.client(node).admin_call("test", "update_service_account", access_key=inv.access_key, policy=old)
    assert _refused(lambda: s3.put_object("owner-bucket", entry + "0", io.BytesIO(b"{}"), 2))
    shares.extend_share(owner, info.id, timedelta(days=2))
    s3.put_object("owner-bucket", entry + "1", io.BytesIO(b"{}"), 2)
    owner.close()


def test_read_write_share_writes_land_on_the_schedulers_nodes(fault_nodes: NodePool, tmp_path: Path) -> None:
    owner = _owner(fault_nodes, tmp_path)
    _, inv = shares.create_share(owner, "photos", ShareMode.READ_WRITE, label="Ben")
    them = _recipient(invitation.encode(inv), tmp_path)
    rebuild.refresh(them)
    info = them.put_bytes("photos/from-ben.jpg", b"hello from ben")
    expected = sorted(placement("photos/from-ben.jpg", owner.specs(), 2))
    assert sorted(info.replicas) == expected
    assert sorted(fault_nodes.holders("owner-bucket", "photos/from-ben.jpg")) == expected
    with pytest.raises(RefusedError, match="outside the shared folder"):
        them.put_bytes("private/sneaky.txt", b"x")
    changes = rebuild.refresh(owner)
    assert [(c.path, c.kind) for c in changes] == [("photos/from-ben.jpg", "added")]
    assert owner.read_bytes("photos/from-ben.jpg") == b"hello from ben"
    them.close()
    owner.close()


def test_revoke_everywhere_and_while_a_node_is_down(fault_nodes: NodePool, tmp_path: Path) -> None:
    owner = _owner(fault_nodes, tmp_path)
    info, inv = shares.create_share(owner, "photos", ShareMode.READ_ONLY)
    for node in ("node1", "node2", "node3", "node4"):
        s3 = _scoped(fault_nodes, node, inv)
        assert not _refused(lambda s3=s3: list(s3.list_objects(inv.bucket, prefix="photos/")))
    fault_nodes["node4"].kill()
    owner.refresh_health(max_age=0)
    revoked = shares.revoke_share(owner, info.id)
    assert revoked.status == "revoke pending" and revoked.revoke_pending == ("node4",)
    for node in ("node1", "node2", "node3"):
        s3 = _scoped(fault_nodes, node, inv)
        assert _refused(lambda s3=s3: list(s3.list_objects(inv.bucket, prefix="photos/")))
    fault_nodes["node4"].start()
    s3 = _scoped(fault_nodes, "node4", inv)
    deadline = time.monotonic() + 20  # a restarted node answers before it has loaded its keys again
    while _refused(lambda: list(s3.list_objects(inv.bucket, prefix="photos/"))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _refused(lambda: list(s3.list_objects(inv.bucket, prefix="photos/")))  # not revoked there yet
    listed = {s.id: s for s in shares.list_shares(owner)}  # retries pending revokes
    assert listed[info.id].status == "revoked"
    s3 = _scoped(fault_nodes, "node4", inv)
    assert _refused(lambda: list(s3.list_objects(inv.bucket, prefix="photos/")))
    owner.close()


def test_expiry_is_set_on_the_server_and_extend_moves_it(fault_nodes: NodePool, tmp_path: Path) -> None:
    owner = _owner(fault_nodes, tmp_path)
    with pytest.raises(ConfigError, match="15 minutes"):
        shares.create_share(owner, "photos", ShareMode.READ_ONLY, expires=timedelta(minutes=5))
    info, inv = shares.create_share(owner, "photos", ShareMode.READ_ONLY, expires=timedelta(minutes=20))
    import json

    for node in ("node1", "node3"):
        sa = json.loads(owner.client(node).admin().get_service_account(inv.access_key))
        assert sa.get("expiration", "").startswith(time.strftime("%Y-", time.gmtime(info.expires_at)))
    later = shares.extend_share(owner, info.id, timedelta(days=2))
    assert later.expires_at > info.expires_at + 86400
    owner.close()


@pytest.mark.skipif(not os.environ.get("POOLDRIVE_TEST_SHARE_EXPIRY"),
                    reason="MinIO's shortest share lifetime is 15 minutes; set POOLDRIVE_TEST_SHARE_EXPIRY=1 to wait")
@pytest.mark.timeout(1500)
def test_expired_share_is_refused_by_the_server(fault_nodes: NodePool, tmp_path: Path) -> None:
    owner = _owner(fault_nodes, tmp_path)
    _, inv = shares.create_share(owner, "photos", ShareMode.READ_ONLY, expires=timedelta(minutes=15, seconds=5))
    s3 = _scoped(fault_nodes, "node1", inv)
    assert not _refused(lambda: list(s3.list_objects(inv.bucket, prefix="photos/")))
    time.sleep(15 * 60 + 15)
    assert _refused(lambda: list(s3.list_objects(inv.bucket, prefix="photos/")))
    owner.close()


def _fetch(url: str, nodes: NodePool) -> bytes:
    with urllib.request.urlopen(url, timeout=5, context=nodes.ssl_context()) as r:
        return r.read()


def test_file_links_survive_a_dead_node_and_expire(fault_nodes: NodePool, tmp_path: Path) -> None:
    owner = _owner(fault_nodes, tmp_path)
    with pytest.raises(ConfigError, match="7 days"):
        links.file_links(owner, "photos/dog.jpg", timedelta(days=8))
    urls = links.file_links(owner, "photos/dog.jpg", timedelta(seconds=4))
    assert len(urls) == 2
    assert all(_fetch(u, fault_nodes) == b"woof" * 100 for _, u in urls)
    fault_nodes[urls[0][0]].kill()
    assert _fetch(urls[1][1], fault_nodes) == b"woof" * 100
    time.sleep(5)
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(urls[1][1], fault_nodes)
    assert e.value.code == 403
    owner.close()


def test_a_link_is_made_at_once_through_the_holders_that_are_up(fault_nodes: NodePool, tmp_path: Path) -> None:
    """A holder known to be down (here frozen, as the window shows it) gets no link, and costs the link
    nothing: it held 'Copy link' for its read timeout (21 s in the window)."""
    owner = _owner(fault_nodes, tmp_path)
    holders = owner.stat("photos/dog.jpg").replicas
    fault_nodes[holders[0]].freeze()
    try:
        owner.refresh_health(max_age=0)
        owner.refresh_health(max_age=0)  # two probes without an answer: down
        start = time.monotonic()
        urls = links.file_links(owner, "photos/dog.jpg", timedelta(minutes=5))
        took = time.monotonic() - start
    finally:
        fault_nodes[holders[0]].thaw()
    assert [n for n, _ in urls] == [holders[1]] and _fetch(urls[0][1], fault_nodes) == b"woof" * 100
    assert took < TEST_TIMEOUTS.read, took
    owner.close()


def test_a_link_stops_working_when_revoked_and_reads_nothing_else(fault_nodes: NodePool, tmp_path: Path) -> None:
    """Each link is signed by a key of its own: revoking it stops its URLs at once, long before they
    expire, and the key can read that one file and nothing else."""
    owner = _owner(fault_nodes, tmp_path)
    owner.put_bytes("photos/other.jpg", b"not linked")
    urls = links.file_links(owner, "photos/dog.jpg", timedelta(hours=24))
    other = links.file_links(owner, "photos/other.jpg", timedelta(hours=24))
    assert all(_fetch(u, fault_nodes) == b"woof" * 100 for _, u in urls)
    signer = urls[0][1].split("X-Amz-Credential=")[1].split("%2F")[0]
    assert signer.startswith("pdl") and signer != fault_nodes.access_key  # not the owner's key
    tampered = urls[0][1].replace("dog.jpg", "other.jpg")  # the signature covers the path, the key the file
    with pytest.raises(urllib.error.HTTPError):
        _fetch(tampered, fault_nodes)
    listed = shares.list_shares(owner)
    assert sum(r.mode == links.LINK_MODE and r.folder == "photos/dog.jpg" for r in listed) == 1
    assert len(links.revoke_links(owner, "photos/dog.jpg")) == 1
    for _, url in urls:
        with pytest.raises(urllib.error.HTTPError) as e:
            _fetch(url, fault_nodes)
        assert e.value.code == 403
    assert all(_fetch(u, fault_nodes) == b"not linked" for _, u in other)  # the other file's link lives on
    with pytest.raises(RefusedError, match="pattern"):
        owner.put_bytes("photos/what?.jpg", b"?")
        links.file_links(owner, "photos/what?.jpg")
    owner.close()


def test_sealed_invitation_needs_the_right_passphrase() -> None:
    inv = invitation.Invitation("abcd", "b-bucket", "photos", "ro", 2, "AK", "SK-secret",
                                (invitation.InvitedNode("n1", "h:1"),))
    sealed = invitation.encode(inv, "correct horse")
    assert "SK-secret" not in sealed and invitation.is_sealed(sealed)
    assert invitation.decode(sealed, "correct horse") == inv
    with pytest.raises(InvitationError, match="Wrong passphrase"):
        invitation.decode(sealed, "wrong")
    with pytest.raises(InvitationError, match="sealed"):
        invitation.decode(sealed)
    with pytest.raises(InvitationError, match="at least 10"):
        invitation.encode(inv, "short")
    import os

    from Crypto.Cipher import AES

    salt, nonce = os.urandom(16), os.urandom(12)  # an invitation sealed by an older PoolDrive (scrypt 2^15)
    ct, tag = AES.new(invitation._key("old one", salt, 2**15), AES.MODE_GCM, nonce=nonce).encrypt_and_digest(
        inv.to_json().encode())
    old = invitation.SEALED_PREFIX + invitation._b64(salt + nonce + tag + ct)
    assert invitation.decode(old, "old one") == inv
    with pytest.raises(InvitationError, match="not a PoolDrive invitation"):
        invitation.decode("hello")
    with pytest.raises(InvitationError, match="damaged"):
        invitation.decode(invitation.encode(inv)[:-10])


def test_sharing_without_admin_rights_says_so(fault_nodes: NodePool, tmp_path: Path) -> None:
    owner = _owner(fault_nodes, tmp_path)
    _, inv = shares.create_share(owner, "photos", ShareMode.READ_WRITE)
    them = _recipient(invitation.encode(inv), tmp_path)
    with pytest.raises(RefusedError, match="only its owner"):
        shares.create_share(them, "photos/2024", ShareMode.READ_ONLY)
    # keys with full rights on the bucket but no admin rights (a service account with an S3-only policy)
    bucket_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:*"],
         "Resource": ["arn:aws:s3:::owner-bucket", "arn:aws:s3:::owner-bucket/*"]}]}
    for node in fault_nodes.nodes:
        owner.client(node.name).admin().add_service_account(access_key="pdnoadmin01", secret_key="n" * 40,
                                                            policy=bucket_only)
    from dataclasses import replace

    from sync_agent.credentials import write_private_file

    creds = tmp_path / "noadmin.json"
    write_private_file(creds, {"default": {"access_key": "pdnoadmin01", "secret_key": "n" * 40}})
    plain = Pool(replace(owner.cfg, credentials_file=str(creds)), catalog_path=tmp_path / "x.db",
                 timeouts=TEST_TIMEOUTS)
    rebuild.refresh(plain)
    assert plain.read_bytes("photos/dog.jpg") == b"woof" * 100  # the keys work for files...
    with pytest.raises(AuthError, match="admin rights"):
        shares.create_share(plain, "photos", ShareMode.READ_ONLY)
    plain.close()
    them.close()
    owner.close()
