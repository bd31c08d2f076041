// pool_report.js: the table of bench/run-pool.sh from its raw JSON lines.
//   node bench/pool_report.js POOL_JSONL MACHINE_JSONL
// Per configuration (identical switches; each side's defaults, with --defaults) and
// concurrency: the median over the rounds of every figure for cdpilot and each peer, with
// cdpilot's advantage over each peer (throughput: cdpilot / peer; everything else: peer /
// cdpilot; above 1 = cdpilot better); then the tasks/s ratio of every round against each
// peer. A row without a round is cdpilot's single run with its defaults (shown apart).
// cdpilot-fresh (identical switches only): cdpilot with PAGE_REUSE=1, a fresh context per
// task as the peers' task; its own column and its own ratios against the peers.
'use strict';
const fs = require('node:fs');

const PEERS = ['playwright', 'puppeteer'];
const read = (p) => fs.readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const rows = read(process.argv[2]);
const config = (r) => (r.defaults ? 'defaults' : 'same');
for (const m of read(process.argv[3])) {
  const r = rows.find((x) => x.side === m.side && x.concurrency === m.concurrency &&
                             x.round === m.round && config(x) === config(m));
  if (r) r.machine_cpu_ms_per_task = m.machine_cpu_ms / (r.tasks || 1);
}
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((x, y) => x - y);
  if (!s.length) return undefined;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const runs = (side, c, cfg) => rows.filter((r) => r.side === side && r.concurrency === c &&
                                                  r.round !== undefined && config(r) === cfg);
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
const ratio = (x) => (typeof x === 'number' && Number.isFinite(x) ? `${x.toFixed(2)}x` : '-');
const levels = [...new Set(rows.map((r) => r.concurrency))];
const cfgs = [...new Set(rows.filter((r) => r.round !== undefined).map(config))];
const pages = rows[0] ? rows[0].pages || 'js' : 'js';
const label = { same: 'identical switches (cdpilot\'s, no blocking)', defaults: 'each side\'s defaults' };

const FRESH = 'cdpilot-fresh';
const hasFresh = rows.some((r) => r.side === FRESH);
const lines = [['switches', 'concurrency', 'metric', 'cdpilot', ...(hasFresh ? [FRESH] : []), ...PEERS,
                ...PEERS.map((p) => `vs ${p}`), ...(hasFresh ? PEERS.map((p) => `fresh vs ${p}`) : [])]];
for (const cfg of cfgs) {
  for (const c of levels) {
    const a = runs('cdpilot', c, cfg);
    if (!a.length) continue;
    for (const [name, k, better] of metrics) {
      const va = median(a.map((r) => r[k]));
      const vf = median(runs(FRESH, c, cfg).map((r) => r[k]));
      const vp = PEERS.map((p) => median(runs(p, c, cfg).map((r) => r[k])));
      const adv = (x) => vp.map((v) => (better === 'higher' ? x / v : v / x));
      lines.push([cfg, String(c), name, f(va), ...(hasFresh ? [f(vf)] : []), ...vp.map(f),
                  ...adv(va).map(ratio), ...(hasFresh ? adv(vf).map(ratio) : [])]);
    }
  }
}
const w = lines[0].map((_, i) => Math.max(...lines.map((r) => r[i].length)));
console.log(`pages: ${pages}`);
for (const [i, r] of lines.entries()) {
  console.log(r.map((cell, j) => (j < 3 ? cell.padEnd(w[j]) : cell.padStart(w[j]))).join(' | '));
  if (i === 0) console.log(w.map((n) => '-'.repeat(n)).join('-|-'));
}
console.log('medians over the rounds; "vs PEER": how many times better cdpilot is than PEER (above 1 =');
console.log('cdpilot better). switches: ' + cfgs.map((c) => `${c} = ${label[c]}`).join('; ') + '.');
if (hasFresh) {
  console.log(`cdpilot: its pool with PAGE_REUSE (a kept page serves the next task of its site); ${FRESH}:`);
  console.log('PAGE_REUSE=1, a fresh context for every task, disposed after it, as the peers\' task.');
}
console.log('\ntasks/s, cdpilot/peer, round by round:');
for (const cfg of cfgs) {
  for (const c of levels) {
    for (const side of ['cdpilot', FRESH]) {
      for (const p of PEERS) {
        const as = runs(side, c, cfg), bs = runs(p, c, cfg);
        const rs = as.map((a) => [a, bs.find((b) => b.round === a.round)]).filter(([, b]) => b)
          .map(([a, b]) => a.tasks_per_s / b.tasks_per_s);
        if (rs.length) {
          console.log(`  ${cfg}, concurrency ${c}, ${side}/${p}: ${rs.map(ratio).join(' ')} (median ${ratio(median(rs))})`);
        }
      }
    }
  }
}
const d = rows.find((r) => r.side === 'cdpilot' && r.round === undefined && r.block_resources);
const n = median(runs('cdpilot', 8, 'same').map((r) => r.tasks_per_s));
if (d && n) {
  console.log(`\ncdpilot defaults at concurrency 8 (blocking image,media,font): ${f(d.tasks_per_s)} tasks/s ` +
              `(${(d.tasks_per_s / n).toFixed(2)}x of no blocking), p95 ${f(d.p95_ms)} ms, ` +
              `peak processes ${d.peak_processes}`);
}
const versions = [...new Set(rows.filter((r) => r.version).map((r) => `${r.side} ${r.version}`))];
if (versions.length) console.log(`peers: ${versions.join(', ')}`);
const failed = rows.filter((r) => r.failed > 0);
if (failed.length) { console.log('\nruns with failed tasks:', JSON.stringify(failed)); process.exitCode = 1; }
