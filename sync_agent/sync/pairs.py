"""Folder pairs: which local folder syncs with which pool folder, for one pool on this device.

Kept in ``~/.config/pooldrive/sync/<pool>.toml`` (this device's choice, like the pool file; the agent
serving the pool reads it at start and is told of changes through its socket). The old whole-pool mode is
the pair ``LOCAL <-> ''``. Pairs never overlap: no local folder inside another pair's, and no pool folder
inside another pair's (the whole pool overlaps every folder); ``overlap`` says which pair is in the way.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from sync_agent import keys, paths
from sync_agent.errors import ConfigError, NotFoundError, PoolDriveError, UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pair:
    local: Path  # absolute, resolved
    remote: str = ""  # a pool folder, '' for the whole pool

    def describe(self) -> str:
        return f"{self.local} <-> {self.remote or '(whole pool)'}"


def make(local: Path | str, remote: str) -> Pair:
    """A pair from what a user typed (a pool folder may be given as '/photos/' or 'photos')."""
    remote = keys.normalize(remote.strip("/"), allow_root=True) if remote.strip("/") else ""
    return Pair(Path(local).expanduser().resolve(), remote)


def overlap(new: Pair, existing: list[Pair]) -> str | None:
    """Why ``new`` cannot be added next to ``existing`` (a user-readable reason), or None."""
    for p in existing:
        if p.local == new.local:
            return f"{new.local} is already synced (with {p.remote or 'the whole pool'})."
        if p.local in new.local.parents:
            return f"{new.local} is inside {p.local}, which is already synced; pairs cannot overlap."
        if new.local in p.local.parents:
            return f"{new.local} holds {p.local}, which is already synced; pairs cannot overlap."
        if not p.remote or not new.remote:
            return (f"{'The whole pool' if not p.remote else repr(p.remote)} is synced with {p.local}, so "
                    f"{'the whole pool' if not new.remote else repr(new.remote)} would be synced twice; "
                    "pairs cannot overlap on the pool either.")
        if keys.is_under(new.remote, p.remote) or keys.is_under(p.remote, new.remote):
            return f"The pool folder '{new.remote}' overlaps '{p.remote}', synced with {p.local}."
    return None


def pairs_file(pool: str) -> Path:
    return paths.config_dir() / "sync" / f"{pool}.toml"


def load(pool: str) -> list[Pair]:
    f = pairs_file(pool)
    if not f.exists():
        return []
    try:
        raw = tomllib.loads(f.read_text())
        return [make(str(p["local"]), str(p.get("remote", ""))) for p in raw.get("pair", [])]
    except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError, PoolDriveError) as e:
        raise ConfigError(f"The folder pairs file {f} is not valid ({e}); fix or remove it.", paths=[str(f)]) from e


def save(pool: str, pairs: list[Pair]) -> None:
    f = pairs_file(pool)
    f.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths.write_private(f, tomli_w.dumps({"pair": [{"local": str(p.local), "remote": p.remote} for p in pairs]}))


def add(pool: str, pair: Pair) -> list[Pair]:
    pairs = load(pool)
    why = overlap(pair, pairs)
    if why:
        raise UsageError(why, paths=[str(pair.local)])
    if pair.local.exists() and not pair.local.is_dir():
        raise UsageError(f"{pair.local} is a file; a pair joins a folder to a pool folder.", paths=[str(pair.local)])
    pairs.append(pair)
    save(pool, pairs)
    log.info("folder pair added for pool %s: %s", pool, pair.describe())
    return pairs


def remove(pool: str, local: Path) -> Pair:
    pairs = load(pool)
    local = local.expanduser().resolve()
    gone = next((p for p in pairs if p.local == local), None)
    if gone is None:
        raise NotFoundError(f"{local} is not a synced folder of pool '{pool}' ('pooldrive sync list' shows them).",
                            paths=[str(local)])
    save(pool, [p for p in pairs if p != gone])
    log.info("folder pair removed for pool %s: %s", pool, gone.describe())
    return gone
