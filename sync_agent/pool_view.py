"""What the read, write and catalog paths need of a pool: its nodes, their health, the catalog and the change
journal, named here so that those modules depend on this narrow view and not on ``Pool``.

``Pool`` composes the writer, the reader, the namespace operations and the journal; they take a
``PoolView``, which ``Pool`` satisfies (mypy checks it where a ``Pool`` is passed), so the import graph
runs one way: ``pool`` -> ``writer`` -> ``pool_view``, never back.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from sync_agent.catalog.store import Catalog
from sync_agent.config import PoolConfig
from sync_agent.durability import Durability
from sync_agent.errors import AuthError, PoolDriveError
from sync_agent.health import HealthBook
from sync_agent.node_client import NodeClient
from sync_agent.placement import NodeSpec


class ChangeLog(Protocol):
    """The change journal, as writers use it (``journal.Journal``)."""

    def expect(self, paths: Iterable[str]) -> None: ...

    def record(self, paths: Iterable[str] = (), folders: Iterable[str] = ()) -> None: ...


class PoolView(Protocol):
    cfg: PoolConfig
    catalog: Catalog
    clients: dict[str, NodeClient]
    health: HealthBook
    auth_failures: dict[str, AuthError]  # nodes that refused our credentials at the last probe

    @property
    def journal(self) -> ChangeLog: ...

    @property
    def io_executor(self) -> ThreadPoolExecutor: ...

    def client(self, name: str) -> NodeClient: ...

    def specs(self) -> list[NodeSpec]: ...

    def durability(self, key: str) -> Durability:
        """How many copies of ``key`` to keep, over how many zones (its folder's class, else R)."""

    def note_failure(self, name: str, err: PoolDriveError) -> None:
        """A request to ``name`` failed: count it against the node's health (auth failures named)."""

    def unusable_nodes(self) -> dict[str, str]:
        """Nodes a write must skip now, with the reason (down, full, draining, refused our keys)."""

    def check_writable(self, key: str) -> None:
        """Raises when ``key`` may not be written by this pool's keys (a read-only share)."""

    def mark_corrupt(self, path: str, number: int, node: str) -> None:
        """A copy read back wrong: mark it bad and wake the repair."""
