#!/usr/bin/env bash
# Runs the whole test suite: setup, unit tests, integration tests with real peers
# (sipp, baresip, kamailio), and a short libFuzzer smoke run (FUZZ=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export ZENDESK_IVR_SHARED="${ZENDESK_IVR_SHARED:-$(cd .. && pwd)/shared}"

cargo build --all-targets --locked
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --all-targets --locked --no-fail-fast -- --test-threads "${TEST_THREADS:-4}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# libFuzzer smoke run of the cargo-fuzz targets (FUZZ=0 skips it).
fuzz_status=0
if [ "$status" -eq 0 ]; then
  scripts/fuzz-smoke.sh || fuzz_status=$?
fi
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\nAll tests: %d passed, %d failed\n", p, f }' "$log"
[ "$fuzz_status" -eq 0 ] || echo "Fuzz smoke run: FAILED"
[ "$status" -ne 0 ] && exit "$status"
exit "$fuzz_status"
