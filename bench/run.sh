#!/bin/bash
# Load benchmark: SIPp callers drive the whole IVR flow against the release binary, and
# the same callers drive a SIPp UAS that answers and streams audio the same way (the
# floor), back to back in one run. Not part of the test suite.
#
#   bench/run.sh concurrent [CALLS...]   (default 100 500 1000 2000; calls set up at RATE/s)
#   bench/run.sh rate [CPS...]           (default 50 100 200 300 500 700; short calls
#                                         for RATE_S s each, stops after the first rate
#                                         with failed calls)
#   bench/run.sh overload [CAPACITY]     (default 1000: sip.max_calls = CAPACITY, twice as
#                                         many calls offered at once)
#   bench/run.sh overload-cps [CPS]      (default 100: sip.max_cps = CPS, twice that rate
#                                         offered for RATE_S s)
#
# The per-source rate limits are off (one SIPp source sends every call); sip.max_cps is
# off unless MAX_CPS is set (overload-cps sets it).
#
# Run from the repository root. Each call (bench/sipp/uac_ivr_caller.xml): INVITE; the
# caller streams A-law with SIPp's shared rtp_stream engine; it hears the greeting; it
# presses 1 or 2 (RFC 4733); then it takes the REFER (202, NOTIFY 100, NOTIFY 200) or the
# BYE. The endpoint has the Zendesk simulator behind it, the dip cached (one warm-up call),
# transfer.mode = refer and probing off. The floor (bench/sipp/uas_floor.xml) answers,
# streams, and after as long as the IVR takes sends REFER or BYE, half each.
#
# Per target it prints one Markdown table row: failed calls, retransmissions, 503s (with
# Retry-After), INVITE→200 and INVITE→first RTP (p50/p99, from a capture:
# bench/analyze_first_rtp.py), RTP pacing deviation over a CAPTURE_S window with every
# call up (p50/p99/max: bench/analyze_pacing.py), CPU ms per answered call over the whole
# run and resident memory per call at the peak (from /proc), and the load average at the
# start. Needs sipp (3.6, with rtp_stream), dumpcap, sox, python3, and capture rights.
# KEEP_WORK=1 keeps the work folder (captures, SIPp statistics, logs). PERF=1 also records
# a profile of the target (perf record -g) during the pacing window and prints its top
# symbols after the row (the profile costs CPU: leave it out of the measured runs).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
[ -n "${BIN:-}" ] || { cargo build --release --quiet; BIN="$TARGET/release/zendesk-ivr"; }
BENCH=$(pwd)/bench
WORK=$(mktemp -d)
RTP_PORTS=${RTP_PORTS:-40000-49999}
RATE=${RATE:-200}
RATE_S=${RATE_S:-10}
CAPTURE_S=${CAPTURE_S:-6}
# How long the IVR takes from the key to its REFER or BYE, so the floor's calls last as
# long (the goodbye or "connecting" prompt).
TAIL_MS=${TAIL_MS:-2500}
# Streams per rtp_stream thread in every SIPp (its default, 20, makes 100 threads that all
# wake on the same 20 ms ticks at 2,000 calls).
RTP_THREADTASKS=${RTP_THREADTASKS:-100}
CLK_TCK=$(getconf CLK_TCK)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}" $(cat "$WORK/callers.pid" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    if [ -n "${KEEP_WORK:-}" ]; then echo "work=$WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# stop PID: ends a target this script started, and forgets it.
stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local left=() pid
    for pid in "${PIDS[@]}"; do [ "$pid" = "$1" ] || left+=("$pid"); done
    PIDS=("${left[@]}")
}

free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
wait_listening() {
    local i=0
    until ss -lun | grep -q "127.0.0.1:$1 "; do
        i=$((i + 1)); [ $i -lt 200 ] || { echo "nothing listens on $1" >&2; return 1; }
        sleep 0.1
    done
}
# Largest resident set of process $1 while it lives, sampled every 200 ms, into file $2.
watch_rss() {
    local max=0 now
    while now=$(rss_kib "$1" 2>/dev/null); do
        [ "$now" -gt "$max" ] && max=$now && echo "$max" >"$2"
        sleep 0.2
    done
}

