# lib.sh: helpers shared by bench/e2e.sh and bench/memory.sh (sourced, not run).
# They build the plugin's Caddy, the signer and the upstream into $work, start
# processes on free loopback ports (killed on exit), sign events and run wrk.
# Callers set $repo (the repository root) and $bench_dir; bench_setup sets $work.
# shellcheck shell=bash disable=SC2034,SC2154

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ -n "${KEEP_WORK:-}" ]; then say "kept $work"; else rm -rf "$work"; fi
}

# bench_setup: the start both scripts share: $work, the exit trap, a fresh
# secret, wrk, the signer and upstream, Caddy, and the upstream running.
bench_setup() {
	work=$(mktemp -d)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	GROQ_WEBHOOK_SECRET=bench-$(python3 -c 'import secrets; print(secrets.token_hex(16))')
	export GROQ_WEBHOOK_SECRET
	need_wrk
	build_tools
	build_caddy
	start_upstream
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_port PORT PID: until 127.0.0.1:PORT accepts connections (PID must stay alive).
wait_port() {
	local _
	for _ in $(seq 200); do
		kill -0 "$2" 2>/dev/null || return 1
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# seconds DURATION: wrk's 15s / 2m / 1h / 15 as whole seconds.
seconds() {
	case $1 in
	*s) echo "${1%s}" ;; *m) echo $((${1%m} * 60)) ;; *h) echo $((${1%h} * 3600)) ;; *) echo "$1" ;;
	esac
}

need_wrk() {
	command -v wrk >/dev/null 2>&1 && return
	say "installing wrk (Debian package)"
	DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk
}

# build_tools: $work/signer and $work/upstream from bench/.
build_tools() {
	(cd "$repo" && go build -o "$work/signer" ./bench/signer && go build -o "$work/upstream" ./bench/upstream)
}

# build_caddy: sets $caddy. CADDY_BIN reuses a binary; CADDY_BUILD=go builds
# ./cmd/caddy; the default is the pinned xcaddy, as .ci/run and users do.
build_caddy() {
	if [ -n "${CADDY_BIN:-}" ]; then
		caddy=$CADDY_BIN
	elif [ "${CADDY_BUILD:-xcaddy}" = go ]; then
		say "building caddy: go build ./cmd/caddy"
		(cd "$repo" && go build -o "$work/caddy" ./cmd/caddy)
		caddy=$work/caddy
	else
		say "building caddy: go tool xcaddy build (pinned in go.mod)"
		(
			cd "$repo"
			caddy_version=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)
			module=$(go list -m)
			first_proxy=$(go env GOPROXY)
			first_proxy=${first_proxy%%[,|]*}
			GOPROXY="$first_proxy|off" go tool xcaddy build "$caddy_version" --with "$module=." --output "$work/caddy"
		) >"$work/xcaddy.log" 2>&1 || { cat "$work/xcaddy.log" >&2; die "xcaddy build failed"; }
		caddy=$work/caddy
	fi
	"$caddy" list-modules | grep -qx 'http.handlers.groq_webhook' || die "$caddy has no groq_webhook module"
}

# start_upstream: sets $upstream_port, $upstream_pid.
start_upstream() {
	upstream_port=$(free_port)
	"$work/upstream" -port "$upstream_port" >"$work/upstream.log" 2>&1 &
	upstream_pid=$!
	pids+=("$upstream_pid")
	wait_port "$upstream_port" "$upstream_pid" || die "upstream did not start: $(cat "$work/upstream.log")"
}

# start_caddy NAME DIRECTIVES [ADMIN_PORT [LAST]]: a site on a free port
# proxying to the upstream, with DIRECTIVES before reverse_proxy; sets
# $caddy_port, $caddy_pid. ADMIN_PORT (empty: admin off) gives Caddy's admin
# endpoint 127.0.0.1:ADMIN_PORT; LAST replaces the site's final
# reverse_proxy line ("" for none).
start_caddy() {
	local admin="admin off" last
	[ -n "${3:-}" ] && admin="admin 127.0.0.1:$3"
	last=${4-$'\treverse_proxy 127.0.0.1:'"$upstream_port"$'\n'}
	caddy_port=$(free_port)
	printf '{\n\t%s\n}\nhttp://127.0.0.1:%s {\n%s%s}\n' \
		"$admin" "$caddy_port" "$2" "$last" >"$work/Caddyfile.$1"
	XDG_DATA_HOME=$work/xdg XDG_CONFIG_HOME=$work/xdg \
		"$caddy" run --config "$work/Caddyfile.$1" --adapter caddyfile >"$work/caddy.$1.log" 2>&1 &
	caddy_pid=$!
	pids+=("$caddy_pid")
	wait_port "$caddy_port" "$caddy_pid" || die "caddy ($1) did not start: $(cat "$work/caddy.$1.log")"
	if [ -n "${3:-}" ]; then
		wait_port "$3" "$caddy_pid" || die "caddy ($1) has no admin endpoint: $(cat "$work/caddy.$1.log")"
	fi
}

