"""The rule of a share's view (sharing.views.plan), without nodes."""

from __future__ import annotations

from sync_agent.sharing.views import Source, Step, bucket_for, plan


def _src(key: str, n: int = 1) -> Source:
    return Source(key, f"v{n}", 10, ("f" * 32, n, "a" * 64))


def test_each_node_gets_what_it_holds_and_loses_the_rest() -> None:
    want = {"node1": {"p/a": _src("p/a"), "p/b": _src("p/b", 2)}, "node2": {"p/a": _src("p/a")}}
    have = {"node1": {"p/a": ("f" * 32, 1, "a" * 64), "p/b": ("f" * 32, 1, "a" * 64), "p/gone": None},
            "node2": {"p/b": ("f" * 32, 2, "a" * 64)}}
    assert plan(want, have) == [
        Step("node1", "p/b", _src("p/b", 2)),  # another version there
        Step("node1", "p/gone", None),  # deleted or moved out
        Step("node2", "p/a", _src("p/a")),  # missing there
        Step("node2", "p/b", None),  # now kept on other nodes
    ]


def test_unreadable_nodes_are_left_alone_and_bad_metadata_is_replaced() -> None:
    want = {"node1": {"p/a": _src("p/a")}, "node3": {"p/a": _src("p/a")}}
    assert plan(want, {"node1": {"p/a": None}}) == [Step("node1", "p/a", _src("p/a"))]
    assert plan(want, {}) == []
    assert plan({}, {"node1": {}}) == []


def test_view_bucket_names_are_valid_bucket_names() -> None:
    name = bucket_for("0a1b2c3d")
    assert name == "pdshare-0a1b2c3d" and 3 <= len(name) <= 63 and name.islower()
