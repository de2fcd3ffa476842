#!/usr/bin/env bash
# Long fuzzing session: each cargo-fuzz target in turn, release build, under `nice -n 19`,
# for FUZZ_SECONDS (default 600) each, seeded with the SIP torture corpus where it
# applies. One target at a time, so the machine stays usable for others.
#
#   scripts/fuzz-long.sh                    every target in fuzz/fuzz_targets, 10 min each
#   scripts/fuzz-long.sh sip_message sdp    only these
#   FUZZ_SECONDS=60 scripts/fuzz-long.sh    shorter
#
# Each target's corpus lives in a temporary folder, seeded at run time (nothing is copied
# into the repository). A summary line per target (date, seconds, executions, corpus size,
# crash) goes to $FUZZ_OUT/summary.tsv (default target/fuzz-long); the libFuzzer logs and
# any crashing input go to $FUZZ_OUT/<target>.log and $FUZZ_OUT/<target>-artifacts/.
# A crash does not stop the session: the next target runs, and the exit status is 1.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/fuzz-seeds.sh

seconds="${FUZZ_SECONDS:-600}"
out="${FUZZ_OUT:-$(pwd)/target/fuzz-long}"
mkdir -p "$out"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

echo "fuzz-long: building ${targets[*]} (release)"
RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz build

status=0
for target in "${targets[@]}"; do
  corpus="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$target.XXXXXX")"
  seed_corpus "$target" "$corpus"
  seeds=$(find "$corpus" -type f | wc -l)
  artifacts="$out/$target-artifacts/"
  mkdir -p "$artifacts"
  log="$out/$target.log"
  started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "fuzz-long: $target for ${seconds}s from $seeds seeds (log: $log)"
  result=clean
  if ! RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz run "$target" "$corpus" -- \
      -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts" \
      >"$log" 2>&1; then
    result="crash:$(ls -t "$artifacts" | head -n 1)"
    status=1
  fi
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n 1)
  if [ -z "$execs" ]; then
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  fi
  size=$(find "$corpus" -type f | wc -l)
  printf '%s\t%s\t%ss\t%s execs\t%s seeds\t%s corpus\t%s\n' \
    "$started" "$target" "$seconds" "${execs:-?}" "$seeds" "$size" "$result" | tee -a "$out/summary.tsv"
  rm -rf "$corpus"
done
exit "$status"
