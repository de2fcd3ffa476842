#!/usr/bin/env python3
"""INVITE → 200 OK and INVITE → first RTP, per call, from a loopback capture.

Usage: analyze_first_rtp.py CAPTURE.pcap SIP_PORT [--ssrc-order]
Reads a classic pcap (dumpcap -P) of loopback frames holding the endpoint's SIP (UDP on
SIP_PORT) and its RTP. A call's INVITE is the first one sent to SIP_PORT with its
Call-ID; its 200 OK carries our SDP, whose m= port is the call's RTP source port; its
first RTP is the first datagram from that port. Prints the count and p50/p99/max.

--ssrc-order is for a peer that sends every call's RTP from one port (SIPp's rtp_stream
engine): its SSRCs are handed out in the order calls arrive (0xCA110000, +1, ...), so the
n-th INVITE's stream is the n-th SSRC from the lowest one seen."""
import re
import sys
from analyze_pacing import packets


def udp(frame):
    # Loopback captures from dumpcap on "lo" are Ethernet-framed (14 bytes).
    ip = frame[14:]
    if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
        return None
    ihl = (ip[0] & 0x0F) * 4
    seg = ip[ihl:]
    return int.from_bytes(seg[0:2], "big"), int.from_bytes(seg[2:4], "big"), seg[8:]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    path, sip_port = sys.argv[1], int(sys.argv[2])
    by_ssrc = "--ssrc-order" in sys.argv[3:]
    invite_at, ok_at, port_of, first_rtp = {}, {}, {}, {}
    for t, frame in packets(path):
        parsed = udp(frame)
        if not parsed:
            continue
        src, dst, payload = parsed
        if dst == sip_port and payload.startswith(b"INVITE "):
            m = re.search(rb"\r\nCall-ID:\s*(\S+)", payload, re.I)
            if m:
                invite_at.setdefault(m.group(1), t)
        elif src == sip_port and payload.startswith(b"SIP/2.0 200"):
            m = re.search(rb"\r\nCall-ID:\s*(\S+)", payload, re.I)
            media = re.search(rb"\r\nm=audio (\d+) ", payload)
            if m and media and b"INVITE" in payload.split(b"\r\n\r\n")[0]:
                ok_at.setdefault(m.group(1), t)
                port_of[m.group(1)] = int(media.group(1))
        elif len(payload) >= 12 and payload[0] >> 6 == 2:
            stream = int.from_bytes(payload[8:12], "big") if by_ssrc else src
            first_rtp.setdefault(stream, t)
    if by_ssrc:
        base = min(first_rtp, default=0)
        # Dicts keep insertion order: invite_at is in the order the INVITEs were captured.
        port_of = {call: base + n for n, call in enumerate(invite_at) if call in ok_at}
    to_ok, to_rtp = [], []
    for call, start in invite_at.items():
        if call in ok_at:
            to_ok.append((ok_at[call] - start) * 1000)
        port = port_of.get(call)
        if port in first_rtp:
            to_rtp.append((first_rtp[port] - start) * 1000)
    print(f"calls={len(invite_at)} answered={len(to_ok)} with_rtp={len(to_rtp)}")
    for name, values in (("INVITE→200", to_ok), ("INVITE→first RTP", to_rtp)):
        if values:
            print(f"{name}: p50 {pct(values, 50):.1f} ms  p99 {pct(values, 99):.1f} ms  max {max(values):.1f} ms")


if __name__ == "__main__":
    main()
