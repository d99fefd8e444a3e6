"""Issue 8: the standalone bundle and the .deb, built from the repository, run for real (slow: ~2 min)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built() -> tuple[Path, Path]:
    r = subprocess.run(["bash", str(ROOT / "packaging/build.sh")], cwd=ROOT, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    debs = sorted(DIST.glob("pooldrive_*_amd64.deb"))
    assert debs, r.stdout
    return DIST / "pooldrive", debs[-1]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ}
    for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
        env[k] = str(tmp_path / k.lower())
        Path(env[k]).mkdir(mode=0o700, parents=True, exist_ok=True)
    env.pop("QT_QPA_PLATFORM", None)
    return env


def test_deb_contents(built: tuple[Path, Path]) -> None:
    _, deb = built
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    for needed in ("./opt/pooldrive/pooldrive-gui", "./opt/pooldrive/pooldrive", "./usr/bin/pooldrive",
                   "./usr/share/applications/io.pooldrive.PoolDrive.desktop",
                   "./usr/share/icons/hicolor/scalable/apps/io.pooldrive.PoolDrive.svg",
                   "./usr/share/icons/hicolor/48x48/apps/io.pooldrive.PoolDrive.png",
                   "./usr/share/metainfo/io.pooldrive.PoolDrive.metainfo.xml"):
        assert needed in listing, needed


def test_bundled_cli_and_gui_run_against_a_dev_pool(built: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, _ = built
    env = _env(tmp_path)
    cli = str(bundle / "pooldrive")
    up = subprocess.run([cli, "devpool", "up", "--nodes", "2"], env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        status = subprocess.run([cli, "status"], env=env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and "node1" in status.stdout, status.stdout + status.stderr
        version = subprocess.run([cli, "--version"], env=env, capture_output=True, text=True, timeout=60)
        gui_version = subprocess.run([str(bundle / "pooldrive-gui"), "--version"], env=env, capture_output=True,
                                     text=True, timeout=60)
        assert version.stdout.split()[-1] == gui_version.stdout.split()[-1]  # one version everywhere
        if not (shutil.which("xvfb-run") and shutil.which("xwininfo") and shutil.which("import")):
            pytest.skip("xvfb-run, xwininfo and import are installed by scripts/setup")
        shot = tmp_path / "bundle-window.png"
        script = tmp_path / "launch.sh"
        script.write_text(f"""#!/bin/bash
"{bundle}/pooldrive-gui" --pool dev &
pid=$!
for i in $(seq 1 300); do
  if xwininfo -root -tree | grep -q "PoolDrive: dev"; then echo WINDOW; break; fi
  sleep 0.1
done
sleep 1
import -window root "{shot}"
kill $pid
""")
        start = time.monotonic()
        r = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24 -nolisten tcp", "bash", str(script)],
                           env=env, capture_output=True, text=True, timeout=120)
        assert "WINDOW" in r.stdout, r.stdout + r.stderr
        print(f"\nbundled window up, screenshot {shot} ({time.monotonic() - start:.1f} s with Xvfb start)")
        assert shot.exists() and shot.stat().st_size > 10_000
    finally:
        subprocess.run([cli, "devpool", "down", "--purge"], env=env, capture_output=True, timeout=60)


def test_deb_installs_and_removes_cleanly(built: tuple[Path, Path]) -> None:
    _, deb = built
    if os.geteuid() != 0 or not shutil.which("dpkg"):
        pytest.skip("installing a .deb needs root")
    if Path("/opt/pooldrive").exists():
        pytest.skip("a PoolDrive is already installed in /opt/pooldrive")
    subprocess.run(["dpkg", "-i", str(deb)], check=True, capture_output=True, timeout=300)
    try:
        assert Path("/usr/bin/pooldrive").exists()
        out = subprocess.run(["/usr/bin/pooldrive", "--version"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "pooldrive" in out.stdout
        assert Path("/usr/share/applications/io.pooldrive.PoolDrive.desktop").exists()
    finally:
        subprocess.run(["dpkg", "-r", "pooldrive"], check=True, capture_output=True, timeout=300)
    assert not Path("/opt/pooldrive").exists() and not Path("/usr/bin/pooldrive").exists()
