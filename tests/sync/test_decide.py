"""The decision table, exhaustively: every combination of (local, base, remote) over three contents."""

from __future__ import annotations

import itertools

import pytest

from sync_agent.sync.conflicts import conflict_name, is_conflict_copy
from sync_agent.sync.decide import Action, Conflict, Side, decide
from sync_agent.sync.planner import plan

STATES = [None, Side("a"), Side("b"), Side("c")]


@pytest.mark.parametrize("local, base, remote", list(itertools.product(STATES, repeat=3)))
def test_every_combination_keeps_every_version(local: Side | None, base: Side | None, remote: Side | None) -> None:
    d = decide(local, base, remote)
    # invariants that must hold whatever the table says
    if local is not None and local != base and local != remote:
        # a local change nobody else has: it must reach the pool, or survive as a conflict copy
        assert d.action in (Action.UPLOAD, Action.CONFLICT), d
    if remote is not None and remote != base and remote != local:
        assert d.action in (Action.DOWNLOAD, Action.CONFLICT), d
    if d.action == Action.TRASH_LOCAL:
        assert local == base and remote is None  # only ever trash what was synced, unchanged
    if d.action == Action.DELETE_REMOTE:
        assert remote == base and local is None  # only ever delete on the pool what was synced, unchanged
    if local == remote:
        assert d.action in (Action.NOTHING, Action.RECORD, Action.FORGET)


@pytest.mark.parametrize("local, base, remote, action", [
    (Side("a"), Side("a"), Side("a"), Action.NOTHING),
    (Side("b"), Side("a"), Side("a"), Action.UPLOAD),
    (Side("a"), Side("a"), Side("b"), Action.DOWNLOAD),
    (None, Side("a"), Side("a"), Action.DELETE_REMOTE),
    (Side("a"), Side("a"), None, Action.TRASH_LOCAL),
    (None, Side("a"), Side("b"), Action.DOWNLOAD),
    (Side("b"), Side("a"), None, Action.UPLOAD),
    (Side("b"), Side("a"), Side("c"), Action.CONFLICT),
    (Side("b"), Side("a"), Side("b"), Action.RECORD),
    (None, Side("a"), None, Action.FORGET),
    (Side("a"), None, None, Action.UPLOAD),
    (None, None, Side("a"), Action.DOWNLOAD),
    (Side("a"), None, Side("a"), Action.RECORD),
    (Side("a"), None, Side("b"), Action.CONFLICT),
])
def test_table(local: Side | None, base: Side | None, remote: Side | None, action: Action) -> None:
    assert decide(local, base, remote).action == action


def test_conflict_kinds() -> None:
    assert decide(Side("a"), None, Side("b")).conflict == Conflict.BOTH_CREATED
    assert decide(Side("b"), Side("a"), Side("c")).conflict == Conflict.BOTH_EDITED


def test_conflict_names() -> None:
    when = 1795530000.0
    name = conflict_name("report.final.txt", "laptop", when)
    assert name.startswith("report.final (conflicted copy from laptop ") and name.endswith(").txt")
    assert is_conflict_copy(name)
    assert conflict_name("Makefile", "pc", when).startswith("Makefile (conflicted copy from pc ")
    assert conflict_name(".bashrc", "pc", when).startswith(".bashrc (conflicted copy")
    taken = {conflict_name("a.txt", "pc", when)}
    assert conflict_name("a.txt", "pc", when, lambda n: n in taken) not in taken


def test_plan_orders_and_guards() -> None:
    base = {f"f{i}": "x" for i in range(40)}
    p = plan({}, base, dict(base))
    assert p.held_deletes == 40 and not p.deletes
    p = plan({}, base, dict(base), allow_deletes=True)
    assert len(p.deletes) == 40
    p = plan({"new/f0": "x", **{f"f{i}": "x" for i in range(1, 40)}}, base, dict(base))
    assert [(m.path, m.target) for m in p.moves] == [("f0", "new/f0")] and not p.deletes
    p = plan({"A.txt": "1"}, {}, {"a.txt": "2"}, case_insensitive=True)
    assert "a.txt" in p.issues
    p = plan({}, {}, {"ex/a": "1", "in/b": "2"}, excluded_folders=["ex"])
    assert [s.path for s in p.transfers] == ["in/b"]


