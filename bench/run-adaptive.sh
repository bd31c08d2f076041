#!/usr/bin/env bash
# bench/run-adaptive.sh: how many adaptive targets (docs/targets.md "adaptive") one
# instance keeps fresh at a 5 s interval (issue 19 point 2). One `cdpilot run` on the
# fixture's live-score site (500 matches, a match minute a real minute), N livescore
# targets with "adaptive": true, N going up a ladder by SIGHUP (targets already learned keep
# their endpoint). Per rung: the learning (every new target's page read once, its endpoint
# found: how long, how many per second), then a measuring window: endpoint reads per second
# against the N/5 wanted, the CPU of cdpilot and of its Chromium, the read and verified ages
# of /metrics (class live, p95 and max), the age of what the sink holds at the end (per
# target, since its last snapshot: p50/p95/max), checks, drops, health and the load average,
# and the staleness of what the sink held judged against the site's own API (the truth, as
# bench/run-watch.sh judges watched pages: p50/p95/max, pass when p95 <= 1.5 x interval).
# Checks against the page cost one page load per target per ADAPTIVE_VERIFY_SECONDS: the
# default here (600 s) keeps them a small share; VERIFY_SECONDS=60 shows the browser's limit.
# After the ladder, the top rung's targets get shorter intervals (FASTER, default "2.5
# 1.25": twice and four times the reads of N at 5 s) without learning again (a change of
# interval keeps a learned endpoint), to find where endpoint reading itself runs out.
# Everything runs under nice -n 19; the build is -j1. Raw results:
# $BUILD_DIR/bench-results/adaptive/.
#
# usage: bench/run-adaptive.sh                 (LADDER "500 1000 2000": about 15 minutes on 2 busy cores)
#        LADDER="500 1000 2000 4000" bench/run-adaptive.sh
# env:   LADDER, FASTER, MEASURE_SECONDS (30), VERIFY_SECONDS (600), CONC (CONCURRENCY_CAP, 4),
#        FETCH (FETCH_CONCURRENCY, 32), LEARN_TIMEOUT (300 s a rung), SPEED (0.0333333: a
#        match minute lasts a real minute; 0.4: 5 s, as bench/run-watch.sh),
#        BUILD_DIR (build), NO_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
-h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "usage: [LADDER=\"500 1000 2000\"] bench/run-adaptive.sh" >&2; exit 2 ;;
esac

ladder=${LADDER:-"500 1000 2000"}
faster=${FASTER:-"2.5 1.25"}
interval=5
measure=${MEASURE_SECONDS:-30}
verify_s=${VERIFY_SECONDS:-600}
conc=${CONC:-4}
fetch=${FETCH:-32}
learn_timeout=${LEARN_TIMEOUT:-300}
speed=${SPEED:-0.0333333}
BUILD_DIR=${BUILD_DIR:-build}

if [ "${NO_BUILD:-0}" != 1 ]; then
	nice -n 19 cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo --log-level=WARNING
	nice -n 19 cmake --build "$BUILD_DIR" -j1 --target cdpilot cdpilot-fixture
fi
cdpilot=$BUILD_DIR/daemon/cdpilot
fixture=$BUILD_DIR/tests/fixture/cdpilot-fixture
outdir=$BUILD_DIR/bench-results/adaptive
rm -rf "$outdir"
mkdir -p "$outdir"
results=$outdir/results.jsonl
: >"$results"
tool="python3 bench/adaptive_tool.py"

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

nice -n 19 "$fixture" --port 0 --live-matches 500 --live-speed "$speed" \
	>"$outdir/fixture.out" 2>"$outdir/fixture.log" &
