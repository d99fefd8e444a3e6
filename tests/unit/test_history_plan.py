"""Which versions a purge forgets (``history.plan``): pure, no nodes."""

from __future__ import annotations

from sync_agent.catalog.store import FileInfo, ReplicaInfo, VersionInfo
from sync_agent.history import plan


def version(number: int, written: float, key: str = "a.txt") -> VersionInfo:
    return VersionInfo(number, key, 10, f"sha{number}", 0.0, written, (ReplicaInfo("n1", f"s3v{number}"),))


def file(current: int, deleted: bool = False, path: str = "a.txt") -> FileInfo:
    return FileInfo("f1", path, 10, "sha", 0.0, current, deleted)


def picked(histories, scope: str = "", cutoff: float = 100.0) -> list[int]:  # type: ignore[no-untyped-def]
    return sorted(d.number for d in plan(histories, scope, cutoff))


def test_a_version_goes_once_the_next_one_is_older_than_the_cutoff() -> None:
    vs = [version(1, 10), version(2, 100), version(3, 150)]
    assert picked([(file(3), 0.0, vs)]) == [1]  # 2 was replaced at 150, after the cutoff
    assert picked([(file(3), 0.0, vs)], cutoff=150) == [1, 2]
    assert picked([(file(3), 0.0, vs)], cutoff=10**9) == [1, 2]  # the current one never


def test_a_deleted_file_goes_whole_once_its_delete_is_older_than_the_cutoff() -> None:
    vs = [version(1, 10), version(2, 50)]
    assert picked([(file(2, deleted=True), 90.0, vs)]) == [1, 2]
    assert picked([(file(2, deleted=True), 120.0, vs)]) == [1]  # deleted lately: its last version stays
    assert all(d.deleted for d in plan([(file(2, deleted=True), 90.0, vs)], "", 100.0))


def test_a_version_being_written_beyond_the_current_one_stays() -> None:
    assert picked([(file(1), 0.0, [version(1, 10), version(2, 20)])], cutoff=10**9) == []


def test_only_versions_stored_in_the_scope_go() -> None:
    """A file moved from old/a.txt to new/a.txt: its first version's bytes are still at the old key."""
    vs = [version(1, 10, "old/a.txt"), version(2, 20, "new/a.txt"), version(3, 30, "new/a.txt")]
    f = file(3, path="new/a.txt")
    assert picked([(f, 0.0, vs)], scope="new") == [2]
    assert picked([(f, 0.0, vs)], scope="old") == [1]
    assert picked([(f, 0.0, vs)], scope="old/a.txt") == [1]
    assert picked([(f, 0.0, vs)], scope="ol") == []  # a prefix of a name is not a folder


def test_a_version_whose_successor_is_not_known_counts_as_replaced_when_the_file_last_changed() -> None:
    """The current version's row is gone (forgotten: no node held it): the one before is judged by the file."""
    vs = [version(1, 10), version(2, 20)]
    assert picked([(file(3, deleted=True), 120.0, vs)]) == [1]  # 2: replaced by 3 at an unknown time
    assert picked([(file(3, deleted=True), 90.0, vs)]) == [1, 2]
