"""A read-write share recipient, with the real scoped key from a real invitation (plain minio-py), tries to
hurt the owner through object metadata. The owner loses nothing, sees nothing move, and keeps running."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minio import Minio

from sync_agent import config, metadata, rebuild
from sync_agent.sharing import invitation, shares
from sync_agent.sharing.policy import ShareMode
from tests.nodepool import NodePool

ROOT = Path(__file__).resolve().parents[2]


def _put(c: Minio, bucket: str, key: str, body: bytes, meta: dict[str, str]) -> None:
    c.put_object(bucket, key, io.BytesIO(body), len(body), metadata={f"pd-{k}": v for k, v in meta.items()})


@pytest.fixture
def attack(fault_nodes: NodePool, tmp_path: Path):  # type: ignore[no-untyped-def]
    owner = fault_nodes.open_pool("owner-bucket", tmp_path / "owner.sqlite3")
    owner.put_bytes("photos/cat.jpg", b"meow")
    owner.put_bytes("photos/moved.txt", b"was in the share")
    owner.move("photos/moved.txt", "private/moved.txt")
    owner.put_bytes("private/diary.txt", b"secret")
    _, inv = shares.create_share(owner, "photos", ShareMode.READ_WRITE, label="Mallory")
    clients = {n.name: fault_nodes.s3(n.name, inv.access_key, inv.secret_key) for n in owner.cfg.nodes}
    yield owner, clients, inv
    owner.close()


def test_bad_metadata_is_skipped_not_fatal(attack) -> None:  # type: ignore[no-untyped-def]
    owner, clients, inv = attack
    for c in clients.values():
        _put(c, inv.bucket, "photos/x", b"x", {"file-id": "0" * 32, "version": "abc", "sha256": "a" * 64,
                                                "size": "1", "mtime": "1", "written": "1"})
        _put(c, inv.bucket, "photos/y", b"y", {"file-id": "../../etc", "version": "1e999", "written": "nan"})
        _put(c, inv.bucket, "photos/z", b"z", {"file-id": "1" * 32, "version": "-5", "sha256": "zz",
                                                "size": "-1", "mtime": "inf"})
    changes = rebuild.refresh(owner)  # used to raise ValueError
    assert {"photos/x", "photos/y", "photos/z"}.isdisjoint({c.path for c in changes})
    assert owner.exists("private/diary.txt") and owner.exists("photos/cat.jpg")
    s = rebuild.rebuild(owner)
    assert {"photos/x", "photos/y", "photos/z"} <= set(s.bad)


def test_identity_claim_cannot_pull_a_file_into_the_share(attack) -> None:  # type: ignore[no-untyped-def]
    owner, clients, inv = attack
    victim = owner.stat("private/moved.txt")
    meta = {"file-id": victim.id, "version": str(victim.version + 10), "sha256": "b" * 64, "size": "4",
            "mtime": "1", "written": "9999999999"}
    for name in victim.replicas:
        _put(clients[name], inv.bucket, "photos/moved.txt", b"evil", meta)
    rebuild.refresh(owner)
    assert owner.stat("private/moved.txt").id == victim.id  # still where it was, same identity
    assert owner.read_bytes("private/moved.txt") == b"was in the share"
    rebuild.refresh_paths(owner, {"photos/moved.txt"})  # the agent's delta path: same rule
    assert owner.stat("private/moved.txt").id == victim.id
    rebuild.rebuild(owner)  # and from scratch
    assert owner.stat("private/moved.txt").id == victim.id
    assert owner.read_bytes("private/moved.txt") == b"was in the share"
    assert owner.exists("photos/moved.txt")  # the claimant is a file of its own, not hidden
    assert owner.stat("photos/moved.txt").id != victim.id


def test_the_owners_agent_keeps_running_and_loses_nothing_while_a_recipient_attacks(attack, tmp_path: Path) -> None:
    """The owner's real agent process syncs the pool while a read-write recipient writes bad metadata,
    claims an identity from outside the share and a write time in the far future: the agent stays up,
    never leaves 'error', and every file of the owner's folder keeps its content."""
    from tests.sync.test_agent_process import AgentProcess, wait_until

    owner, clients, inv = attack
    cfg_file = config.save_pool(owner.cfg, tmp_path / "owner.toml")
    folder = tmp_path / "owner-folder"
    agent = AgentProcess(cfg_file, folder).start()
    try:
        wait_until(lambda: (folder / "private" / "moved.txt").exists(), what="the owner's files")
        victim = owner.stat("private/moved.txt")
        for name in victim.replicas:
            _put(clients[name], inv.bucket, "photos/moved.txt", b"evil",
                 {"file-id": victim.id, "version": str(victim.version + 10), "sha256": "b" * 64, "size": "4",
                  "mtime": "1", "written": "9999999999"})
        for c in clients.values():
            _put(c, inv.bucket, "photos/x", b"x", {"file-id": "0" * 32, "version": "abc", "written": "nan"})
            _put(c, inv.bucket, "photos/cat.jpg", b"evil cat", {"file-id": "f" * 32, "version": "1",
                                                                "sha256": hashlib.sha256(b"evil cat").hexdigest(),
                                                                "size": "8", "mtime": "1", "written": "9e10"})
        for _ in range(3):  # a full refresh and the background reconcile both read what the recipient wrote
            agent.client.sync_now()
            time.sleep(2)
            st = agent.client.status()
            assert agent.proc is not None and agent.proc.poll() is None and st["state"] != "error", st
        assert (folder / "private" / "moved.txt").read_bytes() == b"was in the share"
        assert (folder / "private" / "diary.txt").read_bytes() == b"secret"
        assert not (folder / "photos" / "x").exists()  # the bad object is skipped, not synced
        rebuild.refresh(owner)  # the owner's other device learns what is there now, then saves on top
        owner.put_bytes("photos/cat.jpg", b"the owner's cat, later")
        wait_until(lambda: (folder / "photos" / "cat.jpg").exists()
                   and (folder / "photos" / "cat.jpg").read_bytes() == b"the owner's cat, later",
                   what="the owner's later write, not the recipient's 'future' one")
    finally:
        agent.stop()


