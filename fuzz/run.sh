#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after the other, and prints
# per target the executions, the rate and the findings. Exits non-zero when any target crashed,
# hung or was slow (-timeout=5, per input) or ran out of memory (-rss_limit_mb).
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# Environment: FUZZ_TOOLCHAIN (e.g. nightly; default: the default toolchain, stable works with
# -s none), FUZZ_SANITIZER (default none; address needs nightly), FUZZ_ARGS (more libFuzzer
# flags). New inputs go to fuzz/target/corpus/TARGET (kept between runs, not committed); the
# committed seeds in fuzz/corpus/TARGET are only read. A finding is saved under
# fuzz/artifacts/TARGET/ and reproduced with
#   fuzz/target/<host triple>/release/TARGET fuzz/artifacts/TARGET/crash-…
set -euo pipefail
cd "$(dirname "$0")"

usage() { echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
secs=$1; shift
case $secs in '' | *[!0-9]*) usage ;; esac

all=(soap_parse auth_params connreq_head config_toml config_uci datamodel_file store_file http_headers ubus_blob netlink_parse diag_replies udp_connreq dhcp_option xmpp_stream)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [ -f "fuzz_targets/$t.rs" ] || { echo "unknown target: $t (have: ${all[*]})" >&2; exit 2; }
done

toolchain=()
[ -n "${FUZZ_TOOLCHAIN:-}" ] && toolchain=("+$FUZZ_TOOLCHAIN")
sanitizer=${FUZZ_SANITIZER:-none}
host=$(rustc "${toolchain[@]}" -vV | sed -n 's/^host: //p')

# One build of every target: release, debug assertions and overflow checks on (-a).
echo "== cargo ${toolchain[*]} fuzz build -s $sanitizer -a"
cargo "${toolchain[@]}" fuzz build -s "$sanitizer" -a

bin=target/$host/release
logs=target/logs
mkdir -p "$logs"
failed=0
rows=()
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t" "artifacts/$t"
  log=$logs/$t.log
  echo "== $t: ${secs}s"
  rc=0
  # soap_parse (the linear-time parse, SECURITY.md): inputs up to the SOAP size cap (4 MiB), so
  # that a parse slower than linear runs into the 5 s timeout (the fuzz build, instrumented,
  # needs about 2 s for the largest well-behaved 4 MiB envelope; the parser before the
  # pre-scan's bounds needed 0.85 s for 16 KiB of namespace redeclarations and more than 5 s for
  # 32 KiB), and a dictionary of the XML tokens the bounds count.
  per_target=()
  if [ "$t" = soap_parse ]; then per_target=(-max_len=4194304 -dict=soap_parse.dict); fi
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags.
  "$bin/$t" "target/corpus/$t" "corpus/$t" \
    -max_total_time="$secs" -rss_limit_mb=512 -timeout=5 ${per_target[@]+"${per_target[@]}"} \
    -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" ${FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  finding=none
  if [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))
    if grep -q 'libFuzzer: timeout' "$log"; then finding=timeout
    elif grep -q -e 'out-of-memory' -e 'malloc limit' "$log"; then finding=oom
    elif grep -q 'panicked at' "$log"; then finding=panic
    else finding="crash (exit $rc)"; fi
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "   FINDING: $finding; reproducer: fuzz/${artifact:-artifacts/$t/}; log: fuzz/$log"
    grep -m1 -A3 'panicked at' "$log" | sed 's/^/   /' || true
  fi
  crashes=0; [ "$rc" -ne 0 ] && crashes=1
  rows+=("$(printf '%-16s %14s %10s %8s  %s' "$t" "${execs:-?}" "${rate:-?}" "$crashes" "$finding")")
done

echo
printf '%-16s %14s %10s %8s  %s\n' target executions exec/s crashes finding
printf '%s\n' "${rows[@]}"
echo "targets with a finding: $failed/${#targets[@]}"
[ "$failed" -eq 0 ]
