// verify_tool.js: the helpers of bench/run-verify.sh (the cost of verifying watched pages,
// and how long a frozen page stays unnoticed), beside daemon_tool.js (free port,
// wait-first), so the script needs nothing beyond node. Subcommands:
//
//   site --base URL --n N [--speed X]
//        Reset the demo site to N matches and kick them all off, their kick-offs spread
//        over one match minute (so the N pages do not all change at the same instant), then
//        run the demo clock at speed X (default 1/30: a match minute lasts a real minute).
//   targets --base URL --n N --interval S --out FILE
//        N generic watched targets "m1".."mN" on /live/match/ID reading what a reader sees:
//        home, away, score (two ints), minute, status. Not the page's data-version: the
//        fixture bumps a match's version on every control call, /live/ctl/mute included, so
//        with it a mute alone would change the data (no real frozen page does that).
//   window --pid P --metrics URL --seconds S --side on|off --round R --n N --interval S
//          --results FILE
//        One measuring window: /proc/P (utime + stime, VmHWM) and /metrics read at its start
//        and its end; appends one JSON line to --results and prints it.
//   freeze --base URL --n N --m M --out SINK --metrics URL --stagger-ms MS --mute-ms MS
//          --timeout S --results FILE [--events FILE]
//        The freeze phase: mutes M matches spread over 1..N, one every --stagger-ms, and
//        watches each from outside: the fixture's /live/api/match/ID (polled, without
//        ?since, which a mute would hold) says when its true state next changed (the first
//        state whose minute, score or status differs from the one at the mute; its
//        updated_ms); the sink (tailed) says when a snapshot of that target showing that
//        state, or a later one, arrived. Appends one JSON line per freeze to --events and a
//        summary line to --results.
//   table --results FILE
//        The run's figures: per side the median over the rounds and the ratio ON/OFF, the
//        freeze figures, every window.
'use strict';
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');

const { arg, needFor, getJson, requireAllLive, matchFields, lines, pct } = require('./cli.js');
const need = needFor('verify_tool');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const r1 = (x) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10) / 10);
const r2 = (x) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 100) / 100);
function median(xs) {
  const v = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (!v.length) return null;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}


// Prometheus text: the sum of every sample of NAME, or, with label, a map label value -> sum.
function promSum(text, name, label) {
  const out = label ? {} : 0;
  let total = 0;
  for (const l of text.split('\n')) {
    if (!l.startsWith(name) || (l[name.length] !== '{' && l[name.length] !== ' ')) continue;
    const v = Number(l.slice(l.lastIndexOf(' ') + 1));
    if (!Number.isFinite(v)) continue;
    if (label) {
      const m = new RegExp(`${label}="([^"]*)"`).exec(l);
      const k = m ? m[1] : '';
      out[k] = (out[k] || 0) + v;
    } else total += v;
  }
  return label ? out : total;
}
async function metrics(url) {
  const res = await fetch(url, { cache: 'no-store' });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return {
    tasks: promSum(text, 'cdpilot_tasks_total', 'outcome'),
    verifications: promSum(text, 'cdpilot_watch_verifications_total', 'result'),
    frozen: promSum(text, 'cdpilot_watch_frozen_total'),
    snapshots: promSum(text, 'cdpilot_snapshots_total'),
    watch_pages: promSum(text, 'cdpilot_watch_pages'),
  };
}
const sumOf = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);
const diff = (a, b) => {
  const o = {};
  for (const k of new Set([...Object.keys(a || {}), ...Object.keys(b || {})])) o[k] = (b[k] || 0) - (a[k] || 0);
  return o;
};

let clkTck = 0;
function procCpu(pid) {
  if (!clkTck) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch (e) { clkTck = 100; }
  }
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+)/.exec(st);
  return { t: Date.now(), cpu_ms: ((Number(f[11]) + Number(f[12])) * 1000) / clkTck, hwm_kb: m ? Number(m[1]) : 0 };
}

// A match's visible state, and how far it has got (monotonic while the clock runs).
const content = (s) => `${s.status} ${s.minute} ${s.score.home}-${s.score.away}`;
const RANK = { upcoming: 0, live: 1, finished: 2 };
const progress = (status, minute) => (RANK[status] !== undefined ? RANK[status] : -1) * 1000 + (Number(minute) || 0);

