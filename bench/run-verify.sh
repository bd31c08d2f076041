#!/usr/bin/env bash
# bench/run-verify.sh: the cost of verifying watched pages (issue 15) and how long a frozen
# page stays unnoticed. `cdpilot run` watches N live targets (the fixture's demo live-score
# site, /live/match/ID, generic adapter, LIVE interval 5 s, WATCH_CAP=N), with verification
# ON (the defaults) and OFF (WATCH_VERIFY_SECONDS=0), the two sides alternating over several
# rounds (ABBA order: the machine is shared); per side tasks/s, controller CPU per task
# (/proc of the cdpilot process), verification reads/s, and the ratios ON/OFF. Then, with
# verification ON, M matches are muted one after the other (their open pages' feed dies):
# for each, how long the sink kept stale data after the match's true state next changed
# (p50/p95/max). Raw results: $BUILD_DIR/bench-results/verify/.
#
# usage: bench/run-verify.sh            (about 16 minutes at N=100)
#        QUICK=1 bench/run-verify.sh    (about 8 minutes at N=100: 2 rounds, shorter windows)
# env:   N (100), M (20), BUILD_DIR (build), NO_BUILD=1, ROUNDS (3; QUICK 2), WARM_SECONDS
#        (20; QUICK 10), MEASURE_SECONDS (60; QUICK 30), SPEED (0.0333333: a match minute
#        lasts a real minute), FIRST_TIMEOUT (90), FREEZE_STAGGER_MS (3000; QUICK 2000),
#        FREEZE_TIMEOUT (120 s from a mute), VERIFY_SECONDS (60) and VERIFY_UNCHANGED_SECONDS
#        (0) of side ON, FREEZE=0 to skip the freeze phase, COST=0 to skip the ON/OFF rounds
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
-h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "usage: [QUICK=1] [N=100] [M=20] bench/run-verify.sh" >&2; exit 2 ;;
esac

interval=5
conc=8
n=${N:-100}
m=${M:-20}
if [ "${QUICK:-0}" = 1 ]; then
	rounds=${ROUNDS:-2}
	warm=${WARM_SECONDS:-10}
	measure=${MEASURE_SECONDS:-30}
	stagger_ms=${FREEZE_STAGGER_MS:-2000}
else
	rounds=${ROUNDS:-3}
	warm=${WARM_SECONDS:-20}
	measure=${MEASURE_SECONDS:-60}
	stagger_ms=${FREEZE_STAGGER_MS:-3000}
fi
speed=${SPEED:-0.0333333}
first_timeout=${FIRST_TIMEOUT:-90}
freeze_timeout=${FREEZE_TIMEOUT:-120}
verify_s=${VERIFY_SECONDS:-60}
verify_unchanged_s=${VERIFY_UNCHANGED_SECONDS:-0}

# shellcheck source=bench/daemon_lib.sh
. bench/daemon_lib.sh
outdir=$BUILD_DIR/bench-results/verify
rm -rf "$outdir"
mkdir -p "$outdir"
results=$outdir # the browser banner (daemon_setup) writes chromium-version.json there
daemon_setup
results=$outdir/results.jsonl
: >"$results"
t_begin=$(date +%s)
node bench/verify_tool.js targets --base "$base" --n "$n" --interval "$interval" \
	--out "$outdir/targets.json"

# The daemon's settings: those of bench/run-daemon.sh (concurrency 8, the per-host limit
# lifted to it, no resource blocking, no recycling by uptime), every target watched
# (WATCH_CAP=N), and verification ON (the defaults, explicit) or OFF.
# (An array, not a function: `env ... cdpilot &` must be the process whose pid $! is.)
daemon_env() {
	port=$(node bench/daemon_tool.js port)
	denv=("CONCURRENCY_CAP=$conc" "HOST_CONCURRENCY=$conc" BLOCK_RESOURCES=none
		"LIVE_INTERVAL_SECONDS=$interval" "WATCH_CAP=$n" RECYCLE_UPTIME_SECONDS=0
		"METRICS_ADDR=127.0.0.1:$port")
	if [ "$1" = on ]; then
		denv+=("WATCH_VERIFY_SECONDS=$verify_s" "WATCH_VERIFY_UNCHANGED_SECONDS=$verify_unchanged_s")
	else
		denv+=(WATCH_VERIFY_SECONDS=0)
	fi
}

