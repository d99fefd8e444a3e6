"""What the sync leaves alone: built-in temporary and system files, plus `.pooldriveignore` (gitignore syntax)."""

from __future__ import annotations

from pathlib import Path

import pathspec

IGNORE_FILE = ".pooldriveignore"
BUILTIN = [
    ".pooldrive/", "*.pooldrive-part", ".~lock.*#", "~$*", "*.swp", "*.swx", "*.swo", "*~", ".#*", "#*#",
    ".DS_Store", "Thumbs.db", "desktop.ini", ".directory", ".Trash-*/", "*.tmp", "*.part", "*.crdownload",
    ".goutputstream-*", "*.kate-swp", "4913",
]


class IgnoreRules:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.reload()

    def reload(self) -> None:
        lines = list(BUILTIN)
        f = self.root / IGNORE_FILE
        if f.is_file():
            lines += f.read_text(errors="replace").splitlines()
        self.spec = pathspec.GitIgnoreSpec.from_lines(lines)

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        return self.spec.match_file(rel + "/" if is_dir else rel)
