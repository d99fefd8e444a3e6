"""The installed version of PoolDrive (cheap to import: the command line asks for it before anything else)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def app_version() -> str:
    try:
        return version("pooldrive")
    except PackageNotFoundError:
        return "0+unknown"
