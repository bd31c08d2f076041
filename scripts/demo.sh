#!/usr/bin/env bash
# demo.sh: the main job on its embedded defaults. Installs what is missing
# (scripts/deps.sh build), builds cdpilot into build/, starts the demo live-score site
# (served by cdpilot's fixture server on a free local port) and runs
#   cdpilot run --targets <demo targets> --output <results.jsonl> --duration 60 --status
# with targets written without C (generic + links): it discovers the site's matches from
# its listing page and keeps each fresh on the interval of its class (live 5 s, imminent
# 60 s, completed 900 s).
# A one-line status shows targets, fresh %, tasks/s, processes and controller RSS. It stops
# after a minute (DEMO_SECONDS) or on Ctrl-C, then prints where the results are and a few
# lines of them. Results also go to Redis: a private redis-server on a unix socket in a temp
# dir (unless REDIS_URL is set), kept running at the end so the printed redis-cli commands
# work (it is stopped the next time the demo runs; `kill $(cat build/demo-redis/pid)`).
# Everything else it started is stopped on any exit.
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
# No C adapter: the listing is read by a "links" rule (each row's link is a match, its id
# the number in the URL, its class the row's data-status), and each match page by CSS
# selectors, as a user would write it for any site (docs/targets.md).
cat >"$targets" <<EOF
{"targets": [
  {"id": "demo", "adapter": "generic", "url": "$base/live/", "discover": true,
   "class": "imminent", "interval_seconds": 10,
   "links": {"selector": "tr.match", "id": "/live/match/([0-9]+)\$",
             "class": {"attr": "data-status", "live": ["live"], "imminent": ["upcoming"],
                       "completed": ["finished"]}},
   "children": {"adapter": "generic", "wait_for": "#score[data-version]",
     "fields": {"home": {"selector": "#home"}, "away": {"selector": "#away"},
                "score_home": {"selector": "#score-home", "type": "int"},
                "score_away": {"selector": "#score-away", "type": "int"},
                "minute": {"selector": "#minute", "type": "int"},
                "status": {"selector": "#status"},
                "last_event": {"selector": "#last-event"}},
     "classify": {"field": "status", "live": ["live"], "imminent": ["upcoming"],
                  "completed": ["finished"]}}}
]}
EOF

redis_cli=(redis-cli)
if [ -z "${REDIS_URL:-}" ]; then
	rdir="$root/build/demo-redis"
	if [ -f "$rdir/pid" ]; then
		kill "$(cat "$rdir/pid")" 2>/dev/null || true
		sleep 0.2
	fi
	rm -rf "$rdir"
	mkdir -p "$rdir"
	echo "== starting a private redis-server on $rdir/redis.sock"
	redis-server --port 0 --unixsocket "$rdir/redis.sock" --unixsocketperm 700 \
		--dir "$rdir" --save "" --appendonly no --daemonize yes \
		--pidfile "$rdir/pid" --logfile "$rdir/redis.log"
	for _ in $(seq 1 50); do
		[ -S "$rdir/redis.sock" ] && break
		sleep 0.1
	done
	export REDIS_URL="unix://$rdir/redis.sock"
	redis_cli=(redis-cli -s "$rdir/redis.sock")
fi
echo "redis: $REDIS_URL"

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
match=$(grep -o '"target":"demo-[0-9]*"' "$results" | tail -n 1 | cut -d'"' -f4)
echo
echo "== in Redis ($REDIS_URL), try:"
echo "   ${redis_cli[*]} GET cdpilot:latest:${match:-demo-12}"
echo "   ${redis_cli[*]} XREVRANGE cdpilot:changes + - COUNT 3"
echo "   ${redis_cli[*]} GET cdpilot:health"
echo "   ${redis_cli[*]} SUBSCRIBE cdpilot:changes:${match:-demo-12}   (while a demo runs)"
if [ -n "${rdir:-}" ]; then
	echo "   (the demo's redis-server keeps running for these; the next demo replaces it;"
	echo "    stop it with: kill \$(cat $rdir/pid))"
fi
