#!/usr/bin/env bash
# bench/soak/run.sh: the soak. `cdpilot run` for SOAK_MINUTES (default 30) with the browser
# recycled every minute (RECYCLE_UPTIME_SECONDS=60) and tasks flowing all the time
# (SOAK_TARGETS, default 24, live generic targets on the fixture's /js pages every
# LIVE_INTERVAL_SECONDS=2, CONCURRENCY_CAP=8). Every 5 s it samples the processes below
# the daemon, the threads of the daemon and its tree, the daemon's RSS and open fds, from
# /metrics and, at the same moment, from /proc (cross-check), into
# bench/soak/out/soak-<date>.csv; then prints each series' least-squares slope per hour and
# a verdict (flat: the fitted change over the run is at most 5% of the mean, or under a
# small floor: 2 processes, 20 threads, 1 MB, 4 fds), the recycles done and tasks ok/failed,
# and draws bench/soak/out/soak-<date>.png with gnuplot if it is installed. Not part of CI.
# Exits 1 if a series is not flat or the daemon did not exit cleanly; see bench/README.md.
#
# usage: bench/soak/run.sh      env: SOAK_MINUTES (30), SOAK_TARGETS (24),
#        SOAK_WARMUP_SECONDS (60, left out of the fit), BUILD_DIR (build), NO_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/../.."
case "${1:-}" in
-h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "usage: [SOAK_MINUTES=N] bench/soak/run.sh" >&2; exit 2 ;;
esac

minutes=${SOAK_MINUTES:-30}
ntargets=${SOAK_TARGETS:-24}
warmup=${SOAK_WARMUP_SECONDS:-60}
case "$minutes" in '' | *[!0-9]*) echo "SOAK_MINUTES='$minutes': expected whole minutes >= 1" >&2; exit 2 ;; esac
[ "$minutes" -ge 1 ] || { echo "SOAK_MINUTES='$minutes': expected whole minutes >= 1" >&2; exit 2; }

# shellcheck source=bench/daemon_lib.sh
. bench/daemon_lib.sh
daemon_setup
outdir=bench/soak/out
mkdir -p "$outdir"
stamp=$(date -u +%Y%m%d-%H%M%S)
csv=$outdir/soak-$stamp.csv
png=$outdir/soak-$stamp.png
log=$outdir/soak-$stamp.log

node bench/daemon_tool.js js-targets --base "$base" --n "$ntargets" --out "$tmp/targets.json"
port=$(node bench/daemon_tool.js port)
echo "== soak: $minutes min, $ntargets live targets every 2 s, CONCURRENCY_CAP=8," \
	"RECYCLE_UPTIME_SECONDS=60; daemon log: $log"
env CONCURRENCY_CAP=8 HOST_CONCURRENCY=8 RECYCLE_UPTIME_SECONDS=60 LIVE_INTERVAL_SECONDS=2 \
	WATCHDOG_INTERVAL_SECONDS=5 METRICS_ADDR="127.0.0.1:$port" \
	"$cdpilot" run --targets "$tmp/targets.json" --output "$tmp/out.jsonl" \
	--duration $((minutes * 60 + 120)) --no-status 2>"$log" &
pid=$!
bg_track "$pid"
node bench/daemon_tool.js wait-status --url "http://127.0.0.1:$port/status" --timeout 60
node bench/soak/sample.js --pid "$pid" --url "http://127.0.0.1:$port" --out "$csv" \
	--seconds $((minutes * 60)) --every 5 || true
status=0
kill -0 "$pid" 2>/dev/null || { echo "cdpilot exited before the end (log: $log)"; status=1; }
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" || { status=$?; echo "cdpilot exited with $status (log: $log)"; }

echo
echo "== soak results ($csv)"
node bench/soak/analyse.js --csv "$csv" --warmup "$warmup" --fit "$tmp/fit.gp" || status=1
if command -v gnuplot >/dev/null 2>&1; then
	gnuplot -e "csv='$csv'; png='$png'; fit='$tmp/fit.gp'; title='cdpilot soak $stamp: $ntargets targets every 2 s, recycle every 60 s'" \
		bench/soak/chart.gp && echo "chart: $png"
else
	echo "no chart: gnuplot is not installed (Debian: gnuplot-nox)"
fi
exit "$status"
