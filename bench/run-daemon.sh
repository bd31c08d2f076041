#!/usr/bin/env bash
# bench/run-daemon.sh: the daemon schedule benchmark. The largest number of live targets at
# a 5 s interval that this machine keeps at p95 age <= 7.5 s (1.5 x the interval), in
# navigate and in watch mode, for `cdpilot run` and for the same schedule driven by
# Playwright and by Puppeteer (bench/pw_schedule.js, bench/pp_schedule.js: same Chromium and
# switches, same pages, concurrency 8, one context per scrape), the sides back to back at
# each N, their order reversed at every other step, with controller CPU per task and
# controller RSS, and cdpilot's ratios against both peers; then, in watch
# mode with push, the p50/p95 delay from a change on the page to its delta in the sink.
# Targets: the fixture's demo live-score site (/live/match/ID, every match kicked off
# through /live/ctl/start), read by the generic adapter. Raw results:
# $BUILD_DIR/bench-results/daemon/ (results.jsonl and every step's output and logs).
#
# usage: bench/run-daemon.sh            (about 15-20 minutes)
#        QUICK=1 bench/run-daemon.sh    (about 6 minutes: coarser ladders, shorter steps)
# env:   BUILD_DIR (build), NO_BUILD=1, NAV_LADDER, WATCH_LADDER, WARM_SECONDS,
#        MEASURE_SECONDS, FIRST_TIMEOUT (60), PUSH_TARGETS (16), PUSH_SECONDS (60),
#        SIDES ("cdpilot playwright puppeteer"),
#        MODES ("navigate watch"), PUSH=0 to skip the push measurement
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
-h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "usage: [QUICK=1] bench/run-daemon.sh" >&2; exit 2 ;;
esac

interval=5
conc=8
if [ "${QUICK:-0}" = 1 ]; then
	nav_ladder=${NAV_LADDER:-"16 32 64"}
	watch_ladder=${WATCH_LADDER:-"32 64 128"}
	warm=${WARM_SECONDS:-8}
	measure=${MEASURE_SECONDS:-20}
	resolution=16
	push_seconds=${PUSH_SECONDS:-30}
else
	nav_ladder=${NAV_LADDER:-"8 16 32 64 128"}
	watch_ladder=${WATCH_LADDER:-"16 32 64 128"}
	warm=${WARM_SECONDS:-10}
	measure=${MEASURE_SECONDS:-30}
	resolution=8
	push_seconds=${PUSH_SECONDS:-60}
fi
sides=${SIDES:-"cdpilot playwright puppeteer"}
modes=${MODES:-"navigate watch"}
push_n=${PUSH_TARGETS:-16}
first_timeout=${FIRST_TIMEOUT:-60}

# shellcheck source=bench/daemon_lib.sh
. bench/daemon_lib.sh
daemon_setup
outdir=$BUILD_DIR/bench-results/daemon
rm -rf "$outdir"
mkdir -p "$outdir"
results=$outdir/results.jsonl
: >"$results"
t_begin=$(date +%s)

# The daemon's settings: the same concurrency as the Playwright side, the per-host limit
# lifted to it (every target is on 127.0.0.1), no resource blocking (Playwright blocks
# nothing), no recycling by uptime during a step.
# (An array, not a function: `env ... cdpilot &` must be the process whose pid $! is.)
daemon_env() {
	denv=("CONCURRENCY_CAP=$conc" "HOST_CONCURRENCY=$conc" BLOCK_RESOURCES=none
		"LIVE_INTERVAL_SECONDS=$interval" WATCH_CAP=1024 RECYCLE_UPTIME_SECONDS=0
		METRICS_ADDR="127.0.0.1:$(node bench/daemon_tool.js port)")
}

declare -A peer_script=([playwright]=pw_schedule.js [puppeteer]=pp_schedule.js)
for side in $sides; do
	case $side in cdpilot | playwright | puppeteer) ;; *)
		echo "SIDES: unknown side $side (expected cdpilot, playwright, puppeteer)" >&2
		exit 2
		;;
	esac
done

