#!/usr/bin/env bash
# bench/run-store.sh: the Redis benchmark. Snapshot writes per second through cdpilot's
# store (cdpilot-bench-store: each write one Lua script doing SET latest + SET seq + XADD +
# PUBLISH) against redis-benchmark SET with the same payload size, at -P 1 and -P 16, on one
# private redis-server (unix socket in a temp dir, persistence off), all in the same run.
# Each run does the three one after the other, FLUSHALL before each; prints a table per run
# and a summary (median, min, max over the runs). Raw JSON lines go to
# $BUILD_DIR/bench-results/store.jsonl.
#
# usage: bench/run-store.sh [--runs 3] [--results 200000] [--targets 1000] [--size 512]
#                           [--window 256]
#   BUILD_DIR (default build-bench-store), NO_BUILD=1 to use binaries already built there.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
results=200000
targets=1000
size=512
window=256
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs=${2:?--runs needs a value}; shift 2 ;;
	--results) results=${2:?--results needs a value}; shift 2 ;;
	--targets) targets=${2:?--targets needs a value}; shift 2 ;;
	--size) size=${2:?--size needs a value}; shift 2 ;;
	--window) window=${2:?--window needs a value}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
for v in runs results targets size window; do
	if ! [[ ${!v} =~ ^[1-9][0-9]{0,8}$ ]]; then
		echo "bench/run-store.sh: --$v '${!v}': expected a positive integer" >&2
		exit 2
	fi
done
for c in redis-server redis-benchmark redis-cli node cmake; do
	if ! command -v "$c" >/dev/null; then
		echo "bench/run-store.sh: $c not found (Debian: redis-server brings redis-tools;" \
			"scripts/deps.sh build installs the rest)" >&2
		exit 1
	fi
done

build=${BUILD_DIR:-build-bench-store}
if [ "${NO_BUILD:-0}" != 1 ]; then
	echo "== building cdpilot-bench-store into $build/"
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo --log-level=WARNING
	cmake --build "$build" -j2 --target cdpilot-bench-store
fi
bin=$build/bench/cdpilot-bench-store
results_dir=$build/bench-results
mkdir -p "$results_dir"
out=$results_dir/store.jsonl
: >"$out"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cdpilot-bench-store-XXXXXX")
sock=$tmp/redis.sock
srv_pid=
cleanup() {
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});')
redis-server --port "$port" --bind 127.0.0.1 --unixsocket "$sock" --unixsocketperm 700 \
	--dir "$tmp" --save "" --appendonly no --daemonize no --loglevel warning \
	--logfile redis.log &
srv_pid=$!
for _ in $(seq 100); do
	redis-cli -s "$sock" ping >/dev/null 2>&1 && break
	sleep 0.1
done
redis-cli -s "$sock" ping >/dev/null || { echo "redis-server did not start; see $tmp/redis.log" >&2; exit 1; }
echo "== redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') pid $srv_pid on $sock (port $port)"

