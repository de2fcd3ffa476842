#!/bin/sh
# Pacing benchmark: the inter-packet interval of the RTP the endpoint sends, at 1, 100
# and 1,000 concurrent calls, on loopback, and the endpoint's CPU use meanwhile.
# ZENDESK_IVR_MEDIA__BATCHED_SEND=false measures the unbatched send path.
#
#   bench/pacing.sh [CALLS...]        (default: 1 100 1000; run from the repository root)
#
# It builds the release binary, runs the endpoint, places CALLS long calls with SIPp
# (signalling only: bench/sipp/uac_hold.xml, 30 s each), and once all are up captures our
# RTP for 10 s with dumpcap (headers only), then prints p50/p99/max of |interval - 20 ms|
# per stream (bench/analyze_pacing.py). Needs sipp, dumpcap (tshark) and capture rights.
set -eu
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
BIN="$TARGET/release/zendesk-ivr"
WORK=$(mktemp -d)
RTP_PORTS=${RTP_PORTS:-40000-47999}
RATE=${RATE:-200}
CAPTURE_S=${CAPTURE_S:-10}
free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# utime + stime of the endpoint process, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$SERVER/stat"
}
SIP_PORT=$(free_port)
MEDIA_PORT=$(free_port)

ZENDESK_IVR_SIP__RATE_LIMIT_REQUESTS_PER_S=0 \
ZENDESK_IVR_SIP__RATE_LIMIT_INVITES_PER_S=0 \
ZENDESK_IVR_SIP__MAX_CPS=0 \
ZENDESK_IVR_SIP__LISTEN="127.0.0.1:$SIP_PORT" \
ZENDESK_IVR_MEDIA__RTP_PORTS="$RTP_PORTS" \
ZENDESK_IVR_MEDIA__RTP_TIMEOUT_S=0 \
ZENDESK_IVR_OUTBOX__PATH="$WORK/outbox.sqlite" \
ZENDESK_IVR_IVR__NO_INPUT_S=3600 \
ZENDESK_IVR_ROUTING__PROBE_INTERVAL_S=0 \
ZENDESK_IVR_SIP__MAX_CALLS=2000 \
ZENDESK_IVR_LOG=warn \
    "$BIN" run >"$WORK/endpoint.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
# Wait (bounded) until the endpoint listens.
i=0
until ss -lun | grep -q "127.0.0.1:$SIP_PORT "; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "endpoint did not start"; cat "$WORK/endpoint.log"; exit 1; }
    sleep 0.1
done

echo "date=$(date -u +%Y-%m-%dT%H:%MZ) cores=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg)"
for CALLS in ${@:-1 100 1000}; do
    sipp "127.0.0.1:$SIP_PORT" -sf bench/sipp/uac_hold.xml -t u1 -i 127.0.0.1 -mp "$MEDIA_PORT" \
        -m "$CALLS" -l "$CALLS" -r "$RATE" -nostdin -timeout 120s -timeout_error \
        -trace_stat -stf "$WORK/stat-$CALLS.csv" >"$WORK/sipp-$CALLS.log" 2>&1 &
    SIPP=$!
    # Let every call come up (ramp at RATE calls/s), then capture.
    sleep $((CALLS / RATE + 3))
    cpu_before=$(cpu_ticks)
    dumpcap -i lo -q -P -s 64 -f "udp src portrange $RTP_PORTS and dst port $MEDIA_PORT" -a "duration:$CAPTURE_S" \
        -w "$WORK/rtp-$CALLS.pcap" 2>/dev/null
    cpu_after=$(cpu_ticks)
    # The endpoint's CPU use during the capture, in percent of one core.
    printf 'calls=%s cpu=%s%% ' "$CALLS" $(( (cpu_after - cpu_before) * 100 / $(getconf CLK_TCK) / CAPTURE_S ))
    python3 bench/analyze_pacing.py "$WORK/rtp-$CALLS.pcap"
    wait $SIPP || echo "sipp reported failed calls at $CALLS (see the stat file)"
done
