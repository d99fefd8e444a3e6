#!/usr/bin/env bash
# Build the standalone bundle (PyInstaller, one folder: pooldrive + pooldrive-gui) and a .deb from it.
#   packaging/build.sh            -> dist/pooldrive/ and dist/pooldrive_<version>_amd64.deb
# Reproducible from the repository alone on a clean Debian machine (scripts/setup first).
set -euo pipefail
umask 022  # package files must be world-readable whatever the caller's umask (dpkg-deb insists)
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
py=.venv/bin/python
[ -x "$py" ] || scripts/setup
"$py" -m pip install -q "pyinstaller>=6.6"
version="$("$py" -c 'from importlib.metadata import version; print(version("pooldrive"))')"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export PYTHONHASHSEED=0
rm -rf build/pyinstaller dist/pooldrive
"$py" -m PyInstaller --noconfirm --clean --log-level WARN --workpath build/pyinstaller --distpath dist \
  packaging/pooldrive.spec

# .deb: the bundle under /opt/pooldrive, commands in /usr/bin, menu entry and icons in /usr/share
pkg="build/deb/pooldrive_${version}_amd64"
rm -rf "$pkg"
mkdir -p "$pkg/DEBIAN" "$pkg/opt" "$pkg/usr/bin" "$pkg/usr/share/applications" "$pkg/usr/share/metainfo"
cp -a dist/pooldrive "$pkg/opt/pooldrive"
ln -s /opt/pooldrive/pooldrive "$pkg/usr/bin/pooldrive"
ln -s /opt/pooldrive/pooldrive-gui "$pkg/usr/bin/pooldrive-gui"
sed 's|^Exec=pooldrive-gui|Exec=/usr/bin/pooldrive-gui|' resources/desktop/io.pooldrive.PoolDrive.desktop \
  > "$pkg/usr/share/applications/io.pooldrive.PoolDrive.desktop"
cp resources/desktop/io.pooldrive.PoolDrive.metainfo.xml "$pkg/usr/share/metainfo/"
mkdir -p "$pkg/usr/share/icons/hicolor/scalable/apps"
cp resources/icons/io.pooldrive.PoolDrive.svg "$pkg/usr/share/icons/hicolor/scalable/apps/"
for d in resources/icons/hicolor/*/apps; do
  mkdir -p "$pkg/usr/share/icons/hicolor/$(basename "$(dirname "$d")")/apps"
  cp "$d"/io.pooldrive.PoolDrive.png "$pkg/usr/share/icons/hicolor/$(basename "$(dirname "$d")")/apps/"
done
size_kb="$(du -sk "$pkg" | cut -f1)"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: pooldrive
Version: ${version}
Architecture: amd64
Maintainer: PoolDrive developers <dev@pooldrive.io>
Installed-Size: ${size_kb}
Depends: libc6, libfontconfig1, libxkbcommon-x11-0, libxcb-cursor0, libegl1, libdbus-1-3
Recommends: gnome-keyring
Section: net
Priority: optional
Homepage: https://pooldrive.io
Description: Sync your files to a pool of your own MinIO servers
 PoolDrive keeps every file on several of your own MinIO (S3) servers, reads from the
 fastest healthy copy and repairs copies lost with a dead server. Desktop app, tray icon,
 background sync agent and the pooldrive command line.
CONTROL
cat > "$pkg/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
POSTINST
cp "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/postrm"
chmod 755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/postrm"
find "$pkg" -exec touch -h -d "@${SOURCE_DATE_EPOCH}" {} +
dpkg-deb --root-owner-group -Zxz --build "$pkg" "dist/pooldrive_${version}_amd64.deb" >/dev/null
echo "bundle: dist/pooldrive ($(du -sh dist/pooldrive | cut -f1))"
echo "deb:    dist/pooldrive_${version}_amd64.deb ($(du -sh "dist/pooldrive_${version}_amd64.deb" | cut -f1))"
