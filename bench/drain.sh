#!/usr/bin/env bash
# drain.sh: how fast groq_webhook's queue (store-and-forward) delivers a
# backlog once the backend comes back, against the synchronous (b) path on
# the same machine. Builds the plugin's Caddy, starts the Go upstream on
# loopback, and for each of ROUNDS rounds:
#   (b) groq_webhook + reverse_proxy: wrk -t$THREADS -c$CONNECTIONS for
#       DURATION at SIZE bytes, distinct signed events: req/s;
#   then for each queue concurrency in CONCURRENCIES, a fresh Caddy with
#   groq_webhook + queue (fresh directory, admin endpoint on a free port)
#   delivering to the upstream, which is made to answer 503 (an outage,
#   POST /__bench/down): wrk sends EVENTS distinct signed SIZE-byte events,
#   each once (all answered 202: queued); then the upstream answers 200 again
#   (POST /__bench/up) and the script times until it has received every
#   accepted event (polled every 0.2 s), then checks the admin API shows
#   queued=0, in_flight=0, dead=0.
# Prints, per concurrency, the fill rate (202s per second, with the workers
# retrying 503s meanwhile), the drain rate (events delivered per second from
# the flip to the last delivery) and drain/(b). Exits non-zero on a non-2xx
# answer or socket error, fewer than EVENTS accepted, a backlog that does not
# drain within DRAIN_TIMEOUT, a dead event, or an upstream count other than
# one delivery per accepted event, each marked X-Groq-Verified: true.
#
# The queue's retry schedule is RETRY_WAIT repeated RETRIES times (1s x 600
# by default: an event attempted during the outage is due again within 1.1 s
# of the flip, and none goes dead in a 10-minute outage); its max_events is
# twice EVENTS. Other queue options are the defaults (attempt_timeout 30s).
#
# Environment (defaults): ROUNDS=1 EVENTS=100000 SIZE=1024
# CONCURRENCIES="16 64" (16 is the queue's default) DURATION=10s THREADS=2
# CONNECTIONS=64 RATE_CAP=25000 (events signed per second of DURATION for b)
# RETRY_WAIT=1s RETRIES=600 FILL_TIMEOUT=600s (bound on wrk's fill)
# DRAIN_TIMEOUT=600 (seconds) WRK_TIMEOUT=10s; PROFILE=<seconds> saves a CPU
# profile of Caddy taken from the start of each drain (drain.<round>.<conc>.pprof
# in the work directory: use with KEEP_WORK=1); CADDY_BIN, CADDY_BUILD,
# KEEP_WORK as in e2e.sh.
set -euo pipefail

bench_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$bench_dir/.." && pwd)
# shellcheck source=lib.sh
source "$bench_dir/lib.sh"

ROUNDS=${ROUNDS:-1} EVENTS=${EVENTS:-100000} SIZE=${SIZE:-1024} CONCURRENCIES=${CONCURRENCIES:-16 64}
DURATION=${DURATION:-10s} THREADS=${THREADS:-2} CONNECTIONS=${CONNECTIONS:-64} RATE_CAP=${RATE_CAP:-25000}
RETRY_WAIT=${RETRY_WAIT:-1s} RETRIES=${RETRIES:-600} FILL_TIMEOUT=${FILL_TIMEOUT:-600s}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
path=/webhooks/groq

