#!/usr/bin/env bash
# bench/run-share.sh: several `cdpilot run` instances on one Redis (SCHEDULE=redis), measured
# from outside. For each level (a number of instances): one private redis-server (unix
# socket, FLUSHALL between levels), the fixture serving N jsonapi targets (class live, one
# URL each on /json), every instance with its own SCHEDULE_INSTANCE (b1, b2, ...) and
# HOST_CONCURRENCY high enough that the one fixture host is not the limit. After a warm-up
# (every target written once, then a few seconds), bench/share_tool.py measures for SECONDS:
#   - the fraction of targets fresh: every 3 s, MGET {prefix}:latest:* ; a target is fresh
#     when its scraped_at is within 1.5 x the interval of the sample (p50 and min over samples)
#   - scrapes: lines of the fixture's request log (FIXTURE_REQUEST_LOG) in the window, else
#     the instances' cdpilot_tasks_total (the table says which)
#   - Redis CPU (INFO cpu, user + sys, less the usec of the tool's own MGET and INFO and
#     what the server spends idle, measured for 5 s before the first level) and
#     commands (INFO commandstats: all, and EVAL/EVALSHA) per scrape; commandstats also
#     counts the commands that scripts run (redis.call), so "all" is Redis's whole work
#   - cdpilot CPU per scrape: utime + stime of every instance's cdpilot process (/proc; not
#     Chromium's processes)
#   - with 2 or more instances, the takeover: the last instance is SIGKILLed after the tool
#     read its {prefix}:owned:LABEL#* set; the time until every one of those targets has a
#     scraped_at after the kill (max and p50)
#   - one Redis core's limit: scrapes/s at 100 % of a core = 1 / (Redis CPU s per scrape)
# Prints a line per level as it ends, then a table (with the load average after each level);
# JSON lines go to $RESULTS_DIR/share.jsonl (default $BUILD_DIR/bench-results), each
# instance's log (LOG_LEVEL=warn) to $RESULTS_DIR/share-logs/bI-LEVEL-TARGETS.log.
#
# usage: bench/run-share.sh [--levels 1,2,4,8,16] [--targets 2000] [--seconds 60]
#                           [--interval 5] [--lease 15]
#   --targets takes a list too (500,2000,8000): every level runs at every number of targets,
#   which shows how the takeover grows with the targets a dead instance held.
#   QUICK=1: levels 1,2,4, 200 targets, 20 s, lease 5 (a few minutes). BUILD_DIR (default
#   build), NO_BUILD=1 to use the binaries already there; CHROMIUM_PATH as for every benchmark
#   (each instance still launches a browser it does not need for jsonapi targets).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${QUICK:-0}" = 1 ]; then
	levels=1,2,4 targets=200 seconds=20 lease=5
else
	levels=1,2,4,8,16 targets=2000 seconds=60 lease=15
fi
interval=5
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--levels) levels=${2:?--levels needs a value}; shift 2 ;;
	--targets) targets=${2:?--targets needs a value}; shift 2 ;;
	--seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
	--interval) interval=${2:?--interval needs a value}; shift 2 ;;
	--lease) lease=${2:?--lease needs a value}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
bad() { echo "bench/run-share.sh: $1" >&2; exit 2; }
[[ $levels =~ ^[1-9][0-9]?(,[1-9][0-9]?)*$ ]] || bad "--levels '$levels': expected numbers of instances 1..99, comma-separated"
[[ $targets =~ ^[1-9][0-9]{0,4}(,[1-9][0-9]{0,4})*$ ]] || bad "--targets '$targets': expected numbers of targets 1..99999, comma-separated"
[[ $seconds =~ ^[1-9][0-9]{0,4}$ && $seconds -ge 6 ]] || bad "--seconds '$seconds': expected 6..99999"
[[ $interval =~ ^[1-9][0-9]{0,3}$ ]] || bad "--interval '$interval': expected whole seconds 1..9999"
[[ $lease =~ ^[1-9][0-9]{0,3}$ && $lease -ge 2 ]] || bad "--lease '$lease': expected 2..3600 (SCHEDULE_LEASE_SECONDS)"
# shellcheck source=bench/daemon_lib.sh
. bench/daemon_lib.sh
daemon_setup # installs what is missing (scripts/deps.sh bench: python3 for share_tool.py)
for c in redis-server redis-cli python3; do
	command -v "$c" >/dev/null || bad "$c not found (scripts/deps.sh build installs redis-server)"
