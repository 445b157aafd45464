#!/usr/bin/env bash
# Cross-builds cwmpd for the router architectures on a plain Debian 12 x86_64 machine, prints the
# stripped size of each binary and checks it against cross/budget.toml.
#
# Usage: cross/build.sh [--install] [--no-budget] [--panic-messages] [TARGET...|all]
#   --install    install the toolchain first (idempotent: only what is missing is installed)
#   --no-budget  report the sizes but do not fail when a target is over its budget
#   --panic-messages  the diagnostic build: a panic prints its message and location before the
#                process ends (about 200 KB larger; the budget is not checked). Without it a
#                panic ends the process at once, without a word (see cross/README.md)
#   TARGET       mips-unknown-linux-musl, mipsel-unknown-linux-musl,
#                armv7-unknown-linux-musleabihf, aarch64-unknown-linux-musl,
#                x86_64-unknown-linux-musl (the router's libc and allocator on this machine, for
#                the report's RSS and speed figures), or "all" (the default)
#
# The toolchain (see cross/README.md for why each piece): Debian's rustc-web, cargo-web and
# rust-web-src (a rustc new enough for -Z build-std, with the std source), qemu-user to run the
# results, and from PyPI ziglang 0.15.2 with cargo-zigbuild as the cross linker and musl libc.
#
# Outputs: target/cross/<TARGET>/release/cwmpd (as linked, with its symbols) and
# target/cross/<TARGET>/cwmpd (stripped); target/cross-panic-messages/ for --panic-messages.
# The separate target directory keeps the host build (rustup's compiler) untouched.
# Exit status: 0 when every target built and fits its budget, 1 otherwise, 2 on a usage error.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

all_targets=(
  mips-unknown-linux-musl
  mipsel-unknown-linux-musl
  armv7-unknown-linux-musleabihf
  aarch64-unknown-linux-musl
  x86_64-unknown-linux-musl
)
zig_version=0.15.2
zigbuild_version=0.24.0
# rustc-web 1.85 (bookworm main) predates what the verified recipe used; bookworm-security has 1.96.
min_rustc=1.96
budget_file=$root/cross/budget.toml
target_dir=${CROSS_TARGET_DIR:-$root/target/cross}
target_dir=${target_dir%/}

die() {
  echo "cross: $*" >&2
  exit 1
}

usage() {
  sed -n '5,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

install=0
budget=1
messages=0
targets=()
for arg in "$@"; do
  case $arg in
    --install) install=1 ;;
    --no-budget) budget=0 ;;
    --panic-messages) messages=1 budget=0 ;;
    -h | --help) usage ;;
    all) targets+=("${all_targets[@]}") ;;
    -*) echo "cross: unknown option $arg" >&2; usage ;;
    *)
      found=0
      for t in "${all_targets[@]}"; do
        if [ "$t" = "$arg" ]; then found=1; fi
      done
      [ "$found" = 1 ] || { echo "cross: unknown target $arg" >&2; usage; }
      targets+=("$arg")
      ;;
  esac
done
[ "${#targets[@]}" -gt 0 ] || targets=("${all_targets[@]}")

# True when version $1 >= version $2 (dotted numbers).
version_ge() {
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

debian_rustc_version() {
  { /usr/bin/rustc --version 2>/dev/null || true; } | awk '{print $2}'
}

zig_installed_version() {
  python3 -m ziglang version 2>/dev/null || true
}

install_toolchain() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  local missing=()
  for pkg in rustc-web cargo-web rust-web-src qemu-user; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  local have
  have=$(debian_rustc_version)
  if [ "${#missing[@]}" -gt 0 ] || ! version_ge "${have:-0}" "$min_rustc"; then
    # The package lists of a fresh machine can predate bookworm-security's rustc-web.
    echo "== apt-get install rustc-web cargo-web rust-web-src qemu-user"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      rustc-web cargo-web rust-web-src qemu-user >/dev/null
  fi
  have=$(debian_rustc_version)
  version_ge "${have:-0}" "$min_rustc" ||
    die "/usr/bin/rustc is ${have:-missing}, need >= $min_rustc (is bookworm-security in the apt sources?)"

  if [ "$(zig_installed_version)" != "$zig_version" ] ||
    [ "$({ cargo-zigbuild --version 2>/dev/null || true; } | awk '{print $2}')" != "$zigbuild_version" ]; then
    echo "== pip install ziglang==$zig_version cargo-zigbuild==$zigbuild_version"
    python3 -m pip install -q "ziglang==$zig_version" "cargo-zigbuild==$zigbuild_version"
    # pyenv puts new console scripts on PATH through its shims, made by a rehash.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
  fi
}