bench_setup
start_caddy b "$webhook_directive"
url_b=http://127.0.0.1:$caddy_port$path
retry=$(printf " $RETRY_WAIT%.0s" $(seq "$RETRIES"))
failed=()
fail() { say "FAILED: $*"; failed+=("$*"); }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
field() { [[ $1 =~ (^| )$2=([0-9]+) ]] && echo "${BASH_REMATCH[2]}"; }
# upstream_requests: the upstream's request count, parsed in bash (polled).
upstream_requests() {
	local json
	json=$(curl -fsS "http://127.0.0.1:$upstream_port/__bench/count")
	[[ $json =~ \"requests\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}

# accepted_now ADMIN_PORT: Caddy's 202 count, parsed in bash (polled).
accepted_now() {
	local metrics
	metrics=$(curl -fsS "http://127.0.0.1:$1/metrics")
	if [[ $metrics =~ caddy_groq_webhook_requests_total\{(provider=\"groq\",)?result=\"queued\"\}\ ([0-9.e+]+) ]]; then
		printf '%.0f\n' "${BASH_REMATCH[2]}"
	else
		echo 0
	fi
}

# fill URL ADMIN_PORT LOG: wrk sends $work/events, each once (BENCH_ONCE: a
# thread stops after its slice), for at most FILL_TIMEOUT. wrk's -d does not
# end early when its threads stop, so once Caddy has accepted EVENTS (or its
# count has not moved for 3 s) wrk gets SIGINT, on which it ends the run and
# reports it as usual.
fill() {
	local wrk_pid n last=-1 still=0
	BENCH_EVENTS=$work/events BENCH_THREADS=$THREADS BENCH_ONCE=1 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$FILL_TIMEOUT" \
		--timeout "${WRK_TIMEOUT:-10s}" --latency -s "$bench_dir/signed.lua" "$1" >"$3" 2>&1 &
	wrk_pid=$!
	while kill -0 "$wrk_pid" 2>/dev/null; do
		sleep 0.2
		n=$(accepted_now "$2")
		if [ "$n" = "$last" ]; then still=$((still + 1)); else still=0 last=$n; fi
		if [ "$n" -ge "$EVENTS" ] || [ "$still" -ge 15 ]; then
			kill -INT "$wrk_pid" 2>/dev/null || true
			break
		fi
	done
	wait "$wrk_pid" || { cat "$3" >&2; die "wrk failed"; }
}

results=$work/drain.tsv
: >"$results"

# run_b ROUND: (b) at SIZE for DURATION; appends "b ROUND rps".
run_b() {
	local fields counters requests dur status rps
	sign_events "$SIZE" $(($(seconds "$DURATION") * RATE_CAP)) "$work/events"
	upstream_counters reset >/dev/null
	fields=$(run_wrk "$url_b" "$work/events" "$CONNECTIONS" "$DURATION" "$work/wrk.b.$1.log")
	sleep 0.5
	counters=$(upstream_counters count)
	rm -f "$work/events"
	requests=$(field "$fields" requests) dur=$(field "$fields" duration_us) status=$(field "$fields" status)
	rps=$(python3 -c "print(f'{$requests / ($dur / 1e6):.0f}')")
	say "round $1 b: $rps req/s ($requests answers, $status non-2xx, upstream got ${counters%% *}; $fields)"
	[ "$status" = 0 ] || fail "round $1 b: $status non-2xx answers"
	[ "$(field "$fields" wraps)" = 0 ] || fail "round $1 b: wrk ran out of signed events"
	[ "${counters%% *}" -ge "$requests" ] || fail "round $1 b: upstream got ${counters%% *} for $requests answers"
	printf 'b\t%s\t%s\n' "$1" "$rps" >>"$results"
}

# run_q ROUND CONCURRENCY: fill a queue during an outage, then time its drain;
# appends "q ROUND CONCURRENCY accepted fill_ms drain_ms refused".
run_q() {
	local round=$1 conc=$2 admin dir pid fields accepted stats t0 t1 got drained counters sock
	admin=$(free_port)
	dir=$work/queue.$round.$conc
	start_caddy "q.$round.$conc" "$(queue_directive "$dir" \
		$'\t\t\tconcurrency '"$conc"$'\n\t\t\tmax_events '"$((2 * EVENTS))"$'\n\t\t\tretry'"$retry"$'\n')"$'\n' "$admin" ""
	pid=$caddy_pid
	sign_events "$SIZE" "$EVENTS" "$work/events"
	upstream_counters reset >/dev/null
	upstream_counters down >/dev/null
	fill "http://127.0.0.1:$caddy_port$path" "$admin" "$work/wrk.q.$round.$conc.log"
	fields=$(grep '^BENCH ' "$work/wrk.q.$round.$conc.log" | sed 's/^BENCH //') ||
		{ cat "$work/wrk.q.$round.$conc.log" >&2; die "wrk printed no BENCH line"; }
	rm -f "$work/events"
	accepted=$(queue_accepted "$admin")
	stats=$(queue_stats "$admin")
	say "round $round q concurrency $conc: $accepted events accepted in $(($(field "$fields" duration_us) / 1000)) ms" \
		"with the upstream down; queue: queued in_flight dead = $stats; $fields"
	[ "$(field "$fields" status)" = 0 ] || fail "round $round q$conc fill: $(field "$fields" status) non-2xx answers"
	sock=$(($(field "$fields" connect) + $(field "$fields" read) + $(field "$fields" write) + $(field "$fields" timeout)))
	[ "$sock" = 0 ] || fail "round $round q$conc fill: $sock socket errors"
	[ "$accepted" -ge "$EVENTS" ] || fail "round $round q$conc: only $accepted of $EVENTS events accepted"
	# Back up: time until the upstream has every accepted event.
	t0=$(now_ms)
	counters=$(upstream_counters up)
	if [ -n "${PROFILE:-}" ]; then
		curl -fsS -o "$work/drain.$round.$conc.pprof" "http://127.0.0.1:$admin/debug/pprof/profile?seconds=$PROFILE" &
	fi
	got=0 t1=-1
	while [ $(($(now_ms) - t0)) -lt $((DRAIN_TIMEOUT * 1000)) ]; do
		got=$(upstream_requests)
		if [ "$got" -ge "$accepted" ]; then t1=$(now_ms); break; fi
		sleep 0.2
	done
	drained=$(wait_drained "$admin" 10)
	sleep 0.5
	counters=$(curl -fsS "http://127.0.0.1:$upstream_port/__bench/count")
	say "round $round q concurrency $conc: upstream got $got of $accepted in $((t1 < 0 ? -1 : t1 - t0)) ms" \
		"after the flip; then admin API (ms queued in_flight dead) $drained; upstream $counters"
	if [ "$t1" -lt 0 ]; then fail "round $round q$conc: upstream got $got of $accepted within ${DRAIN_TIMEOUT}s"; fi
	case $drained in
	-1*) fail "round $round q$conc: the queue did not reach queued=0 in_flight=0: $drained" ;;
	*" 0") ;;
	*) fail "round $round q$conc: dead events: $drained" ;;
	esac
	[[ $counters =~ \"requests\":([0-9]+) ]] && [ "${BASH_REMATCH[1]}" = "$accepted" ] ||
		fail "round $round q$conc: upstream got $counters for $accepted accepted events"
	[[ $counters =~ \"verified\":([0-9]+) ]] && [ "${BASH_REMATCH[1]}" = "$accepted" ] ||
		fail "round $round q$conc: upstream saw X-Groq-Verified: true on $counters, want $accepted"
	[[ $counters =~ \"bytes\":([0-9]+) ]] && [ "${BASH_REMATCH[1]}" = "$((accepted * SIZE))" ] ||
		fail "round $round q$conc: upstream got $counters body bytes for $accepted events of $SIZE B"
	[[ $counters =~ \"refused\":([0-9]+) ]]
	printf 'q\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$conc" "$accepted" "$(($(field "$fields" duration_us) / 1000))" \
		"$((t1 < 0 ? -1 : t1 - t0))" "${BASH_REMATCH[1]}" >>"$results"
	stop_caddy "$pid"
	rm -rf "$dir"
}

say "b=$url_b upstream=127.0.0.1:$upstream_port; $ROUNDS rounds: b (wrk -t$THREADS -c$CONNECTIONS -d$DURATION)," \
	"then per concurrency in $CONCURRENCIES: $EVENTS events of $SIZE B queued during an outage, then drained"
for round in $(seq "$ROUNDS"); do
	run_b "$round"
	sleep 1
	for conc in $CONCURRENCIES; do
		run_q "$round" "$conc"
		sleep 1
	done
done

echo
echo "$EVENTS events of $SIZE B, queued while the upstream answered 503, then drained; (b) wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $ROUNDS rounds (medians); $(nproc) CPUs shared by wrk, Caddy and the upstream"
python3 - "$results" <<'PY'
import statistics, sys
b, q = [], {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "b":
        b.append(float(f[2]))
    else:
        q.setdefault(int(f[2]), []).append([int(x) for x in f[3:]])
bm = statistics.median(b)
print(f"(b) synchronous groq_webhook + reverse_proxy: {bm:.0f} req/s")
print(f"{'concurrency':>11} {'accepted':>9} {'fill/s':>8} {'503s':>8} {'drain s':>8} {'drain/s':>8} {'drain/(b)':>9}")
for c, rs in sorted(q.items()):
    ok = [r for r in rs if r[2] > 0]
    if not ok:
        print(f"{c:>11} did not drain")
        continue
    acc = statistics.median(r[0] for r in ok)
    fill = statistics.median(r[0] / (r[1] / 1000) for r in ok)
    refused = statistics.median(r[3] for r in ok)
    dsec = statistics.median(r[2] / 1000 for r in ok)
    drate = statistics.median(r[0] / (r[2] / 1000) for r in ok)
    print(f"{c:>11} {acc:9.0f} {fill:8.0f} {refused:8.0f} {dsec:8.1f} {drate:8.0f} {drate / bm:9.2f}")
PY
if [ "${#failed[@]}" -gt 0 ]; then
	echo "CHECKS FAILED:"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
echo "checks: every answer 2xx, no socket errors, every queue drained with nothing dead, each accepted event delivered once, verified"
