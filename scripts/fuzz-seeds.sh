# Seeds for the cargo-fuzz targets, sourced by scripts/fuzz-smoke.sh and
# scripts/fuzz-long.sh (run from the repository root).
#
#   seed_corpus TARGET DIR   fills DIR with the seeds that apply to TARGET
#
# Every target that reads SIP gets the SIP torture corpus ($ZENDESK_IVR_SHARED/corpus/
# sip-torture, or ../shared/corpus/sip-torture), copied at run time and never into the
# repository. Targets whose input has its own shape also get a few seeds written here:
# call sequences for ua_sequence, INFO requests for sip_info_dtmf, pipelined streams for
# stream_framer. rtp_receive reads binary operations and starts from an empty corpus.

fuzz_torture_dir() {
  local shared="${ZENDESK_IVR_SHARED:-$(pwd)/../shared}"
  echo "$shared/corpus/sip-torture"
}

# A SIP message: start line, header lines (one argument each), body; Content-Length added.
sip_msg() {
  local start="$1" body="${!#}" header
  printf '%s\r\n' "$start"
  for header in "${@:2:$#-2}"; do printf '%s\r\n' "$header"; done
  printf 'Content-Length: %s\r\n\r\n%s' "${#body}" "$body"
}

fuzz_sdp='v=0
o=- 1 1 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 4000 RTP/AVP 0 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
'

# The dialog headers of the caller's requests in the generated call sequences.
fuzz_dialog=('Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKseed1;rport'
  'From: "Caller" <sip:+15550100@192.0.2.10>;tag=caller1'
  'Call-ID: seed-call-1@192.0.2.10' 'Max-Forwards: 70'
  'Contact: <sip:caller@192.0.2.10:5060>')

fuzz_invite() {
  sip_msg 'INVITE sip:ivr@192.0.2.1 SIP/2.0' "${fuzz_dialog[@]}" \
    'To: <sip:ivr@192.0.2.1>' 'CSeq: 1 INVITE' 'Content-Type: application/sdp' "$fuzz_sdp"
}

# An in-dialog request from the caller: method, CSeq number, extra headers..., body.
fuzz_in_dialog() {
  local method="$1" cseq="$2"
  shift 2
  sip_msg "$method sip:ivr@192.0.2.1 SIP/2.0" \
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKseed$cseq$method" "${fuzz_dialog[@]:1}" \
    'To: <sip:ivr@192.0.2.1>;tag=$tag' "CSeq: $cseq $method" "$@"
}

fuzz_ua_seeds() {
  local dir="$1"
  fuzz_invite >"$dir/seq-invite"
  { fuzz_invite; printf '\0'; fuzz_in_dialog ACK 1 ''; printf '\0'
    fuzz_in_dialog INFO 2 'Content-Type: application/dtmf-relay' $'Signal=5\r\nDuration=160\r\n'
    printf '\0\001\014\040\040\0'; fuzz_in_dialog BYE 3 ''; } >"$dir/seq-call-info-bye"
  { fuzz_invite; printf '\0'; fuzz_in_dialog ACK 1 ''; printf '\0'
    fuzz_in_dialog INVITE 2 'Content-Type: application/sdp' "$fuzz_sdp"; printf '\0'
    fuzz_in_dialog ACK 2 ''; printf '\0'
    fuzz_in_dialog REFER 3 'Refer-To: <sip:premium@198.51.100.7>' ''; printf '\0'
    printf '\001\015\377\377'; } >"$dir/seq-reinvite-refer-timers"
  { printf '\001\002\002\0'; fuzz_invite; printf '\0'
    sip_msg 'CANCEL sip:ivr@192.0.2.1 SIP/2.0' "${fuzz_dialog[@]}" \
      'To: <sip:ivr@192.0.2.1>' 'CSeq: 1 CANCEL' ''; } >"$dir/seq-cancel"
  # An outgoing call: dial, then the far end's 180 and 200 (matched through $branch...).
  local answer=('Via: SIP/2.0/UDP 192.0.2.1:5060;branch=$branch' 'From: <sip:caller@192.0.2.1>;tag=$tag'
    'To: <sip:agent@192.0.2.10>;tag=agent1' 'Call-ID: $callid' 'CSeq: $cseq'
    'Contact: <sip:agent@192.0.2.10:5060>')
  { printf '\001\011\002\0'; sip_msg 'SIP/2.0 180 Ringing' "${answer[@]}" ''; printf '\0'
    sip_msg 'SIP/2.0 200 OK' "${answer[@]}" 'Content-Type: application/sdp' "$fuzz_sdp"
    printf '\0\001\005'; } >"$dir/seq-dial"
}

fuzz_info_seeds() {
  local dir="$1" body i=0
  for body in $'Signal=5\r\nDuration=160\r\n' $'Signal=#\r\n' $'signal= 11\nduration=99999999999'; do
    fuzz_in_dialog INFO 2 'Content-Type: application/dtmf-relay' "$body" >"$dir/info-relay-$i"
    i=$((i + 1))
  done
  fuzz_in_dialog INFO 2 'c: Application/DTMF; charset=us-ascii' $'7\r\n' >"$dir/info-dtmf"
  printf 'application/dtmf\0*' >"$dir/info-raw"
}

fuzz_framer_seeds() {
  local dir="$1" torture="$2" files
  files=$(find "$torture" -type f ! -name '*.md' | sort | head -n 8)
  # shellcheck disable=SC2086
  { printf '\r\n\r\n'; cat $files; printf '\r\n'; } >"$dir/stream-pipelined"
  { fuzz_invite; printf '\r\n\r\n\r\n'; fuzz_invite; printf '\0\001\177\003'; } >"$dir/stream-chunked"
}

seed_corpus() {
  local target="$1" dir="$2" torture f
  torture="$(fuzz_torture_dir)"
  if [ ! -d "$torture" ]; then
    echo "fuzz: no torture corpus at $torture" >&2
    return 1
  fi
  mkdir -p "$dir"
  case "$target" in
    sip_* | sdp | ua_sequence | stream_framer)
      for f in $(find "$torture" -type f ! -name '*.md'); do
        cp "$f" "$dir/$(basename "$(dirname "$f")")-$(basename "$f")"
      done
      ;;
  esac
  case "$target" in
    ua_sequence) fuzz_ua_seeds "$dir" ;;
    sip_info_dtmf) fuzz_info_seeds "$dir" ;;
    stream_framer) fuzz_framer_seeds "$dir" "$torture" ;;
  esac
}
