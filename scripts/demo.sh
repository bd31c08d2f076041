#!/usr/bin/env bash
# demo.sh: the main job on its embedded defaults. Installs what is missing
# (scripts/deps.sh build), builds cdpilot into build/, starts the demo live-score site
# (served by cdpilot's fixture server on a free local port) and runs
#   cdpilot run --targets <demo targets> --output <results.jsonl> --duration 60 --status
# with the livescore adapter: it discovers the site's matches from its listing page and
# keeps each fresh on the interval of its class (live 5 s, imminent 60 s, completed 900 s).
# A one-line status shows targets, fresh %, tasks/s, processes and controller RSS. It stops
# after a minute (DEMO_SECONDS) or on Ctrl-C, then prints where the results are and a few
# lines of them. Everything it started is stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${DEMO_SECONDS:-60}

./scripts/deps.sh build

echo "== building cdpilot into build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo --log-level=WARNING
cmake --build build -j"$(nproc)" --target cdpilot cdpilot-fixture

# shellcheck source=scripts/fixture.sh
. scripts/fixture.sh

echo "== starting the demo live-score site"
start_fixture
echo "site: $base/live/"

results="$root/build/demo-results.jsonl"
targets="$root/build/demo-targets.json"
rm -f "$results"
cat >"$targets" <<EOF
{"targets": [
  {"id": "demo", "adapter": "livescore", "url": "$base/live/", "discover": true,
   "class": "imminent", "interval_seconds": 10}
]}
EOF

metrics_addr=${METRICS_ADDR:-127.0.0.1:9464}
echo "== build/daemon/cdpilot run --targets build/demo-targets.json --output build/demo-results.jsonl --duration $seconds"
echo "   (metrics on http://$metrics_addr/metrics, status on http://$metrics_addr/status;"
echo "    warnings are shown, LOG_LEVEL=info shows everything)"
rc=0
LOG_LEVEL=${LOG_LEVEL:-warn} METRICS_ADDR=$metrics_addr build/daemon/cdpilot run \
	--targets "$targets" --output "$results" --duration "$seconds" --status || rc=$?
stop_fixture

if [ "$rc" -ne 0 ]; then
	echo "demo.sh: cdpilot exited with $rc" >&2
	exit "$rc"
fi
snapshots=$(grep -c '"type":"snapshot"' "$results" || true)
deltas=$(grep -c '"type":"delta"' "$results" || true)
targets_seen=$(grep -o '"target":"[^"]*"' "$results" | sort -u | wc -l)
echo
echo "== results: $results"
echo "   $snapshots snapshots and $deltas deltas of $targets_seen targets (one JSON object per line)"
echo "   the last delta:"
grep '"type":"delta"' "$results" | tail -n 1 | cut -c1-400
