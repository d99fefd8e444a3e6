from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from sync_agent.minio_server import free_port
from sync_agent.netshape.toxiproxy import ToxiproxyServer
from tests.nodepool import NodePool, ShapedNodes, reap_all

_bucket_ids = itertools.count(1)


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring for tests (the real Secret Service is exercised in its own test)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture(scope="session", autouse=True)
def isolated_home() -> Iterator[Path]:
    """Keep every test away from the real user's config, data, state and keyring."""
    root = Path(tempfile.mkdtemp(prefix="pooldrive-test-home-"))
    old = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
                                           "POOLDRIVE_POOL")}
    for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        os.environ[k] = str(root / k.lower())
    os.environ.pop("POOLDRIVE_POOL", None)
    keyring.set_keyring(MemoryKeyring())
    yield root
    shutil.rmtree(root, ignore_errors=True)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def shared_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodePool]:
    """Four MinIO nodes shared by the whole session; tests get a bucket of their own. Do not break them."""
    pool = NodePool(tmp_path_factory.mktemp("shared-nodes"), 4)
    yield pool
    pool.close()


@pytest.fixture
def fault_nodes(tmp_path: Path) -> Iterator[NodePool]:
    """Four fresh MinIO nodes for one test, which may stop, kill, freeze or restart them."""
    pool = NodePool(tmp_path / "nodes", 4)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyServer]:
    """One Toxiproxy server for the session (built by scripts/setup-toxiproxy)."""
    server = ToxiproxyServer(free_port(), tmp_path_factory.mktemp("toxiproxy") / "toxiproxy.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def shaped_nodes(shared_nodes: NodePool, toxiproxy: ToxiproxyServer) -> Iterator[ShapedNodes]:
    """The shared nodes behind proxies of this test's own, unshaped until the test shapes them."""
    shaped = ShapedNodes.over(shared_nodes, toxiproxy, f"t{next(_bucket_ids)}")
    yield shaped
    shaped.close()


@pytest.fixture
def handed_back(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each batch upload (``small_writes.put_new``) left to the one-file path (a path taken
    meanwhile, a node slow to answer on a loaded machine): each costs its own commits and requests, which
    tests that count them allow for."""
    from sync_agent import small_writes

    counts: list[int] = []
    put_new = small_writes.put_new

    def counted(*args, **kw):  # type: ignore[no-untyped-def]
        left = put_new(*args, **kw)
        counts.append(len(left))
        return left

    monkeypatch.setattr(small_writes, "put_new", counted)
    return counts


def count_in_flight(pool: object, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A one-item list holding the most requests ``pool``'s nodes had in flight at once from now on
    (counted through the health book, which every request passes), reset by the caller as it likes."""
    from contextlib import contextmanager

    health = pool.health  # type: ignore[attr-defined]
    peak, now, request = [0], [0], health.request

    @contextmanager
    def counted(name: str):  # type: ignore[no-untyped-def]
        now[0] += 1
        peak[0] = max(peak[0], now[0])
        try:
            with request(name):
                yield
        finally:
            now[0] -= 1

    monkeypatch.setattr(health, "request", counted)
    return peak


def fresh_bucket() -> str:
    return f"t{os.getpid()}-{next(_bucket_ids)}"


@pytest.fixture
def pool(shared_nodes: NodePool, tmp_path: Path):
    p = shared_nodes.open_pool(fresh_bucket(), tmp_path / "catalog.sqlite3")
    yield p
    p.close()


@pytest.fixture
def fault_pool(fault_nodes: NodePool, tmp_path: Path):
    p = fault_nodes.open_pool("faults", tmp_path / "catalog.sqlite3")
    yield p
    p.close()


# fixtures that start real MinIO (or Toxiproxy) processes; a test using one, directly or through another
# fixture, is marked 'minio' (modules that start a dev pool through the CLI say so with pytestmark), so the
# pure tests run alone with: ./scripts/test -m "not minio"
NODE_FIXTURES = {"shared_nodes", "fault_nodes", "toxiproxy", "shaped_nodes"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if NODE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.minio)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reap_all()
