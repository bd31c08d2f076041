// daemon_tool.js: small helpers for bench/run-daemon.sh and bench/soak/run.sh, so the shell
// scripts need nothing beyond node (no curl, no python). Subcommands:
//
//   port                                   a free loopback TCP port
//   wait-status --url URL [--timeout S]    until URL (/status) answers with browser.connected
//   site --base URL --n N [--speed X]      reset the demo site to N matches and kick them
//                                          all off now (every match live)
//   targets --base URL --n N --mode navigate|watch [--push] [--interval S] --out FILE
//                                          N generic targets "m1".."mN" on /live/match/ID
//   js-targets --base URL --n N --out FILE N generic targets on /js?delay=10&page=K
//   sample --pid P --out FILE [--every-ms MS]
//                                          /proc/P/stat utime+stime, VmRSS, VmHWM as JSON
//                                          lines {t, cpu_ms, rss_kb, hwm_kb} until P exits
//   wait-first --out FILE --targets FILE [--timeout S]
//                                          until FILE (JSON lines) holds a snapshot of every
//                                          target; prints the Unix ms when it did (or when
//                                          the timeout ran out, with "timeout" on stderr)
//   goals --base URL --n N --seconds S --out FILE [--seed K]
//                                          a goal on a random live match every 0.5-1.5 s;
//                                          one JSON line per goal {id, version, changed_at_ms}
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const { execFileSync } = require('node:child_process');

const { arg, needFor, getJson, requireAllLive, matchFields } = require('./cli.js');
const need = needFor('daemon_tool');
const flag = (name) => process.argv.includes(name);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


// The generic adapter's fields for a demo match page (the same for both sides).
const MATCH_FIELDS = matchFields(true);

let clkTck = 0;
function ticksPerSecond() {
  if (!clkTck) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch (e) { clkTck = 100; }
  }
  return clkTck;
}

function procSample(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after the name: state is f[0], utime is field 14 -> f[11], stime f[12]
  const ticks = Number(f[11]) + Number(f[12]);
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => { const m = new RegExp(`${k}:\\s+(\\d+)`).exec(st); return m ? Number(m[1]) : 0; };
  return { t: Date.now(), cpu_ms: (ticks * 1000) / ticksPerSecond(), rss_kb: kb('VmRSS'), hwm_kb: kb('VmHWM'), state: f[0] };
}

const cmds = {
  async port() {
    const s = net.createServer();
    await new Promise((r) => s.listen(0, '127.0.0.1', r));
    console.log(s.address().port);
    s.close();
  },

  async 'wait-status'() {
    const url = need('--url');
    const until = Date.now() + Number(arg('--timeout', '60')) * 1000;
    let last = '';
    while (Date.now() < until) {
      try {
        const s = await getJson(url);
        if (s.browser && s.browser.connected) return;
        last = 'browser not connected yet';
      } catch (e) { last = e.message; }
      await sleep(200);
    }
    console.error(`wait-status: ${url} not ready: ${last}`);
    process.exit(1);
  },

  async site() {
    const base = need('--base');
    const n = Number(need('--n'));
    const speed = arg('--speed', '1');
    await getJson(`${base}/live/ctl/reset?n=${n}&speed=${speed}`);
    for (let i = 1; i <= n; i++) await getJson(`${base}/live/ctl/start?id=${i}`);
    await requireAllLive(base, n);
  },

  async targets() {
    const base = need('--base');
    const n = Number(need('--n'));
    const mode = arg('--mode', 'navigate');
    const interval = Number(arg('--interval', '5'));
    const targets = [];
    for (let i = 1; i <= n; i++) {
      const t = {
        id: `m${i}`, adapter: 'generic', url: `${base}/live/match/${i}`, class: 'live',
        interval_seconds: interval, wait_for: '#match[data-version]', fields: MATCH_FIELDS,
      };
      if (mode === 'watch') { t.mode = 'watch'; if (flag('--push')) t.push = true; }
      targets.push(t);
    }
    fs.writeFileSync(need('--out'), JSON.stringify({ targets }, null, 1));
  },

  async 'js-targets'() {
    const base = need('--base');
    const n = Number(need('--n'));
    const targets = [];
    for (let i = 1; i <= n; i++) {
      targets.push({
        id: `js${i}`, adapter: 'generic', url: `${base}/js?delay=10&page=${i}`, class: 'live',
        wait_for: '#out', fields: { out: { selector: '#out' }, title: { selector: 'title' } },
      });
    }
    fs.writeFileSync(need('--out'), JSON.stringify({ targets }, null, 1));
  },

  async sample() {
    const pid = Number(need('--pid'));
    const out = fs.openSync(need('--out'), 'w');
    const every = Number(arg('--every-ms', '1000'));
    for (;;) {
      let s;
      try { s = procSample(pid); } catch (e) { break; }
      if (s.state === 'Z') break;
      fs.writeSync(out, `${JSON.stringify(s)}\n`);
      await sleep(every);
    }
    fs.closeSync(out);
  },

  async 'wait-first'() {
    const outPath = need('--out');
    const doc = JSON.parse(fs.readFileSync(need('--targets'), 'utf8'));
    const want = new Set((Array.isArray(doc) ? doc : doc.targets).map((t) => t.id));
    const until = Date.now() + Number(arg('--timeout', '60')) * 1000;
    let pos = 0, rest = '';
    while (want.size && Date.now() < until) {
      let fd = -1;
      try {
        fd = fs.openSync(outPath, 'r');
        const buf = Buffer.alloc(1 << 20);
        let n;
        while ((n = fs.readSync(fd, buf, 0, buf.length, pos)) > 0) {
          pos += n;
          const parts = (rest + buf.toString('utf8', 0, n)).split('\n');
          rest = parts.pop();
          for (const l of parts) {
            const m = /"type":"snapshot","target":"([^"]+)"/.exec(l);
            if (m) want.delete(m[1]);
          }
        }
      } catch (e) { /* not created yet */ }
      if (fd >= 0) fs.closeSync(fd);
      if (want.size) await sleep(100);
    }
    if (want.size) console.error(`wait-first: timeout, ${want.size} target(s) without a snapshot`);
    console.log(Date.now());
  },

  async goals() {
    const base = need('--base');
    const n = Number(need('--n'));
    const until = Date.now() + Number(need('--seconds')) * 1000;
    const out = fs.openSync(need('--out'), 'w');
    let seed = Number(arg('--seed', '12345')) >>> 0;
    const rnd = () => { seed = (seed * 1664525 + 1013904223) >>> 0; return seed / 4294967296; };
    let failed = 0;
    while (Date.now() < until) {
      await sleep(500 + rnd() * 1000);
      const id = 1 + Math.floor(rnd() * n);
      try {
        const r = await getJson(`${base}/live/ctl/goal?id=${id}&side=${rnd() < 0.5 ? 'home' : 'away'}`);
        fs.writeSync(out, `${JSON.stringify({ id: `m${id}`, version: r.version, changed_at_ms: r.changed_at_ms })}\n`);
      } catch (e) {
        failed++;
        console.error(`goal on match ${id}: ${e.message}`);
      }
    }
    fs.closeSync(out);
    if (failed) process.exitCode = 1;
  },
};

const cmd = cmds[process.argv[2]];
if (!cmd) { console.error(`usage: node daemon_tool.js ${Object.keys(cmds).join('|')} ...`); process.exit(2); }
cmd().catch((e) => { console.error(`daemon_tool ${process.argv[2]}: ${e.message}`); process.exit(1); });
