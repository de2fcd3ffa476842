#!/usr/bin/env python3
"""Inter-packet interval of captured RTP, per SSRC: deviation from 20 ms.

Usage: analyze_pacing.py CAPTURE.pcap
Reads a classic pcap (dumpcap -P) of loopback (Ethernet) frames, IPv4/UDP/RTP.
Prints streams, intervals, p50/p99/max of |interval - 20 ms| and intervals over 30 ms."""
import struct
import sys
from collections import defaultdict

PERIOD_MS = 20.0


def packets(path):
    with open(path, "rb") as f:
        header = f.read(24)
        magic = struct.unpack("<I", header[:4])[0]
        if magic == 0xA1B2C3D4:
            endian, scale = "<", 1e-6
        elif magic == 0xA1B23C4D:
            endian, scale = "<", 1e-9
        else:
            sys.exit("not a little-endian classic pcap")
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _orig = struct.unpack(endian + "IIII", rec)
            data = f.read(incl)
            yield sec + frac * scale, data


def main():
    streams = defaultdict(list)
    for ts, data in packets(sys.argv[1]):
        ip = data[14:]
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 0x0F) * 4
        rtp = ip[ihl + 8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        ssrc = struct.unpack(">I", rtp[8:12])[0]
        streams[ssrc].append(ts)
    deviations = []
    late = 0
    for times in streams.values():
        for a, b in zip(times, times[1:]):
            interval = (b - a) * 1000.0
            deviations.append(abs(interval - PERIOD_MS))
            late += interval > 30.0
    if not deviations:
        sys.exit("no RTP intervals in the capture")
    deviations.sort()
    n = len(deviations)

    def pct(p):
        return deviations[min(n - 1, int(p / 100.0 * n))]

    print(f"streams={len(streams)} intervals={n} "
          f"p50={pct(50):.3f}ms p99={pct(99):.3f}ms max={deviations[-1]:.3f}ms over30ms={late}")


if __name__ == "__main__":
    main()
