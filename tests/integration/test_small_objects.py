"""The fast path for small objects (obstore) behaves exactly like the minio-py path it replaces, on real nodes.

Each case runs twice: through obstore, and with ``POOLDRIVE_S3_CLIENT=minio-py``. Conditional writes, reads
of a named version, metadata, and every failure must come out the same, as the same PoolDrive errors.
"""

from __future__ import annotations

import dataclasses
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync_agent import small_objects
from sync_agent.config import NodeConfig, save_pool
from sync_agent.credentials import Credentials
from sync_agent.errors import AuthError, BucketMissingError, NodeUnreachableError, PreconditionFailed
from sync_agent.minio_server import MinioNode, free_ports
from sync_agent.node_client import NodeClient, Timeouts
from sync_agent.pool import Pool

META = {"sha256": "0" * 64, "size": "5", "file-id": "f1", "version": "1", "mtime": "1.000000"}


@pytest.fixture(params=["fast", "minio-py"])
def client(request: pytest.FixtureRequest, pool: Pool, monkeypatch: pytest.MonkeyPatch) -> Iterator[NodeClient]:
    if request.param == "minio-py":
        monkeypatch.setenv("POOLDRIVE_S3_CLIENT", "minio-py")
    node = pool.cfg.nodes[0]
    if request.param == "fast" and not small_objects.usable(node):
        pytest.skip("nodes trusted by a private CA or a pin take the minio-py path (POOLDRIVE_TEST_TLS=1)")
    c = NodeClient(node, pool.client(node.name)._creds, pool.cfg.bucket)
    assert (c.small is not None) == (request.param == "fast")
    yield c
    c.close()


def test_conditional_writes_are_compare_and_swap(client: NodeClient) -> None:
    vid1, etag1 = client.put_if("cas/x.txt", b"first", META, if_match=None)
    assert vid1 and etag1
    with pytest.raises(PreconditionFailed):
        client.put_if("cas/x.txt", b"other", META, if_match=None)  # someone is there already
    vid2, _ = client.put_if("cas/x.txt", b"second", META, if_match=etag1)
    assert vid2 != vid1
    with pytest.raises(PreconditionFailed):
        client.put_if("cas/x.txt", b"stale", META, if_match=etag1)  # based on a version no longer current
    vid3, _ = client.put_if("cas/x.txt", b"third", META, if_match=False)
    assert vid3 not in (vid1, vid2)
    obj = client.stat("cas/x.txt")
    assert obj.version_id == vid3 and obj.meta == META
    assert client.stat("cas/x.txt", vid1).size == len(b"first")  # history kept


def test_if_match_on_a_deleted_file_is_a_lost_race(client: NodeClient) -> None:
    _, etag = client.put_if("gone/x.txt", b"here", META, if_match=None)
    client.delete("gone/x.txt")
    with pytest.raises(PreconditionFailed):
        client.put_if("gone/x.txt", b"again", META, if_match=etag)
    client.put_if("gone/x.txt", b"new file", META, if_match=None)  # nothing live: a create succeeds


def test_whole_reads_of_a_named_version(client: NodeClient) -> None:
    vid1, etag1 = client.put_if("r/x.txt", b"one", META, if_match=None)
    client.put_if("r/x.txt", b"two", META, if_match=etag1)
    data = client.get_small("r/x.txt", vid1)
    if client.small is None:
        assert data is None  # no fast path: the caller streams with get()
        return
    assert data == b"one"
    assert client.get_small("r/x.txt") == b"two"
    with pytest.raises(PreconditionFailed):
        client.get_small("r/x.txt", None, if_match=etag1)  # the current object is no longer that one


def test_wrong_keys_are_an_auth_error(client: NodeClient) -> None:
    bad = NodeClient(client.node, Credentials(client._creds.access_key, "not-the-secret"), client.bucket)
    with pytest.raises(AuthError, match="refused the credentials"):
        bad.put_if("auth/x.txt", b"x", META, if_match=None)


def test_key_listings_after_a_cursor_are_what_minio_py_lists(client: NodeClient) -> None:
    """The change journal's poll lists keys after its cursor through the fast path (a third of minio-py's
    CPU per listing); what it gets must be exactly minio-py's listing."""
    for key in ("j/0001-a", "j/0002-b", "j/0002-c", "j/0003-a", "jx/0001", "other/1", "j/sub/0004"):
        client.put_if(key, b"x", META, if_match=None)
    assert client.list_keys("j/") == ["j/0001-a", "j/0002-b", "j/0002-c", "j/0003-a", "j/sub/0004"]
    for start in (None, "j/0001", "j/0002-b", "j/0003-a", "j/9", "a"):
        assert client.list_keys("j/", start_after=start) == [o.key for o in client.list("j/", start_after=start)]
    bad = NodeClient(client.node, Credentials(client._creds.access_key, "not-the-secret"), client.bucket)
    with pytest.raises(AuthError, match="refused the credentials"):
        bad.list_keys("j/")


