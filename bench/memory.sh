#!/usr/bin/env bash
# memory.sh: Caddy's memory while many clients upload large signed bodies at
# once. Builds the plugin's Caddy, runs groq_webhook + reverse_proxy to a Go
# upstream on loopback, and for each of ROUNDS rounds has wrk's CONNECTIONS
# connections upload SIZE-byte signed events (distinct ids) for DURATION,
# sampling Caddy's VmRSS every SAMPLE_MS through the run and IDLE seconds
# after it. Prints the peak and the after-idle RSS of every round, the idle
# baseline and VmHWM, in MiB, and the peak over the baseline in units of
# CONNECTIONS x SIZE. Exits non-zero if memory grows across rounds (the last
# round's peak or after-idle RSS over TOLERANCE times the highest of rounds
# 2..n-1), if the peak over the baseline exceeds BOUND x CONNECTIONS x SIZE,
# on any non-2xx answer or socket error, or if the upstream did not get every
# accepted event, verified.
#
# Environment (defaults): ROUNDS=5 DURATION=5s CONNECTIONS=256 THREADS=2
# SIZE=1048576 MAX_BODY (unset: the directive's default, 1MiB)
# MAX_BUFFERED=1GiB (above CONNECTIONS x SIZE, so that every upload is
# accepted and the script measures uploads, not 503s) IDLE=3
# SAMPLE_MS=50 TOLERANCE=1.25 BOUND=4 RATE_CAP=800 (events signed per second
# of DURATION) WRK_TIMEOUT=30s; CADDY_BIN, CADDY_BUILD, KEEP_WORK as in
# e2e.sh. Caddy inherits the environment, so GOGC or GOMEMLIMIT apply to it.
set -euo pipefail

bench_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$bench_dir/.." && pwd)
# shellcheck source=lib.sh
source "$bench_dir/lib.sh"

ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-5s} CONNECTIONS=${CONNECTIONS:-256} THREADS=${THREADS:-2}
SIZE=${SIZE:-1048576} IDLE=${IDLE:-3} SAMPLE_MS=${SAMPLE_MS:-50} TOLERANCE=${TOLERANCE:-1.25}
RATE_CAP=${RATE_CAP:-800} WRK_TIMEOUT=${WRK_TIMEOUT:-30s} BOUND=${BOUND:-4}

bench_setup
directive=$'\tgroq_webhook {\n\t\tsecret {env.GROQ_WEBHOOK_SECRET}\n'
[ -n "${MAX_BODY:-}" ] && directive+=$'\t\tmax_body '"$MAX_BODY"$'\n'
directive+=$'\t\tmax_buffered '"${MAX_BUFFERED:-1GiB}"$'\n'
directive+=$'\t}\n'
start_caddy b "$directive"
url=http://127.0.0.1:$caddy_port/webhooks/groq

kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$caddy_pid/status"; }
sleep 1
baseline=$(kb VmRSS)
say "caddy pid $caddy_pid at $url, idle VmRSS $((baseline / 1024)) MiB; $ROUNDS rounds of wrk -t$THREADS -c$CONNECTIONS -d$DURATION with $SIZE-byte bodies, max_body ${MAX_BODY:-1MiB (default)}"

results=$work/memory.tsv
: >"$results"
for round in $(seq "$ROUNDS"); do
	sign_events "$SIZE" $(($(seconds "$DURATION") * RATE_CAP)) "$work/events"
	upstream_counters reset >/dev/null
	python3 "$bench_dir/rss.py" "$caddy_pid" "$SAMPLE_MS" >"$work/rss.$round" &
	sampler=$!
	pids+=("$sampler")
	fields=$(run_wrk "$url" "$work/events" "$CONNECTIONS" "$DURATION" "$work/wrk.$round.log")
	sleep "$IDLE"
	after=$(kb VmRSS)
	kill "$sampler"
	wait "$sampler" || true
	read -r peak samples <"$work/rss.$round"
	counters=$(upstream_counters count)
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$fields" "$peak" "$samples" "$after" "$counters" >>"$results"
	say "round $round: peak $((peak / 1024)) MiB ($samples samples), after ${IDLE}s idle $((after / 1024)) MiB; $fields"
	rm -f "$work/events"
done

echo
python3 - "$results" "$baseline" "$(kb VmHWM)" "$TOLERANCE" "$BOUND" "$CONNECTIONS" "$SIZE" "${MAX_BODY:-1MiB}" <<'PY'
import sys
path, baseline, hwm, tol, bound, conns, size, max_body = sys.argv[1:]
baseline, hwm, tol, bound, conns, size = int(baseline), int(hwm), float(tol), float(bound), int(conns), int(size)
mib = lambda kb: kb / 1024
rows, bad = [], []
for line in open(path):
    rnd, fields, peak, samples, after, up = line.rstrip("\n").split("\t")
    r = {k: int(v) for k, v in (kv.split("=") for kv in fields.split())}
    up_req, up_bytes, up_ver = map(int, up.split())
    r.update(round=int(rnd), peak=int(peak), after=int(after))
    rows.append(r)
    ok = r["requests"] - r["status"]
    sock = {k: r[k] for k in ("connect", "read", "write", "timeout") if r[k]}
    if r["status"] or sock or not r["requests"]:
        bad.append(f"round {rnd}: {r['requests']} answers, {r['status']} non-2xx, socket errors {sock}")
    if not (ok <= up_req <= r["sent"] and up_ver == up_req):
        bad.append(f"round {rnd}: upstream got {up_req} requests ({up_ver} verified) for {ok} 2xx answers, {r['sent']} sent")
    if r["wraps"]:
        bad.append(f"round {rnd}: wrk ran out of signed events ({r['wraps']} wraps); raise RATE_CAP")
print(f"{'round':>5} {'req/s':>7} {'answers':>8} {'peak RSS MiB':>13} {'RSS after MiB':>14}")
for r in rows:
    print(f"{r['round']:>5} {r['requests'] / (r['duration_us'] / 1e6):7.0f} {r['requests']:>8} {mib(r['peak']):13.0f} {mib(r['after']):14.0f}")
peak = max(r["peak"] for r in rows)
print(f"\nidle before load {mib(baseline):.0f} MiB; highest peak {mib(peak):.0f} MiB; VmHWM {mib(hwm):.0f} MiB")
print(f"peak - idle = {mib(peak - baseline):.0f} MiB = {(peak - baseline) * 1024 / (conns * size):.2f} x {conns} connections x {size} B bodies"
      f" (max_body {max_body})")
# Growth: the last round against the highest of the earlier ones (the first
# only if there are fewer than 3 rounds: it includes warming up).
last, earlier = rows[-1], (rows[1:-1] if len(rows) >= 3 else rows[:1])
for key, name in (("peak", "peak RSS"), ("after", "RSS after idle")):
    ref = max(r[key] for r in earlier)
    if len(rows) > 1 and last[key] > tol * ref:
        bad.append(f"{name} grew: round {last['round']} {mib(last[key]):.0f} MiB > {tol} x {mib(ref):.0f} MiB (rounds {earlier[0]['round']}-{earlier[-1]['round']})")
if peak - baseline > bound * conns * size / 1024:
    bad.append(f"peak - idle {mib(peak - baseline):.0f} MiB > BOUND {bound} x {conns} x {size} B")
if bad:
    print("CHECKS FAILED:")
    for b in bad:
        print("  " + b)
    sys.exit(1)
print(f"checks: every answer 2xx, no socket errors, the upstream got every accepted event verified;"
      f" round {last['round']} within {tol} x the earlier rounds' peak and after-idle RSS;"
      f" peak - idle within {bound} x connections x body size")
PY