# The caller's voice: the welcome prompt as headerless A-law (SIPp 3.6.1's rtp_stream
# sends the file's bytes as they are), and the two keys: one RFC 4733 end packet each
# (event, E bit and volume 10, duration 800 = 100 ms), padded to the 50 bytes that
# rtp_stream sends per packet for payload type 98.
sox audio/welcome.wav -r 8000 -c 1 "$WORK/caller.wav"
sox "$WORK/caller.wav" -t al "$WORK/caller.al"
for key in 1 2; do
    python3 -c "import sys; sys.stdout.buffer.write(bytes([$key, 0x80 | 10, 0x03, 0x20]) + bytes(46))" \
        >"$WORK/key$key.evt"
done

SIM_PORT=$(free_port)
"$BIN" zendesk-sim --listen "127.0.0.1:$SIM_PORT" >"$WORK/sim.log" 2>&1 &
PIDS+=($!)

# start_endpoint MAX_CALLS [WELCOME]: starts the endpoint, sets SERVER and SIP_PORT.
start_endpoint() {
    SIP_PORT=$(free_port)
    ZENDESK_IVR_SIP__LISTEN="127.0.0.1:$SIP_PORT" \
    ZENDESK_IVR_SIP__MAX_CALLS="$1" \
    ZENDESK_IVR_SIP__MAX_CPS="${MAX_CPS:-0}" \
    ZENDESK_IVR_SIP__RATE_LIMIT_REQUESTS_PER_S=0 \
    ZENDESK_IVR_SIP__RATE_LIMIT_INVITES_PER_S=0 \
    ZENDESK_IVR_ZENDESK__URL="http://127.0.0.1:$SIM_PORT" \
    ZENDESK_IVR_OUTBOX__PATH="$WORK/outbox-$SIP_PORT.sqlite" \
    ZENDESK_IVR_TTS__CACHE_DIR="$WORK/tts-cache" \
    ZENDESK_IVR_MEDIA__RTP_PORTS="$RTP_PORTS" \
    ZENDESK_IVR_MEDIA__WELCOME_PROMPT="${2-audio/welcome.wav}" \
    ZENDESK_IVR_ZENDESK__CACHE_TTL_S=3600 \
    ZENDESK_IVR_ROUTING__PROBE_INTERVAL_S=0 \
    ZENDESK_IVR_IVR__NO_INPUT_S=10 \
    ZENDESK_IVR_ADMIN__LISTEN="127.0.0.1:$(free_port)" \
    ZENDESK_IVR_LOG=warn \
        "$BIN" run >"$WORK/endpoint-$SIP_PORT.log" 2>&1 &
    SERVER=$!
    PIDS+=("$SERVER")
    wait_listening "$SIP_PORT"
}

# start_floor HOLD_MS: starts the floor UAS, sets SERVER, SIP_PORT and FLOOR_MP.
start_floor() {
    SIP_PORT=$(free_port)
    FLOOR_MP=$(free_port)
    (cd "$WORK" && exec sipp -sf "$BENCH/sipp/uas_floor.xml" -t u1 -i 127.0.0.1 -p "$SIP_PORT" \
        -mp "$FLOOR_MP" -set holdms "$1" -rtp_threadtasks "$RTP_THREADTASKS" -nostdin -max_recv_loops 10000 -max_sched_loops 10000 \
        -trace_err -error_file "$WORK/floor-$SIP_PORT-errors.log" >"$WORK/floor-$SIP_PORT.log" 2>&1) &
    SERVER=$!
    PIDS+=("$SERVER")
    wait_listening "$SIP_PORT"
}

