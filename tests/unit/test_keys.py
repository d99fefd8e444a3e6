from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_agent import keys
from sync_agent.errors import InvalidPathError


@pytest.mark.parametrize("raw, expected", [
    ("a/b.txt", "a/b.txt"), ("/a//b/./c", "a/b/c"), ("  spaced name .txt", "  spaced name .txt"),
    ("100% #1 + more.txt", "100% #1 + more.txt"),
    (unicodedata.normalize("NFD", "café.txt"), unicodedata.normalize("NFC", "café.txt")),
])
def test_normalize_accepts_and_normalizes(raw: str, expected: str) -> None:
    assert keys.normalize(raw) == expected


@pytest.mark.parametrize("raw, why", [
    ("../../etc/passwd", ".."), ("a/../../b", ".."), ("", "empty"), ("a\x00b", "NUL"), ("a\nb", "control"),
    ("x" * 256, "255"), ("/".join(["d" * 200] * 6), "1024"), (".pooldrive/x", "reserved"),
])
def test_normalize_refuses_with_a_reason(raw: str, why: str) -> None:
    with pytest.raises(InvalidPathError) as e:
        keys.normalize(raw)
    assert why in e.value.message


def test_local_target_never_escapes(tmp_path: Path) -> None:
    assert keys.local_target(tmp_path, "a/b.txt") == tmp_path.resolve() / "a/b.txt"
    for bad in ("../x", "a/../../x", "/etc/passwd/../../x"):
        with pytest.raises(InvalidPathError):
            keys.local_target(tmp_path, bad)
    # an absolute key is taken as relative to the root, never as an absolute path
    assert keys.local_target(tmp_path, "/etc/passwd") == tmp_path.resolve() / "etc/passwd"


def test_local_target_refuses_symlinked_escape(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidPathError):
        keys.local_target(tmp_path / "root", "link/outside.txt")


def test_many_targets_under_one_root_refuse_the_same_escapes(tmp_path: Path) -> None:
    """A folder download resolves each folder once (keys.Targets): a linked folder or a link at the target
    itself that leads outside is still refused, for every file that goes through it."""
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    (root / "link").symlink_to(tmp_path)
    (root / "in" / "file-link").symlink_to(tmp_path / "elsewhere.txt")
    (root / "in" / "inner-link").symlink_to(root / "in")
    target = keys.Targets(root)
    assert target("in/a.txt") == root.resolve() / "in/a.txt"
    assert target("in/inner-link/b.txt") == root.resolve() / "in/inner-link/b.txt"  # a link that stays inside
    for bad in ("link/outside.txt", "link/deeper/x.txt", "in/file-link", "../x"):
        for _ in range(2):  # and again, from what it resolved before
            with pytest.raises(InvalidPathError):
                target(bad)


def test_names_that_differ_only_in_case_are_not_downloaded_onto_a_case_insensitive_disk(tmp_path: Path) -> None:
    from sync_agent import paths
    from sync_agent.batch import BatchResult, PlannedDownload, drop_case_clashes

    plan = [PlannedDownload("d/Report.txt", tmp_path / "d" / "Report.txt", 1),
            PlannedDownload("d/report.txt", tmp_path / "d" / "report.txt", 1),
            PlannedDownload("d/notes.txt", tmp_path / "d" / "notes.txt", 1)]
    result = BatchResult()
    assert drop_case_clashes(plan, result, case_insensitive=False) == plan
    kept = drop_case_clashes(plan, result, case_insensitive=True)
    assert [d.remote for d in kept] == ["d/notes.txt"]
    assert sorted(p for p, _ in result.failed) == ["d/Report.txt", "d/report.txt"]
    assert "differ only in case" in result.failed[0][1].message
    assert paths.case_insensitive(tmp_path) is False  # this machine's file system keeps case apart


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
def test_key_normalisation_refuses_clearly_or_gives_a_safe_stable_key(raw: str) -> None:
    """Any name a file system, a share recipient or another S3 tool hands us: a clear refusal, or a key
    that stays inside the pool, is NFC, and normalises to itself."""
    try:
        key = keys.normalize(raw)
    except InvalidPathError as e:
        assert e.message
        return
    assert key and not key.startswith("/") and ".." not in key.split("/") and "//" not in key
    assert "\0" not in key and all(ord(c) >= 32 and ord(c) != 127 for c in key)
    assert unicodedata.normalize("NFC", key) == key and keys.normalize(key) == key
