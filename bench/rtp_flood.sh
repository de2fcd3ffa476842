#!/bin/sh
# RTP flood isolation: does a flood on one call's RTP port delay the other calls' pacing?
#
#   bench/rtp_flood.sh [CALLS]        (default 100; run from the repository root)
#
# Runs the release endpoint, places CALLS long calls with SIPp (bench/sipp/uac_hold.xml,
# signalling only), then captures the RTP we send to SIPp for CAPTURE_S seconds twice:
# once quiet, once while bench/rtp_flood.py floods one call's RTP port from 127.0.0.3 (a
# source no call signalled) as fast as it can. A control capture runs the same flood
# against a port nobody holds, to tell the flooder's own CPU use (it shares the machine)
# from the endpoint's. Prints p50/p99/max of |interval - 20 ms| for each capture
# (bench/analyze_pacing.py); the flooded call's own stream is left out of all of them. Needs sipp, dumpcap (tshark), python3 and capture rights.
set -eu
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
BIN="$TARGET/release/zendesk-ivr"
WORK=$(mktemp -d)
CALLS=${1:-100}
RTP_PORTS=${RTP_PORTS:-40000-47999}
CAPTURE_S=${CAPTURE_S:-8}
free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SIP_PORT=$(free_port)
MEDIA_PORT=$(free_port)

ZENDESK_IVR_SIP__LISTEN="127.0.0.1:$SIP_PORT" \
ZENDESK_IVR_ADMIN__LISTEN="127.0.0.1:$(free_port)" \
ZENDESK_IVR_MEDIA__RTP_PORTS="$RTP_PORTS" \
ZENDESK_IVR_MEDIA__RTP_TIMEOUT_S=0 \
ZENDESK_IVR_OUTBOX__PATH="$WORK/outbox.sqlite" \
ZENDESK_IVR_IVR__NO_INPUT_S=3600 \
ZENDESK_IVR_ROUTING__PROBE_INTERVAL_S=0 \
ZENDESK_IVR_LOG=warn \
    "$BIN" run >"$WORK/endpoint.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
i=0
until ss -lun | grep -q "127.0.0.1:$SIP_PORT "; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "endpoint did not start"; cat "$WORK/endpoint.log"; exit 1; }
    sleep 0.1
done

echo "date=$(date -u +%Y-%m-%dT%H:%MZ) cores=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg) calls=$CALLS"
sipp "127.0.0.1:$SIP_PORT" -sf bench/sipp/uac_hold.xml -t u1 -i 127.0.0.1 -mp "$MEDIA_PORT" \
    -m "$CALLS" -l "$CALLS" -r 200 -nostdin -timeout 120s -timeout_error \
    >"$WORK/sipp.log" 2>&1 &
SIPP=$!
sleep $((CALLS / 200 + 3))

# One call's RTP port: the lowest even port in the range the endpoint has bound.
LOW=${RTP_PORTS%-*}
HIGH=${RTP_PORTS#*-}
VICTIM=$(ss -Huanp | grep "pid=$SERVER," | awk '{ print $4 }' | sed 's/.*://' |
    awk -v lo="$LOW" -v hi="$HIGH" '$1 >= lo && $1 <= hi && $1 % 2 == 0' | sort -n | head -1)
[ -n "$VICTIM" ] || { echo "no RTP port of the endpoint found"; exit 1; }

capture() {
    dumpcap -i lo -q -P -s 64 -f "udp src portrange $RTP_PORTS and not src port $VICTIM and dst port $MEDIA_PORT" \
        -a "duration:$CAPTURE_S" -w "$1" 2>/dev/null
}
printf 'quiet:   '
capture "$WORK/quiet.pcap"
python3 bench/analyze_pacing.py "$WORK/quiet.pcap"

# flood NAME PORT: capture while PORT is flooded.
flood() {
    python3 bench/rtp_flood.py 127.0.0.3 127.0.0.1 "$2" "$((CAPTURE_S + 2))" >"$WORK/flood-$1.txt" &
    FLOOD=$!
    sleep 1
    printf '%s ' "$1"
    capture "$WORK/$1.pcap"
    python3 bench/analyze_pacing.py "$WORK/$1.pcap"
    wait $FLOOD
    echo "  port=$2 $(cat "$WORK/flood-$1.txt")"
}
# The same flood to a port nobody holds: what the flooder's own CPU use costs the box.
flood control: "$(free_port)"
flood flooded: "$VICTIM"
kill $SIPP 2>/dev/null || true
