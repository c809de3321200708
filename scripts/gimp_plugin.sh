#!/usr/bin/env bash
# Builds the GIMP 2.10 plug-in (gimp_plugin/ai-horde.c) with gimptool-2.0, warnings as errors.
#   scripts/gimp_plugin.sh              build and install into the user's GIMP
#                                       (~/.config/GIMP/2.10/plug-ins/ai-horde/ai-horde)
#   scripts/gimp_plugin.sh --build DIR  only build, into DIR/ai-horde (the tests use this)
# The plug-in runs the `horde` client named by $HORDE_CLI at build time (default: this
# checkout's .venv/bin/horde, which ./run creates); $HORDE_GIMP_CLI overrides it at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
source_file=$PWD/gimp_plugin/ai-horde.c
cli=${HORDE_CLI:-$PWD/.venv/bin/horde}
case "$cli" in
  *[[:space:]\"\'\\]*) echo "HORDE_CLI must be a path without spaces or quotes: $cli" >&2; exit 2 ;;
esac
if ! command -v gimptool-2.0 >/dev/null; then
  echo "gimptool-2.0 is missing: apt-get install gimp libgimp2.0-dev" >&2
  exit 1
fi
# GTK 2's own headers use GLib types GLib has since deprecated (GTimeVal …): without
# GLIB_DISABLE_DEPRECATION_WARNINGS every build would warn about Debian's headers, not our code.
# gimptool runs the compiler through a shell: the single quotes keep the C string's quotes.
export CFLAGS="-O2 -Wall -Wextra -Werror -DGLIB_DISABLE_DEPRECATION_WARNINGS -DHORDE_CLI='\"$cli\"'"
install=yes
out=$PWD/build/gimp
if [ "${1:-}" = "--build" ]; then
  install=no
  out=${2:?--build needs a folder}
fi
mkdir -p "$out"
rm -f "$out/ai-horde"
# gimptool --build writes the binary into the current folder, named after the source, and exits
# 0 even when the compiler failed: the binary's presence is the verdict.
(cd "$out" && gimptool-2.0 --quiet --build "$source_file")
if [ ! -x "$out/ai-horde" ]; then
  echo "building $source_file failed (see the compiler's messages above)" >&2
  exit 1
fi
if [ "$install" = yes ]; then
  gimptool-2.0 --quiet --install-bin "$out/ai-horde"
  echo "installed: ${XDG_CONFIG_HOME:-$HOME/.config}/GIMP/2.10/plug-ins/ai-horde/ai-horde (runs $cli)"
else
  echo "$out/ai-horde"
fi