# caller NAME CALLS LIMIT RATE KEYAT_MS: runs the callers to the end; leaves
# WORK/NAME-stat.csv, WORK/NAME-counts.csv and WORK/NAME-errors.log.
caller() {
    local name=$1 calls=$2 limit=$3 rate=$4 keyat=$5
    # A minute past the last call's key; calls still up then count as failed.
    local timeout=$((calls / rate + keyat / 1000 + 60))
    (cd "$WORK" && exec sipp "127.0.0.1:$SIP_PORT" -sf "$BENCH/sipp/uac_ivr_caller.xml" -t u1 \
        -i 127.0.0.1 -p "$(free_port)" -mp "$UAC_MP" -set keyat "$keyat" \
        -rtp_threadtasks "$RTP_THREADTASKS" -m "$calls" -l "$limit" -r "$rate" -nostdin \
        -timeout "${timeout}s" -timeout_error -max_recv_loops 10000 -max_sched_loops 10000 \
        -trace_stat -stf "$WORK/$name-stat.csv" -trace_counts \
        -trace_err -error_file "$WORK/$name-errors.log" >"$WORK/$name-sipp.log" 2>&1) &
    echo $! >"$WORK/callers.pid"
    wait $! || true
    rm -f "$WORK/callers.pid"
    mv "$WORK"/uac_ivr_caller_*_counts.csv "$WORK/$name-counts.csv" 2>/dev/null || true
}

# measure KIND NAME CALLS LIMIT RATE KEYAT_MS WINDOW_AT_S: one phase against the target
# already started (KIND ivr or floor); prints its table row, also kept in WORK/NAME.row.
measure() {
    local kind=$1 name=$2 calls=$3 limit=$4 rate=$5 keyat=$6 window_at=$7
    local load rss0 cpu0 cpu1 filter first_filter
    load=$(cut -d' ' -f1 /proc/loadavg)
    UAC_MP=$(free_port)
    if [ "$kind" = ivr ]; then
        filter="udp src portrange $RTP_PORTS and dst port $UAC_MP"
        # The first packet of each prompt carries the marker bit.
        first_filter="udp port $SIP_PORT or ($filter and udp[9] & 0x80 != 0)"
    else
        filter="udp src port $FLOOR_MP and dst port $UAC_MP"
        # rtp_stream numbers each stream from 0.
        first_filter="udp port $SIP_PORT or ($filter and udp[10:2] = 0)"
    fi
    dumpcap -i lo -q -P -s 1500 -f "$first_filter" -w "$WORK/$name-setup.pcap" 2>/dev/null &
    local setup_cap=$!
    sleep 1
    rss0=$(rss_kib "$SERVER")
    echo "$rss0" >"$WORK/$name-rss"
    watch_rss "$SERVER" "$WORK/$name-rss" &
    local watcher=$!
    cpu0=$(cpu_ticks "$SERVER")
    caller "$name" "$calls" "$limit" "$rate" "$keyat" &
    local callers=$!
    sleep "$window_at"
    if [ -n "${PERF:-}" ]; then
        perf record -q -F 499 -g -p "$SERVER" -o "$WORK/$name.perf" -- sleep "$CAPTURE_S" 2>/dev/null &
    fi
    dumpcap -i lo -q -P -s 64 -f "$filter" -a "duration:$CAPTURE_S" -w "$WORK/$name-rtp.pcap" 2>/dev/null
    wait "$callers"
    cpu1=$(cpu_ticks "$SERVER")
    kill "$setup_cap" "$watcher" 2>/dev/null || true
    wait "$setup_cap" 2>/dev/null || true
    python3 "$BENCH/analyze_first_rtp.py" "$WORK/$name-setup.pcap" "$SIP_PORT" \
        $([ "$kind" = floor ] && echo --ssrc-order) >"$WORK/$name-setup.txt" 2>&1 || true
    python3 "$BENCH/analyze_pacing.py" "$WORK/$name-rtp.pcap" >"$WORK/$name-pacing.txt" 2>&1 || true
    OUTBOX="$WORK/outbox-$SIP_PORT.sqlite" python3 "$BENCH/run_row.py" row "$kind" "$calls" "$rate" "$WORK" "$name" \
        $((cpu1 - cpu0)) "$CLK_TCK" "$rss0" "$(cat "$WORK/$name-rss")" "$load" | tee "$WORK/$name.row"
    if [ -n "${PERF:-}" ]; then
        perf report -i "$WORK/$name.perf" --no-children --stdio --sort comm,dso,sym 2>/dev/null \
            | grep -E '^ +[0-9.]+%' | head -25 | tee "$WORK/$name-perf.txt" || true
    fi
}