def test_a_claimed_future_write_time_does_not_outrank_the_owners_later_writes(attack) -> None:  # type: ignore[no-untyped-def]
    owner, clients, inv = attack
    cat = owner.stat("photos/cat.jpg")
    meta = {"file-id": "f" * 32, "version": "1", "sha256": hashlib.sha256(b"evil").hexdigest(), "size": "4",
            "mtime": "1", "written": "99999999999"}  # the year 5138
    for name in cat.replicas:
        _put(clients[name], inv.bucket, "photos/cat.jpg", b"evil", meta)
    rebuild.refresh(owner)
    owner.put_bytes("photos/cat.jpg", b"the owner's newer cat")
    for again in (rebuild.refresh, rebuild.rebuild):
        again(owner)
        assert owner.read_bytes("photos/cat.jpg") == b"the owner's newer cat"


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["file-id", "version", "sha256", "size", "mtime", "written", "x"]),
                       st.text(max_size=80)))
def test_metadata_parser_never_raises(meta: dict[str, str]) -> None:
    got = metadata.try_parse(meta)
    assert isinstance(got, str | metadata.ObjectMeta)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_invitation_decoder_never_raises_anything_else(text: str) -> None:
    for candidate in (text, "pooldrive-invite:" + text, "pooldrive-invite-sealed:" + text):
        try:
            invitation.decode(candidate, "a passphrase")
        except invitation.InvitationError:
            pass