def test_plan_decides_every_path_as_decide_does() -> None:
    """The plan's shortcut for paths in sync on all three sides leaves every decision as ``decide``'s."""
    import itertools

    from sync_agent.sync import planner

    local: dict[str, str] = {}
    base: dict[str, str] = {}
    remote: dict[str, str] = {}
    expected = {}
    for i, (lo, ba, re) in enumerate(itertools.product([None, "a", "b"], repeat=3)):
        p = f"f{i:02d}"
        contents = [f"{p}-{v}" if v is not None else None for v in (lo, ba, re)]  # no two paths share one: no moves
        for m, v in zip((local, base, remote), contents, strict=True):
            if v is not None:
                m[p] = v
        side = [Side(v) if v is not None else None for v in contents]
        expected[p] = decide(*side).action
    plan = planner.plan(local, base, remote, guard_min=10**6)
    got = {s.path: s.action for s in plan.deletes + plan.transfers + plan.records}
    assert got == {p: a for p, a in expected.items() if a != Action.NOTHING}


def test_moves_on_either_side_pair_deletes_with_creates_of_their_content() -> None:
    """A local move becomes a move on the pool; a move on the pool a rename here, pairing duplicates in path
    order; a file edited here since is not paired (the edit wins, the moved copy is downloaded)."""
    base = {"a/x": "1", "a/y": "1", "a/z": "2", "a/edited": "3", "l/old": "4"}
    local = {"a/x": "1", "a/y": "1", "a/z": "2", "a/edited": "3 changed", "l/new": "4"}
    remote = {"b/x": "1", "b/y": "1", "b/z": "2", "b/edited": "3", "l/old": "4"}
    p = plan(local, base, remote, guard_min=10**6)
    assert sorted((s.action, s.path, s.target) for s in p.moves) == [
        (Action.MOVE_LOCAL, "a/x", "b/x"), (Action.MOVE_LOCAL, "a/y", "b/y"), (Action.MOVE_LOCAL, "a/z", "b/z"),
        (Action.MOVE_REMOTE, "l/old", "l/new")]
    # 'a/edited' was edited here: the edit beats the move's delete and goes up again; the moved copy comes down
    assert [(s.action, s.path) for s in p.transfers] == [(Action.UPLOAD, "a/edited"), (Action.DOWNLOAD, "b/edited")]
    assert not p.deletes


def test_a_moved_folder_of_many_files_is_planned_as_moves_only() -> None:
    """20,000 files moved on the pool: 20,000 renames here, nothing trashed or downloaded (0.4 s)."""
    n = 20_000
    base = {f"old/{i:06d}": f"{i}" for i in range(n)}
    remote = {f"new/{i:06d}": f"{i}" for i in range(n)}
    p = plan(dict(base), base, remote, guard_min=10**6)
    assert len(p.moves) == n and not p.transfers and not p.deletes


def test_a_conflicted_copy_of_a_long_name_finds_its_original() -> None:
    from sync_agent.sync.conflicts import conflict_name, long_original, parse

    name = "é" * 125 + "L.txt"
    copy = conflict_name(name, "desktop", 0.0)
    assert parse(copy).original != name  # the copy's name had no room for the whole original
    assert long_original(copy, [name, "other.txt", parse(copy).original, copy]) == name
    assert long_original(copy, ["other.txt"]) is None
    twin = "é" * 125 + "M.txt"  # cut the same way: which one is meant cannot be told
    assert long_original(copy, [name, twin]) is None
    folder_copy = conflict_name("docs/" + name, "desktop", 0.0)
    assert long_original(folder_copy, [name]) == "docs/" + name
