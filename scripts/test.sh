#!/usr/bin/env bash
# Runs the whole test suite: setup, unit tests, integration tests with real peers
# (sipp, baresip, kamailio), and a short fuzz smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export ZENDESK_IVR_SHARED="${ZENDESK_IVR_SHARED:-$(cd .. && pwd)/shared}"

cargo build --all-targets --locked
cargo test --all-targets --locked -- --test-threads "${TEST_THREADS:-4}"
if [ -x scripts/fuzz-smoke.sh ]; then
  scripts/fuzz-smoke.sh
fi
