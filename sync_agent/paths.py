"""Where PoolDrive keeps its files (XDG base directories)."""

from __future__ import annotations

import os
from pathlib import Path

APP = "pooldrive"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    base = Path(value) if value and os.path.isabs(value) else Path.home() / fallback
    return base / APP


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config")


def data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share")


def state_dir() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state")


def cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache")


def runtime_dir() -> Path:
    value = os.environ.get("XDG_RUNTIME_DIR")
    if value and os.path.isdir(value):
        return Path(value) / APP
    return state_dir() / "run"


def pools_dir() -> Path:
    return config_dir() / "pools"


def catalog_path(pool_name: str) -> Path:
    return data_dir() / "catalogs" / f"{pool_name}.sqlite3"


def private_mkdir(path: Path) -> Path:
    """Create ``path`` (and parents) readable only by the user."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def make_private(path: Path) -> None:
    """Restrict a state file (and its SQLite companions) to the user, and its folder too; fixes files
    created by older versions with the default umask. Best effort: never fatal."""
    try:
        os.chmod(path.parent, 0o700)
    except OSError:
        pass
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if p.exists():
                os.chmod(p, 0o600)
        except OSError:
            pass
