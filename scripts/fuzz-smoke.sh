#!/usr/bin/env bash
# Fuzz smoke run: every cargo-fuzz target in fuzz/fuzz_targets under libFuzzer for a short
# while, seeded with the SIP torture corpus where it applies (scripts/fuzz-seeds.sh).
# scripts/test.sh runs it after the tests. Long sessions: scripts/fuzz-long.sh.
#
#   scripts/fuzz-smoke.sh                          5 s per target, debug build
#   FUZZ_SECONDS=60 FUZZ_PROFILE=release scripts/fuzz-smoke.sh   longer, release build
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
# ../shared/corpus/sip-torture), copied into a temporary corpus per run; nothing is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/fuzz-seeds.sh

if [ "${FUZZ:-1}" = "0" ]; then
  echo "fuzz-smoke: skipped (FUZZ=0)"
  exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT

profile=(--dev)
[ "${FUZZ_PROFILE:-dev}" = "release" ] && profile=()
seconds="${FUZZ_SECONDS:-5}"

for target_file in fuzz/fuzz_targets/*.rs; do
  target="$(basename "$target_file" .rs)"
  seeds="$work/$target"
  seed_corpus "$target" "$seeds"
  echo "fuzz-smoke: $target for ${seconds}s"
  log="$work/$target.log"
  # A crash, a leak or a timeout makes cargo fuzz exit non-zero.
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "${profile[@]}" "$target" "$seeds" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    mkdir -p fuzz/artifacts && cp "$log" "fuzz/artifacts/$target.smoke.log"
    echo "fuzz-smoke: $target FAILED (full log: fuzz/artifacts/$target.smoke.log)" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
done
echo "fuzz-smoke: all targets ran clean"
