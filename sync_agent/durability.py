"""Durability classes: how many copies a folder's files keep, over how many zones. Pure, no I/O.

A class is set on a pool folder (``pooldrive policy set photos --copies 3 --zones 2``) and covers every file
below it; the most specific folder wins, and files under no class keep the pool's R copies (git-annex's
numcopies per path). A node without a zone counts as a zone of its own, as in ``placement``.

The rules, in one place:
- a class never goes below 1 copy, and never asks for more zones than copies;
- the pool refuses a class it cannot meet: more copies than nodes, or more zones than it has;
- which copies to keep when there are more than the class wants: one per zone first (best ranked first) until
  the zone count is met, then the best ranked of the rest (``keep``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sync_agent import keys
from sync_agent.errors import InvalidPathError

MAX_COPIES = 16


@dataclass(frozen=True)
class Durability:
    copies: int
    zones: int = 1
    folder: str = ""  # where it is set ("" with the pool's default R)
    set_at: float = 0.0  # when it was set (the newest setting of a folder wins across nodes)

    def describe(self) -> str:
        where = f" (set on '{self.folder}')" if self.folder else " (the pool's default)"
        spread = f" in {self.zones} zones" if self.zones > 1 else ""
        return f"{self.copies} {'copy' if self.copies == 1 else 'copies'}{spread}{where}"


def for_key(key: str, classes: Mapping[str, Durability], default: Durability) -> Durability:
    """The class of the file at ``key``: the one set on its deepest folder, else ``default``."""
    best: Durability | None = None
    for folder, d in classes.items():
        if keys.is_under(key, folder) and (best is None or len(folder) > len(best.folder)):
            best = d
    return best or default


def zone_of(node: str, zones: Mapping[str, str]) -> str:
    return zones.get(node) or f"\x00{node}"  # a node without a zone is a zone of its own


def spanned(nodes: Iterable[str], zones: Mapping[str, str]) -> int:
    return len({zone_of(n, zones) for n in nodes})


def refusal(copies: int, zones: int, nodes: Mapping[str, str]) -> str | None:
    """Why the pool cannot keep this class (``nodes``: name -> zone of every node), or None if it can."""
    if copies < 1:
        return "A folder keeps at least 1 copy of each file."
    if copies > MAX_COPIES:
        return f"At most {MAX_COPIES} copies of a file can be asked for."
    if zones < 1:
        return "A class spreads copies over at least 1 zone."
    if zones > copies:
        return f"{copies} {'copy' if copies == 1 else 'copies'} cannot be spread over {zones} zones."
    if copies > len(nodes):
        return (f"The pool has {len(nodes)} node{'s' if len(nodes) != 1 else ''}; it cannot keep {copies} copies "
                "of a file (each copy is on a different node). Add nodes first, or ask for fewer copies.")
    have = spanned(nodes, nodes)
    if zones > have:
        return (f"The pool's nodes are in {have} zone{'s' if have != 1 else ''}; copies cannot be spread over "
                f"{zones}. Set each node's zone ('pooldrive pool set-zone NODE ZONE') or ask for fewer zones.")
    return None


def _pick(nodes: Sequence[str], have: Collection[str], zones: Mapping[str, str], want: Durability) -> list[str]:
    """From ``nodes`` (best first), added to ``have``: first one per zone ``have`` misses until the zone
    count is met, then the best of the rest until the copy count is."""
    seen = {zone_of(n, zones) for n in have}
    picked: list[str] = []
    for n in nodes:
        if len(seen) >= want.zones:
            break
        if zone_of(n, zones) not in seen:
            picked.append(n)
            seen.add(zone_of(n, zones))
    for n in nodes:
        if len(have) + len(picked) >= want.copies:
            break
        if n not in picked:
            picked.append(n)
    return picked


def keep(copies: Sequence[str], ranking: Sequence[str], zones: Mapping[str, str], want: Durability) -> list[str]:
    """Which of ``copies`` to keep when trimming to the class: one per zone, best ranked first, until the
    zone count is met; then the best ranked of the rest, up to the copy count."""
    order = {n: i for i, n in enumerate(ranking)}
    return _pick(sorted(copies, key=lambda n: order.get(n, len(order))), (), zones, want)[:max(want.copies, 1)]


def to_add(good: Collection[str], candidates: Sequence[str], zones: Mapping[str, str], want: Durability) -> list[str]:
    """Nodes to put new copies on (``candidates`` best first): first ones in zones the copies miss, as many
    as the zone count needs, then the best ranked, until the copy count is reached."""
    return _pick(candidates, good, zones, want)


def meets(nodes: Collection[str], zones: Mapping[str, str], want: Durability) -> bool:
    return len(nodes) >= want.copies and spanned(nodes, zones) >= min(want.zones, len(nodes) or 1)


# --- the record kept on the nodes -------------------------------------------------------------------------
def encode(folder: str, copies: int | None, zones: int, set_at: float, by: str) -> bytes:
    """The body of a class's object on the nodes; ``copies`` None clears the class (the record stays, so
    the newest setting still wins over a node that missed the clearing)."""
    return json.dumps({"folder": folder, "copies": copies, "zones": zones, "set_at": set_at, "by": by},
                      sort_keys=True).encode()


def decode(body: bytes) -> tuple[str, float, Durability | None]:
    """Parse a class record read from a node (untrusted: anyone with the pool's keys may have written it).
    Returns (folder, when it was set, the class or None when cleared); raises ValueError naming what is
    wrong."""
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError("A durability class record on the nodes is not JSON.") from e
    if not isinstance(raw, dict):
        raise ValueError("A durability class record on the nodes is not a JSON object.")
    folder, copies, zones, set_at = raw.get("folder"), raw.get("copies"), raw.get("zones", 1), raw.get("set_at")
    if not isinstance(folder, str):
        raise ValueError("A durability class record names no folder.")
    try:
        folder = keys.normalize(folder)
    except InvalidPathError as e:
        raise ValueError(f"A durability class record names an invalid folder: {e.message}") from e
    if not isinstance(set_at, int | float) or isinstance(set_at, bool) or not math.isfinite(set_at):
        raise ValueError(f"The durability class of '{folder}' has no valid time.")
    if copies is None:
        return folder, float(set_at), None
    for value in (copies, zones):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"The durability class of '{folder}' has a count that is not a whole number.")
    if not (1 <= copies <= MAX_COPIES and 1 <= zones <= copies):
        raise ValueError(f"The durability class of '{folder}' asks for {copies} copies in {zones} zones.")
    return folder, float(set_at), Durability(copies, zones, folder, float(set_at))