def test_listings_read_as_minio_py_reads_them(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``NodeClient.list`` reads listing pages itself (``listing_xml``: minio-py's parser was most of a full
    refresh's CPU). Across pages of 3, with versions, delete markers, metadata, names with spaces, accents,
    '&' and '+', folders and cursors, it must give what minio-py's own listing gives."""
    from minio.commonconfig import ENABLED
    from minio.versioningconfig import VersioningConfig

    from sync_agent import node_client
    from sync_agent.node_client import _meta_from_headers

    c = pool.client(pool.cfg.nodes[0].name)
    c.s3.set_bucket_versioning(c.bucket, VersioningConfig(ENABLED))
    names = ["ls/a.txt", "ls/b x.txt", "ls/café.txt", "ls/d&e+f.txt", "ls/sub/g.txt", "ls/sub/deeper/h.txt", "lsx"]
    for i, key in enumerate(names):
        c.put_if(key, f"body {i}".encode(), {**META, "file-id": f"id{i}"}, if_match=None)
    c.put_if("ls/a.txt", b"second version", {**META, "version": "2"}, if_match=False)  # overwrite
    c.delete("ls/b x.txt")  # a delete marker
    monkeypatch.setattr(node_client, "LIST_PAGE", 3)

    def theirs(prefix: str, versions: bool, recursive: bool, start_after: str | None) -> list[tuple]:
        out = []
        for o in c.s3.list_objects(c.bucket, prefix=prefix, recursive=recursive, start_after=start_after,
                                   include_version=versions, include_user_meta=not versions,
                                   extra_query_params={"metadata": "true"} if versions else None):
            if not o.is_dir:
                out.append((o.object_name, o.size, o.last_modified, o.version_id,
                            str(o.is_latest).lower() == "true" if versions else True, bool(o.is_delete_marker),
                            (o.etag or "").strip('"'), _meta_from_headers(o.metadata)))
        return out

    def ours(prefix: str, versions: bool, recursive: bool, start_after: str | None) -> list[tuple]:
        return [(o.key, o.size, o.last_modified, o.version_id, o.is_latest, o.is_delete_marker, o.etag, o.meta)
                for o in c.list(prefix, versions=versions, recursive=recursive, start_after=start_after)]

    for versions in (False, True):
        for recursive in (True, False):
            # (a version listing's key marker past the prefix: MinIO answers NotImplemented)
            for start in (None, "ls/b", "ls/café.txt", "ls/sub/", *(() if versions else ("z",))):
                want = theirs("ls", versions, recursive, start)  # a page's delete markers follow its versions:
                got = ours("ls", versions, recursive, start)  # the order differs with the page size
                assert sorted(got, key=repr) == sorted(want, key=repr), (versions, recursive, start)
    everything = ours("ls", True, True, None)
    assert len(everything) == 9 and sum(o[5] for o in everything) == 1
    assert {o[0] for o in everything} == set(names)
    assert next(o for o in everything if o[0] == "ls/d&e+f.txt")[7]["file-id"] == "id3"


def test_a_missing_bucket_says_to_init_the_pool(client: NodeClient) -> None:
    other = NodeClient(client.node, client._creds, "no-such-bucket-here")
    with pytest.raises(BucketMissingError, match="pool init"):
        other.put_if("b/x.txt", b"x", META, if_match=None)


def test_a_node_that_is_gone_is_unreachable_at_once(client: NodeClient) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = dataclasses.replace(client.node, endpoint=f"127.0.0.1:{port}")
    dead = NodeClient(node, client._creds, client.bucket, Timeouts(connect=1.0, read=2.0))
    started = time.monotonic()
    with pytest.raises(NodeUnreachableError, match="cannot be reached"):
        dead.put_if("d/x.txt", b"x", META, if_match=None)
    assert time.monotonic() - started < 2.0
    assert dead.requests == 1
    with pytest.raises(NodeUnreachableError) as refused:
        dead.put_if("d/x.txt", b"x", META, if_match=None)
    assert not refused.value.sent  # no connection: the request cannot have reached the node


def test_a_connection_reset_after_the_request_was_sent_may_have_reached_the_node(client: NodeClient) -> None:
    """A batch copy whose connection is reset once the request is out (Toxiproxy's flaky link did it) may still
    be written: 'sent', so the batch looks for that copy and keeps its intent. The reset reads "kind:
    ConnectionReset", which the test for a failed connect once took for "kind: Connect"."""
    import struct
    import threading

    with socket.socket() as srv:  # reads the request, then resets the connection (RST, not FIN)
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)

        def reset() -> None:
            conn, _ = srv.accept()
            conn.recv(1 << 20)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

        threading.Thread(target=reset, daemon=True).start()
        node = dataclasses.replace(client.node, endpoint=f"127.0.0.1:{srv.getsockname()[1]}")
        flaky = NodeClient(node, client._creds, client.bucket, Timeouts(connect=1.0, read=5.0, retries=0))
        with pytest.raises(NodeUnreachableError) as cut:
            flaky.put_if("r/x.txt", b"x" * 1000, META, if_match=None)
        assert cut.value.sent


def test_a_node_that_never_answers_times_out(client: NodeClient) -> None:
    with socket.socket() as srv:  # accepts the connection, never says a word (a frozen process)
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        node = dataclasses.replace(client.node, endpoint=f"127.0.0.1:{srv.getsockname()[1]}")
        frozen = NodeClient(node, client._creds, client.bucket, Timeouts(connect=1.0, read=1.0, retries=0))
        started = time.monotonic()
        with pytest.raises(NodeUnreachableError, match="did not answer in time"):
            frozen.put_if("f/x.txt", b"x", META, if_match=None)
        assert time.monotonic() - started < 5.0


def test_a_quick_request_gives_up_after_the_quick_timeout(client: NodeClient) -> None:
    """The one-request fast paths (a bulk download's GETs, a batch's PUTs) take the full path when they fail:
    they wait ``Timeouts.quick`` at most for a node that says nothing, not the read timeout."""
    with socket.socket() as srv:  # accepts the connection, never says a word (a frozen process)
        srv.bind(("127.0.0.1", 0))
        srv.listen(64)
        node = dataclasses.replace(client.node, endpoint=f"127.0.0.1:{srv.getsockname()[1]}")
        frozen = NodeClient(node, client._creds, client.bucket, Timeouts(connect=1.0, read=30.0, retries=0, quick=1.0))
        requests = [lambda: frozen.put_if("q/x.txt", b"x", META, if_match=None, quick=True)]  # region, or PUT
        if client.small is not None:  # obstore's own store for quick requests
            fast = small_objects.SmallObjects(node, client._creds, client.bucket, region="us-east-1", connect=1.0,
                                              read=30.0, quick=1.0)
            requests += [lambda: fast.put("q/x.txt", b"x", META, None, "writing", quick=True),
                         lambda: fast.get("q/x.txt", None, None, "reading", quick=True)]
        for request in requests:
            started = time.monotonic()
            with pytest.raises(NodeUnreachableError, match="did not answer in time"):
                request()
            assert time.monotonic() - started < 5.0


def test_a_missing_bucket_under_if_match_is_not_a_lost_race(client: NodeClient) -> None:
    other = NodeClient(client.node, client._creds, "no-such-bucket-either")
    with pytest.raises(BucketMissingError):
        other.put_if("b/x.txt", b"x", META, if_match="0123456789abcdef0123456789abcdef")


def test_settings_from_the_environment_keep_the_fast_path_off(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    node = pool.cfg.nodes[0]
    if not small_objects.usable(node):
        pytest.skip("nodes trusted by a private CA or a pin take the minio-py path (POOLDRIVE_TEST_TLS=1)")
    for var in ("AWS_SESSION_TOKEN", "HTTPS_PROXY"):
        with monkeypatch.context() as m:
            m.setenv(var, "set by someone else")
            assert NodeClient(node, pool.client(node.name)._creds, pool.cfg.bucket).small is None
    assert NodeClient(node, pool.client(node.name)._creds, pool.cfg.bucket).small is not None


def test_bodies_over_the_limit_take_the_minio_path(pool: Pool) -> None:
    from sync_agent.small_objects import MAX_BODY

    node = pool.cfg.nodes[0]
    c = NodeClient(node, pool.client(node.name)._creds, pool.cfg.bucket)
    big = b"x" * (MAX_BODY + 1)
    vid, _ = c.put_if("big/x.bin", big, META, if_match=None)
    assert c.stat("big/x.bin").size == len(big) and vid
    with pytest.raises(PreconditionFailed):
        c.put_if("big/x.bin", big, META, if_match=None)


def test_a_probe_proves_the_keys_and_the_bucket(client: NodeClient) -> None:
    """A health probe (through obstore where the node allows it) is one request, and fails as any request
    would: a missing bucket says to init the pool, wrong keys are an auth error."""
    before = client.requests
    assert client.probe(2.0) < 2.0
    assert client.requests == before + 1
    with pytest.raises(BucketMissingError, match="pool init"):
        NodeClient(client.node, client._creds, "no-such-bucket-here").probe(2.0)
    with pytest.raises(AuthError):
        NodeClient(client.node, Credentials(client._creds.access_key, "wrong-secret-key"), client.bucket).probe(2.0)


def test_a_probe_of_a_silent_node_waits_its_timeout(client: NodeClient) -> None:
    with socket.socket() as srv:  # accepts the connection, never says a word (a frozen process)
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        node = dataclasses.replace(client.node, endpoint=f"127.0.0.1:{srv.getsockname()[1]}")
        frozen = NodeClient(node, client._creds, client.bucket, Timeouts(connect=1.0, read=30.0, retries=0, quick=1.0))
        started = time.monotonic()
        with pytest.raises(NodeUnreachableError, match="did not answer in time"):
            frozen.probe(1.5)
        assert time.monotonic() - started < 5.0


@pytest.fixture(scope="module")
def regional_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeConfig, Credentials]]:
    """One MinIO node set to a region of its own (MINIO_SITE_REGION): requests signed for another are refused."""
    root = tmp_path_factory.mktemp("regional")
    port, console = free_ports(2)
    creds = Credentials("regional" + secrets.token_hex(3), secrets.token_urlsafe(18))
    node = MinioNode(name="far", data_dir=root / "data", port=port, console_port=console,
                     access_key=creds.access_key, secret_key=creds.secret_key, region="eu-west-3")
    node.start()
    try:
        yield NodeConfig("far", node.endpoint), creds
    finally:
        node.kill()


