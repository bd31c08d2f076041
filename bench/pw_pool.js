// pw_pool.js: the Playwright side of the pool benchmark. One browser, a new context per
// task (newContext, newPage, goto, read the title, close the context), at a given
// concurrency, on the same fixture pages and the same Debian Chromium with the same flags
// as cdpilot. Prints one JSON object with the same fields as cdpilot-bench-pool.
//
//   node pw_pool.js --base http://127.0.0.1:PORT --tasks N --concurrency C
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

// The same switches cdpilot launches with (read from pool/browser_launch.c). Playwright's own
// defaults are dropped (ignoreDefaultArgs: true) so both sides run Chromium identically;
// Playwright needs only its pipe transport and a user-data-dir, which we add.
const { cdpilotFlags, chromiumExecutable, FALLBACK_FLAGS } = require('./chromium_flags');
const CDPILOT_FLAGS = cdpilotFlags() || FALLBACK_FLAGS;

function countTree(root) {
  const parent = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(rest[1]));
    } catch (e) { /* vanished */ }
  }
  let n = 0;
  for (const pid of parent.keys()) {
    let p = pid;
    for (let depth = 0; depth < 64 && p > 1; depth++) {
      if (p === root) { n++; break; }
      p = parent.get(p);
      if (p === undefined) break;
    }
  }
  return n;
}

function rssMb() {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const m = /VmRSS:\s+(\d+)/.exec(s);
  return m ? Number(m[1]) / 1024 : 0;
}

async function main() {
  const base = arg('--base');
  const tasks = Number(arg('--tasks', '100'));
  const conc = Number(arg('--concurrency', '8'));
  if (!base) { console.error('usage: node pw_pool.js --base URL [--tasks N] [--concurrency C]'); process.exit(2); }
  const udd = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-bench-'));
  const args = [...CDPILOT_FLAGS, '--remote-debugging-pipe', `--user-data-dir=${udd}`];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  const browser = await chromium.launch({ executablePath: chromiumExecutable(), ignoreDefaultArgs: true, args });
  let peakProcs = 0, peakRss = 0, samplerUs = 0;
  const sampler = setInterval(() => {
    const c0 = process.cpuUsage();
    peakProcs = Math.max(peakProcs, countTree(process.pid));
    peakRss = Math.max(peakRss, rssMb());
    const c = process.cpuUsage(c0);
    samplerUs += c.user + c.system; // sampling /proc is not the controller's work
  }, 100);
  const lat = [];
  let issued = 0, ok = 0, failed = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  async function worker() {
    while (issued < tasks) {
      const i = issued++;
      const start = process.hrtime.bigint();
      let context;
      try {
        context = await browser.newContext();
        const page = await context.newPage();
        await page.goto(`${base}/js?delay=10&page=${i % 50}`, { waitUntil: 'load', timeout: 30000 });
        await page.evaluate('document.title');
        ok++;
      } catch (e) {
        failed++;
        console.error('task failed:', e.message);
      } finally {
        if (context) await context.close().catch(() => {});
      }
      lat.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  await Promise.all(Array.from({ length: conc }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  peakProcs = Math.max(peakProcs, countTree(process.pid));
  peakRss = Math.max(peakRss, rssMb());
  lat.sort((a, b) => a - b);
  await browser.close();
  fs.rmSync(udd, { recursive: true, force: true });
  console.log(JSON.stringify({
    side: 'playwright', concurrency: conc, tasks, block_resources: false, ok, failed,
    tasks_per_s: tasks / secs, p50_ms: lat[Math.floor(tasks / 2)],
    p95_ms: lat[Math.floor(tasks * 95 / 100)], peak_rss_mb: peakRss,
    cpu_ms_per_task: (cpu.user + cpu.system - samplerUs) / 1000 / tasks, peak_processes: peakProcs,
  }));
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