const cmds = {
  async site() {
    const base = need('--base');
    const n = Number(need('--n'));
    const speed = arg('--speed', String(1 / 30));
    // at speed 1 a match minute is 2 s: one kick-off every 2000/n ms spreads them over one
    // minute, so their minute ticks fall evenly over a minute at any speed afterwards
    await getJson(`${base}/live/ctl/reset?n=${n}&speed=1`);
    const t0 = Date.now();
    for (let i = 1; i <= n; i++) {
      const wait = t0 + ((i - 1) * 2000) / n - Date.now();
      if (wait > 0) await sleep(wait);
      await getJson(`${base}/live/ctl/start?id=${i}`);
    }
    await getJson(`${base}/live/ctl?speed=${speed}`);
    await requireAllLive(base, n);
  },

  async targets() {
    const base = need('--base');
    const n = Number(need('--n'));
    const interval = Number(arg('--interval', '5'));
    const fields = matchFields(false);
    const targets = [];
    for (let i = 1; i <= n; i++) {
      targets.push({
        id: `m${i}`, adapter: 'generic', url: `${base}/live/match/${i}`, class: 'live', mode: 'watch',
        interval_seconds: interval, wait_for: '#match[data-version]', fields,
      });
    }
    fs.writeFileSync(need('--out'), JSON.stringify({ targets }, null, 1));
  },

  async window() {
    const pid = Number(need('--pid'));
    const url = need('--metrics');
    const seconds = Number(need('--seconds'));
    const n = Number(need('--n'));
    const interval = Number(arg('--interval', '5'));
    const p0 = procCpu(pid);
    const m0 = await metrics(url);
    await sleep(seconds * 1000);
    const p1 = procCpu(pid);
    const m1 = await metrics(url);
    const secs = (p1.t - p0.t) / 1000;
    const tasks = diff(m0.tasks, m1.tasks);
    const ver = diff(m0.verifications, m1.verifications);
    const nTasks = sumOf(tasks);
    const cpu = p1.cpu_ms - p0.cpu_ms;
    const res = {
      kind: 'window', side: need('--side'), round: Number(need('--round')), n, interval_s: interval,
      window_s: r1(secs), tasks: nTasks, tasks_not_ok: nTasks - (tasks.ok || 0),
      tasks_per_s: r2(nTasks / secs), due_per_s: r2(n / interval),
      cpu_ms: Math.round(cpu), cpu_ms_per_task: nTasks ? r2(cpu / nTasks) : null,
      cpu_percent: r2((cpu / (secs * 1000)) * 100),
      verifications: sumOf(ver), verifications_by_result: ver, verifications_per_s: r2(sumOf(ver) / secs),
      frozen: m1.frozen - m0.frozen, snapshots: m1.snapshots - m0.snapshots,
      watch_pages: m1.watch_pages, peak_rss_mb: r1(p1.hwm_kb / 1024),
    };
    fs.appendFileSync(need('--results'), `${JSON.stringify(res)}\n`);
    console.log(`   verification ${res.side.toUpperCase().padEnd(3)} round ${res.round}: ${res.tasks_per_s} tasks/s ` +
      `(${res.due_per_s} due), ${res.cpu_ms_per_task} ms CPU/task (${res.cpu_percent}% of a core), ` +
      `${res.verifications_per_s} verification reads/s, ${res.frozen} frozen, ${res.tasks_not_ok} tasks not ok, ` +
      `${res.watch_pages} watched pages, over ${res.window_s} s`);
  },

  async freeze() {
    const base = need('--base');
    const n = Number(need('--n'));
    const m = Math.min(Number(need('--m')), n);
    const sink = need('--out');
    const murl = need('--metrics');
    const stagger = Number(arg('--stagger-ms', '3000'));
    const muteMs = Number(arg('--mute-ms', '600000'));
    const timeout = Number(arg('--timeout', '180')) * 1000;
    const eventsFile = arg('--events');
    const ids = [];
    for (let k = 0; k < m; k++) ids.push(1 + Math.floor((k * n) / m));
    const fr = new Map(); // target -> freeze
    const m0 = await metrics(murl);
    const t0 = Date.now();

    // the sink, tailed: every snapshot of a muted target, with the time it arrived
    let pos = fs.existsSync(sink) ? fs.statSync(sink).size : 0, rest = '';
    const buf = Buffer.alloc(1 << 20);
    function tail() {
      let fd;
      try { fd = fs.openSync(sink, 'r'); } catch (e) { return; }
      const now = Date.now();
      let k;
      while ((k = fs.readSync(fd, buf, 0, buf.length, pos)) > 0) {
        pos += k;
        const parts = (rest + buf.toString('utf8', 0, k)).split('\n');
        rest = parts.pop();
        for (const l of parts) {
          const mt = /"type":"snapshot","target":"([^"]+)"/.exec(l);
          const f = mt && fr.get(mt[1]);
          if (!f || f.end) continue;
          let rec;
          try { rec = JSON.parse(l); } catch (e) { continue; }
          const d = rec.data || {};
          if (f.next && progress(d.status, d.minute) >= progress(f.next.status, f.next.minute)) {
            f.end = { arrived_ms: now, scraped_ms: Date.parse(rec.scraped_at), verified_ms: Date.parse(rec.verified_at), seq: rec.seq };
          } else if (!f.next) f.pending.push({ now, rec });
        }
      }
      fs.closeSync(fd);
    }
    // a snapshot that arrived before the true change was known: judged once it is
    function settle(f) {
      for (const { now, rec } of f.pending) {
        const d = rec.data || {};
        if (!f.end && progress(d.status, d.minute) >= progress(f.next.status, f.next.minute))
          f.end = { arrived_ms: now, scraped_ms: Date.parse(rec.scraped_at), verified_ms: Date.parse(rec.verified_at), seq: rec.seq };
      }
      f.pending = [];
    }

    let next = 0;
    const over = (f) => f.end || Date.now() - f.mute_ms > timeout;
    for (;;) {
      const now = Date.now();
      if (next < m && now >= t0 + next * stagger) {
        const id = ids[next++];
        try {
          const r = await getJson(`${base}/live/ctl/mute?id=${id}&ms=${muteMs}`);
          fr.set(`m${id}`, { id: `m${id}`, mute_ms: r.changed_at_ms, at_mute: content(r.match), next: null, end: null, pending: [] });
        } catch (e) { console.error(`mute ${id}: ${e.message}`); }
      }
      // the true state of every muted match whose next change is not known yet
      for (const f of fr.values()) {
        if (f.next) continue;
        try {
          const s = await getJson(`${base}/live/api/match/${f.id.slice(1)}`);
          if (content(s) !== f.at_mute) {
            f.next = { version: s.version, updated_ms: Math.max(s.updated_ms, f.mute_ms), status: s.status, minute: s.minute, content: content(s) };
            settle(f);
          }
        } catch (e) { console.error(`match ${f.id}: ${e.message}`); }
      }
      tail();
      if (next >= m && [...fr.values()].every(over)) break;
      if (Date.now() - t0 > stagger * m + timeout + 10000) break; // mutes that failed
      await sleep(200);
    }
    tail();
    const m1 = await metrics(murl);
    const ev = [...fr.values()].map((f) => ({
      target: f.id, mute_ms: f.mute_ms, at_mute: f.at_mute, next: f.next,
      end: f.end,
      stale_from_change_ms: f.end && f.next ? f.end.arrived_ms - f.next.updated_ms : null,
      stale_from_mute_ms: f.end ? f.end.arrived_ms - f.mute_ms : null,
      scraped_from_change_ms: f.end && f.next ? f.end.scraped_ms - f.next.updated_ms : null,
    }));
    if (eventsFile) fs.writeFileSync(eventsFile, ev.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const sorted = (k) => ev.map((e) => e[k]).filter((x) => x !== null).sort((a, b) => a - b);
    const fc = sorted('stale_from_change_ms'), fm = sorted('stale_from_mute_ms'), sc = sorted('scraped_from_change_ms');
    const ver = diff(m0.verifications, m1.verifications);
    const res = {
      kind: 'freeze', n, mutes: fr.size, changed: ev.filter((e) => e.next).length,
      caught: fc.length, missed: ev.filter((e) => e.next && !e.end).length,
      p50_from_change_s: r1(pct(fc, 50) / 1000), p95_from_change_s: r1(pct(fc, 95) / 1000),
      max_from_change_s: r1(fc.length ? fc[fc.length - 1] / 1000 : null),
      min_from_change_s: r1(fc.length ? fc[0] / 1000 : null),
      p50_from_mute_s: r1(pct(fm, 50) / 1000), p95_from_mute_s: r1(pct(fm, 95) / 1000),
      max_from_mute_s: r1(fm.length ? fm[fm.length - 1] / 1000 : null),
      p50_scraped_from_change_s: r1(pct(sc, 50) / 1000), p95_scraped_from_change_s: r1(pct(sc, 95) / 1000),
      frozen_total: m1.frozen - m0.frozen, verifications_by_result: ver,
      phase_s: r1((Date.now() - t0) / 1000), timeout_s: timeout / 1000,
    };
    fs.appendFileSync(need('--results'), `${JSON.stringify(res)}\n`);
    console.log(`   freezes: ${res.mutes} muted, ${res.changed} whose true state changed while muted, ${res.caught} corrected ` +
      `in the sink, ${res.missed} never within ${res.timeout_s} s; stale from the true change p50 ${res.p50_from_change_s} s, ` +
      `p95 ${res.p95_from_change_s} s, max ${res.max_from_change_s} s (from the mute p50 ${res.p50_from_mute_s} s, ` +
      `p95 ${res.p95_from_mute_s} s); cdpilot counted ${res.frozen_total} frozen`);
  },

  async table() {
    const rows = lines(need('--results'));
    const w = rows.filter((r) => r.kind === 'window');
    const f = (x, d = 1) => (x === null || x === undefined ? '-' : x.toFixed(d));
    const out = [['figure', 'verify ON', 'verify OFF', 'ON/OFF']];
    const med = (side, k) => median(w.filter((r) => r.side === side).map((r) => r[k]));
    const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b ? (a / b).toFixed(2) : '-');
    const figs = [
      ['tasks/s (watched reads)', 'tasks_per_s', 2], ['controller CPU per task (ms)', 'cpu_ms_per_task', 2],
      ['controller CPU (% of a core)', 'cpu_percent', 2], ['verification reads/s', 'verifications_per_s', 2],
      ['controller RSS peak (MB)', 'peak_rss_mb', 1],
    ];
    const total = (side, k) => w.filter((r) => r.side === side).reduce((a, r) => a + (r[k] || 0), 0);
    if (w.length) {
      const n = w[0].n, due = w[0].due_per_s;
      const rounds = `${w.filter((r) => r.side === 'on').length}/${w.filter((r) => r.side === 'off').length}`;
      for (const [label, k, d] of figs) {
        const a = med('on', k), b = med('off', k);
        out.push([`${label}, median of ${rounds} windows`, f(a, d), f(b, d), ratio(a, b)]);
      }
      // what one verification read adds to the controller: the CPU time per second it
      // costs over the OFF side, divided by the verification reads per second
      const perS = (side) => median(w.filter((r) => r.side === side).map((r) => r.cpu_ms / r.window_s));
      const on = perS('on'), off = perS('off'), vps = med('on', 'verifications_per_s');
      out.push(['extra controller CPU per verification read (ms)',
        on !== null && off !== null && vps ? f((on - off) / vps, 2) : '-', '-', '-']);
      out.push([`frozen, total of ${rounds} windows (healthy pages: false freezes)`, String(total('on', 'frozen')), String(total('off', 'frozen')), '-']);
      out.push([`tasks not ok, total of ${rounds} windows`, String(total('on', 'tasks_not_ok')), String(total('off', 'tasks_not_ok')), '-']);
      out.push([`(N=${n} watched targets, ${due} reads/s due)`, '', '', '']);
    }
    const fz = rows.filter((r) => r.kind === 'freeze').pop();
    if (fz) {
      out.push([`freeze phase: ${fz.mutes} pages muted, cdpilot_watch_frozen_total`, String(fz.frozen_total), '-', '-']);
      out.push([`frozen page: stale from the true change, p50 (s) [${fz.caught}/${fz.changed} caught]`, f(fz.p50_from_change_s), '-', '-']);
      out.push(['frozen page: stale from the true change, p95 (s)', f(fz.p95_from_change_s), '-', '-']);
      out.push(['frozen page: stale from the true change, max (s)', f(fz.max_from_change_s), '-', '-']);
      out.push(['frozen page: from the mute (+ wait for the change), p50 / p95 (s)', `${f(fz.p50_from_mute_s)} / ${f(fz.p95_from_mute_s)}`, '-', '-']);
    }
    const wd = out[0].map((_, i) => Math.max(...out.map((r) => r[i].length)));
    for (const [i, r] of out.entries()) {
      console.log(r.map((cell, j) => (j === 0 ? cell.padEnd(wd[j]) : cell.padStart(wd[j]))).join(' | '));
      if (i === 0) console.log(wd.map((k) => '-'.repeat(k)).join('-|-'));
    }
    console.log('ON/OFF: the cost of verification (tasks/s below 1: fewer watched reads made; CPU above 1: dearer).');
    console.log('frozen: verification reads that differed (each publishes, counts and reloads the page); a freeze phase count above the pages muted, or any in the ON windows, are healthy pages judged frozen.');
    if (fz && fz.missed) console.log(`${fz.missed} frozen page(s) never corrected within ${fz.timeout_s} s of the mute: not in the percentiles.`);
    console.log('\nevery window (side round: tasks/s, CPU ms/task, CPU %, verification reads/s, frozen):');
    for (const r of w) {
      console.log(`  ${r.side.padEnd(3)} ${r.round}: ${f(r.tasks_per_s, 2)} tasks/s, ${f(r.cpu_ms_per_task, 2)} ms/task, ` +
        `${f(r.cpu_percent, 2)}%, ${f(r.verifications_per_s, 2)} verifications/s ${JSON.stringify(r.verifications_by_result)}, ` +
        `${r.frozen} frozen, ${r.tasks_not_ok} not ok, ${r.window_s} s`);
    }
  },
};

const cmd = cmds[process.argv[2]];
if (!cmd) { console.error(`usage: node verify_tool.js ${Object.keys(cmds).join('|')} ...`); process.exit(2); }
cmd().catch((e) => { console.error(`verify_tool ${process.argv[2]}: ${e.message}`); process.exit(1); });
