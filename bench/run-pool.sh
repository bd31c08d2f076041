#!/usr/bin/env bash
# bench/run-pool.sh: the pool benchmark (issues 3 and 19). cdpilot's pool against two peers,
# Playwright and Puppeteer (each: one browser, a new context per task), on the same Chromium,
# switches and fixture pages, at concurrency 1, 8 and 32. Each task: a page (cdpilot: a kept
# page of the site, PAGE_REUSE, or a fresh context; the peers: a fresh context), load the
# page, (real pages: wait for the live score), read a value, release it (the peers dispose
# the context). On identical switches cdpilot also runs with PAGE_REUSE=1 (side
# "cdpilot-fresh": a fresh context for every task, disposed after it, as the peers' task).
# The sides take turns, ROUNDS times per level (5), the order reversed every other round, so a
# machine whose speed drifts (other tenants) weighs on all alike; the table shows each
# figure's median over the rounds with cdpilot's advantage over each peer, then the
# throughput ratios of every round. Figures: tasks/s, p50/p95 task latency, peak controller
# RSS, controller CPU per task, the peak process count of the whole tree and the machine's
# CPU per task. Raw JSON lines go to build/bench-results/pool.jsonl.
#   --pages js|real  the page set: 50 small JS-rendered pages (js, default) or 50 realistic
#                    match pages (real: /real/match/K, ~1.2 MB each with a 430 KB script)
#   --defaults       every round twice: all three on identical switches (cdpilot's, no
#                    blocking) and each side with its own defaults (cdpilot's pool defaults,
#                    BLOCK_RESOURCES included; playwright chromium.launch() and
#                    puppeteer.launch() with executablePath only). Without it, cdpilot runs
#                    once more with its defaults at concurrency 8 after the rounds.
#
# usage: bench/run-pool.sh [--tasks N] [--levels "1 8 32"] [--rounds N] [--pages js|real]
#                          [--defaults]
set -euo pipefail
cd "$(dirname "$0")/.."

tasks=100
levels="1 8 32"
rounds=5
pages=js
defaults=0
usage='usage: bench/run-pool.sh [--tasks N] [--levels "1 8 32"] [--rounds N] [--pages js|real] [--defaults]'
while [ $# -gt 0 ]; do
	case "$1" in
	--tasks) tasks=${2:?--tasks needs a value}; shift 2 ;;
	--levels) levels=${2:?--levels needs a value}; shift 2 ;;
	--rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
	--pages) pages=${2:?--pages needs a value}; shift 2 ;;
	--defaults) defaults=1; shift ;;
	-h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "$usage" >&2; exit 2 ;;
	esac
done
case $pages in js | real) ;; *) echo "--pages $pages: expected js or real" >&2; exit 2 ;; esac

./scripts/deps.sh --current bench
echo "== building into build/"
cmake -S . -B build --log-level=WARNING
cmake --build build -j"$(nproc)" --target cdpilot cdpilot-fixture cdpilot-bench-pool
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup
out=$results/pool.jsonl
machine=$results/pool-machine.jsonl
: >"$out"
: >"$machine"
status=0
hz=$(getconf CLK_TCK)
# CPU time of the whole machine (user, nice, system, irq, softirq, steal), in ticks: around
# one side's run it is the controller, Chromium and the fixture together. Only meaningful on
# an otherwise idle machine; the table shows it per task, launch and teardown included.
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
# measured SIDE C ROUND CMD...: runs CMD, appends its result (tagged with ROUND) to $out and
# the machine's CPU to $machine
measured() {
	local side=$1 c=$2 r=$3 b0 b1 line def=false
	shift 3
	b0=$(busy_ticks)
	line=$("$@" 2>>"$results/pool-$side.log") || status=1
	b1=$(busy_ticks)
	[[ " $* " == *" --defaults "* ]] && def=true
	[ -n "$line" ] && echo "$line" | sed "s/^{/{\"round\":$r,/; s/\"side\":\"[a-z]*\"/\"side\":\"$side\"/" >>"$out"
	echo "{\"side\":\"$side\",\"concurrency\":$c,\"round\":$r,\"defaults\":$def,\"machine_cpu_ms\":$(((b1 - b0) * 1000 / hz))}" >>"$machine"
}
# side SIDE CONFIG C ROUND: one run of SIDE (cdpilot, playwright, puppeteer) with CONFIG
# (same: identical switches; defaults: its own)
side() {
	local who=$1 config=$2 c=$3 r=$4 opt=()
	[ "$config" = defaults ] && opt=(--defaults)
	case $who in
	cdpilot) measured "$who" "$c" "$r" build/bench/cdpilot-bench-pool --base "$base" --tasks "$tasks" \
		--concurrency "$c" --pages "$pages" "${opt[@]}" ;;
	cdpilot-fresh)
		[ "$config" = same ] || return 0
		measured "$who" "$c" "$r" build/bench/cdpilot-bench-pool --base "$base" --tasks "$tasks" \
			--concurrency "$c" --pages "$pages" --page-reuse 1 ;;
	playwright) measured "$who" "$c" "$r" node bench/pw_pool.js --base "$base" --tasks "$tasks" \
		--concurrency "$c" --pages "$pages" "${opt[@]}" ;;
	puppeteer) measured "$who" "$c" "$r" node bench/pp_pool.js --base "$base" --tasks "$tasks" \
		--concurrency "$c" --pages "$pages" "${opt[@]}" ;;
	esac
}
configs=same
[ "$defaults" = 1 ] && configs="same defaults"
for c in $levels; do
	for r in $(seq 1 "$rounds"); do
		order="cdpilot cdpilot-fresh playwright puppeteer"
		[ $((r % 2)) = 0 ] && order="puppeteer playwright cdpilot-fresh cdpilot"
		for config in $configs; do
			sides=$order
			[ "$config" = same ] || sides=$(echo "$order" | sed 's/ *cdpilot-fresh//')
			echo "== $pages pages, concurrency $c, round $r/$rounds, $config switches:" \
				"${sides// /, } ($tasks tasks each)"
			for who in $sides; do side "$who" "$config" "$c" "$r"; done
		done
	done
done
if [ "$defaults" = 0 ]; then
	echo "== concurrency 8: cdpilot with its defaults (BLOCK_RESOURCES=image,media,font)"
	build/bench/cdpilot-bench-pool --base "$base" --tasks "$tasks" --concurrency 8 --pages "$pages" \
		--block >>"$out" 2>>"$results/pool-cdpilot.log" || status=1
fi

echo
node bench/pool_report.js "$out" "$machine" || status=1
echo "raw results: $out"
exit "$status"
