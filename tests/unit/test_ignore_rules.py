"""`.pooldriveignore`: the one-regex shortcut decides exactly as the rules read one by one would."""

from __future__ import annotations

import itertools
from pathlib import Path

from sync_agent.sync.ignore import IgnoreRules

RULES = """\
# a comment, then a blank line

*.log
!keep.log
build/
/top.txt
docs/**/*.pdf
cache
!cache/wanted.txt
\\#literal
space\\ name.txt
"""

NAMES = ["a.log", "keep.log", "build", "top.txt", "b.pdf", "cache", "wanted.txt", "#literal", "space name.txt",
         "notes.txt", ".DS_Store", "x.swp", "4913", ".pooldrive", "Café.txt", "report~"]
FOLDERS = ["", "sub", "docs", "docs/a", "build", "cache", "x/y"]


def test_the_shortcut_agrees_with_every_rule_read_in_order(tmp_path: Path) -> None:
    (tmp_path / ".pooldriveignore").write_text(RULES)
    rules = IgnoreRules(tmp_path)
    assert rules._maybe is not None  # the shortcut is on for these rules
    checked = 0
    for folder, name, is_dir in itertools.product(FOLDERS, NAMES, (False, True)):
        rel = f"{folder}/{name}" if folder else name
        full = rules.spec.match_file(rel + "/" if is_dir else rel)
        assert rules.ignored(rel, is_dir) == full, (rel, is_dir)
        checked += full
    assert checked > 40  # both answers were asked for, not only 'not ignored'


def test_only_builtin_rules_and_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / ".pooldriveignore").write_text("\n# nothing\n")
    rules = IgnoreRules(tmp_path)
    assert rules.ignored("a/b.tmp") and rules.ignored(".pooldrive", is_dir=True) and rules.ignored("x/.DS_Store")
    assert not rules.ignored("a/b.txt") and not rules.ignored("docs", is_dir=True)
