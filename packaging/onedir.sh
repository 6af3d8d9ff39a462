#!/usr/bin/env bash
# Make PyInstaller's --onedir output need nothing from the target, not even its C library:
# copy in every library that ldd resolves outside the folder (glibc and its loader, which
# PyInstaller leaves out on purpose), point the executable's ELF interpreter at the copied
# loader and its DT_RPATH at $ORIGIN/_internal. An ELF interpreter path must be absolute, so the
# folder works only at PREFIX (default /usr/local/lib/rainbond-watchdog, where
# deploy/Dockerfile.allinone puts it); no extraction at start, no temporary folder.
#
#   packaging/onedir.sh SRC_DIR OUT_DIR [PREFIX]
set -euo pipefail
SRC=$1 OUT=$2 PREFIX=${3:-${BUNDLE_ONEDIR_PREFIX:-/usr/local/lib/rainbond-watchdog}}
EXE=rainbond-watchdog
rm -rf "$OUT.tmp"
cp -a "$SRC" "$OUT.tmp"
LIB=$OUT.tmp/_internal
# Every ELF file of the folder; ldd's "name => /path (addr)" and the loader's own "/path (addr)".
mapfile -t elves < <(find "$OUT.tmp" -type f \( -name '*.so*' -o -name "$EXE" \) -print)
mapfile -t outside < <(ldd "${elves[@]}" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' \
  | sort -u | while read -r lib; do case "$(readlink -f "$lib")" in "$(readlink -f "$OUT.tmp")"/*) ;; *) echo "$lib";; esac; done)
loader= added=()
for lib in "${outside[@]}"; do
  name=$(basename "$lib")
  case "$name" in ld-linux*) loader=$name;; esac
  [ -e "$LIB/$name" ] && continue   # PyInstaller collected it already (ldd did not look in the folder)
  cp -L "$lib" "$LIB/$name"
  added+=("$name")
done
[ -n "$loader" ] || { echo "onedir: no ELF loader found among ${outside[*]}" >&2; exit 2; }
patchelf --set-interpreter "$PREFIX/_internal/$loader" --force-rpath --set-rpath '$ORIGIN/_internal' "$OUT.tmp/$EXE"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
printf 'onedir: %s (copied in: %s; runs only at %s)\n' "$OUT" "${added[*]}" "$PREFIX" >&2
