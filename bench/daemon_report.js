// daemon_report.js: the figures of bench/run-daemon.sh, computed the same way for every side
// from the JSON lines they wrote (cdpilot's sink, peer_schedule.js's output for Playwright
// and Puppeteer) and from the
// controller samples (daemon_tool.js sample). Subcommands:
//
//   step --side S --mode M --n N --interval S --targets FILE --out FILE --samples FILE
//        --start MS --ready MS --warm S --measure S --results FILE
//        One step of the ladder: appends a JSON line to --results, prints a summary, exits
//        0 if the step passed (p95 age <= 1.5 x interval) and 10 if not.
//   push --out FILE --goals FILE --results FILE
//        Push latency: each goal matched to the first delta of its target carrying a
//        version >= the goal's; appends a JSON line to --results and prints it.
//   table --results FILE
//        The table of the run, with the ratios cdpilot/Playwright and cdpilot/Puppeteer,
//        and the ratios step by step (the sides ran back to back at each N).
//
// Age: sampled every second over the measuring window [ready + warm, ready + warm +
// measure], where start is when the controller was started and ready when every target
// had its first snapshot (at most a minute later); at each sample, for each target, age = now - scraped_at of its newest snapshot
// at that moment (a target not scraped yet counts from the start of the step); p50/p95/max
// over every (sample, target) pair, nearest rank.
// Controller CPU per task: (utime + stime of the controller process at the end of the
// window - at its start) / snapshots whose scraped_at falls in the window. Controller RSS:
// the largest VmHWM seen (peak resident memory of the controller process alone).
'use strict';
const fs = require('node:fs');

const { arg, needFor, lines, pct } = require('./cli.js');
const need = needFor('daemon_report');
const r1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);

function step() {
  const side = need('--side'), mode = need('--mode'), n = Number(need('--n'));
  const interval = Number(arg('--interval', '5')) * 1000;
  const start = Number(need('--start'));
  const ready = Number(arg('--ready', String(start)));
  const ws = ready + Number(need('--warm')) * 1000;
  const we = ws + Number(need('--measure')) * 1000;
  let ids = [];
  const doc = JSON.parse(fs.readFileSync(need('--targets'), 'utf8'));
  ids = (Array.isArray(doc) ? doc : doc.targets).map((t) => t.id);
  const times = new Map(ids.map((id) => [id, []]));
  let inWindow = 0;
  for (const rec of lines(need('--out'))) {
    if (rec.type !== 'snapshot' || !times.has(rec.target)) continue;
    const t = Date.parse(rec.scraped_at);
    times.get(rec.target).push(t);
    if (t >= ws && t <= we) inWindow++;
  }
  const ages = [];
  for (const ts of times.values()) {
    ts.sort((a, b) => a - b);
    let i = -1;
    for (let now = ws; now <= we; now += 1000) {
      while (i + 1 < ts.length && ts[i + 1] <= now) i++;
      ages.push(now - (i >= 0 ? ts[i] : start));
    }
  }
  ages.sort((a, b) => a - b);
  const samples = lines(need('--samples'));
  const at = (t) => samples.reduce((best, s) => (!best || Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best), null);
  const s0 = at(ws), s1 = at(we);
  const cpuMs = s0 && s1 ? s1.cpu_ms - s0.cpu_ms : null;
  const rssPeak = samples.reduce((m, s) => Math.max(m, s.hwm_kb || s.rss_kb), 0) / 1024;
  const p95 = pct(ages, 95);
  const res = {
    kind: 'step', side, mode, n, interval_s: interval / 1000, window_s: (we - ws) / 1000,
    all_first_s: r1((ready - start) / 1000),
    p50_age_s: r1(pct(ages, 50) / 1000), p95_age_s: r1(p95 / 1000), max_age_s: r1(ages[ages.length - 1] / 1000),
    snapshots_in_window: inWindow, expected_in_window: Math.round((n * (we - ws)) / interval),
    cpu_ms_per_task: cpuMs !== null && inWindow ? Math.round((cpuMs / inWindow) * 100) / 100 : null,
    cpu_percent: cpuMs !== null ? r1((cpuMs / (we - ws)) * 100) : null,
    peak_rss_mb: r1(rssPeak), pass: p95 !== null && p95 <= 1.5 * interval,
  };
  fs.appendFileSync(need('--results'), `${JSON.stringify(res)}\n`);
  console.log(`   ${side} ${mode} N=${n}: p95 age ${res.p95_age_s} s (p50 ${res.p50_age_s}, max ${res.max_age_s}), ` +
    `${inWindow}/${res.expected_in_window} snapshots, CPU ${res.cpu_ms_per_task} ms/task (${res.cpu_percent}% of a core), ` +
    `RSS peak ${res.peak_rss_mb} MB, all scraped once after ${res.all_first_s} s -> ${res.pass ? 'pass' : 'FAIL'}`);
  process.exit(res.pass ? 0 : 10);
}

