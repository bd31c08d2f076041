#!/usr/bin/env bash
# bench/run-pool.sh: the pool benchmark (issue 3). cdpilot's pool against Playwright (one
# browser, a new context per task) on the same Chromium, flags and fixture pages (50
# JS-rendered pages), at concurrency 1, 8 and 32. Each task: fresh context, load the page,
# read its title, dispose the context. The two sides take turns, ROUNDS times per level (5),
# so a machine whose speed drifts (other tenants) weighs on both alike; the table shows each
# figure's median over the rounds, with ratios, then the throughput ratio of every round.
# Figures: tasks/s, p50/p95 task latency, peak controller RSS, controller CPU per task and
# the peak process count of the whole tree; then cdpilot once more with its defaults
# (resource blocking on). Raw JSON lines go to build/bench-results/pool.jsonl.
#
# usage: bench/run-pool.sh [--tasks N] [--levels "1 8 32"] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."

tasks=100
levels="1 8 32"
rounds=5
while [ $# -gt 0 ]; do
	case "$1" in
	--tasks) tasks=${2:?--tasks needs a value}; shift 2 ;;
	--levels) levels=${2:?--levels needs a value}; shift 2 ;;
	--rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: bench/run-pool.sh [--tasks N] [--levels \"1 8 32\"] [--rounds N]" >&2; exit 2 ;;
	esac
done

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
	local side=$1 c=$2 r=$3 b0 b1 line
	shift 3
	b0=$(busy_ticks)
	line=$("$@" 2>>"$results/pool-$side.log") || status=1
	b1=$(busy_ticks)
	[ -n "$line" ] && echo "$line" | sed "s/^{/{\"round\":$r,/" >>"$out"
	echo "{\"side\":\"$side\",\"concurrency\":$c,\"round\":$r,\"machine_cpu_ms\":$(((b1 - b0) * 1000 / hz))}" >>"$machine"
}
for c in $levels; do
	for r in $(seq 1 "$rounds"); do
		echo "== concurrency $c, round $r/$rounds: cdpilot, then playwright ($tasks tasks each)"
		measured cdpilot "$c" "$r" build/bench/cdpilot-bench-pool --base "$base" --tasks "$tasks" --concurrency "$c"
		measured playwright "$c" "$r" node bench/pw_pool.js --base "$base" --tasks "$tasks" --concurrency "$c"
	done
done
echo "== concurrency 8: cdpilot with its defaults (BLOCK_RESOURCES=image,media,font)"
build/bench/cdpilot-bench-pool --base "$base" --tasks "$tasks" --concurrency 8 --block \
	>>"$out" 2>>"$results/pool-cdpilot.log" || status=1

echo
node - "$out" "$machine" <<'JS' || status=1
'use strict';
const fs = require('node:fs');
const read = (p) => fs.readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const rows = read(process.argv[2]);
for (const m of read(process.argv[3])) {
  const r = rows.find((x) => x.side === m.side && x.concurrency === m.concurrency &&
                             x.round === m.round && !x.block_resources);
  if (r) r.machine_cpu_ms_per_task = m.machine_cpu_ms / (r.tasks || 1);
}
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((x, y) => x - y);
  if (!s.length) return undefined;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const runs = (side, c) => rows.filter((r) => r.side === side && r.concurrency === c && !r.block_resources);
const metrics = [
  ['tasks/s', 'tasks_per_s', 'higher'],
  ['p50 task (ms)', 'p50_ms', 'lower'],
  ['p95 task (ms)', 'p95_ms', 'lower'],
  ['peak controller RSS (MB)', 'peak_rss_mb', 'lower'],
  ['controller CPU per task (ms)', 'cpu_ms_per_task', 'lower'],
  ['peak processes (tree)', 'peak_processes', 'lower'],
  ['machine CPU per task (ms, all processes)', 'machine_cpu_ms_per_task', 'lower'],
];
const f = (x) => (typeof x !== 'number' ? '-' : x < 10 ? x.toFixed(2) : x.toFixed(1));
const lines = [['concurrency', 'metric', 'cdpilot', 'playwright', 'advantage']];
const levels = [...new Set(rows.map((r) => r.concurrency))];
for (const c of levels) {
  const as = runs('cdpilot', c), bs = runs('playwright', c);
  if (!as.length || !bs.length) continue;
  for (const [label, k, better] of metrics) {
    const a = median(as.map((r) => r[k])), b = median(bs.map((r) => r[k]));
    const adv = better === 'higher' ? a / b : b / a;
    lines.push([String(c), label, f(a), f(b), Number.isFinite(adv) ? `${adv.toFixed(2)}x` : '-']);
  }
}
const w = lines[0].map((_, i) => Math.max(...lines.map((r) => r[i].length)));
for (const [i, r] of lines.entries()) {
  console.log(r.map((cell, j) => (j < 2 ? cell.padEnd(w[j]) : cell.padStart(w[j]))).join(' | '));
  if (i === 0) console.log(w.map((n) => '-'.repeat(n)).join('-|-'));
}
console.log('medians over the rounds; advantage: how many times better cdpilot is (above 1 = cdpilot better),');
console.log('same settings, no blocking.');
console.log('\ntasks/s, cdpilot/Playwright, round by round:');
for (const c of levels) {
  const as = runs('cdpilot', c), bs = runs('playwright', c);
  const ratios = as.map((a) => [a, bs.find((b) => b.round === a.round)])
    .filter(([, b]) => b).map(([a, b]) => a.tasks_per_s / b.tasks_per_s);
  if (ratios.length) {
    console.log(`  concurrency ${c}: ${ratios.map((x) => x.toFixed(2) + 'x').join(' ')}` +
                ` (median ${median(ratios).toFixed(2)}x)`);
  }
}
const d = rows.find((r) => r.side === 'cdpilot' && r.block_resources);
const n = { tasks_per_s: median(runs('cdpilot', 8).map((r) => r.tasks_per_s)) };
if (d && n.tasks_per_s) {
  console.log(`\ncdpilot defaults at concurrency 8 (blocking image,media,font): ${f(d.tasks_per_s)} tasks/s ` +
              `(${(d.tasks_per_s / n.tasks_per_s).toFixed(2)}x of no blocking), p95 ${f(d.p95_ms)} ms, ` +
              `peak processes ${d.peak_processes}`);
}
const failed = rows.filter((r) => r.failed > 0);
if (failed.length) { console.log('\nruns with failed tasks:', JSON.stringify(failed)); process.exitCode = 1; }
JS
echo "raw results: $out"
exit "$status"
