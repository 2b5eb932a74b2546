#!/usr/bin/env bash
# e2e.sh: end-to-end throughput of the plugin. Builds the plugin's Caddy
# (pinned xcaddy), starts a Go upstream on loopback and runs wrk, interleaved
# round by round and size by size, against
#   (a) Caddy with a bare reverse_proxy,
#   (b) the same Caddy binary with groq_webhook + reverse_proxy,
#   (s) as (b) with `provider stripe` (Stripe-Signature: t=..,v1=..),
#   (w) as (b) with `provider standard` (Standard Webhooks: webhook-id,
#       webhook-timestamp, webhook-signature),
#   (c) the Express reference verifying, then proxying to the same upstream,
#   (q) the same Caddy binary with groq_webhook + queue (store-and-forward:
#       202 once the event is on disk) delivering to the same upstream
#       through deliver { reverse_proxy }; a fresh Caddy with an admin
#       endpoint on a free port and a fresh queue directory for each run,
#   (o) (b) with `dedupe off`, to compare the path that does less work,
#   (r) (b) with `dedupe redis` on a local redis-server (no persistence),
#   (rq) (q) with `queue redis` on another (appendonly yes, appendfsync
#       always: a 202 is on Redis's disk, as (q)'s is on Caddy's),
#       a fresh queue name per run; (r) and (rq) need redis-server (REDIS=0
#       skips them),
# with signed bodies of each size, every request a distinct event id. Prints
# the median req/s, p50 and p99 of each and the ratios b/a, b/c, q/a, and
# s/b and w/b (the issue's target for those two: at least 0.97 at 1 KiB); for
# (q) also the delivery rate (events the upstream got per second of the wrk
# run), the backlog (queued + in flight) when wrk ended, and the time the
# queue then took to drain. Exits non-zero if any response was not 2xx, any
# socket error, wrk ran out of events for (b) or (q), the upstream's count
# disagrees with the 2xx answers, a forged request to (b), (s), (w) or (q) did not get
# 401, or, for (q): the queue did not reach queued=0 and in_flight=0 within
# DRAIN_TIMEOUT, any event is dead, or the upstream did not get exactly the
# events answered 202 (Caddy's requests_total{result="queued"}), each verified.
#
# The p50 and p99 columns are the medians of each run's p50 and p99. Then,
# from /proc before and after each wrk run, the median µs of CPU per answer
# spent by the server under test, the upstream, its redis-server (r, rq),
# and the rest of the machine (wrk, the kernel, Redis's rewrite children),
# with the idle share.
#
# Environment (defaults): ROUNDS=3 DURATION=15s THREADS=2 CONNECTIONS=64
# SIZES="1024 65536" WARMUP=2s (one unmeasured run per variant and size; 0 for
# none) VARIANTS (a subset of the variants, in the order to run them; default
# all) PAUSE=1 (seconds between runs) WRK_TIMEOUT=10s; RATE_CAP_<size>
# (events signed per second of DURATION: 25000 up to 4 KiB, 8000 up to
# 64 KiB, else 1500; at most MAX_EVENTS=1000000); CADDY_BIN=/path reuses a
# binary, CADDY_BUILD=go builds ./cmd/caddy instead of xcaddy;
# DRAIN_TIMEOUT=120 (seconds for (q)'s queue to drain after wrk ends);
# EXPRESS_REFERENCE (default /work/shared/reference/express; variant c is
# skipped if it is missing); KEEP_WORK=1 keeps the temporary directory (logs,
# Caddyfiles, wrk outputs). Quick check: ROUNDS=1 DURATION=3s bench/e2e.sh
set -euo pipefail

bench_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$bench_dir/.." && pwd)
# shellcheck source=lib.sh
source "$bench_dir/lib.sh"

ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-15s} THREADS=${THREADS:-2} CONNECTIONS=${CONNECTIONS:-64}
SIZES=${SIZES:-1024 65536} WARMUP=${WARMUP:-2s} PAUSE=${PAUSE:-1}
express_ref=${EXPRESS_REFERENCE:-/work/shared/reference/express}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-120}
path=/webhooks/groq

bench_setup
start_caddy a ""
url_a=http://127.0.0.1:$caddy_port$path server_a=$caddy_pid
start_caddy b "$webhook_directive"
url_b=http://127.0.0.1:$caddy_port$path server_b=$caddy_pid
start_caddy s "$(provider_directive stripe)"$'\n'
url_s=http://127.0.0.1:$caddy_port$path server_s=$caddy_pid
start_caddy w "$(provider_directive standard)"$'\n'
url_w=http://127.0.0.1:$caddy_port$path server_w=$caddy_pid
variants="a b s w q"

