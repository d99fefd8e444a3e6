"""The app's SVG icon set (resources/icons/ui), loaded once."""

from __future__ import annotations

from functools import cache
from importlib import resources

from PySide6.QtGui import QIcon

APP_ICON = "io.pooldrive.PoolDrive.svg"


def _path(*parts: str) -> str:
    p = resources.files("resources").joinpath("icons")
    for part in parts:  # one part at a time: bundled resources are a MultiplexedPath in Python 3.11
        p = p.joinpath(part)
    return str(p)


@cache
def icon(name: str) -> QIcon:
    return QIcon(_path("ui", f"{name}.svg"))


@cache
def app_icon() -> QIcon:
    return QIcon(_path(APP_ICON))
