#!/usr/bin/env python3
"""rss.py PID INTERVAL_MS: samples VmRSS of PID from /proc every INTERVAL_MS
until SIGTERM (or until PID exits), then prints "<peak kB> <samples>".
bench/memory.sh runs it in the background for the length of each wrk run."""
import signal
import sys
import time

pid, interval = sys.argv[1], int(sys.argv[2]) / 1000
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
peak = samples = 0
while not stop:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    peak = max(peak, int(line.split()[1]))
                    samples += 1
                    break
    except OSError:
        break
    time.sleep(interval)
print(peak, samples)