# CPU time of the redis-server, in microseconds (utime + stime of /proc/PID/stat, whose
# fields are counted after the last ')': the command name may contain spaces).
clk=$(getconf CLK_TCK)
srv_cpu_us() {
	local st
	st=$(cat "/proc/$srv_pid/stat")
	st=${st##*) }
	awk -v clk="$clk" '{ printf "%.0f\n", ($12 + $13) * 1e6 / clk }' <<<"$st"
}

status=0
for run in $(seq "$runs"); do
	echo "== run $run/$runs: cdpilot, $results results over $targets targets, ~$size B snapshots, window $window"
	redis-cli -s "$sock" flushall >/dev/null
	c0=$(srv_cpu_us)
	if line=$("$bin" --url "unix://$sock" --results "$results" --targets "$targets" \
		--size "$size" --window "$window" 2>>"$results_dir/store-cdpilot.log"); then
		c1=$(srv_cpu_us)
		printf '%s\n' "${line%\}},\"run\":$run,\"server_cpu_us\":$((c1 - c0))}" >>"$out"
	else
		echo "cdpilot-bench-store failed; see $results_dir/store-cdpilot.log" >&2
		status=1
		continue
	fi
	# redis-benchmark's value: the mean serialised snapshot size cdpilot just wrote.
	bytes=$(node -e 'console.log(JSON.parse(process.argv[1]).snapshot_bytes)' "$line")
	for p in 1 16; do
		echo "== run $run/$runs: redis-benchmark SET -P $p, $results requests of $bytes B"
		redis-cli -s "$sock" flushall >/dev/null
		c0=$(srv_cpu_us)
		csv=$(redis-benchmark -s "$sock" -t set -n "$results" -d "$bytes" -r "$targets" \
			-c 50 -P "$p" --csv 2>>"$results_dir/store-redis-benchmark.log") || {
			echo "redis-benchmark failed" >&2
			status=1
			continue
		}
		c1=$(srv_cpu_us)
		rps=$(awk -F'"' '$2 == "SET" { print $4 }' <<<"$csv")
		if [ -z "$rps" ]; then
			echo "no SET line in redis-benchmark's output: $csv" >&2
			status=1
			continue
		fi
		printf '{"side":"redis-benchmark","run":%d,"pipeline":%d,"clients":50,"requests":%d,"bytes":%d,"requests_per_s":%s,"server_cpu_us":%d}\n' \
			"$run" "$p" "$results" "$bytes" "$rps" $((c1 - c0)) >>"$out"
	done
done

echo
node - "$out" <<'JS' || status=1
'use strict';
const fs = require('node:fs');
const rows = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const f = (x) => (typeof x !== 'number' || !Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(2));
const table = (lines) => {
  const w = lines[0].map((_, i) => Math.max(...lines.map((r) => r[i].length)));
  for (const [i, r] of lines.entries()) {
    console.log(r.map((c, j) => (j === 0 ? c.padEnd(w[j]) : c.padStart(w[j]))).join(' | '));
    if (i === 0) console.log(w.map((n) => '-'.repeat(n)).join('-|-'));
  }
};
const runs = [...new Set(rows.map((r) => r.run))];
const per = [];
for (const run of runs) {
  const c = rows.find((r) => r.side === 'cdpilot' && r.run === run);
  const p1 = rows.find((r) => r.side === 'redis-benchmark' && r.run === run && r.pipeline === 1);
  const p16 = rows.find((r) => r.side === 'redis-benchmark' && r.run === run && r.pipeline === 16);
  if (!c || !p1 || !p16) continue;
  per.push({
    run,
    bytes: c.snapshot_bytes,
    cdp: c.writes_per_s,
    p1: p1.requests_per_s,
    p16: p16.requests_per_s,
    r1: c.writes_per_s / p1.requests_per_s,
    r16: c.writes_per_s / p16.requests_per_s,
    cpu: c.cpu_us_per_write,
    build: c.build_cpu_us,
    srv: c.server_cpu_us / c.writes_ok,
    srv1: p1.server_cpu_us / p1.requests,
    srv16: p16.server_cpu_us / p16.requests,
    rss: c.peak_rss_mb,
    coalesced: c.coalesced,
    errors: c.write_errors + c.refused_seq,
  });
}
if (!per.length) { console.log('no complete run'); process.exit(1); }
const cols = [
  ['cdpilot snapshot writes/s', 'cdp'],
  ['redis-benchmark SET/s -P 1', 'p1'],
  ['redis-benchmark SET/s -P 16', 'p16'],
  ['ratio cdpilot / SET -P 1', 'r1'],
  ['ratio cdpilot / SET -P 16', 'r16'],
  ['cdpilot CPU per write (us)', 'cpu'],
  ['  of which building it (us)', 'build'],
  ['cdpilot peak RSS (MB)', 'rss'],
  ['server CPU per write (us)', 'srv'],
  ['server CPU per SET -P 1 (us)', 'srv1'],
  ['server CPU per SET -P 16 (us)', 'srv16'],
  ['coalesced results', 'coalesced'],
];
const lines = [['metric', ...per.map((p) => `run ${p.run}`), 'median', 'min', 'max']];
for (const [label, k] of cols) {
  const v = per.map((p) => p[k]);
  const s = [...v].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  lines.push([label, ...v.map(f), f(med), f(s[0]), f(s[s.length - 1])]);
}
console.log(`payload ${per[0].bytes} B (the mean serialised snapshot); a cdpilot write = 1 EVALSHA running ` +
            'SET latest + SET seq + XADD + PUBLISH; redis-benchmark: 50 clients, one SET each request');
table(lines);
console.log('ratio = cdpilot snapshot writes/s / redis-benchmark SET/s (whole snapshot publications vs single SETs).');
const bad = per.filter((p) => p.coalesced || p.errors);
if (bad.length) { console.log('runs with coalesced, refused or failed writes:', bad.map((p) => p.run).join(', ')); process.exitCode = 1; }
JS
echo "raw results: $out"
exit "$status"