# start_daemon SIDE DIR SECONDS: a fresh site (N matches live, kick-offs spread over a match
# minute), then cdpilot on it; sets $pid and $port, and waits until every target has its
# first snapshot (at most FIRST_TIMEOUT s: opening N pages is not the steady state).
start_daemon() {
	local side=$1 d=$2 cap=$3
	mkdir -p "$d"
	node bench/verify_tool.js site --base "$base" --n "$n" --speed "$speed"
	daemon_env "$side"
	env "${denv[@]}" "$cdpilot" run --targets "$outdir/targets.json" --output "$d/out.jsonl" \
		--duration "$cap" --no-status 2>"$d/log" &
	pid=$!
	bg_track "$pid"
	node bench/daemon_tool.js wait-first --out "$d/out.jsonl" --targets "$outdir/targets.json" \
		--timeout "$first_timeout" >/dev/null
}

stop_daemon() {
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || { echo "   cdpilot exited with $? (log: $1/log)"; tail -n 5 "$1/log" | sed 's/^/   | /'; }
}

# run_side SIDE ROUND: warm-up, then one measuring window (verify_tool.js window).
run_side() {
	local side=$1 round=$2 d
	d=$outdir/$side-$round
	start_daemon "$side" "$d" $((first_timeout + warm + measure + 60))
	sleep "$warm"
	node bench/verify_tool.js window --pid "$pid" --metrics "http://127.0.0.1:$port/metrics" \
		--seconds "$measure" --side "$side" --round "$round" --n "$n" --interval "$interval" \
		--results "$results" || echo "   window failed (log: $d/log)"
	stop_daemon "$d"
}

if [ "${COST:-1}" = 1 ]; then
	echo "== the cost: $n watched live targets at ${interval} s, verification ON (WATCH_VERIFY_SECONDS=$verify_s," \
		"WATCH_VERIFY_UNCHANGED_SECONDS=$verify_unchanged_s) and OFF (0), $rounds round(s) of ${warm} s" \
		"warm-up + ${measure} s measured after every target's first snapshot; demo speed $speed"
	for r in $(seq 1 "$rounds"); do
		if [ $((r % 2)) = 1 ]; then order="on off"; else order="off on"; fi
		for side in $order; do run_side "$side" "$r"; done
	done
fi

if [ "${FREEZE:-1}" = 1 ]; then
	echo "== frozen pages: verification ON, $n watched targets, $m matches muted one every" \
		"${stagger_ms} ms after ${warm} s of warm-up (each followed for at most ${freeze_timeout} s)"
	d=$outdir/freeze
	start_daemon on "$d" $((first_timeout + warm + m * stagger_ms / 1000 + freeze_timeout + 60))
	sleep "$warm"
	node bench/verify_tool.js freeze --base "$base" --n "$n" --m "$m" --out "$d/out.jsonl" \
		--metrics "http://127.0.0.1:$port/metrics" --stagger-ms "$stagger_ms" \
		--mute-ms $(((m * stagger_ms / 1000 + freeze_timeout + 60) * 1000)) \
		--timeout "$freeze_timeout" --results "$results" --events "$d/freezes.jsonl" \
		|| echo "   freeze phase failed (log: $d/log)"
	stop_daemon "$d"
fi

echo
echo "== results ($(($(date +%s) - t_begin)) s; N=$n, interval ${interval} s, concurrency $conc," \
	"demo speed $speed)"
node bench/verify_tool.js table --results "$results"
echo "raw results: $outdir/"