if [ -d "$express_ref" ]; then
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		say "installing node and npm (Debian packages)"
		DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
	fi
	mkdir "$work/express"
	cp "$express_ref/server.js" "$express_ref/package.json" "$express_ref/package-lock.json" "$work/express/"
	(cd "$work/express" && npm ci --no-audit --no-fund --loglevel=error) >"$work/npm.log" 2>&1 ||
		{ cat "$work/npm.log" >&2; die "npm ci failed for the Express reference"; }
	express_port=$(free_port)
	(cd "$work/express" && NODE_ENV=production WEBHOOK_SECRET=$GROQ_WEBHOOK_SECRET PORT=$express_port \
		PROXY_UPSTREAM=http://127.0.0.1:$upstream_port exec node server.js) >"$work/express.log" 2>&1 &
	pids+=("$!")
	wait_port "$express_port" "$!" || die "express did not start: $(cat "$work/express.log")"
	url_c=http://127.0.0.1:$express_port$path server_c=$!
	variants="a b s w c q"
	say "express reference: node $(node --version), $(cd "$work/express" && node -p 'require("express/package.json").version') (express)"
else
	say "EXPRESS_REFERENCE=$express_ref not found: skipping variant c (no b/c ratio)"
fi

# (o), and (r) and (rq) on a redis-server of their own.
start_caddy o $'\tgroq_webhook {\n\t\tsecret {env.GROQ_WEBHOOK_SECRET}\n\t\tdedupe off\n\t}\n'
url_o=http://127.0.0.1:$caddy_port$path server_o=$caddy_pid
variants="$variants o"
if [ "${REDIS:-1}" != 0 ] && command -v redis-server >/dev/null 2>&1; then
	# De-duplication state needs no disk (as (b)'s memory store); the
	# queue's Redis writes each event to disk before it answers.
	start_redis dedupe
	start_caddy r "$(redis_dedupe_directive "$redis_port")"$'\n'
	url_r=http://127.0.0.1:$caddy_port$path server_r=$caddy_pid redis_r=$redis_pid
	say "redis for (r): $(redis-server --version | cut -d' ' -f3) on 127.0.0.1:$redis_port, no persistence"
	start_redis queue --appendonly yes --appendfsync always
	redis_rq=$redis_pid
	say "redis for (rq): 127.0.0.1:$redis_port, appendonly yes, appendfsync always"
	variants="$variants r rq"
fi

# VARIANTS="b o" runs a subset of the variants above, in the order given.
if [ -n "${VARIANTS:-}" ]; then
	for v in $VARIANTS; do
		[[ " $variants " == *" $v "* ]] || die "VARIANTS: $v is not one of: $variants"
	done
	variants=$VARIANTS
fi

rate_cap() {
	local var=RATE_CAP_$1
	if [ -n "${!var:-}" ]; then echo "${!var}"
	elif [ "$1" -le 4096 ]; then echo 25000
	elif [ "$1" -le 65536 ]; then echo 8000
	else echo 1500; fi
}

results=$work/results.tsv
: >"$results"
# start_q ROUND SIZE: a fresh Caddy (q) with its admin endpoint on a free
# port and a fresh queue directory; sets $url_q, $q_pid, $q_admin, $q_dir.
start_q() {
	q_admin=$(free_port)
	q_dir=$work/queue.$1.$2
	start_caddy "q.$1.$2" "$(queue_directive "$q_dir")"$'\n' "$q_admin" ""
	q_pid=$caddy_pid server_q=$caddy_pid
	url_q=http://127.0.0.1:$caddy_port$path
}

# start_rq ROUND SIZE: as start_q, for (rq): a fresh queue name in Redis.
start_rq() {
	q_admin=$(free_port)
	q_dir=$work/rqueue.$1.$2
	start_caddy "rq.$1.$2" "$(redis_queue_directive "rq-$1-$2-$RANDOM")"$'\n' "$q_admin" ""
	q_pid=$caddy_pid server_rq=$caddy_pid
	url_rq=http://127.0.0.1:$caddy_port$path
}

is_queue() { [ "$1" = q ] || [ "$1" = rq ]; }

# measure ROUND VARIANT SIZE DURATION: one wrk run, appended to $results.
measure() {
	local round=$1 variant=$2 size=$3 duration=$4 url events fields counters server redis cpu0 cpu1
	local BENCH_PROVIDER=groq
	case $variant in s) BENCH_PROVIDER=stripe ;; w) BENCH_PROVIDER=standard ;; esac
	export BENCH_PROVIDER # sign_events and run_wrk sign and send as this provider
	events=$work/events
	sign_events "$size" $(($(seconds "$duration") * $(rate_cap "$size"))) "$events"
	[ "$variant" = q ] && start_q "$round" "$size"
	[ "$variant" = rq ] && start_rq "$round" "$size"
	url=url_$variant
	url=${!url}
	server=server_$variant redis=redis_$variant
	server=${!server} redis=${!redis:-$upstream_pid} # no Redis: the upstream twice, subtracted below
	upstream_counters reset >/dev/null
	cpu0=($(cpu_ticks "$server" "$upstream_pid" "$redis"))
	fields=$(run_wrk "$url" "$events" "$CONNECTIONS" "$duration" "$work/wrk.$round.$variant.$size.log")
	cpu1=($(cpu_ticks "$server" "$upstream_pid" "$redis"))
	if is_queue "$variant"; then
		# What the upstream got while wrk ran, and the backlog it left; then
		# the queue must drain, every 202 delivered.
		local during backlog drained
		during=$(upstream_counters count)
		backlog=$(queue_stats "$q_admin")
		drained=$(wait_drained "$q_admin" "$DRAIN_TIMEOUT")
	fi
	sleep 0.5 # requests wrk abandoned at the deadline may still reach the upstream
	counters=$(upstream_counters count)
	printf 'run\t%s\t%s\t%s\t%s\t%s\n' "$round" "$variant" "$size" "$fields" "$counters" >>"$results"
	local tick redis_ticks=0
	[ "$redis" != "$upstream_pid" ] && redis_ticks=$((cpu1[2] - cpu0[2]))
	tick=$(getconf CLK_TCK)
	printf 'cpu\t%s\t%s\t%s\tserver=%s upstream=%s redis=%s busy=%s idle=%s tick=%s\n' "$round" "$variant" "$size" \
		$((cpu1[0] - cpu0[0])) $((cpu1[1] - cpu0[1])) "$redis_ticks" $((cpu1[3] - cpu0[3])) $((cpu1[4] - cpu0[4])) "$tick" >>"$results"
	if is_queue "$variant"; then
		local d=($drained) b=($backlog)
		printf 'queue\t%s\t%s\t%s\taccepted=%s delivered_run=%s backlog=%s in_flight=%s drain_ms=%s queued_after=%s in_flight_after=%s dead=%s\n' \
			"$round" "$variant" "$size" "$(queue_accepted "$q_admin")" "${during%% *}" "${b[0]}" "${b[1]}" \
			"${d[0]}" "${d[1]}" "${d[2]}" "${d[3]}" >>"$results"
	fi
	python3 "$bench_dir/report.py" --last "$results" >&2
	if [ "$variant" != a ] && [ "$variant" != c ]; then
		local code after
		code=$(forged_status "$url" "$BENCH_PROVIDER")
		is_queue "$variant" && sleep 0.2 # a forged event wrongly queued would be delivered by now
		after=$(upstream_counters count)
		printf 'forged\t%s\t%s\t%s\t%s\t%s\n' "$round" "$variant" "$size" "$code" \
			"$((${after%% *} - ${counters%% *}))" >>"$results"
	fi
	if is_queue "$variant"; then
		stop_caddy "$q_pid"
		rm -rf "$q_dir"
	fi
	rm -f "$events"
	sleep "$PAUSE"
}

say "a=$url_a b=$url_b s=$url_s w=$url_w${url_c:+ c=$url_c} q=(a fresh Caddy per run) upstream=127.0.0.1:$upstream_port; wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, sizes $SIZES"
if [ "$WARMUP" != 0 ]; then
	for size in $SIZES; do
		for v in $variants; do measure 0 "$v" "$size" "$WARMUP"; done
	done
fi
for round in $(seq "$ROUNDS"); do
	for size in $SIZES; do
		for v in $variants; do measure "$round" "$v" "$size" "$DURATION"; done
	done
done

echo
echo "wrk -t$THREADS -c$CONNECTIONS, $ROUNDS x $DURATION per variant and size, interleaved; $(nproc) CPUs shared by wrk, Caddy, the upstream${url_c:+ and node}"
python3 "$bench_dir/report.py" "$results"