# run_step SIDE MODE N: one step; returns 0 if it passed, 10 if not, other: broken. The
# controller runs until every target has its first snapshot (at most FIRST_TIMEOUT s),
# then warm + measure seconds more, and is stopped with SIGTERM (both sides finish the
# scrapes in flight and close the browser).
run_step() {
	local side=$1 mode=$2 n=$3 d pid spid start ready rc=0
	local cap=$((first_timeout + warm + measure + 30))
	d=$outdir/$side-$mode-$n
	mkdir -p "$d"
	node bench/daemon_tool.js site --base "$base" --n "$n"
	node bench/daemon_tool.js targets --base "$base" --n "$n" --mode "$mode" \
		--interval "$interval" --out "$d/targets.json"
	start=$(now_ms)
	if [ "$side" = cdpilot ]; then
		daemon_env
		env "${denv[@]}" "$cdpilot" run --targets "$d/targets.json" --output "$d/out.jsonl" \
			--duration "$cap" --no-status 2>"$d/log" &
	else
		node "bench/${peer_script[$side]}" --targets "$d/targets.json" --output "$d/out.jsonl" \
			--duration "$cap" --concurrency "$conc" 2>"$d/log" &
	fi
	pid=$!
	bg_track "$pid"
	node bench/daemon_tool.js sample --pid "$pid" --out "$d/samples.jsonl" &
	spid=$!
	ready=$(node bench/daemon_tool.js wait-first --out "$d/out.jsonl" --targets "$d/targets.json" \
		--timeout "$first_timeout")
	sleep $((warm + measure + 1))
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || { echo "   $side exited with $? (log: $d/log)"; tail -n 5 "$d/log" | sed 's/^/   | /'; }
	wait "$spid" || true
	node bench/daemon_report.js step --side "$side" --mode "$mode" --n "$n" \
		--interval "$interval" --targets "$d/targets.json" --out "$d/out.jsonl" \
		--samples "$d/samples.jsonl" --start "$start" --ready "$ready" --warm "$warm" \
		--measure "$measure" --results "$results" || rc=$?
	return $rc
}

# ladder MODE LIST: every side up the ladder, the sides back to back at each N, in reverse
# order at every other N (so all see about the same background load), until each has failed
# once; then, per side, the gap
# between its last pass and its first failure is halved down to the resolution.
ladder() {
	local mode=$1 list=$2 n side rc mid gap left order step=0
	declare -A pass fail
	echo "== $mode mode: ladder $list (then bisect), ${warm}+${measure} s per step after" \
		"every target's first snapshot"
	for side in $sides; do pass[$side]=0; fail[$side]=0; done
	for n in $list; do
		left=0
		order=$sides
		step=$((step + 1))
		[ $((step % 2)) = 0 ] && order=$(echo "$sides" | tr ' ' '\n' | tac | tr '\n' ' ')
		for side in $order; do
			[ "${fail[$side]}" = 0 ] || continue
			left=1
			rc=0
			run_step "$side" "$mode" "$n" || rc=$?
			if [ "$rc" = 0 ]; then pass[$side]=$n; else fail[$side]=$n; fi
		done
		[ "$left" = 1 ] || break
	done
	for side in $sides; do
		while [ "${fail[$side]}" -gt 0 ]; do
			gap=$((fail[$side] - pass[$side]))
			if [ "$gap" -le "$resolution" ] || [ "$gap" -le $((pass[$side] / 4)) ]; then break; fi
			mid=$(((pass[$side] + fail[$side]) / 2 / resolution * resolution))
			if [ "$mid" -le "${pass[$side]}" ] || [ "$mid" -ge "${fail[$side]}" ]; then break; fi
			rc=0
			run_step "$side" "$mode" "$mid" || rc=$?
			if [ "$rc" = 0 ]; then pass[$side]=$mid; else fail[$side]=$mid; fi
		done
	done
}

for mode in $modes; do
	case $mode in navigate) list=$nav_ladder ;; watch) list=$watch_ladder ;; *)
		echo "unknown mode $mode" >&2
		exit 2
		;;
	esac
	ladder "$mode" "$list"
done

if [ "${PUSH:-1}" = 1 ] && [[ " $sides " == *" cdpilot "* ]]; then
	echo "== cdpilot, watch mode with push: $push_n targets, a goal every ~1 s for ${push_seconds} s"
	d=$outdir/push
	mkdir -p "$d"
	# speed 0: the demo clock stands still, so a goal is the only change on a page
	node bench/daemon_tool.js site --base "$base" --n "$push_n" --speed 0
	node bench/daemon_tool.js targets --base "$base" --n "$push_n" --mode watch --push \
		--interval "$interval" --out "$d/targets.json"
	daemon_env
	env "${denv[@]}" "$cdpilot" run --targets "$d/targets.json" --output "$d/out.jsonl" \
		--duration $((first_timeout + push_seconds + 60)) --no-status 2>"$d/log" &
	pid=$!
	bg_track "$pid"
	node bench/daemon_tool.js wait-first --out "$d/out.jsonl" --targets "$d/targets.json" \
		--timeout "$first_timeout" >/dev/null
	sleep 2
	node bench/daemon_tool.js goals --base "$base" --n "$push_n" --seconds "$push_seconds" \
		--out "$d/goals.jsonl" 2>"$d/goals.log" || echo "   some goals failed: $d/goals.log"
	sleep 2
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || echo "   cdpilot exited with $? (log: $d/log)"
	node bench/daemon_report.js push --out "$d/out.jsonl" --goals "$d/goals.jsonl" \
		--results "$results"
fi

echo
echo "== results ($(($(date +%s) - t_begin)) s; interval ${interval} s, concurrency $conc," \
	"steps of ${warm} s warm-up + ${measure} s measured)"
node bench/daemon_report.js table --results "$results"
echo "raw results: $outdir/"
