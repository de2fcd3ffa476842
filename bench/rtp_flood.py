#!/usr/bin/env python3
"""Floods one UDP port with well-formed RTP (PCMU, 160-byte payload) from a source that
no call signalled, as fast as one process can, for a number of seconds.

Usage: rtp_flood.py SOURCE_IP DEST_IP DEST_PORT SECONDS
Prints the packets sent and the rate."""
import socket
import struct
import sys
import time


def main():
    source, dest, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    payload = b"\xff" * 160
    sent = 0
    start = time.monotonic()
    end = start + seconds
    seq = 0
    while time.monotonic() < end:
        for _ in range(256):
            seq = (seq + 1) & 0xFFFF
            header = struct.pack(">BBHII", 0x80, 0, seq, seq * 160, 0x0BADF00D)
            try:
                sock.sendto(header + payload, (dest, port))
                sent += 1
            except OSError:
                pass
    elapsed = time.monotonic() - start
    print(f"flood_packets={sent} flood_pps={sent / elapsed:.0f}")


if __name__ == "__main__":
    main()