check_toolchain() {
  local have
  have=$(debian_rustc_version)
  if [ ! -x /usr/bin/cargo ] || [ -z "$have" ]; then
    die "Debian's rustc/cargo are missing: run cross/build.sh --install"
  fi
  version_ge "$have" "$min_rustc" || die "/usr/bin/rustc is $have, need >= $min_rustc: run --install"
  [ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library" ] ||
    die "the std source (rust-web-src) is missing: run cross/build.sh --install"
  [ "$(zig_installed_version)" = "$zig_version" ] ||
    die "zig $zig_version (PyPI ziglang) is missing: run cross/build.sh --install"
  command -v cargo-zigbuild >/dev/null 2>&1 || die "cargo-zigbuild is missing: run cross/build.sh --install"
}

# Strips a copy of the binary: llvm-strip when there is one, else zig's objcopy.
strip_copy() {
  local in=$1 out=$2 s
  for s in llvm-strip llvm-strip-16 llvm-strip-15 llvm-strip-14; do
    if command -v "$s" >/dev/null 2>&1; then
      "$s" -o "$out" "$in"
      return
    fi
  done
  python3 -m ziglang objcopy --strip-all "$in" "$out"
}

# The budget of a target in bytes from cross/budget.toml (`"<target>" = <bytes>`), empty if none.
budget_of() {
  [ -f "$budget_file" ] || return 0
  sed -n "s/^[[:space:]]*\"\{0,1\}$1\"\{0,1\}[[:space:]]*=[[:space:]]*\([0-9_]*\).*/\1/p" \
    "$budget_file" | tr -d _ | head -n1
}

[ "$install" = 0 ] || install_toolchain
check_toolchain

echo "== rustc: $(/usr/bin/rustc --version), cargo: $(/usr/bin/cargo --version), zig $(zig_installed_version)"

# Debian's compiler with nightly features unlocked (build-std), a static non-PIE binary (a
# static-pie mipsel binary crashes under qemu when it starts a thread) and zig's musl start files.
# std is built with the feature optimize_for_size only: not the default "backtrace" (the
# symbolizer of panic backtraces, useless in a stripped binary) nor "panic-unwind" (the profile
# aborts); see cross/README.md for what each saves. No unwind tables either (.eh_frame): with
# panic = "abort" nothing unwinds, and std's backtrace symbolizer is not built.
# A panic traps where it happens (panic = "immediate-abort": no message, no formatting, no panic
# hook; 200 KB less on mips) unless --panic-messages asks for the profile's "abort". The binary
# as linked keeps its symbols (the stripped copy is what ships): it names the function of a
# trap's address in a core dump (cross/README.md).
export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-C relocation-model=static -C link-self-contained=no -C force-unwind-tables=no"
export CARGO_TARGET_DIR=$target_dir
export CARGO_PROFILE_RELEASE_STRIP=none
panic_flags=()
if [ "$messages" = 0 ]; then
  export CARGO_PROFILE_RELEASE_PANIC=immediate-abort
  panic_flags=(-Z panic-immediate-abort)
else
  # The profile's abort, whatever the caller's environment says; its own target directory:
  # std is built for each strategy, and switching would rebuild it.
  unset CARGO_PROFILE_RELEASE_PANIC
  export CARGO_TARGET_DIR=$target_dir-panic-messages
fi
unset RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER

status=0
report=()
for t in "${targets[@]}"; do
  echo "== cargo zigbuild --release --target $t"
  start=$(date +%s)
  if ! /usr/bin/cargo zigbuild --release --locked --bin cwmpd --target "$t" \
    -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size "${panic_flags[@]}"; then
    report+=("$(printf '%-32s %s' "$t" "BUILD FAILED")")
    status=1
    continue
  fi
  secs=$(($(date +%s) - start))
  bin=$CARGO_TARGET_DIR/$t/release/cwmpd
  out=$CARGO_TARGET_DIR/$t/cwmpd
  strip_copy "$bin" "$out"
  size=$(stat -c %s "$out")
  limit=$(budget_of "$t")
  verdict="no budget"
  if [ "$messages" = 1 ]; then
    verdict="the diagnostic build: no budget"
  elif [ -n "$limit" ]; then
    if [ "$size" -le "$limit" ]; then
      verdict="ok (budget $limit)"
    else
      verdict="OVER BUDGET by $((size - limit)) (budget $limit)"
      [ "$budget" = 0 ] || status=1
    fi
  fi
  report+=("$(printf '%-32s %9d bytes  %5s MiB  %4ss  %s' "$t" "$size" \
    "$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')" "$secs" "$verdict")")
done

echo "== stripped sizes ($CARGO_TARGET_DIR/<target>/cwmpd), build seconds"
printf '%s\n' "${report[@]}"
exit "$status"