@pytest.mark.parametrize("path", ["fast", "minio-py"])
def test_a_node_in_a_region_of_its_own_works_on_both_paths(
        regional_node: tuple[NodeConfig, Credentials], path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The region is not asked for first: the first request the node refuses for its region names it, and is
    sent again once. Buckets are made in that region (they were refused before: 'pool init' and sharing
    failed there)."""
    if path == "minio-py":
        monkeypatch.setenv("POOLDRIVE_S3_CLIENT", "minio-py")
    node, creds = regional_node
    c = NodeClient(node, creds, f"region-{path}")
    c.ensure_bucket()
    view = NodeClient(node, creds, f"region-view-{path}")  # a share's bucket, made the same way
    view.create_bucket()
    view.refuse_versioned_bucket()
    c.probe(2.0)
    vid, etag = c.put_if("r/x.txt", b"hello", META, if_match=None)
    with pytest.raises(PreconditionFailed):  # the request sent again is still a compare-and-swap
        c.put_if("r/x.txt", b"other", META, if_match=None)
    assert c.get_small("r/x.txt", vid) in (b"hello", None)
    assert c.list_keys("r/") == ["r/x.txt"]
    assert c.stat("r/x.txt").etag == etag
    if path == "fast":
        assert c.small is not None and c.small.region == "eu-west-3"
        fresh = NodeClient(node, creds, f"region-{path}")
        before = fresh.requests
        assert fresh.get_small("r/x.txt", vid) == b"hello"
        assert fresh.requests == before + 1  # one request counted; the refused one is sent again inside it


def test_a_download_of_small_files_never_loads_minio_py(pool: Pool, tmp_path: Path) -> None:
    """minio-py and urllib3 take 0.2 s of CPU to import, most of a short command's start: the probes and the
    requests of a download of small files go through obstore and never load them."""
    if not small_objects.usable(pool.cfg.nodes[0]):
        pytest.skip("nodes trusted by a private CA or a pin take the minio-py path (POOLDRIVE_TEST_TLS=1)")
    for i in range(3):
        (tmp_path / f"f{i}.txt").write_bytes(b"small %d" % i)
        pool.put_file(tmp_path / f"f{i}.txt", f"few/f{i}.txt")
    cfg_path = save_pool(pool.cfg, tmp_path / "pool.toml")
    code = ("import sys; from pathlib import Path; from sync_agent import api; "
            "from sync_agent.config import load_pool; "
            f"p = api.Pool(load_pool({str(cfg_path)!r}), catalog_path=Path({str(pool.catalog.path)!r})); "
            "p.recover(); p.refresh_health(max_age=0, with_capacity=False); "
            f"r = api.get_tree(p, 'few', Path({str(tmp_path / 'out')!r})); "
            f"p.get_file('few/f1.txt', Path({str(tmp_path / 'one.txt')!r})); p.close(); "
            "print(len(r.done), r.failed, sorted(m for m in ('minio', 'urllib3') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "3 [] []", r.stdout + r.stderr
    assert (tmp_path / "out" / "f2.txt").read_bytes() == b"small 2"
    assert (tmp_path / "one.txt").read_bytes() == b"small 1"  # one file the full way (a named version, '-')
