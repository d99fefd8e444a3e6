"""The app's SVG icon set (resources/icons/ui), loaded once."""

from __future__ import annotations

from functools import cache
from importlib import resources

from PySide6.QtGui import QIcon

APP_ICON = "io.pooldrive.PoolDrive.svg"


def _path(*parts: str) -> str:
    return str(resources.files("resources").joinpath("icons", *parts))


@cache
def icon(name: str) -> QIcon:
    return QIcon(_path("ui", f"{name}.svg"))


@cache
def app_icon() -> QIcon:
    return QIcon(_path(APP_ICON))
