#!/usr/bin/env bash
# The whole flow on loopback. Installs what is missing, builds in release, and runs
# `zendesk-ivr demo`: the IVR, the Zendesk simulator with its sample customers, and a
# built-in agent behind the queues. The demo places one test call per sample customer
# (an urgent ticket presses 1 and is transferred to the priority queue, a normal ticket
# presses 2, an unknown caller presses 1; the Norwegian customers hear Norwegian), prints
# for each the sentence spoken, the digits, the route, the transfer result and the private
# comment the simulator now holds, and leaves the recordings in a folder it names.
# Then it keeps running and prints the SIP URI to call from a softphone (Ctrl-C stops it).
# ONCE=1 exits after the calls instead, with status 0 only when every call did what it
# should.
set -euo pipefail
cd "$(dirname "$0")/.."

SIP_PORT="${SIP_PORT:-5080}"
SIM_PORT="${SIM_PORT:-8089}"

scripts/setup.sh
cargo build --release --locked

workdir="${DEMO_DIR:-$(mktemp -d)}"
mkdir -p "$workdir"
args=(demo --sip "127.0.0.1:$SIP_PORT" --simulator "127.0.0.1:$SIM_PORT"
  --outbox "$workdir/outbox.sqlite" --recordings "$workdir/recordings")
if [ "${ONCE:-0}" = "1" ]; then
  args+=(--once)
fi
echo "demo: the IVR's log goes to $workdir/demo.log"
ZENDESK_IVR_LOG="${ZENDESK_IVR_LOG:-info}" exec target/release/zendesk-ivr "${args[@]}" 2>"$workdir/demo.log"
