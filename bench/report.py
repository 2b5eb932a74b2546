#!/usr/bin/env python3
"""report.py: checks and summarizes bench/e2e.sh's results file.

Each line is tab-separated: "run ROUND VARIANT SIZE <wrk BENCH fields>
<upstream requests bytes verified>", "forged ROUND b|s|w|q SIZE HTTP_CODE
UPSTREAM_DELTA", or, after each run of (q), "queue ROUND q SIZE accepted=..
delivered_run=.. backlog=.. in_flight=.. drain_ms=.. queued_after=..
in_flight_after=.. dead=.." (accepted: Caddy's 202 count; delivered_run: what
the upstream had when wrk ended; backlog, in_flight: the queue then; drain_ms:
how long it then took to reach queued=0 and in_flight=0, -1 if it did not
within the bound; the _after fields and dead: the queue when polling
stopped), or, after each run, "cpu ROUND VARIANT SIZE server=.. upstream=..
redis=.. busy=.. idle=.. tick=.." (clock ticks, tick per second, used while
wrk ran: by the server under test, the upstream, its redis-server, and the
whole machine busy and idle). Round 0 is the warm-up: checked, not in the
medians.

  report.py --last FILE   one line for the last run (progress), no checks
  report.py FILE          the table of medians and ratios, then the checks;
                          exits 1 if any check failed
"""
import statistics
import sys

NAMES = {"a": "a  bare reverse_proxy", "b": "b  groq_webhook + reverse_proxy", "c": "c  express verify + proxy",
         "s": "s  b with provider stripe", "w": "w  b with provider standard",
         "q": "q  groq_webhook + queue (deliver)", "o": "o  groq_webhook dedupe off + proxy",
         "r": "r  groq_webhook dedupe redis + proxy", "rq": "rq groq_webhook + queue redis"}


# The variants that verify: every request they forward is marked verified,
# and a forged request to them is checked.
VERIFYING = ("b", "s", "w", "q", "o", "r", "rq")


def parse(path):
    runs, forged, queues, cpus = [], [], {}, {}
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
        elif f[0] == "queue":
            q = {k: int(v) for k, v in (kv.split("=") for kv in f[4].split())}
            queues[int(f[1]), f[2], int(f[3])] = q
        elif f[0] == "cpu":
            cpus[int(f[1]), f[2], int(f[3])] = {k: int(v) for k, v in (kv.split("=") for kv in f[4].split())}
    for r in runs:
        q = queues.get((r["round"], r["variant"], r["size"]))
        if q:
            r["queue"] = q
            q["delivery_rate"] = q["delivered_run"] / (r["duration_us"] / 1e6)
        c = cpus.get((r["round"], r["variant"], r["size"]))
        if c and r["requests"]:
            us = 1e6 / c["tick"] / r["requests"]  # one tick, in µs per answered request
            rest = c["busy"] - c["server"] - c["upstream"] - c["redis"]
            r["cpu"] = {"server": c["server"] * us, "upstream": c["upstream"] * us, "redis": c["redis"] * us,
                        "rest": rest * us, "idle": 100 * c["idle"] / max(1, c["busy"] + c["idle"])}
    return runs, forged


def line(r):
    q = r.get("queue")
    extra = (f"; delivered {q['delivery_rate']:.0f}/s during the run, backlog {q['backlog']}+{q['in_flight']} in flight"
             f" at the end, drained in {q['drain_ms'] / 1000:.1f} s, {q['accepted']} accepted" if q else "")
    return (f"round {r['round']} {r['variant']} {r['size']:>7} B: {r['rps']:9.0f} req/s  p50 {r['p50_us'] / 1000:7.2f} ms"
            f"  p99 {r['p99_us'] / 1000:7.2f} ms  ({r['requests']} answers, {r['status']} non-2xx, upstream got"
            f" {r['up_requests']}, verified {r['up_verified']}, sent {r['sent']}, wraps {r['wraps']}){extra}")


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
    want_verified = r["up_requests"] if r["variant"] in VERIFYING else 0
    if r["up_verified"] != want_verified:
        bad.append(f"{where}: upstream saw {r['up_verified']} X-Groq-Verified or X-Webhook-Verified: true, want {want_verified}")
    if r["wraps"] and r["variant"] in VERIFYING:
        bad.append(f"{where}: wrk ran out of signed events ({r['wraps']} wraps: duplicates); raise RATE_CAP_{r['size']}")
    if r["variant"] in ("q", "rq"):
        q = r.get("queue")
        if q is None:
            return bad + [f"{where}: no queue line"]
        if q["drain_ms"] < 0:
            bad.append(f"{where}: the queue did not drain: queued {q['queued_after']}, in flight {q['in_flight_after']}")
        if q["dead"]:
            bad.append(f"{where}: {q['dead']} dead events")
        # Every 2xx answer wrk counted was a 202 (a 200 duplicate would not
        # be), and the upstream got each accepted event exactly once.
        if not r["ok"] <= q["accepted"] <= r["sent"]:
            bad.append(f"{where}: Caddy answered {q['accepted']} requests 202 for {r['ok']} 2xx answers ({r['sent']} sent)")
        if r["up_requests"] != q["accepted"]:
            bad.append(f"{where}: upstream got {r['up_requests']} deliveries for {q['accepted']} events answered 202")
    return bad


