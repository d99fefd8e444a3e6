"""The rule of a share's view (sharing.views.plan), without nodes."""

from __future__ import annotations

from sync_agent.sharing.views import Source, Step, bucket_for, plan

F = "f" * 32


def _src(key: str, n: int = 1) -> Source:
    return Source(key, f"v{n}", 10, (F, n, "a" * 64))


def test_each_node_gets_what_it_holds_and_loses_what_is_gone_or_kept_elsewhere() -> None:
    want = {"node1": {"p/a": _src("p/a"), "p/b": _src("p/b", 2)}, "node2": {"p/a": _src("p/a")}}
    have = {"node1": {"p/a": (F, 1, "a" * 64), "p/b": (F, 1, "a" * 64), "p/gone": None},
            "node2": {"p/b": (F, 2, "a" * 64)}}
    copies, removals = plan(want, have, live={"p/a", "p/b"}, complete=True)
    assert copies == [Step("node1", "p/b", _src("p/b", 2)),  # another version there
                      Step("node2", "p/a", _src("p/a"))]  # missing there
    assert removals == [Step("node1", "p/gone", None),  # deleted or moved out
                        Step("node2", "p/b", None)]  # now kept on node1 (once its copy there succeeded)


def test_an_absence_from_an_incomplete_catalog_removes_nothing() -> None:
    """A catalog being rebuilt (or never read whole) does not know every file: its gaps are no deletions."""
    have = {"node1": {"p/a": (F, 1, "a" * 64), "p/b": (F, 1, "a" * 64)}}
    copies, removals = plan({"node1": {"p/a": _src("p/a")}}, have, live={"p/a"}, complete=False)
    assert copies == [] and removals == []


def test_a_file_with_no_good_copy_keeps_what_the_view_holds() -> None:
    have = {"node1": {"p/a": (F, 1, "a" * 64)}}
    assert plan({}, have, live={"p/a"}, complete=True) == ([], [])  # every copy corrupt or missing


def test_unreadable_nodes_are_left_alone_and_bad_metadata_is_replaced() -> None:
    want = {"node1": {"p/a": _src("p/a")}, "node3": {"p/a": _src("p/a")}}
    assert plan(want, {"node1": {"p/a": None}}, {"p/a"}, True) == ([Step("node1", "p/a", _src("p/a"))], [])
    assert plan(want, {}, {"p/a"}, True) == ([], [])


def test_view_bucket_names_are_valid_bucket_names() -> None:
    name = bucket_for("0a1b2c3d")
    assert name == "pdshare-0a1b2c3d" and 3 <= len(name) <= 63 and name.islower()
