#!/usr/bin/env python3
"""One Markdown table row of bench/run.sh from what a phase left behind.

Usage: run_row.py header
       run_row.py row KIND CALLS RATE WORK NAME CPU_TICKS CLK_TCK RSS0_KIB RSS_PEAK_KIB LOAD
WORK/NAME-stat.csv and WORK/NAME-counts.csv are SIPp's -trace_stat and -trace_counts
files (last line: totals), WORK/NAME-setup.txt the output of analyze_first_rtp.py and
WORK/NAME-pacing.txt that of analyze_pacing.py. CPU and memory are per answered call.
With OUTBOX set (the endpoint's outbox database), "keys heard" counts the calls whose
post-call comment says a key was pressed (a key lost on the way shows there), and
WORK/NAME-outcomes.txt gets how the calls ended, as their comments say."""
import csv
import os
import re
import sqlite3
import sys
import time

COLUMNS = ["target", "calls", "new/s", "failed", "retrans", "503 (Retry-After)",
           "keys heard", "mean length", "INVITE→200 p50 / p99", "INVITE→RTP p50 / p99",
           "pacing p50 / p99 / max", "CPU ms/call", "RSS KiB/call", "load"]


def last_row(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f, delimiter=";") if r]
    return dict(zip(rows[0], rows[-1])) if len(rows) > 1 else {}


def seconds(sipp_time):
    """SIPp's HH:MM:SS:micros."""
    h, m, s, us = (int(x) for x in sipp_time.split(":"))
    return h * 3600 + m * 60 + s + us / 1e6


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def ms_pair(text, name):
    m = re.search(re.escape(name) + r": p50 ([\d.]+) ms\s+p99 ([\d.]+) ms", text)
    return f"{m.group(1)} / {m.group(2)} ms" if m else "–"


def comments(expected):
    """The post-call comments in the endpoint's outbox (OUTBOX), the warm-up call's too.
    Waits (up to 20 s) for `expected` of them, or for their number to stop growing."""
    path = os.environ.get("OUTBOX", "")
    if not os.path.exists(path):
        return []
    db = sqlite3.connect(path)
    sql = "SELECT body FROM outbox_entries UNION ALL SELECT body FROM outbox_dead_letters"
    bodies, still = [], 0
    for _ in range(40):
        seen = len(bodies)
        bodies = [body for (body,) in db.execute(sql)]
        still = still + 1 if len(bodies) == seen else 0
        if len(bodies) >= expected or still >= 6:
            break
        time.sleep(0.5)
    return bodies


def outcomes(bodies):
    """How the calls ended, as the IVR tells it: "count outcome" lines."""
    lines = [line for body in bodies for line in body.splitlines()
             if line.startswith("Outcome: ")]
    counts = {}
    for line in lines:
        # One line per kind of ending: the queue and target are left out.
        kind = re.sub(r" (to the|queue|\().*", "", line[len("Outcome: "):])
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def failures(path):
    """Why SIPp aborted calls, from its -trace_err log: "count reason" items."""
    reasons = {}
    for chunk in read(path).replace("\r", "").split("Aborting call on ")[1:]:
        what = chunk.split(" for ", 1)[0].strip()
        m = re.match(r"[^:]*: while (.*?) \(index (\d+)\), received '(\S+)", chunk.split(" for ", 1)[-1])
        if m:
            what += f" ({m.group(3)} while {m.group(1)}, step {m.group(2)})"
        reasons[what] = reasons.get(what, 0) + 1
    return ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))


def main():
    if sys.argv[1] == "header":
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "|".join("---" for _ in COLUMNS) + "|")
        return
    kind, calls, rate, work, name, ticks, clk, rss0, rss_peak, load = sys.argv[2:12]
    stat = last_row(f"{work}/{name}-stat.csv")
    counts = last_row(f"{work}/{name}-counts.csv")
    # The first 200 received is the INVITE's; the 503s are the refusals past capacity.
    answered = next((int(v) for k, v in counts.items() if re.fullmatch(r"\d+_200_Recv", k)), 0)
    rejected = sum(int(v) for k, v in counts.items() if re.fullmatch(r"\d+_503_Recv", k))
    setup = read(f"{work}/{name}-setup.txt")
    pacing = re.search(r"p50=([\d.]+)ms p99=([\d.]+)ms max=([\d.]+)ms",
                       read(f"{work}/{name}-pacing.txt"))
    bodies = comments(answered + 1)
    # The warm-up call's comment is in the outbox too.
    keys = str(sum("pressed" in body for body in bodies) - 1) if bodies else "–"
    with open(f"{work}/{name}-outcomes.txt", "w") as f:
        if bodies:
            f.write(f"{name}: {len(bodies)} comments (warm-up call included): {outcomes(bodies)}\n")
        aborted = failures(f"{work}/{name}-errors.log")
        if aborted:
            f.write(f"{name}: SIPp aborted: {aborted}\n")
    per_call = max(answered, 1)
    cpu_ms = int(ticks) * 1000 / int(clk) / per_call
    rss = (int(rss_peak) - int(rss0)) / per_call
    cells = [
        kind, calls, rate, stat.get("FailedCall(C)", "?"), stat.get("Retransmissions(C)", "?"),
        str(rejected), keys, f"{seconds(stat['CallLength(C)']):.1f} s" if "CallLength(C)" in stat else "?",
        ms_pair(setup, "INVITE→200"), ms_pair(setup, "INVITE→first RTP"),
        " / ".join(pacing.groups()) + " ms" if pacing else "–",
        f"{cpu_ms:.1f}", f"{rss:.1f}", load,
    ]
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
