"""Conflicted copy names read back (untrusted text: any name someone put on the pool)."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from sync_agent.sync.conflicts import conflict_name, find, parse


def test_a_copy_names_its_original_host_and_time() -> None:
    name = conflict_name("report.final.pdf", "Anna’s laptop", time.mktime((2026, 11, 24, 15, 30, 12, 0, 0, -1)))
    c = parse(f"docs/{name}")
    assert c is not None and c.original == "docs/report.final.pdf"
    assert (c.host, c.stamp) == ("Anna’s laptop", "2026-11-24 153012")
    assert parse("docs/report (conflicted copy from pc 2026-11-24 153012 3).txt").original == "docs/report.txt"
    assert parse(".bashrc (conflicted copy from pc 2026-11-24 153012)").original == ".bashrc"


def test_a_copy_of_a_copy_names_the_copy_it_was_made_from() -> None:
    c = parse("d/a (conflicted copy from h1 1970-01-01 000000) (conflicted copy from h2 1971-01-01 000000).txt")
    assert c is not None and c.host == "h2"
    assert c.original == "d/a (conflicted copy from h1 1970-01-01 000000).txt"


def test_names_that_leave_no_usable_original_are_not_conflicts() -> None:
    for bad in ("d/. (conflicted copy from h 2020-01-01 000000)", " (conflicted copy from h 2020-01-01 000000)",
                "d/.. (conflicted copy from h 2020-01-01 000000)", "x (conflicted copy from h 2020-01-01)",
                "plain.txt"):
        assert parse(bad) is None, bad
    assert [c.copy for c in find(["a.txt", "b (conflicted copy from h 2020-01-01 000000).txt",
                                  "b (conflicted copy from h 2021-01-01 000000).txt"])] == [
        "b (conflicted copy from h 2021-01-01 000000).txt", "b (conflicted copy from h 2020-01-01 000000).txt"]


@given(st.text(max_size=80))
def test_parse_never_raises_and_an_original_is_never_a_dot_name(name: str) -> None:
    c = parse(name)
    if c is not None:
        base = c.original.rpartition("/")[2]
        assert base not in ("", ".", "..") and base == base.strip()