done
# The fixture again, with its request log ("<unix ms> <path?query>" per request) in $tmp,
# which daemon_setup creates: scrapes are counted from there. A fixture without
# FIXTURE_REQUEST_LOG writes nothing, and they are counted from the instances' metrics.
stop_fixture
request_log=$tmp/requests.log
FIXTURE_REQUEST_LOG=$request_log launch_fixture "$BUILD_DIR"/tests/fixture/cdpilot-fixture
daemon_redis
results=${RESULTS_DIR:-$BUILD_DIR/bench-results}
mkdir -p "$results"
out=$results/share.jsonl
: >"$out"
rm -rf "$results/share-logs"
mkdir -p "$results/share-logs"

# The instances are disowned (bash reaps them, without a "Killed" line for the one the
# takeover SIGKILLs): stopped here by PID, TERM (they release their leases), KILL after 10 s.
inst_pids=()
stop_instances() {
	local p
	for p in "${inst_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${inst_pids[@]}"; do
		for _ in $(seq 1 100); do
			kill -0 "$p" 2>/dev/null || continue 2
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
	done
	inst_pids=()
}
trap 'stop_instances; daemon_cleanup' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(redis-server --version | cut -d' ' -f1-3)"
echo "== $targets jsonapi targets (each number in turn) at ${interval} s, levels $levels, ${seconds} s each, SCHEDULE_LEASE_SECONDS=$lease"

idle_cpu=$(python3 bench/share_tool.py idle --sock "$redis_sock" --seconds 5)
echo "== idle redis-server: $(python3 -c "print('%.2f' % ($idle_cpu * 1000))") ms of CPU per second (taken out of its CPU per scrape)"

IFS=, read -r -a level_list <<<"$levels"
IFS=, read -r -a target_list <<<"$targets"
for nt in "${target_list[@]}"; do
	python3 bench/share_tool.py targets --base "$base" --n "$nt" --out "$tmp/targets.json"
	for n in "${level_list[@]}"; do
		redis-cli -s "$redis_sock" flushall >/dev/null
		redis-cli -s "$redis_sock" config resetstat >/dev/null
		specs=()
		for i in $(seq 1 "$n"); do
			port=$(free_port)
			REDIS_URL="unix://$redis_sock" SCHEDULE=redis SCHEDULE_INSTANCE="b$i" \
				SCHEDULE_LEASE_SECONDS="$lease" LIVE_INTERVAL_SECONDS="$interval" \
				HOST_CONCURRENCY=256 FETCH_CONCURRENCY=64 METRICS_ADDR="127.0.0.1:$port" \
				LOG_LEVEL=warn "$cdpilot" run --targets "$tmp/targets.json" --no-status \
				>"$tmp/b$i.out" 2>"$tmp/b$i-$n-$nt.log" &
			inst_pids+=($!)
			disown $!
			specs+=("b$i:$!:$port")
		done
		kill_args=()
		[ "$n" -ge 2 ] && kill_args=(--kill "b$n")
		echo "== $n instance(s), $nt targets: warming up, then ${seconds} s measured$([ "$n" -ge 2 ] && echo ", then b$n SIGKILLed")"
		spec_list=$(IFS=,; echo "${specs[*]}")
		python3 bench/share_tool.py level --sock "$redis_sock" --n "$nt" \
			--interval "$interval" --seconds "$seconds" --lease "$lease" \
			--warmup $((interval * 2)) --instances "$spec_list" --idle-cpu "$idle_cpu" \
			--request-log "$request_log" --out "$out" "${kill_args[@]}"
		stop_instances
		for i in $(seq 1 "$n"); do
			cp "$tmp/b$i-$n-$nt.log" "$results/share-logs/"
			if [ -s "$tmp/b$i-$n-$nt.log" ]; then
				echo "   b$i logged $(wc -l <"$tmp/b$i-$n-$nt.log") warning(s) or error(s), first:" \
					"$(head -n 1 "$tmp/b$i-$n-$nt.log") (all in $results/share-logs/b$i-$n-$nt.log)"
			fi
		done
	done
done

echo
python3 bench/share_tool.py report "$out"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); JSON lines: $out"
