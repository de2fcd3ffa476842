#!/usr/bin/env bash
# Installs what is missing, builds, runs the IVR with the embedded Zendesk simulator, and
# places a test call from a sample customer (+47 987 65 432, Kari Nordmann, who has an
# urgent ticket). Then it shows what happened: the caller ID, the data dip, and the private
# comment posted on the ticket. Leave it running with KEEP=1 to call it from a softphone.
set -euo pipefail
cd "$(dirname "$0")/.."

SIP_PORT="${SIP_PORT:-5080}"
SIM_PORT="${SIM_PORT:-8089}"

scripts/setup.sh
cargo build --release --locked
bin=target/release/zendesk-ivr

workdir="$(mktemp -d)"
log="$workdir/demo.log"
ZENDESK_IVR_LOG="${ZENDESK_IVR_LOG:-info}" "$bin" demo \
  --sip "127.0.0.1:$SIP_PORT" --simulator "127.0.0.1:$SIM_PORT" \
  --outbox "$workdir/outbox.sqlite" >"$log" 2>&1 &
demo_pid=$!
cleanup() {
  kill "$demo_pid" 2>/dev/null || true
  wait "$demo_pid" 2>/dev/null || true
}
trap cleanup EXIT

# Wait until the endpoint listens (bounded).
for _ in $(seq 1 100); do
  grep -q "SIP endpoint listening" "$log" && break
  kill -0 "$demo_pid" 2>/dev/null || { cat "$log"; echo "demo: the IVR did not start" >&2; exit 1; }
  sleep 0.1
done

echo "== The data dip for the caller, as a dry run:"
ZENDESK_IVR_ZENDESK__URL="http://127.0.0.1:$SIM_PORT" "$bin" lookup "+47 987 65 432"

echo
echo "== Placing a test call with SIPp from +4798765432: it hears the welcome and its"
echo "   ticket's status, presses 1, and accepts the REFER to the priority queue ..."
(cd "$workdir" && sipp "127.0.0.1:$SIP_PORT" -sf "$OLDPWD/tests/sipp/uac_press1_refer_after_welcome.xml" \
  -m 1 -t u1 -i 127.0.0.1 -nostdin -timeout 40s -timeout_error >/dev/null 2>&1) \
  && echo "   call answered, transferred by REFER, and hung up cleanly" \
  || { echo "demo: the test call failed" >&2; cat "$log"; exit 1; }

# The comment is queued before the call counts as finished; give the sender a moment.
for _ in $(seq 1 50); do
  grep -q "post-call comment queued" "$log" && break
  sleep 0.1
done
sleep 0.5

echo
echo "== What the IVR logged:"
grep -E "incoming call|data dip|call established|status sentence|digit|transferring|call ended|call finished|comment queued" "$log" \
  | sed 's/\x1b\[[0-9;]*m//g; s/^/   /'

echo
echo "== Private comments now on the caller's tickets (from the simulator):"
for t in 101 102; do
  curl -fsS "http://127.0.0.1:$SIM_PORT/api/v2/tickets/$t/comments.json" 2>/dev/null \
    | grep -o '"body":"[^"]*call-id[^"]*"' | sed "s/^/   ticket $t: /; s/\\\\n/ | /g" || true
done

if [ "${KEEP:-0}" = "1" ]; then
  echo
  echo "The IVR is still running: call sip:ivr@127.0.0.1:$SIP_PORT (Ctrl-C to stop)."
  wait "$demo_pid"
fi