function push() {
  const byTarget = new Map();
  for (const rec of lines(need('--out'))) {
    if (rec.type !== 'delta') continue;
    const ch = [...(rec.changed || []), ...(rec.added || [])].find((c) => c.path === '/version');
    if (!ch) continue;
    const v = ch.to !== undefined ? ch.to : ch.value;
    if (!byTarget.has(rec.target)) byTarget.set(rec.target, []);
    byTarget.get(rec.target).push({ t: Date.parse(rec.scraped_at), v: Number(v) });
  }
  const lat = [];
  let unmatched = 0;
  const goals = lines(need('--goals'));
  for (const g of goals) {
    const d = (byTarget.get(g.id) || []).find((x) => x.v >= g.version && x.t >= g.changed_at_ms - 5);
    if (d) lat.push(d.t - g.changed_at_ms);
    else unmatched++;
  }
  lat.sort((a, b) => a - b);
  const res = {
    kind: 'push', targets: byTarget.size, goals: goals.length, matched: lat.length, unmatched,
    p50_ms: pct(lat, 50), p95_ms: pct(lat, 95), max_ms: lat.length ? lat[lat.length - 1] : null,
    min_ms: lat.length ? lat[0] : null,
  };
  fs.appendFileSync(need('--results'), `${JSON.stringify(res)}\n`);
  console.log(`   push: ${res.matched}/${res.goals} goals seen in a delta, change -> delta p50 ${res.p50_ms} ms, ` +
    `p95 ${res.p95_ms} ms (min ${res.min_ms}, max ${res.max_ms})`);
}

const SIDES = ['cdpilot', 'playwright', 'puppeteer'];
const PEERS = SIDES.slice(1);

