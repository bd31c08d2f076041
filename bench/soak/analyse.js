// bench/soak/analyse.js: the soak's verdict. Reads the CSV of sample.js, fits a least-squares
// line to each series over the samples after the warm-up, and prints per series: the mean,
// the slope per hour, the fitted change over the fitted span (slope x span) and a verdict:
//
//   flat    |fitted change| <= max(5% of the mean, a floor): the floor is 2 processes,
//           20 threads, 1 MB of RSS, 4 fds (one recycle in flight at a sample adds a
//           browser's processes and threads, and a few pipes and sockets)
//   GROWING the fitted change is above that and positive; FALLING below and negative.
//
// Also: how far /metrics and /proc differed at the same moment (max |difference|), the
// recycles done, tasks ok/failed, and a gnuplot include (--fit FILE) with the fitted lines.
//
//   node analyse.js --csv FILE [--warmup S] [--fit FILE]      exit 1 if a series is not flat
'use strict';
const fs = require('node:fs');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const csv = arg('--csv');
const warmup = Number(arg('--warmup', '60'));
const [head, ...body] = fs.readFileSync(csv, 'utf8').trim().split('\n');
const cols = head.split(',');
const rows = body.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], Number(v)])));
if (rows.length < 3) { console.error(`${csv}: only ${rows.length} samples`); process.exit(1); }

const series = [
  ['procs', 'processes below the daemon', 2, 'procs_proc'],
  ['threads', 'threads (daemon + tree)', 20, 'threads_proc'],
  ['rss_mb', 'daemon RSS (MB)', 1, 'rss_mb_proc'],
  ['fds', 'daemon open fds', 4, 'fds_proc'],
];

function fit(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; }
  const slope = sxx ? sxy / sxx : 0;
  return { slope, intercept: my - slope * mx, mean: my };
}

let used = rows.filter((r) => r.t_s >= warmup);
if (used.length < 3) used = rows; // a run shorter than the warm-up: fit everything
const span = used[used.length - 1].t_s - used[0].t_s;
const out = [['series', 'mean', 'min', 'max', 'slope/hour', `fitted change over ${(span / 60).toFixed(1)} min`, 'limit', 'verdict', 'max |metrics-/proc|']];
const fitLines = [];
let allFlat = true;
for (const [k, label, floor, pk] of series) {
  const pts = used.filter((r) => Number.isFinite(r[k]));
  const f = fit(pts.map((r) => r.t_s), pts.map((r) => r[k]));
  const change = f.slope * span;
  const limit = Math.max(0.05 * f.mean, floor);
  const verdict = Math.abs(change) <= limit ? 'flat' : change > 0 ? 'GROWING' : 'FALLING';
  if (verdict !== 'flat') allFlat = false;
  const diff = Math.max(...rows.filter((r) => Number.isFinite(r[k]) && Number.isFinite(r[pk])).map((r) => Math.abs(r[k] - r[pk])));
  const ys = pts.map((r) => r[k]);
  const d = k === 'rss_mb' ? 2 : 1;
  out.push([label, f.mean.toFixed(d), Math.min(...ys).toFixed(d), Math.max(...ys).toFixed(d),
    (f.slope * 3600).toFixed(2), change.toFixed(2), limit.toFixed(2), verdict, diff.toFixed(d)]);
  fitLines.push(`a_${k} = ${f.slope}`, `b_${k} = ${f.intercept}`);
}
const w = out[0].map((_, i) => Math.max(...out.map((r) => r[i].length)));
for (const [i, r] of out.entries()) {
  console.log(r.map((c, j) => (j === 0 ? c.padEnd(w[j]) : c.padStart(w[j]))).join(' | '));
  if (i === 0) console.log(w.map((n) => '-'.repeat(n)).join('-|-'));
}
const first = rows[0], last = rows[rows.length - 1];
const tasks = last.tasks_ok + last.tasks_failed;
console.log(`\n${rows.length} samples over ${(last.t_s / 60).toFixed(1)} min (fit: after ${warmup} s, ${used.length} samples); ` +
  `recycles done: ${last.recycles - (first.recycles || 0)} (browser launches ${last.launches}); ` +
  `tasks: ${last.tasks_ok} ok, ${last.tasks_failed} failed (${tasks ? ((100 * last.tasks_failed) / tasks).toFixed(2) : 0}% failed, ` +
  `${(last.tasks_ok / last.t_s).toFixed(2)} ok/s); zombies seen at most: ${Math.max(...rows.map((r) => r.zombies || 0))}`);
console.log(`verdict: ${allFlat ? 'flat' : 'NOT flat'} (flat: |fitted change| <= max(5% of the mean, floor))`);
const fitPath = arg('--fit');
if (fitPath) fs.writeFileSync(fitPath, `${fitLines.join('\n')}\n`);
process.exit(allFlat ? 0 : 1);
