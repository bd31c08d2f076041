// watch_tool.js: the helpers of bench/run-watch.sh (how many watched live pages one machine
// keeps current, measured from outside). Subcommands:
//
//   targets --base URL --n N --interval S --poll MS --out FILE [--push] [--mode watch|navigate]
//        N generic watched targets "m1".."mN" on /live/match/ID?poll=MS (the page polls
//        the site's JSON API every MS ms), reading home, away, score, minute, status;
//        --mode navigate: loaded anew every interval instead of watched.
//   truth --base URL --out FILE [--every-ms MS]
//        Until killed: polls /live/api/matches every MS ms (250) and appends one JSON line
//        {t, id, key, since} each time a match's state (minute, score, status) is new;
//        since is the site's own time of the change (updated_ms), t when it was seen.
//   tree --pid P --out FILE [--every-ms MS]
//        Until P exits: every MS ms (1000) one JSON line {t, machine_busy_ms, ctl_ms,
//        chromium_ms, procs, renderers}: CPU of the whole machine (/proc/stat, all cores),
//        of P alone and of its descendants (the browser), their count and how many are
//        renderers; with --pss at the last sample also the browser tree's PSS (MiB).
//   report --truth FILE --sink FILE --targets FILE [--tree FILE] --start MS --ws MS --we MS
//          --interval S --label L --n N --results FILE
//        One step: every second of [ws, we], for every target, the staleness of what the
//        sink held (its newest snapshot by then) against the site's truth for the match of
//        the target's URL (generic or livescore snapshots; bench/run-adaptive.sh judges
//        its adaptive targets with it too): 0 while the
//        held state is still the match's current state, else the time since the truth
//        moved past it (a target with no snapshot, or one the truth never had: since
//        start). Appends {label, n, p50_s, p95_s, max_s, published, cpu...} to --results;
//        exits 0 if p95 <= 1.5 x interval and every target published, else 10.
//   table --results FILE
//        Every step, and per label the largest N that passed.
'use strict';
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');

const { arg, needFor, getJson, matchFields, lines, pct } = require('./cli.js');
const need = needFor('watch_tool');
const flag = (name) => process.argv.includes(name);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const r1 = (x) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10) / 10);

// A match's state as a reader sees it; the same from the API, from a generic target's
// snapshot (score_home, score_away) and from a livescore one (score: {home, away}).
const keyOf = (m) => {
  const sh = m.score_home !== undefined ? m.score_home : m.score && m.score.home;
  const sa = m.score_away !== undefined ? m.score_away : m.score && m.score.away;
  return `${m.minute}|${sh}|${sa}|${m.status}`;
};
// The truth's id of a target: the match its URL shows (/live/match/ID).
const matchOf = (t) => {
  const m = /\/live\/match\/(\d+)/.exec(t.url || '');
  return m ? `m${m[1]}` : t.id;
};

let clkTck = 0;
function ticks() {
  if (!clkTck) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch (e) { clkTck = 100; }
  }
  return clkTck;
}
function procStat(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), cpu_ms: ((Number(f[11]) + Number(f[12])) * 1000) / ticks() };
}
function descendants(root) {
  const kids = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const { ppid } = procStat(d);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch (e) { /* gone */ }
  }
  const out = [];
  const stack = [...(kids.get(root) || [])];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    stack.push(...(kids.get(p) || []));
  }
  return out;
}
function machineBusyMs() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] || 0);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return ((total - idle) * 1000) / ticks();
}

