#!/bin/sh
# Builds the OpenWrt `uci` command-line tool from the libuci and libubox C sources that the
# `libuci-sys` crate (version =1.0.5) vendors, with plain gcc (no cmake). The cwmpd tests run the
# uci backend against this real binary (no fake uci).
#
# Usage: tools/build-uci.sh OUTDIR    → OUTDIR/uci (nothing is done when it already exists).
# Needs: cargo (to fetch the crate sources; offline when already in the cargo cache), gcc.
set -eu

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUTDIR   (builds OUTDIR/uci)" >&2
  exit 2
fi
out=$1
if [ -x "$out/uci" ]; then
  exit 0
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

die() {
  echo "build-uci: $*" >&2
  exit 1
}
command -v cargo >/dev/null 2>&1 || die "cargo not found (needed to fetch libuci-sys 1.0.5)"
command -v gcc >/dev/null 2>&1 || die "gcc not found (apt-get install gcc libc6-dev)"

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

# A throwaway project whose only dependency is the crate: cargo fetches (or finds in its
# cache) the sources, and `cargo metadata` says where they are.
mkdir -p "$work/fetch/src"
cat >"$work/fetch/Cargo.toml" <<'TOML'
[package]
name = "uci-fetch"
version = "0.0.0"
edition = "2021"

[dependencies]
libuci-sys = "=1.0.5"

[workspace]
TOML
: >"$work/fetch/src/lib.rs"
(cd "$work/fetch" && { cargo fetch --quiet --offline 2>/dev/null || cargo fetch --quiet; }) \
  || die "cargo fetch of libuci-sys 1.0.5 failed"
meta=$(cd "$work/fetch" && cargo metadata --offline --format-version 1 2>/dev/null) \
  || die "cargo metadata failed in $work/fetch"
manifest=$(printf '%s' "$meta" | grep -o '"manifest_path":"[^"]*libuci-sys-1\.0\.5/Cargo\.toml"' \
  | head -n 1 | sed 's/^"manifest_path":"//; s/"$//')
[ -n "$manifest" ] || die "libuci-sys 1.0.5 not found in cargo metadata"
src=$(dirname "$manifest")
[ -f "$src/uci/cli.c" ] && [ -f "$src/libubox/blob.c" ] \
  || die "$src does not hold uci/cli.c and libubox/blob.c"

# One flat build directory; libubox headers also under inc/libubox/ for <libubox/...> includes.
b=$work/src
mkdir -p "$b" "$b/inc/libubox"
cp "$src"/uci/*.c "$src"/uci/*.h "$b/"
for f in blob blobmsg avl avl-cmp utils; do
  cp "$src/libubox/$f.c" "$b/"
done
for h in "$src"/libubox/*.h; do
  # libubox's assert.h would shadow the C library's <assert.h>.
  [ "$(basename "$h")" = assert.h ] && continue
  cp "$h" "$b/"
  cp "$h" "$b/inc/libubox/"
done
sed 's|^#cmakedefine|// #cmakedefine|' "$src/uci/uci_config.h.in" >"$b/uci_config.h"

(cd "$b" && gcc -Os -std=gnu99 -DUCI_PREFIX='"/usr"' -I. -Iinc -o uci \
  cli.c libuci.c file.c util.c delta.c parse.c blob.c blobmsg.c avl.c avl-cmp.c utils.c) \
  || die "gcc failed in $b"

# Atomic: a parallel build never sees a half-written binary.
mv -f "$b/uci" "$out/uci"
echo "build-uci: built $out/uci" >&2