function table() {
  const rows = lines(need('--results'));
  const steps = rows.filter((r) => r.kind === 'step');
  const sides = SIDES.filter((side) => steps.some((s) => s.side === side) || side === 'cdpilot');
  const peers = PEERS.filter((p) => sides.includes(p));
  const out = [['figure', ...sides, ...peers.map((p) => `cdpilot/${p}`)]];
  const f = (x, d = 1) => (x === null || x === undefined ? '-' : typeof x === 'string' ? x : x.toFixed(d));
  const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b ? `${(a / b).toFixed(2)}` : '-');
  const row = (label, vals, d) => [label, ...vals.map((v) => f(v, d)), ...peers.map((p) => ratio(vals[0], vals[sides.indexOf(p)]))];
  for (const mode of ['navigate', 'watch']) {
    const best = {};
    for (const side of sides) {
      const mine = steps.filter((s) => s.side === side && s.mode === mode);
      if (!mine.length) continue;
      const firstFail = Math.min(...mine.filter((s) => !s.pass).map((s) => s.n), Infinity);
      const passed = mine.filter((s) => s.pass && s.n < firstFail).sort((x, y) => y.n - x.n);
      best[side] = { max: passed.length ? passed[0].n : 0, atMax: passed[0] || null, bound: firstFail === Infinity ? '>=' : '' };
    }
    if (!Object.keys(best).length) continue;
    const b = sides.map((side) => best[side] || {});
    out.push([`${mode}: max live targets at 5 s (p95 age <= 7.5 s)`,
      ...b.map((x) => (x.max !== undefined ? `${x.bound}${x.max}` : '-')),
      ...peers.map((p) => ratio(b[0].max, b[sides.indexOf(p)].max))]);
    // the figures at the largest N every side passed, so they compare like with like
    const common = Math.min(...b.map((x) => x.max || 0));
    const at = (side) => steps.filter((s) => s.side === side && s.mode === mode && s.n === common && s.pass).pop() || {};
    if (common > 0) {
      const c = sides.map(at);
      out.push(row(`${mode}: p95 age at N=${common} (s)`, c.map((x) => x.p95_age_s)));
      out.push(row(`${mode}: controller CPU per task at N=${common} (ms)`, c.map((x) => x.cpu_ms_per_task), 2));
      out.push(row(`${mode}: controller CPU at N=${common} (% of a core)`, c.map((x) => x.cpu_percent)));
      out.push(row(`${mode}: controller RSS peak at N=${common} (MB)`, c.map((x) => x.peak_rss_mb)));
    }
    const m = b.map((x) => x.atMax || {});
    out.push(row(`${mode}: controller CPU per task at each max N (ms)`, m.map((x) => x.cpu_ms_per_task), 2));
    out.push(row(`${mode}: controller RSS peak at each max N (MB)`, m.map((x) => x.peak_rss_mb)));
  }
  const pu = rows.filter((r) => r.kind === 'push').pop();
  if (pu) {
    out.push([`watch+push (${pu.targets} targets): change -> delta p50 (ms)`, f(pu.p50_ms, 0), ...out[0].slice(2).map(() => '-')]);
    out.push([`watch+push: change -> delta p95 (ms) [${pu.matched}/${pu.goals} goals]`, f(pu.p95_ms, 0), ...out[0].slice(2).map(() => '-')]);
  }
  const w = out[0].map((_, i) => Math.max(...out.map((r) => r[i].length)));
  for (const [i, r] of out.entries()) {
    console.log(r.map((cell, j) => (j === 0 ? cell.padEnd(w[j]) : cell.padStart(w[j]))).join(' | '));
    if (i === 0) console.log(w.map((k) => '-'.repeat(k)).join('-|-'));
  }
  console.log('cdpilot/PEER: the first row of each mode above 1 = cdpilot keeps more targets fresh; ' +
    'the other rows below 1 = cdpilot uses less. ">=" = the largest N tried passed.');
  // step by step: at each N the sides ran back to back (order alternating), so these are
  // the like-for-like ratios, one per step, as the pool benchmark's per-round ratios
  console.log('\nstep by step, cdpilot/peer at the same N (p95 age; controller CPU per task):');
  for (const mode of ['navigate', 'watch']) {
    for (const n of [...new Set(steps.filter((s) => s.mode === mode).map((s) => s.n))].sort((x, y) => x - y)) {
      const c = steps.find((s) => s.side === 'cdpilot' && s.mode === mode && s.n === n);
      if (!c) continue;
      const parts = peers.map((p) => {
        const o = steps.find((s) => s.side === p && s.mode === mode && s.n === n);
        return o ? `${p} ${ratio(c.p95_age_s, o.p95_age_s)}; ${ratio(c.cpu_ms_per_task, o.cpu_ms_per_task)}` : null;
      }).filter(Boolean);
      if (parts.length) console.log(`  ${mode} N=${n}: ${parts.join(' | ')}`);
    }
  }
  console.log('\nevery step (side mode N: p95 age s, CPU ms/task, RSS MB, pass):');
  for (const s of steps) {
    console.log(`  ${s.side.padEnd(10)} ${s.mode.padEnd(8)} N=${String(s.n).padStart(3)}: p95 ${f(s.p95_age_s)} s, ` +
      `${f(s.cpu_ms_per_task, 2)} ms/task, ${f(s.peak_rss_mb)} MB, ${s.snapshots_in_window}/${s.expected_in_window} snapshots, ` +
      `all scraped once after ${f(s.all_first_s)} s, ${s.pass ? 'pass' : 'FAIL'}`);
  }
}

const cmds = { step, push, table };
const cmd = cmds[process.argv[2]];
if (!cmd) { console.error('usage: node daemon_report.js step|push|table ...'); process.exit(2); }
cmd();
