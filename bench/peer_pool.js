// peer_pool.js: a peer's side of the pool benchmark (bench/run-pool.sh), for either library
// (peers.js): one browser, a new context per task (newContext, newPage, goto (load), wait
// for the page set's selector if any, read its value, close the context), at a given
// concurrency, on the same fixture pages and the same Debian Chromium as cdpilot. Prints
// one JSON object with the same fields as cdpilot-bench-pool. Entry points: pw_pool.js
// (Playwright), pp_pool.js (Puppeteer).
//
//   node pw_pool.js|pp_pool.js --base URL [--tasks N] [--concurrency C] [--pages js|real]
//                              [--defaults]
// --pages: the page set (peers.js PAGES; default js). --defaults: the library launched
// with its own defaults (executablePath only) instead of cdpilot's switches.
'use strict';
const { arg } = require('./cli');
const { PAGES, launchPeer, goto, waitFor, evaluate, startSampler } = require('./peers');

async function main(lib, script) {
  const base = arg('--base');
  const tasks = Number(arg('--tasks', '100'));
  const conc = Number(arg('--concurrency', '8'));
  const pagesName = arg('--pages', 'js');
  const defaults = process.argv.includes('--defaults');
  const pages = PAGES[pagesName];
  if (!base || !pages || !(tasks >= 1) || !(conc >= 1)) {
    console.error(`usage: node ${script} --base URL [--tasks N >= 1] [--concurrency C >= 1] ` +
                  `[--pages ${Object.keys(PAGES).join('|')}] [--defaults]` +
                  (pages ? '' : ` (got --pages ${pagesName})`));
    process.exit(2);
  }
  const peer = await launchPeer(lib, { defaults });
  const sampler = startSampler();
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
        context = await peer.newContext();
        const page = await context.newPage();
        await goto(page, pages.url(base, i));
        if (pages.waitFor) await waitFor(page, pages.waitFor);
        await evaluate(page, pages.read);
        ok++;
      } catch (e) {
        failed++;
        console.error(`${lib}: task failed: ${e.message}`);
      } finally {
        if (context) await context.close().catch(() => {});
      }
      lat.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  await Promise.all(Array.from({ length: conc }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const s = sampler.stop();
  lat.sort((a, b) => a - b);
  await peer.close();
  console.log(JSON.stringify({
    side: lib, version: peer.version, concurrency: conc, tasks, pages: pagesName,
    defaults, block_resources: false, ok, failed,
    tasks_per_s: tasks / secs, p50_ms: lat[Math.floor(tasks / 2)],
    p95_ms: lat[Math.floor(tasks * 95 / 100)], peak_rss_mb: s.peakRss,
    cpu_ms_per_task: (cpu.user + cpu.system - s.samplerUs) / 1000 / tasks, peak_processes: s.peakProcs,
  }));
  process.exit(failed ? 1 : 0);
}

module.exports = {
  run: (lib, script) => main(lib, script).catch((e) => { console.error(e); process.exit(1); }),
};
