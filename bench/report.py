#!/usr/bin/env python3
"""report.py: checks and summarizes bench/e2e.sh's results file.

Each line is tab-separated: "run ROUND VARIANT SIZE <wrk BENCH fields>
<upstream requests bytes verified>" or "forged ROUND b SIZE HTTP_CODE
UPSTREAM_DELTA". Round 0 is the warm-up: checked, not in the medians.

  report.py --last FILE   one line for the last run (progress), no checks
  report.py FILE          the table of medians and ratios, then the checks;
                          exits 1 if any check failed
"""
import statistics
import sys

NAMES = {"a": "a  bare reverse_proxy", "b": "b  groq_webhook + reverse_proxy", "c": "c  express verify + proxy"}


def parse(path):
    runs, forged = [], []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if f[0] == "run":
            r = dict(kv.split("=") for kv in f[4].split())
            r = {k: int(v) for k, v in r.items()}
            up = [int(x) for x in f[5].split()]
            r.update(round=int(f[1]), variant=f[2], size=int(f[3]), up_requests=up[0], up_bytes=up[1], up_verified=up[2])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["ok"] = r["requests"] - r["status"]  # wrk counts status > 399 as errors
            runs.append(r)
        elif f[0] == "forged":
            forged.append(dict(round=int(f[1]), variant=f[2], size=int(f[3]), code=f[4], delta=int(f[5])))
    return runs, forged


def line(r):
    return (f"round {r['round']} {r['variant']} {r['size']:>7} B: {r['rps']:9.0f} req/s  p50 {r['p50_us'] / 1000:7.2f} ms"
            f"  p99 {r['p99_us'] / 1000:7.2f} ms  ({r['requests']} answers, {r['status']} non-2xx, upstream got"
            f" {r['up_requests']}, verified {r['up_verified']}, sent {r['sent']}, wraps {r['wraps']})")


def check(r):
    """The problems with one run, as strings."""
    bad = []
    where = f"round {r['round']} {r['variant']} {r['size']} B"
    if r["requests"] == 0:
        bad.append(f"{where}: no answers")
    if r["status"]:
        bad.append(f"{where}: {r['status']} non-2xx answers")
    sock = {k: r[k] for k in ("connect", "read", "write", "timeout") if r[k]}
    if sock:
        bad.append(f"{where}: socket errors {sock}")
    # Every 2xx answer was forwarded (a duplicate would be answered without it);
    # requests still in flight at wrk's deadline may also have arrived.
    if not r["ok"] <= r["up_requests"] <= r["sent"]:
        bad.append(f"{where}: upstream got {r['up_requests']} requests for {r['ok']} 2xx answers ({r['sent']} sent)")
    if r["up_bytes"] > r["up_requests"] * r["size"] or r["up_bytes"] < r["ok"] * r["size"]:
        bad.append(f"{where}: upstream got {r['up_bytes']} body bytes for {r['up_requests']} requests")
    want_verified = r["up_requests"] if r["variant"] == "b" else 0
    if r["up_verified"] != want_verified:
        bad.append(f"{where}: upstream saw {r['up_verified']} X-Groq-Verified: true, want {want_verified}")
    if r["wraps"] and r["variant"] == "b":
        bad.append(f"{where}: wrk ran out of signed events ({r['wraps']} wraps: duplicates); raise RATE_CAP_{r['size']}")
    return bad


def main():
    if sys.argv[1] == "--last":
        runs, _ = parse(sys.argv[2])
        print(line(runs[-1]))
        return 0
    runs, forged = parse(sys.argv[1])
    sizes = sorted({r["size"] for r in runs})
    variants = sorted({r["variant"] for r in runs})
    med = {}
    print(f"{'variant':34} {'size':>7} {'runs':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for size in sizes:
        for v in variants:
            rs = [r for r in runs if r["variant"] == v and r["size"] == size and r["round"] > 0]
            if not rs:
                continue
            med[v, size] = statistics.median(r["rps"] for r in rs)
            p50 = statistics.median(r["p50_us"] for r in rs) / 1000
            p99 = statistics.median(r["p99_us"] for r in rs) / 1000
            print(f"{NAMES[v]:34} {size:>7} {len(rs):>4} {med[v, size]:9.0f} {p50:8.2f} {p99:8.2f}")
    print()
    for size in sizes:
        ratios = [f"{n}/{d} {med[n, size] / med[d, size]:.2f}" for n, d in (("b", "a"), ("b", "c")) if (n, size) in med and (d, size) in med]
        print(f"ratios of median req/s at {size} B: " + ("  ".join(ratios) or "n/a"))

    bad = [p for r in runs for p in check(r)]
    notes = [f"round {r['round']} {r['variant']} {r['size']} B: wrk ran out of signed events ({r['wraps']} wraps)"
             for r in runs if r["wraps"] and r["variant"] != "b"]
    for f in forged:
        if f["code"] != "401" or f["delta"]:
            bad.append(f"round {f['round']} forged request to b at {f['size']} B: HTTP {f['code']}, upstream +{f['delta']}")
    print()
    for n in notes:
        print("note: " + n)
    nonzero = sum(1 for r in runs if r["round"] > 0)
    print(f"checks: {len(runs)} runs ({nonzero} measured), every answer 2xx, no socket errors, upstream counts match;"
          f" {len(forged)} forged requests to b, each 401 and not forwarded" if not bad else "CHECKS FAILED:")
    for p in bad:
        print("  " + p)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