def main():
    if sys.argv[1] == "--last":
        runs, _ = parse(sys.argv[2])
        print(line(runs[-1]))
        return 0
    runs, forged = parse(sys.argv[1])
    qmed = {}
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
            if v == "q" and all("queue" in r for r in rs):  # (rq)'s queue lines are checked, not tabulated
                qmed[size] = {k: statistics.median(r["queue"][k] for r in rs) for k in ("delivery_rate", "backlog", "in_flight", "drain_ms")}
    if qmed:
        print()
        print(f"{'q: medians':34} {'size':>7} {'delivered/s':>11} {'backlog':>8} {'in flight':>9} {'drain s':>8}")
        for size, m in sorted(qmed.items()):
            print(f"{'   upstream during run, end of run':34} {size:>7} {m['delivery_rate']:11.0f} {m['backlog']:8.0f} {m['in_flight']:9.0f}"
                  f" {m['drain_ms'] / 1000:8.2f}")
    cpu_rows = [(size, v, [r["cpu"] for r in runs if r["variant"] == v and r["size"] == size and r["round"] > 0 and "cpu" in r])
                for size in sizes for v in variants]
    if any(rows for _, _, rows in cpu_rows):
        print()
        print(f"{'CPU µs per answer (medians)':34} {'size':>7} {'server':>7} {'upstream':>8} {'redis':>6} {'rest':>6} {'idle %':>6}")
        for size, v, rows in cpu_rows:
            if rows:
                m = {k: statistics.median(c[k] for c in rows) for k in ("server", "upstream", "redis", "rest", "idle")}
                print(f"{NAMES[v]:34} {size:>7} {m['server']:7.1f} {m['upstream']:8.1f} {m['redis']:6.1f} {m['rest']:6.1f} {m['idle']:6.1f}")
        print("   (server: Caddy or node; rest: wrk and everything else on the machine)")
    print()
    pairs = (("b", "a"), ("b", "c"), ("q", "a"), ("q", "b"), ("s", "b"), ("w", "b"), ("o", "b"), ("r", "a"), ("r", "b"), ("rq", "q"))
    rps = {(r["round"], r["variant"], r["size"]): r["rps"] for r in runs if r["round"] > 0}
    rounds = sorted({r["round"] for r in runs if r["round"] > 0})
    for size in sizes:
        ratios = [f"{n}/{d} {med[n, size] / med[d, size]:.2f}" for n, d in pairs if (n, size) in med and (d, size) in med]
        if size in qmed and ("a", size) in med:
            ratios.append(f"q delivered/a {qmed[size]['delivery_rate'] / med['a', size]:.2f}")
        print(f"ratios of median req/s at {size} B: " + ("  ".join(ratios) or "n/a"))
        # The same ratios taken within each round, whose variants ran minutes
        # apart at most, so that a slow spell of a shared machine weighs on
        # one round's pair rather than on one variant's median.
        paired = []
        for n, d in pairs:
            each = [rps[k, n, size] / rps[k, d, size] for k in rounds if (k, n, size) in rps and (k, d, size) in rps]
            if len(each) > 1:
                paired.append(f"{n}/{d} {statistics.median(each):.2f} ({min(each):.2f}-{max(each):.2f})")
        if paired:
            print(f"per-round ratios at {size} B, median (lowest-highest): " + "  ".join(paired))

    bad = [p for r in runs for p in check(r)]
    notes = [f"round {r['round']} {r['variant']} {r['size']} B: wrk ran out of signed events ({r['wraps']} wraps)"
             for r in runs if r["wraps"] and r["variant"] not in VERIFYING]
    for f in forged:
        if f["code"] != "401" or f["delta"]:
            bad.append(f"round {f['round']} forged request to {f['variant']} at {f['size']} B: HTTP {f['code']}, upstream +{f['delta']}")
    print()
    for n in notes:
        print("note: " + n)
    nonzero = sum(1 for r in runs if r["round"] > 0)
    print(f"checks: {len(runs)} runs ({nonzero} measured), every answer 2xx, no socket errors, upstream counts match;"
          f" {len(forged)} forged requests to {', '.join(sorted({f['variant'] for f in forged}))}, each 401 and not forwarded"
          + ("; every (q) queue drained, nothing dead, each 202 delivered once, verified" if any(r["variant"] == "q" for r in runs) else "")
          if not bad else "CHECKS FAILED:")
    for p in bad:
        print("  " + p)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