# warm_up: one call through the whole flow fills the dip cache and the TTS cache.
warm_up() {
    UAC_MP=$(free_port)
    caller "warmup-$SIP_PORT" 1 1 1 9000
}

# run NAME MAX_CALLS CALLS LIMIT RATE KEYAT_MS WINDOW_AT_S [WELCOME]: the endpoint, then
# the floor (FLOOR=0 leaves it out).
run() {
    local name=$1 max_calls=$2 calls=$3 limit=$4 rate=$5 keyat=$6 window_at=$7
    start_endpoint "$max_calls" "${8-audio/welcome.wav}"
    warm_up
    measure ivr "$name-ivr" "$calls" "$limit" "$rate" "$keyat" "$window_at"
    stop "$SERVER"
    [ "${FLOOR:-1}" = 1 ] || return 0
    start_floor $((keyat + TAIL_MS))
    measure floor "$name-floor" "$calls" "$limit" "$rate" "$keyat" "$window_at"
    stop "$SERVER"
}

echo "date=$(date -u +%Y-%m-%dT%H:%MZ) cores=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg) $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*')"
python3 "$BENCH/run_row.py" header
mode=${1:-concurrent}
[ $# -gt 0 ] && shift
case "$mode" in
concurrent)
    for calls in ${@:-100 500 1000 2000}; do
        # Every call is up from the end of the ramp until the first key, 8 s later.
        ramp=$(( (calls + RATE - 1) / RATE ))
        run "c$calls" $((calls > 2000 ? calls : 2000)) "$calls" "$calls" "$RATE" \
            $(( (ramp + 8) * 1000 )) $((ramp + 1))
    done
    ;;
rate)
    for cps in ${@:-50 100 200 300 500 700}; do
        # Short calls (no welcome prompt, the key 3 s in), RATE_S seconds of new calls.
        run "r$cps" 5000 $((cps * RATE_S)) 5000 "$cps" 3000 $((RATE_S / 2 - CAPTURE_S / 2 > 1 ? RATE_S / 2 - CAPTURE_S / 2 : 1)) ""
        # Stop after the first rate at which the endpoint failed calls.
        failed=$(awk -F'|' '{ gsub(/ /, "", $5); print $5 }' "$WORK/r$cps-ivr.row")
        [ "$failed" = 0 ] || break
    done
    ;;
overload-cps)
    # sip.max_cps = CPS and twice that offered for RATE_S seconds: the excess gets 503 with
    # Retry-After, the admitted calls go through the whole flow. No floor.
    cps=${1:-100}
    MAX_CPS=$cps FLOOR=0 run "q$cps" 5000 $((cps * 2 * RATE_S)) 5000 $((cps * 2)) 3000 \
        $((RATE_S / 2 > 1 ? RATE_S / 2 : 1)) ""
    ;;
overload)
    capacity=${1:-1000}
    offered=$((capacity * 2))
    ramp=$(( (offered + RATE - 1) / RATE ))
    # All offered calls arrive while the first CAPACITY are up; the window covers the 503s.
    # The floor has no capacity to exceed, so it is left out.
    FLOOR=0 run "o$capacity" "$capacity" "$offered" "$offered" "$RATE" $(( (ramp + 8) * 1000 )) \
        $(( capacity / RATE + 1 ))
    ;;
*)
    echo "usage: bench/run.sh concurrent|rate|overload|overload-cps [N...]" >&2
    exit 2
    ;;
esac
echo
cat "$WORK"/*-outcomes.txt 2>/dev/null || true