# stop_caddy PID: a graceful stop (SIGTERM) of a Caddy that start_caddy started.
stop_caddy() {
	local pid keep=()
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
	pids=("${keep[@]}")
}

# queue_directive PATH [OPTION_LINES]: groq_webhook with a queue in PATH (and
# OPTION_LINES, each ending in a newline, inside the queue block), delivering
# to the upstream.
queue_directive() {
	printf '\tgroq_webhook {\n\t\tsecret {env.GROQ_WEBHOOK_SECRET}\n\t\tqueue {\n\t\t\tpath %s\n%s\t\t}\n\t\tdeliver {\n\t\t\treverse_proxy 127.0.0.1:%s\n\t\t}\n\t}\n' \
		"$1" "${2:-}" "$upstream_port"
}

# queue_stats ADMIN_PORT: the first queue's "queued in_flight dead" from the
# admin API (GET /groq_webhook/queues).
queue_stats() {
	local json q f d
	json=$(curl -fsS "http://127.0.0.1:$1/groq_webhook/queues") || return 1
	# Parsed in bash, not python: it runs every 0.2 s while Caddy drains.
	[[ $json =~ \"queued\":([0-9]+) ]] && q=${BASH_REMATCH[1]}
	[[ $json =~ \"in_flight\":([0-9]+) ]] && f=${BASH_REMATCH[1]}
	[[ $json =~ \"dead\":([0-9]+) ]] && d=${BASH_REMATCH[1]}
	[ -n "${q:-}" ] && [ -n "${f:-}" ] && [ -n "${d:-}" ] || die "no queue in the admin API's answer: $json"
	echo "$q $f $d"
}

# queue_accepted ADMIN_PORT: how many events this Caddy answered 202 (queued),
# from caddy_groq_webhook_requests_total{provider="groq",result="queued"} on /metrics.
queue_accepted() {
	curl -fsS "http://127.0.0.1:$1/metrics" |
		python3 -c 'import re,sys
m = re.search(r"^caddy_groq_webhook_requests_total\{(?:provider=\"groq\",)?result=\"queued\"\} (\S+)$", sys.stdin.read(), re.M)
print(int(float(m.group(1))) if m else 0)'
}

# wait_drained ADMIN_PORT TIMEOUT: polls the admin API every 0.2 s until the
# queue has queued=0 and in_flight=0; prints "MS queued in_flight dead", MS
# being the milliseconds it took, or -1 if TIMEOUT seconds passed first.
wait_drained() {
	local start now stats
	start=$(date +%s%N)
	while :; do
		stats=$(queue_stats "$1")
		now=$(date +%s%N)
		case $stats in
		"0 0 "*) echo "$(((now - start) / 1000000)) $stats"; return ;;
		esac
		if [ $(((now - start) / 1000000000)) -ge "$2" ]; then echo "-1 $stats"; return; fi
		sleep 0.2
	done
}

# start_redis NAME [REDIS-SERVER ARGS]: a redis-server on a free port, with
# no persistence unless the arguments ask for it; sets $redis_port.
start_redis() {
	local name=$1
	shift
	redis_port=$(free_port)
	mkdir -p "$work/redis.$name"
	redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work/redis.$name" --save '' \
		--appendonly no "$@" >"$work/redis.$name.log" 2>&1 &
	redis_pid=$!
	pids+=("$redis_pid")
	wait_port "$redis_port" "$redis_pid" || die "redis-server did not start: $(cat "$work/redis.$name.log")"
}

# cpu_ticks PID...: the CPU time (user + system, in clock ticks) each PID has
# used so far, then the whole machine's busy and idle ticks, space-separated.
cpu_ticks() {
	local pid stat rest
	for pid in "$@"; do
		stat=$(<"/proc/$pid/stat")
		rest=${stat##*) } # the fields after the command name, from the state on
		read -r -a f <<<"$rest"
		printf '%s ' $((f[11] + f[12]))
	done
	read -r -a f </proc/stat
	printf '%s %s\n' $((f[1] + f[2] + f[3] + f[6] + f[7] + f[8])) $((f[4] + f[5]))
}

# redis_dedupe_directive PORT: groq_webhook de-duplicating in PORT's Redis.
redis_dedupe_directive() {
	printf '\tgroq_webhook {\n\t\tsecret {env.GROQ_WEBHOOK_SECRET}\n\t\tdedupe redis {\n\t\t\taddress 127.0.0.1:%s\n\t\t}\n\t}\n' "$1"
}

# redis_queue_directive NAME: groq_webhook with the queue NAME in
# $redis_port's Redis, delivering to the upstream.
redis_queue_directive() {
	printf '\tgroq_webhook {\n\t\tsecret {env.GROQ_WEBHOOK_SECRET}\n\t\tqueue redis {\n\t\t\taddress 127.0.0.1:%s\n\t\t\tname %s\n\t\t}\n\t\tdeliver {\n\t\t\treverse_proxy 127.0.0.1:%s\n\t\t}\n\t}\n' \
		"$redis_port" "$1" "$upstream_port"
}

webhook_directive=$'\tgroq_webhook {\n\t\tsecret {env.GROQ_WEBHOOK_SECRET}\n\t}\n'

# provider_directive PROVIDER: groq_webhook verifying as PROVIDER with the same secret.
provider_directive() {
	printf '\tgroq_webhook {\n\t\tprovider %s\n\t\tsecret {env.GROQ_WEBHOOK_SECRET}\n\t}\n' "$1"
}

# upstream_counters reset|count|down|up: the upstream's counters as
# "requests bytes verified" (down and up also switch its outage on and off).
upstream_counters() {
	local method=GET
	[ "$1" != count ] && method=POST
	curl -fsS -X "$method" "http://127.0.0.1:$upstream_port/__bench/$1" |
		python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["requests"], c["bytes"], c["verified"])'
}

# next_event: the first event id of the next batch; ids never repeat in one run.
next_event=0
# sign_events SIZE COUNT FILE: COUNT (at most MAX_EVENTS, default 1000000)
# fresh signed events of SIZE bytes, signed as $BENCH_PROVIDER (default groq;
# run_wrk reads it too).
sign_events() {
	local count=$(($2 < ${MAX_EVENTS:-1000000} ? $2 : ${MAX_EVENTS:-1000000}))
	"$work/signer" -provider "${BENCH_PROVIDER:-groq}" -size "$1" -count "$count" -start "$next_event" -out "$3"
	next_event=$((next_event + count))
}

# run_wrk URL EVENTS CONNECTIONS DURATION LOG: prints wrk's BENCH fields.
run_wrk() {
	BENCH_EVENTS=$2 BENCH_THREADS=${THREADS:-2} wrk -t"${THREADS:-2}" -c"$3" -d"$4" \
		--timeout "${WRK_TIMEOUT:-10s}" --latency -s "$bench_dir/signed.lua" "$1" >"$5" 2>&1 ||
		{ cat "$5" >&2; die "wrk failed"; }
	grep '^BENCH ' "$5" | sed 's/^BENCH //' || { cat "$5" >&2; die "wrk printed no BENCH line"; }
}

# forged_status URL [PROVIDER]: the status of a well-formed request signed
# with a wrong secret, as PROVIDER (groq, the default, stripe or standard).
forged_status() {
	local ts body sig headers
	ts=$(date +%s)
	body="{\"id\":\"evt_forged_$RANDOM$RANDOM\",\"type\":\"bench.forged\"}"
	sig=$(printf '%s.%s' "$ts" "$body" | python3 -c 'import hmac,hashlib,sys; print(hmac.new(b"not-the-bench-secret-0000", sys.stdin.buffer.read(), hashlib.sha256).hexdigest())')
	case ${2:-groq} in
	groq) headers=(-H "X-Groq-Timestamp: $ts" -H "X-Groq-Signature: $sig") ;;
	stripe) headers=(-H "Stripe-Signature: t=$ts,v1=$sig") ;;
	standard)
		sig=$(printf 'msg_forged.%s.%s' "$ts" "$body" | python3 -c 'import base64,hmac,hashlib,sys; print(base64.b64encode(hmac.new(b"not-the-bench-secret-0000", sys.stdin.buffer.read(), hashlib.sha256).digest()).decode())')
		headers=(-H "webhook-id: msg_forged" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig") ;;
	*) die "forged_status: unknown provider $2" ;;
	esac
	curl -sS -o /dev/null -w '%{http_code}' -X POST "$1" -H 'Content-Type: application/json' \
		"${headers[@]}" --data-binary "$body"
}