pids+=($!)
base=
for _ in $(seq 1 100); do
	line=$(head -n 1 "$outdir/fixture.out" 2>/dev/null || true)
	case "$line" in "listening on http://"*) base=${line#listening on }; break ;; esac
	sleep 0.1
done
[ -n "$base" ] || { echo "$0: the fixture did not start" >&2; cat "$outdir/fixture.log" >&2; exit 1; }

# The truth: the site's own API, polled every 500 ms (bench/watch_tool.js truth), against
# which each window judges what the sink held (bench/watch_tool.js report: staleness 0 while
# a target's newest snapshot is still its match's state, else the time since the match
# moved past it).
node bench/watch_tool.js truth --base "$base" --every-ms 500 --out "$outdir/truth.jsonl" &
pids+=($!)
judge() { # judge N INTERVAL RUNG_START WS WE
	node bench/watch_tool.js report --truth "$outdir/truth.jsonl" --sink "$outdir/out.jsonl" \
		--targets "$outdir/targets.json" --start "$3" --ws "$4" --we "$5" --interval "$2" \
		--label "adaptive@${2}s" --n "$1" --results "$outdir/judged.jsonl" || true
}
now_ms() { date +%s%3N; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
first=${ladder%% *}
$tool targets --base "$base" --n "$first" --interval "$interval" --out "$outdir/targets.json"
nice -n 19 env CONCURRENCY_CAP="$conc" HOST_CONCURRENCY=64 FETCH_CONCURRENCY="$fetch" \
	MAX_QUEUE_DEPTH=100000 ADAPTIVE_VERIFY_SECONDS="$verify_s" TARGETS_WATCH_MS=0 \
	METRICS_ADDR="127.0.0.1:$port" LOG_LEVEL=warn \
	"$cdpilot" run --targets "$outdir/targets.json" --output "$outdir/out.jsonl" --no-status \
	2>"$outdir/cdpilot.log" &
pid=$!
pids+=("$pid")
echo "== adaptive targets at ${interval} s: ladder $ladder, CONCURRENCY_CAP=$conc," \
	"FETCH_CONCURRENCY=$fetch, ADAPTIVE_VERIFY_SECONDS=$verify_s, windows of ${measure} s;" \
	"load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $ladder; do
	if [ "$n" != "$first" ]; then
		$tool targets --base "$base" --n "$n" --interval "$interval" --out "$outdir/targets.new"
		mv "$outdir/targets.new" "$outdir/targets.json"
		kill -HUP "$pid"
	fi
	rung_start=$(now_ms)
	$tool wait-learned --status "http://127.0.0.1:$port/status" --n "$n" \
		--timeout "$learn_timeout" | tee -a "$results"
	ws=$(now_ms)
	$tool window --pid "$pid" --metrics "http://127.0.0.1:$port/metrics" \
		--status "http://127.0.0.1:$port/status" --sink "$outdir/out.jsonl" \
		--seconds "$measure" --n "$n" --interval "$interval" --results "$results" >/dev/null
	we=$(now_ms)
	tail -n 1 "$results"
	judge "$n" "$interval" "$rung_start" "$ws" "$we"
done
for iv in $faster; do
	$tool targets --base "$base" --n "$n" --interval "$iv" --out "$outdir/targets.new"
	mv "$outdir/targets.new" "$outdir/targets.json"
	kill -HUP "$pid"
	rung_start=$(now_ms)
	sleep 10 # the new intervals taken, the first reads at them done
	ws=$(now_ms)
	$tool window --pid "$pid" --metrics "http://127.0.0.1:$port/metrics" \
		--status "http://127.0.0.1:$port/status" --sink "$outdir/out.jsonl" \
		--seconds "$measure" --n "$n" --interval "$iv" --results "$results" >/dev/null
	we=$(now_ms)
	tail -n 1 "$results"
	judge "$n" "$iv" "$rung_start" "$ws" "$we"
done
echo
echo "== results"
$tool table --results "$results"
echo
echo "== judged from outside (the sink against the site's API; pass: p95 <= 1.5 x the interval)"
node bench/watch_tool.js table --results "$outdir/judged.jsonl"
echo "raw results: $outdir/"