def test_an_invitation_cannot_name_files_or_send_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile invitation's node name would become part of a file name (its CA file): refused before
    anything is written. And the owner's side sends only certificates, never a CA's key."""
    from sync_agent.tls import DevCA

    base = invitation.Invitation("abcd", "b-bucket", "photos", "ro", 2, "AK", "SK-secret",
                                 (invitation.InvitedNode("nas", "h:1", True, ca_pem="-----BEGIN CERTIFICATE-----x"),))
    for name in ("x/../shared-photos-nas", "../../etc", "NAS", ""):
        bad = dataclasses.replace(base, nodes=(dataclasses.replace(base.nodes[0], name=name),))
        with pytest.raises(invitation.InvitationError):
            invitation.decode(invitation.encode(bad))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    ca = DevCA.create(tmp_path / "ca")
    both = tmp_path / "ca-and-key.pem"
    both.write_text(ca.cert.read_text() + ca.key.read_text())  # a common way to keep a CA
    sent = shares._ca_pem(str(both))
    assert "BEGIN CERTIFICATE" in sent and "PRIVATE KEY" not in sent


@pytest.mark.parametrize("payload", [b"null", b'"a string"', b"[]", b'{"v": 1}',
                                     b'{"v": 1, "nodes": [{"name": 5}], "share_id": "s"}',
                                     b'{"v": 1, "share_id": 3, "bucket": "b", "folder": "f", "mode": "rw"}'])
def test_broken_invitations_give_a_clear_error(payload: bytes) -> None:
    text = "pooldrive-invite:" + invitation._b64(payload)
    with pytest.raises(invitation.InvitationError):
        invitation.decode(text)


def _cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real command, in a session with a real Secret Service (as on a desktop) where one can run."""
    cmd = [sys.executable, "-m", "sync_agent.cli.main", *args]
    if shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon"):
        cmd = ["dbus-run-session", "--", "bash", "-c", 'eval "$(printf pw | gnome-keyring-daemon --unlock '
               '--components=secrets)" >/dev/null; exec "$@"', "--", *cmd]
    return subprocess.run(cmd, cwd=ROOT, input=stdin, text=True, capture_output=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_share_accept_command_with_a_real_invitation(fault_nodes: NodePool, tmp_path: Path) -> None:
    owner = fault_nodes.open_pool("owner-cli", tmp_path / "owner.sqlite3")
    owner.put_bytes("team/plan one.txt", b"plan")
    _, inv = shares.create_share(owner, "team", ShareMode.READ_ONLY, label="Bob")
    text = invitation.encode(inv)
    assert len(text) > 500
    env = {k: str(tmp_path / f"recipient-{k.lower()}") for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME",
                                                                  "XDG_STATE_HOME")}
    env.update(XDG_RUNTIME_DIR=str(tmp_path / "run"), HOME=str(tmp_path))
    (tmp_path / "run").mkdir(mode=0o700)
    keyring_here = bool(shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon"))
    for how, args, stdin in (("argument", ["share", "accept", text, "--name", "t-arg"], None),
                             ("stdin", ["share", "accept", "-", "--name", "t-stdin"], text + "\n")):
        r = _cli(*args, stdin=stdin, env=env)
        out = r.stdout + r.stderr
        assert "Traceback" not in out and inv.secret_key not in out, (how, out[-2000:])
        assert r.returncode == (0 if keyring_here else 4), (how, out[-2000:])
        if keyring_here:
            assert "1 file(s)" in out, out
    # a name taken by a pool of the recipient's own is refused, and that pool left as it was (it became the share)
    mine = Path(env["XDG_CONFIG_HOME"]) / "pooldrive" / "pools" / "mine.toml"
    config.save_pool(dataclasses.replace(owner.cfg, name="mine", path=None), mine)
    before = mine.read_bytes()
    r = _cli("share", "accept", text, "--name", "mine", env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 3 and "exists already" in out and "Traceback" not in out, out[-2000:]
    assert mine.read_bytes() == before
    if keyring_here:  # the same share under its own name again: refreshed, not refused
        assert _cli("share", "accept", text, "--name", "t-arg", env=env).returncode == 0
    owner_cfg = config.save_pool(owner.cfg, tmp_path / "owner.toml")  # the owner's own command, --out
    out_file = tmp_path / "for bob.invitation"
    owner_env = {k: str(tmp_path / f"owner-{k.lower()}") for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME",
                                                                    "XDG_STATE_HOME")}
    r = _cli("--pool", str(owner_cfg), "share", "folder", "team", "--read-only", "--out", str(out_file),
             env=owner_env)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert out_file.stat().st_mode & 0o777 == 0o600 and not list(tmp_path.glob(".for bob*.tmp"))
    r = _cli("share", "accept", str(out_file), "--name", "t-file", env=env)  # from the file
    out = r.stdout + r.stderr
    assert r.returncode == (0 if keyring_here else 4) and "Traceback" not in out, out[-2000:]
    for bad in ("x" * 5000, "not an invitation", str(tmp_path / "missing file"), "pooldrive-invite:AAAA"):
        r = _cli("share", "accept", bad, env=env)
        out = r.stdout + r.stderr
        assert r.returncode == 11 and "Traceback" not in out, out[-2000:]
    owner.close()


def test_share_policy_is_exactly_the_folder(fault_nodes: NodePool, tmp_path: Path) -> None:
    from minio.error import S3Error

    from sync_agent.errors import RefusedError

    owner = fault_nodes.open_pool("owner-scope", tmp_path / "owner.sqlite3")
    owner.put_bytes("photos/cat.jpg", b"cat")
    owner.put_bytes("photos2/secret.jpg", b"s")
    owner.put_bytes("photos-private/secret.jpg", b"s")
    owner.put_bytes("whats/secret.txt", b"s")
    info, inv = shares.create_share(owner, "photos", ShareMode.READ_WRITE)
    assert 29 * 86400 < info.expires_at - time.time() <= 30 * 86400  # shares end by themselves by default
    c = fault_nodes.s3("node1", inv.access_key, inv.secret_key)

    def listing(prefix: str) -> list[str]:
        try:
            return [o.object_name for o in c.list_objects(inv.bucket, prefix=prefix, recursive=True)]
        except S3Error as e:
            assert e.code == "AccessDenied"
            return []

    assert listing("photos") == [] and listing("photos2/") == [] and listing("photos-") == []
    holder = next(n for n in owner.stat("photos/cat.jpg").replicas)
    c = fault_nodes.s3(holder, inv.access_key, inv.secret_key)
    vid = owner.stat("photos/cat.jpg").current.replicas_version(holder)
    with pytest.raises(S3Error) as e:
        c.remove_object(inv.bucket, "photos/cat.jpg", version_id=vid)  # history cannot be erased
    assert e.value.code == "AccessDenied"
    assert owner.read_bytes("photos/cat.jpg") == b"cat"
    for name in ("what?", "what*", "a${aws:username}"):
        with pytest.raises(RefusedError):
            shares.create_share(owner, name, ShareMode.READ_ONLY)
    owner.close()


def test_a_server_side_copy_of_a_pooldrive_object_is_a_file_of_its_own(attack) -> None:  # type: ignore[no-untyped-def]
    from minio.commonconfig import CopySource

    owner, clients, inv = attack
    original = owner.stat("photos/cat.jpg")
    for name in original.replicas:  # same metadata, same file id and version, another key
        clients[name].copy_object(inv.bucket, "photos/cat copy.jpg", CopySource(inv.bucket, "photos/cat.jpg"))
    rebuild.refresh(owner)  # used to crash with KeyError on every refresh
    rebuild.refresh_paths(owner, {"photos/cat copy.jpg", "photos/cat.jpg"})
    assert owner.stat("photos/cat.jpg").id == original.id
    assert owner.read_bytes("photos/cat copy.jpg") == b"meow"
    assert owner.stat("photos/cat copy.jpg").id != original.id
    s = rebuild.rebuild(owner)
    assert owner.stat("photos/cat.jpg").id == original.id and owner.exists("photos/cat copy.jpg")
    assert "photos/cat copy.jpg" in s.bad


def test_a_sealed_invitation_without_a_terminal_asks_for_its_passphrase_on_stdin(tmp_path: Path) -> None:
    """No terminal and nothing on stdin: a clear usage error, not 'Internal error: EOFError' (exit 70), and
    no getpass warning about echo."""
    inv = invitation.Invitation("abcd", "b-bucket", "photos", "ro", 2, "AK", "SK-secret",
                                (invitation.InvitedNode("nas", "127.0.0.1:1", False),))
    sealed = invitation.encode(inv, "a long enough passphrase")
    env = {k: str(tmp_path / k.lower()) for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")}
    r = subprocess.run([sys.executable, "-m", "sync_agent.cli.main", "share", "accept", sealed], cwd=ROOT,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "standard input" in out, out
    assert "Traceback" not in out and "EOFError" not in out and "GetPassWarning" not in out, out
