#!/usr/bin/env bash
# bench/run.sh: cdpilot against Playwright on the same Chromium and the same local page
# (see bench/README.md). Installs what is missing (scripts/deps.sh bench), builds into
# build/, installs the pinned playwright-core (npm ci) if bench/node_modules is missing,
# starts the fixture server, runs build/bench/cdpilot-bench and then bench/pw_scrape.js,
# one after the other, and prints a table. The raw JSON of both sides is kept in
# build/bench-results/. Not a test: the numbers depend on the machine and its load.
#
# usage: bench/run.sh [--runs N] [--evals E]     (defaults 5 and 1000)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5
evals=1000
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs=${2:?--runs needs a value}; shift 2 ;;
	--evals) evals=${2:?--evals needs a value}; shift 2 ;;
	-h | --help)
		sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: bench/run.sh [--runs N] [--evals E]" >&2
		exit 2
		;;
	esac
done

./scripts/deps.sh --current bench

echo "== building into build/"
cmake -S . -B build --log-level=WARNING
cmake --build build -j"$(nproc)" --target cdpilot cdpilot-fixture cdpilot-bench

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup
status=0

echo "== cdpilot: $runs runs, $evals evaluations each (log: $results/cdpilot.log)"
build/bench/cdpilot-bench --base "$base" --runs "$runs" --evals "$evals" \
	--cdpilot build/daemon/cdpilot >"$results/cdpilot.json" 2>"$results/cdpilot.log" || status=1

echo "== playwright: $runs runs, $evals evaluations each (log: $results/playwright.log)"
node bench/pw_scrape.js --base "$base" --runs "$runs" --evals "$evals" \
	>"$results/playwright.json" 2>"$results/playwright.log" || status=1

echo
node - "$results/cdpilot.json" "$results/playwright.json" <<'EOF' || status=1
'use strict';
const fs = require('node:fs');
const load = (f) => {
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    process.stderr.write(`cannot read ${f}: ${e.message}\n`);
    return { errors: [`no result (${e.message})`] };
  }
};
const c = load(process.argv[2]);
const p = load(process.argv[3]);
const rows = [
  ['launch to ready page, median (ms)', 'launch_to_ready_ms', 'median'],
  ['launch to ready page, p95 (ms)', 'launch_to_ready_ms', 'p95'],
  ['  of which browser up, median (ms)', 'browser_ready_ms', 'median'],
  ["evaluate('1'), median (ms)", 'eval_ms', 'median'],
  ["evaluate('1'), p95 (ms)", 'eval_ms', 'p95'],
  ['scrape /js, median (ms)', 'scrape_ms', 'median'],
  ['scrape /js, p95 (ms)', 'scrape_ms', 'p95'],
  ['cdpilot scrape CLI, median (ms)', 'cli_scrape_ms', 'median'],
];
const val = (r, k, s) => (r[k] && typeof r[k][s] === 'number' ? r[k][s] : null);
const fmt = (x) => (x === null ? '-' : x < 10 ? x.toFixed(3) : x.toFixed(1));
const table = [['metric', 'cdpilot', 'playwright', 'ratio']];
for (const [label, k, s] of rows) {
  const a = val(c, k, s);
  const b = val(p, k, s);
  table.push([label, fmt(a), fmt(b), a && b ? `${(b / a).toFixed(2)}x` : '-']);
}
const w = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
for (const [i, r] of table.entries()) {
  console.log(r.map((cell, j) => (j === 0 ? cell.padEnd(w[j]) : cell.padStart(w[j]))).join(' | '));
  if (i === 0) console.log(w.map((n) => '-'.repeat(n)).join('-|-'));
}
console.log('ratio = playwright / cdpilot: above 1 means cdpilot is faster.');
console.log(`runs: ${c.runs ?? '?'} each; playwright-core ${p.playwright_version ?? '?'}, ` +
            `node ${p.node_version ?? '?'}`);
const errs = [...(c.errors || []).map((e) => `cdpilot: ${e}`),
              ...(p.errors || []).map((e) => `playwright: ${e}`)];
if (errs.length) {
  console.log('\nerrors (those measurements are missing from the table):');
  for (const e of errs) console.log(`  ${e}`);
  process.exitCode = 1;
}
EOF
echo "raw results: $results/cdpilot.json $results/playwright.json"
exit "$status"
