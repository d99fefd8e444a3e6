"""Where PoolDrive keeps its files (XDG base directories)."""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

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


def _umask_now() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


# The user's own umask. The CLI and the app run with 077 so that PoolDrive's own files (catalogs, state,
# logs) are private from their first byte; the files and folders it writes for the user (downloads, a
# synced folder's content) get the modes the user's umask gives, as any other program's would.
_user_umask = _umask_now()


def keep_user_umask(mask: int) -> None:
    """Remember the user's umask before the process narrows its own (``cli.main``, the app)."""
    global _user_umask
    _user_umask = mask


def user_umask() -> int:
    """The user's umask, for the processes PoolDrive starts (an agent started from the app or the CLI)."""
    return _user_umask


def user_file_mode(replacing: Path | None = None) -> int:
    """The mode for a user's file written to ``replacing``: that of the file it replaces (an executable
    stays executable), else what the user's umask gives a new file (0644 with the usual 022)."""
    if replacing is not None:
        try:
            st = os.stat(replacing)
            if stat.S_ISREG(st.st_mode):
                return stat.S_IMODE(st.st_mode)
        except OSError:
            pass
    return 0o666 & ~_user_umask


def make_user_dirs(path: Path) -> None:
    """``mkdir -p`` for a user's folder: each folder made gets the mode the user's umask gives (0755 with
    022), not the process's private 0700."""
    missing: list[Path] = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        try:
            os.chmod(d, 0o777 & ~_user_umask)
        except OSError:
            pass


def private_mkdir(path: Path) -> Path:
    """Create ``path`` (and parents) readable only by the user."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def case_insensitive(folder: Path) -> bool:
    """Whether the file system at ``folder`` (which exists) ignores case, as on macOS, Windows or a FAT
    stick: 'A.txt' and 'a.txt' are then one file. Probed with a temporary file; False if it cannot be."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".PoolDriveCaseProbe", dir=folder)
    except OSError:
        return False
    try:
        os.close(fd)
        return os.path.exists(os.path.join(folder, os.path.basename(probe).lower()))
    finally:
        os.unlink(probe)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable only by the user from the first byte: a fresh
    temp file (O_EXCL, so a leftover one never lends its mode), flushed to disk, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600, O_EXCL
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def secure_tree() -> None:
    """Make PoolDrive's own config, data and state the user's alone: folders 0700, files 0600. Run at
    every start, so files an older version created with the default umask (pool configs, catalogs, sync
    state, agent logs and locks) are fixed too. The dev pool's MinIO data is left to MinIO. Best effort."""
    for base in (config_dir(), data_dir(), state_dir()):
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            d = Path(dirpath)
            if d == state_dir() / "devpool":
                dirnames[:] = [n for n in dirnames if n != "data"]
            for target, mode in [(d, 0o700)] + [(d / n, 0o600) for n in filenames]:
                try:
                    st = os.lstat(target)
                    if not os.path.islink(target) and st.st_mode & 0o077:
                        os.chmod(target, mode)
                except OSError:
                    pass


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