const cmds = {
  async targets() {
    const base = need('--base');
    const n = Number(need('--n'));
    const interval = Number(arg('--interval', '5'));
    const poll = Number(arg('--poll', '1000'));
    const fields = matchFields(false);
    const targets = [];
    for (let i = 1; i <= n; i++) {
      const t = {
        id: `m${i}`, adapter: 'generic', url: `${base}/live/match/${i}?poll=${poll}`, class: 'live',
        mode: arg('--mode', 'watch'), interval_seconds: interval, wait_for: '#match[data-version]', fields,
      };
      if (flag('--push')) t.push = true;
      targets.push(t);
    }
    fs.writeFileSync(need('--out'), JSON.stringify({ targets }, null, 1));
  },

  async truth() {
    const base = need('--base');
    const every = Number(arg('--every-ms', '250'));
    const out = fs.openSync(need('--out'), 'a');
    const last = new Map();
    for (;;) {
      const t0 = Date.now();
      let all;
      try { all = await getJson(`${base}/live/api/matches`); } catch (e) { await sleep(every); continue; }
      const t = Date.now();
      let buf = '';
      for (const m of all.matches) {
        const k = keyOf(m);
        if (last.get(m.id) === k) continue;
        last.set(m.id, k);
        buf += `${JSON.stringify({ t, id: `m${m.id}`, key: k, since: Math.min(m.updated_ms || t, t) })}\n`;
      }
      if (buf) fs.writeSync(out, buf);
      await sleep(Math.max(0, every - (Date.now() - t0)));
    }
  },

  async tree() {
    const pid = Number(need('--pid'));
    const every = Number(arg('--every-ms', '1000'));
    const out = fs.openSync(need('--out'), 'w');
    for (;;) {
      let ctl;
      try { ctl = procStat(pid).cpu_ms; } catch (e) { break; }
      let chromium = 0, renderers = 0;
      const kids = descendants(pid);
      for (const k of kids) {
        try {
          chromium += procStat(k).cpu_ms;
          if (fs.readFileSync(`/proc/${k}/cmdline`, 'utf8').includes('--type=renderer')) renderers++;
        } catch (e) { /* gone */ }
      }
      const s = { t: Date.now(), machine_busy_ms: machineBusyMs(), ctl_ms: ctl, chromium_ms: chromium, procs: kids.length, renderers };
      fs.writeSync(out, `${JSON.stringify(s)}\n`);
      await sleep(every);
    }
  },

  async pss() {
    const pid = Number(need('--pid'));
    let kb = 0;
    for (const k of descendants(pid)) {
      try { kb += Number((fs.readFileSync(`/proc/${k}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m) || [0, 0])[1]); } catch (e) { /* gone */ }
    }
    console.log(Math.round(kb / 1024));
  },

  async report() {
    const n = Number(need('--n'));
    const interval = Number(arg('--interval', '5')) * 1000;
    const start = Number(need('--start'));
    const ws = Number(need('--ws'));
    const we = Number(need('--we'));
    const doc = JSON.parse(fs.readFileSync(need('--targets'), 'utf8'));
    const ids = doc.targets.map((t) => t.id);
    // truth: per match, its states in order, each from the time it began; a target reads
    // the match of its URL (several targets may read one match)
    const matchOfId = new Map(doc.targets.map((t) => [t.id, matchOf(t)]));
    const truth = new Map([...matchOfId.values()].map((m) => [m, []]));
    for (const r of lines(need('--truth'))) if (truth.has(r.id)) truth.get(r.id).push({ t: r.since, key: r.key });
    const held = new Map(ids.map((id) => [id, []]));
    for (const r of lines(need('--sink'))) {
      if (r.type !== 'snapshot' || !held.has(r.target) || !r.data) continue;
      held.get(r.target).push({ t: Date.parse(r.scraped_at), key: keyOf(r.data) });
    }
    const stale = [];
    let published = 0;
    for (const id of ids) {
      const tr = truth.get(matchOfId.get(id));
      const hs = held.get(id).sort((a, b) => a.t - b.t);
      if (hs.length) published++;
      let h = -1;
      for (let now = ws; now <= we; now += 1000) {
        while (h + 1 < hs.length && hs[h + 1].t <= now) h++;
        if (h < 0) { stale.push(now - start); continue; }
        const key = hs[h].key;
        // the newest truth state begun by now, and the last time the held one was it
        let j = -1;
        while (j + 1 < tr.length && tr[j + 1].t <= now) j++;
        if (j >= 0 && tr[j].key === key) { stale.push(0); continue; }
        let k = j;
        while (k >= 0 && tr[k].key !== key) k--;
        stale.push(k >= 0 ? now - tr[k + 1].t : now - start);
      }
    }
    stale.sort((a, b) => a - b);
    const tree = arg('--tree') ? lines(arg('--tree')) : [];
    const at = (t) => tree.reduce((b, s) => (!b || Math.abs(s.t - t) < Math.abs(b.t - t) ? s : b), null);
    const s0 = at(ws), s1 = at(we);
    const secs = s0 && s1 && s1.t > s0.t ? (s1.t - s0.t) / 1000 : null;
    const reads = [...held.values()].reduce((a, hs) => a + hs.filter((x) => x.t >= ws && x.t <= we).length, 0);
    const p95 = pct(stale, 95);
    const res = {
      kind: 'step', label: need('--label'), n, interval_s: interval / 1000, window_s: (we - ws) / 1000,
      all_first_s: r1((ws - start) / 1000), published,
      p50_s: r1(pct(stale, 50) / 1000), p95_s: r1(p95 / 1000), max_s: r1(stale[stale.length - 1] / 1000),
      reads_per_s: secs ? r1(reads / ((we - ws) / 1000)) : null,
      machine_cores: secs ? Math.round(((s1.machine_busy_ms - s0.machine_busy_ms) / 1000 / secs) * 100) / 100 : null,
      chromium_cores: secs ? Math.round(((s1.chromium_ms - s0.chromium_ms) / 1000 / secs) * 100) / 100 : null,
      ctl_ms_per_read: secs && reads ? Math.round(((s1.ctl_ms - s0.ctl_ms) / reads) * 100) / 100 : null,
      procs: s1 ? s1.procs : null, renderers: s1 ? s1.renderers : null,
      pss_mib: arg('--pss') ? Number(arg('--pss')) : null,
      load1: Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
    };
    res.pss_per_page_mib = res.pss_mib ? r1(res.pss_mib / n) : null;
    res.pass = p95 !== null && p95 <= 1.5 * interval && published === n;
    fs.appendFileSync(need('--results'), `${JSON.stringify(res)}\n`);
    console.log(`   ${res.label} N=${n}: staleness p50 ${res.p50_s} s, p95 ${res.p95_s} s, max ${res.max_s} s;` +
      ` ${published}/${n} published; ${res.reads_per_s} reads/s; machine ${res.machine_cores} cores,` +
      ` chromium ${res.chromium_cores}; controller ${res.ctl_ms_per_read} ms/read; ${res.procs} procs` +
      ` (${res.renderers} renderers), PSS ${res.pss_mib} MiB; load ${res.load1} -> ${res.pass ? 'PASS' : 'FAIL'}`);
    process.exit(res.pass ? 0 : 10);
  },

  async table() {
    const rs = lines(need('--results')).filter((r) => r.kind === 'step');
    const hdr = ['setting', 'N', 'p50 s', 'p95 s', 'max s', 'published', 'reads/s', 'machine cores',
      'chromium cores', 'ctl ms/read', 'procs', 'renderers', 'PSS MiB', 'MiB/page', 'load1', 'pass'];
    const rows = rs.map((r) => [r.label, r.n, r.p50_s, r.p95_s, r.max_s, `${r.published}/${r.n}`, r.reads_per_s,
      r.machine_cores, r.chromium_cores, r.ctl_ms_per_read, r.procs, r.renderers, r.pss_mib, r.pss_per_page_mib,
      r.load1, r.pass ? 'yes' : 'NO'].map((x) => (x === null || x === undefined ? '-' : String(x))));
    const w = hdr.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const fmt = (r) => r.map((c, i) => c.padStart(w[i])).join(' | ');
    console.log(fmt(hdr));
    console.log(w.map((x) => '-'.repeat(x)).join('-|-'));
    for (const r of rows) console.log(fmt(r));
    const best = {};
    for (const r of rs) if (r.pass) best[r.label] = Math.max(best[r.label] || 0, r.n);
    for (const l of new Set(rs.map((r) => r.label))) {
      const fails = rs.filter((r) => r.label === l && !r.pass).map((r) => r.n);
      console.log(`${l}: largest N kept current ${best[l] || 0}${fails.length ? `; first failure at ${Math.min(...fails)}` : ''}`);
    }
  },
};

const cmd = process.argv[2];
if (!cmds[cmd]) {
  console.error(`usage: node bench/watch_tool.js ${Object.keys(cmds).join('|')} ...`);
  process.exit(2);
}
cmds[cmd]().catch((e) => { console.error(`watch_tool ${cmd}: ${e.message}`); process.exit(1); });
