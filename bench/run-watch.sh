#!/usr/bin/env bash
# bench/run-watch.sh: how many watched live pages one machine keeps current (issue 19,
# point 1), measured from outside. `cdpilot run` watches N live targets of the fixture's
# demo live-score site (/live/match/ID?poll=MS: each page polls the site's JSON API every MS
# ms; a match minute, the value that changes, lasts 5 s), generic adapter, LIVE interval
# 5 s, WATCH_CAP=N. A sampler polls the site's own API (the truth) and another the machine's
# and the processes' CPU. Staleness, every second of the measured window and for every
# target: 0 while what the sink holds is still the match's current state, else the time
# since the site moved past it. A step passes when p95 <= 7.5 s (1.5 x the interval) and
# every target published. Each setting in SIDES climbs the ladder (the settings back to back
# at each N, their order reversed at every other N) until its first failure.
# MODE=navigate: the same targets loaded anew every interval (navigate mode) instead of
# watched, e.g. MODE=navigate SIDES="default fresh:PAGE_REUSE=1" LADDER="50 100 200".
# Raw results: $BUILD_DIR/bench-results/watch/.
#
# usage: bench/run-watch.sh           (about 15-30 minutes, depending on where it breaks)
#        QUICK=1 bench/run-watch.sh   (shorter steps)
# env:   LADDER ("100 200 300 400 500"), POLL_MS (1000), SPEED (0.4: a match minute lasts
#        5 s), WARM_SECONDS (10; QUICK 5), MEASURE_SECONDS (40; QUICK 20), FIRST_TIMEOUT
#        (120), PUSH=1 (targets with push), BUILD_DIR (build), NO_BUILD=1,
#        MODE (watch; or navigate),
#        SIDES ("default frames-off"): each LABEL or LABEL:VAR=VAL[,VAR=VAL...]; known labels
#        default (no change), frames-off (WATCH_FRAMES=off)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
-h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "usage: [QUICK=1] [LADDER='100 200'] [SIDES='default frames-off'] bench/run-watch.sh" >&2; exit 2 ;;
esac

interval=5
ladder=${LADDER:-"100 200 300 400 500"}
poll=${POLL_MS:-1000}
speed=${SPEED:-0.4}
if [ "${QUICK:-0}" = 1 ]; then
	warm=${WARM_SECONDS:-5}
	measure=${MEASURE_SECONDS:-20}
else
	warm=${WARM_SECONDS:-10}
	measure=${MEASURE_SECONDS:-40}
fi
first_timeout=${FIRST_TIMEOUT:-120}
sides=${SIDES:-"default frames-off"}
case ${MODE:-watch} in watch | navigate) ;; *) echo "MODE=$MODE: expected watch or navigate" >&2; exit 2 ;; esac
push=()
[ "${PUSH:-0}" = 1 ] && push=(--push)

side_env() { # side_env SIDE: the extra settings of a side, one per line
	local label=${1%%:*} rest
	case $1 in *:*) rest=${1#*:} ;; *) rest= ;; esac
	case $label in
	default) ;;
	frames-off) echo WATCH_FRAMES=off ;;
	*) [ -n "$rest" ] || { echo "SIDES: unknown setting $label (give LABEL:VAR=VAL)" >&2; return 2; } ;;
	esac
	[ -z "$rest" ] || tr ',' '\n' <<<"$rest"
}
for side in $sides; do side_env "$side" >/dev/null || exit 2; done

# shellcheck source=bench/daemon_lib.sh
. bench/daemon_lib.sh
daemon_setup
outdir=$BUILD_DIR/bench-results/watch
rm -rf "$outdir"
mkdir -p "$outdir"
results=$outdir/results.jsonl
: >"$results"
t_begin=$(date +%s)
echo "== $(nproc) cores; pages poll every $poll ms; a match minute lasts $(node -e "console.log(2/$speed)") s;" \
	"${warm}+${measure} s per step after every target's first snapshot"

# run_step SIDE N: 0 if it passed, 10 if not, other: broken.
run_step() {
	local side=$1 n=$2 label=${1%%:*} d pid tpid spid start ready ws we pss rc=0 extra
	local cap=$((first_timeout + warm + measure + 30))
	d=$outdir/$label-$n
	mkdir -p "$d"
	node bench/verify_tool.js site --base "$base" --n "$n" --speed "$speed"
	node bench/watch_tool.js targets --base "$base" --n "$n" --interval "$interval" --poll "$poll" \
		"${push[@]}" --mode "${MODE:-watch}" --out "$d/targets.json"
	mapfile -t extra < <(side_env "$side")
	node bench/watch_tool.js truth --base "$base" --every-ms 500 --out "$d/truth.jsonl" &
	tpid=$!
	bg_track "$tpid"
	start=$(now_ms)
	env BLOCK_RESOURCES=none "LIVE_INTERVAL_SECONDS=$interval" "WATCH_CAP=$n" RECYCLE_UPTIME_SECONDS=0 \
		"${extra[@]}" "$cdpilot" run --targets "$d/targets.json" --output "$d/out.jsonl" \
		--duration "$cap" --no-status 2>"$d/log" &
	pid=$!
	bg_track "$pid"
	node bench/watch_tool.js tree --pid "$pid" --out "$d/tree.jsonl" &
	spid=$!
	ready=$(node bench/daemon_tool.js wait-first --out "$d/out.jsonl" --targets "$d/targets.json" \
		--timeout "$first_timeout")
	ws=$((ready + warm * 1000))
	we=$((ws + measure * 1000))
	sleep $((warm + measure))
	pss=$(node bench/watch_tool.js pss --pid "$pid")
	sleep 1
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || { echo "   cdpilot exited with $? (log: $d/log)"; tail -n 5 "$d/log" | sed 's/^/   | /'; }
	wait "$spid" || true
	kill -TERM "$tpid" 2>/dev/null || true
	wait "$tpid" 2>/dev/null || true
	node bench/watch_tool.js report --truth "$d/truth.jsonl" --sink "$d/out.jsonl" \
		--targets "$d/targets.json" --tree "$d/tree.jsonl" --start "$start" --ws "$ws" --we "$we" \
		--interval "$interval" --label "$label" --n "$n" --pss "$pss" --results "$results" || rc=$?
	return $rc
}

declare -A failed
step=0
for n in $ladder; do
	order=$sides
	step=$((step + 1))
	[ $((step % 2)) = 0 ] && order=$(echo "$sides" | tr ' ' '\n' | tac | tr '\n' ' ')
	left=0
	for side in $order; do
		[ -z "${failed[$side]:-}" ] || continue
		left=1
		rc=0
		run_step "$side" "$n" || rc=$?
		[ "$rc" = 0 ] || failed[$side]=$n
	done
	[ "$left" = 1 ] || break
done

echo
echo "== results ($(($(date +%s) - t_begin)) s; interval ${interval} s, pages polling every $poll ms)"
node bench/watch_tool.js table --results "$results"
echo "raw results: $outdir/"
