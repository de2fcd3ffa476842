#!/usr/bin/env bash
# Fuzz smoke run for every cargo-fuzz target in fuzz/fuzz_targets.
#
# The stable smoke test (tests/sip_torture.rs, `mutations_of_the_corpus_never_panic`) runs
# the same body as the fuzz targets on every `cargo test`. The real libFuzzer run needs a
# sanitizer build of the crate and all its dependencies, which is slow the first time
# (measured on the 2-core build machine: `cargo install cargo-fuzz` 2 min 10 s, first
# `cargo fuzz build` 9 min 7 s, then ~3 700 execs/s), so it only runs with FUZZ=1:
#
#   FUZZ=1 FUZZ_SECONDS=60 scripts/fuzz-smoke.sh
#
# Seeds come from the SIP torture corpus ($ZENDESK_IVR_SHARED/corpus/sip-torture, or
# ../shared/corpus/sip-torture); fuzz/corpus is not committed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${FUZZ:-0}" != "1" ]; then
  echo "fuzz-smoke: skipped (set FUZZ=1 to run libFuzzer; the stable smoke test runs in cargo test)"
  exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

shared="${ZENDESK_IVR_SHARED:-$(pwd)/../shared}"
torture="$shared/corpus/sip-torture"
if [ ! -d "$torture" ]; then
  echo "fuzz-smoke: no torture corpus at $torture" >&2
  exit 1
fi

for target_file in fuzz/fuzz_targets/*.rs; do
  target="$(basename "$target_file" .rs)"
  seeds="fuzz/corpus/$target"
  mkdir -p "$seeds"
  case "$target" in
    sip_*|sdp) find "$torture" -type f ! -name '*.md' -exec cp -n {} "$seeds/" \; ;;
  esac
  echo "fuzz-smoke: $target for ${FUZZ_SECONDS:-20}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="${FUZZ_SECONDS:-20}"
done
