"""Desktop integration by XDG conventions, per user (no root): menu entry, icons, start at login.

``install``/``uninstall`` put the .desktop entry, the AppStream metainfo and the icons in the user's XDG
data dir. ``autostart_on`` writes a systemd user unit for the sync agent (where systemd runs the user
session) and an XDG autostart entry for the tray app; without systemd the autostart entry starts both.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

APP_ID = "io.pooldrive.PoolDrive"
UNIT = "pooldrive-agent.service"


def _resource(*parts: str) -> Path:
    p = resources.files("resources")
    for part in parts:  # one part at a time: bundled resources are a MultiplexedPath in Python 3.11
        p = p.joinpath(part)
    return Path(str(p))


def _data_home() -> Path:
    v = os.environ.get("XDG_DATA_HOME")
    return Path(v) if v and os.path.isabs(v) else Path.home() / ".local/share"


def _config_home() -> Path:
    v = os.environ.get("XDG_CONFIG_HOME")
    return Path(v) if v and os.path.isabs(v) else Path.home() / ".config"


def command_path(name: str) -> str:
    """The installed command ``name`` next to this Python, else on PATH, else the bare name."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name) or name


@dataclass
class Installed:
    files: list[Path] = field(default_factory=list)


def install() -> Installed:
    data = _data_home()
    out = Installed()
    targets = [(_resource("desktop", f"{APP_ID}.desktop"), data / "applications" / f"{APP_ID}.desktop"),
               (_resource("desktop", f"{APP_ID}.metainfo.xml"), data / "metainfo" / f"{APP_ID}.metainfo.xml"),
               (_resource("icons", f"{APP_ID}.svg"), data / "icons/hicolor/scalable/apps" / f"{APP_ID}.svg")]
    for png in _resource("icons", "hicolor").glob(f"*/apps/{APP_ID}.png"):
        targets.append((png, data / "icons/hicolor" / png.parent.parent.name / "apps" / png.name))
    for src, dst in targets:
        dst.parent.mkdir(parents=True, exist_ok=True)
        text = src.read_bytes()
        if dst.suffix == ".desktop":  # point at this installation's command, wherever pip put it
            text = text.replace(b"Exec=pooldrive-gui", f"Exec={command_path('pooldrive-gui')}".encode())
        dst.write_bytes(text)
        out.files.append(dst)
    for tool in (["update-desktop-database", str(data / "applications")],
                 ["gtk-update-icon-cache", "-q", "-t", str(data / "icons/hicolor")]):
        if shutil.which(tool[0]):
            subprocess.run(tool, capture_output=True, check=False)
    return out


def uninstall() -> list[Path]:
    data = _data_home()
    gone = [p for p in [data / "applications" / f"{APP_ID}.desktop", data / "metainfo" / f"{APP_ID}.metainfo.xml",
                        *data.glob(f"icons/hicolor/*/apps/{APP_ID}.*")] if p.exists()]
    for p in gone:
        p.unlink()
    return gone


def systemd_user_available() -> bool:
    return shutil.which("systemctl") is not None and Path(f"/run/user/{os.getuid()}/systemd").exists()


def autostart_paths() -> tuple[Path, Path]:
    return (_config_home() / "systemd/user" / UNIT, _config_home() / "autostart" / f"{APP_ID}.desktop")


def render_unit(folder: Path) -> str:
    text = _resource("desktop", UNIT).read_text()
    return text.replace("{pooldrive}", command_path("pooldrive")).replace("{folder}", str(folder))


def autostart_on(folder: Path | None, *, use_systemd: bool | None = None) -> list[Path]:
    """Start the tray app (and the agent for ``folder``) at login; returns the files written."""
    unit_path, entry_path = autostart_paths()
    use_systemd = systemd_user_available() if use_systemd is None else use_systemd
    written = []
    gui = command_path("pooldrive-gui") + " --minimized"
    if folder is not None and use_systemd:
        unit_path.parent.mkdir(parents=True, exist_ok=True)
        unit_path.write_text(render_unit(folder))
        written.append(unit_path)
        if systemd_user_available():
            subprocess.run(["systemctl", "--user", "daemon-reload"], capture_output=True, check=False)
            subprocess.run(["systemctl", "--user", "enable", "--now", UNIT], capture_output=True, check=False)
    elif folder is not None:  # no systemd: the autostart entry starts the agent too ('pooldrive session')
        gui = f'"{command_path("pooldrive")}" session --folder "{folder}"'
    entry_path.parent.mkdir(parents=True, exist_ok=True)
    entry_path.write_text(_resource("desktop", f"{APP_ID}-autostart.desktop").read_text().replace("{exec}", gui))
    written.append(entry_path)
    return written


def start_session(folder: Path) -> None:
    """What the autostart entry runs without systemd: the agent in the background, then the tray app."""
    subprocess.run([command_path("pooldrive"), "sync", "start", "--folder", str(folder)], check=False)
    gui = command_path("pooldrive-gui")
    os.execv(gui, [gui, "--minimized"])


def autostart_off() -> list[Path]:
    unit_path, entry_path = autostart_paths()
    if unit_path.exists() and systemd_user_available():
        subprocess.run(["systemctl", "--user", "disable", "--now", UNIT], capture_output=True, check=False)
    gone = [p for p in (unit_path, entry_path) if p.exists()]
    for p in gone:
        p.unlink()
    return gone


def autostart_enabled() -> bool:
    return autostart_paths()[1].exists()
