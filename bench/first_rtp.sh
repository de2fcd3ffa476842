#!/bin/sh
# INVITE → 200 OK and INVITE → first RTP at CALLS concurrent calls (default 100), with the
# Zendesk simulator behind the endpoint and the caller's dip cached (one warm-up call
# first; every bench call comes from the same number). Release build, loopback.
#
#   bench/first_rtp.sh [CALLS]        (run from the repository root)
#
# SIPp places the calls (bench/sipp/uac_hold.xml, all at once: -r CALLS); dumpcap
# captures the SIP and the endpoint's RTP; bench/analyze_first_rtp.py matches each call's
# INVITE to its 200 OK and to the first RTP packet from the port our SDP answer gave.
set -eu
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
BIN="$TARGET/release/zendesk-ivr"
CALLS=${1:-100}
WORK=$(mktemp -d)
RTP_PORTS=${RTP_PORTS:-40000-47999}
free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SIP_PORT=$(free_port)
SIM_PORT=$(free_port)
MEDIA_PORT=$(free_port)
WARM_MEDIA_PORT=$(free_port)
"$BIN" zendesk-sim --listen "127.0.0.1:$SIM_PORT" >"$WORK/sim.log" 2>&1 &
SIM=$!
ZENDESK_IVR_SIP__RATE_LIMIT_REQUESTS_PER_S=0 \
ZENDESK_IVR_SIP__RATE_LIMIT_INVITES_PER_S=0 \
ZENDESK_IVR_SIP__MAX_CPS=0 \
ZENDESK_IVR_SIP__LISTEN="127.0.0.1:$SIP_PORT" \
ZENDESK_IVR_ZENDESK__URL="http://127.0.0.1:$SIM_PORT" \
ZENDESK_IVR_OUTBOX__PATH="$WORK/outbox.sqlite" \
ZENDESK_IVR_MEDIA__RTP_PORTS="$RTP_PORTS" \
ZENDESK_IVR_ROUTING__PROBE_INTERVAL_S=0 \
ZENDESK_IVR_IVR__NO_INPUT_S=3600 \
ZENDESK_IVR_ADMIN__LISTEN="127.0.0.1:$(free_port)" \
ZENDESK_IVR_MEDIA__RTP_TIMEOUT_S=0 \
ZENDESK_IVR_LOG=warn \
    "$BIN" run >"$WORK/endpoint.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER $SIM 2>/dev/null || true; [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT
i=0
until ss -lun | grep -q "127.0.0.1:$SIP_PORT "; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "endpoint did not start"; cat "$WORK/endpoint.log"; exit 1; }
    sleep 0.1
done
echo "date=$(date -u +%Y-%m-%dT%H:%MZ) cores=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg) calls=$CALLS"
# Warm-up: one call fills the dip cache for the bench's caller number.
sipp "127.0.0.1:$SIP_PORT" -sf bench/sipp/uac_hold.xml -t u1 -i 127.0.0.1 -mp "$WARM_MEDIA_PORT" \
    -p "$(free_port)" -m 1 -nostdin -timeout 60s >/dev/null 2>&1 &
sleep 2
dumpcap -i lo -q -P -s 2000 -f "udp port $SIP_PORT or (udp src portrange $RTP_PORTS and dst port $MEDIA_PORT)" \
    -a duration:8 -w "$WORK/calls.pcap" 2>/dev/null &
CAPTURE=$!
sleep 1
sipp "127.0.0.1:$SIP_PORT" -sf bench/sipp/uac_hold.xml -t u1 -i 127.0.0.1 -mp "$MEDIA_PORT" \
    -p "$(free_port)" -m "$CALLS" -l "$CALLS" -r "$CALLS" -nostdin -timeout 120s >"$WORK/sipp.log" 2>&1 &
wait $CAPTURE
echo "work=$WORK"
python3 bench/analyze_first_rtp.py "$WORK/calls.pcap" "$SIP_PORT"
