#!/usr/bin/env bash
# Fuzz smoke run: every cargo-fuzz target in fuzz/fuzz_targets under libFuzzer for a short
# while, seeded with the SIP torture corpus. scripts/test.sh runs it after the tests.
#
#   scripts/fuzz-smoke.sh                          15 s per target, debug build
#   FUZZ_SECONDS=600 FUZZ_PROFILE=release scripts/fuzz-smoke.sh   a real fuzzing session
#   FUZZ=0 scripts/fuzz-smoke.sh                   skip
#
# The smoke run uses a debug build (`cargo fuzz build --dev`): it builds in about 3 min
# cold on a 2-core machine instead of 7, keeps overflow checks and debug assertions on,
# and still runs the seeds plus a few thousand mutations. A release build runs ~25 times
# more executions per second (about 3,400/s for sip_message) for longer sessions.
# cargo-fuzz is installed on first use; the flags it needs are unlocked on the stable
# toolchain with RUSTC_BOOTSTRAP=1. The same target bodies also run on stable in
# `cargo test` (tests/sip_torture.rs and tests/sdp_fuzz_smoke.rs) over the corpus and
# seeded mutations.
#
# Seeds come from the SIP torture corpus ($ZENDESK_IVR_SHARED/corpus/sip-torture, or
# ../shared/corpus/sip-torture); fuzz/corpus (what libFuzzer keeps) is not committed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${FUZZ:-1}" = "0" ]; then
  echo "fuzz-smoke: skipped (FUZZ=0)"
  exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

shared="${ZENDESK_IVR_SHARED:-$(pwd)/../shared}"
torture="$shared/corpus/sip-torture"
if [ ! -d "$torture" ]; then
  echo "fuzz-smoke: no torture corpus at $torture" >&2
  exit 1
fi

profile=(--dev)
[ "${FUZZ_PROFILE:-dev}" = "release" ] && profile=()
seconds="${FUZZ_SECONDS:-15}"

for target_file in fuzz/fuzz_targets/*.rs; do
  target="$(basename "$target_file" .rs)"
  seeds="fuzz/corpus/$target"
  mkdir -p "$seeds"
  case "$target" in
    sip_*|sdp) find "$torture" -type f ! -name '*.md' -exec cp -n {} "$seeds/" \; ;;
  esac
  echo "fuzz-smoke: $target for ${seconds}s"
  log="fuzz/corpus/$target.log"
  # A crash, a leak or a timeout makes cargo fuzz exit non-zero.
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "${profile[@]}" "$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz-smoke: $target FAILED (full log: $log)" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
done
echo "fuzz-smoke: all targets ran clean"
