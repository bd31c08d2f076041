// peer_schedule.js: a peer's side of the daemon schedule benchmark (bench/run-daemon.sh), for
// either library (peers.js); entry points pw_schedule.js (Playwright) and pp_schedule.js
// (Puppeteer). Reads the same targets file as `cdpilot run` (generic-adapter targets:
// fields by CSS selector), keeps them fresh on their interval with the daemon's scheduling
// rule, and writes the same JSON lines (snapshot, delta; adapter: the library's name) so one
// report script reads every side.
//
//   node pw_schedule.js|pp_schedule.js --targets FILE --output FILE --duration S [--concurrency 8]
//
// Same Chromium binary and switches as cdpilot (peers.js launchPeer: the library's own
// default switches dropped, as in the pool benchmark). Scheduling as cdpilot's scheduler:
// every target due at once;
// after a scrape that started at `start`, due again at max(start + interval, now); the
// earliest due target runs first; at most --concurrency scrapes at a time (a semaphore).
//   navigate targets: one new context per scrape: newContext, newPage, goto (load),
//                     waitForSelector(wait_for), evaluate the fields, close the context.
//   watch targets ("mode": "watch"): one context and page per target, opened on its first
//                     scrape (goto + waitForSelector) and read with the same evaluate on
//                     every later one; reopened if a read fails.
// Stops scheduling after --duration seconds or on SIGTERM/SIGINT, lets the scrapes in
// flight finish, closes the browser, prints a summary on stderr.
'use strict';
const fs = require('node:fs');
const { arg } = require('./cli');
const { launchPeer, goto, waitFor, evaluate } = require('./peers');

// The page-side part of the generic adapter: for each field, the trimmed textContent of the
// first match (or an attribute), null when nothing matches. Types are applied in node.
function extractExpression(fields) {
  const spec = Object.entries(fields).map(([k, f]) => [k, f.selector, f.attr || null]);
  return `(() => { const spec = ${JSON.stringify(spec)}; const out = {};
    for (const [k, sel, attr] of spec) {
      const el = document.querySelector(sel);
      out[k] = !el ? null : attr ? el.getAttribute(attr) : (el.textContent || '').trim();
    }
    return out; })()`;
}

function normalise(fields, raw) {
  const data = {};
  for (const [k, f] of Object.entries(fields)) {
    let v = raw[k];
    if (v === null || v === undefined) {
      if (f.required === false) { data[k] = null; continue; }
      throw new Error(`field "${k}": nothing matches ${f.selector}`);
    }
    if (f.regex) {
      const m = new RegExp(f.regex).exec(v);
      if (!m) throw new Error(`field "${k}": regex does not match`);
      v = m.length > 1 ? m[1] : m[0];
    }
    if (f.type === 'int' || f.type === 'float') {
      const n = Number(String(v).trim().replace(/,/g, ''));
      if (!Number.isFinite(n) || (f.type === 'int' && !Number.isInteger(n))) {
        throw new Error(`field "${k}": expected ${f.type}, got ${JSON.stringify(v)}`);
      }
      v = n;
    }
    data[k] = v;
  }
  return data;
}

async function main(lib, script) {
  const targetsPath = arg('--targets');
  const outPath = arg('--output');
  const duration = Number(arg('--duration', '60'));
  const conc = Number(arg('--concurrency', '8'));
  if (!targetsPath || !outPath) {
    console.error(`usage: node ${script} --targets FILE --output FILE --duration S [--concurrency C]`);
    process.exit(2);
  }
  let doc = JSON.parse(fs.readFileSync(targetsPath, 'utf8'));
  if (!Array.isArray(doc)) doc = doc.targets;
  const targets = doc.map((t) => {
    if (t.adapter !== 'generic') throw new Error(`target ${t.id}: only generic targets are supported`);
    return {
      ...t, js: extractExpression(t.fields), intervalMs: (t.interval_seconds || 5) * 1000,
      watch: t.mode === 'watch', due: 0, running: false, seq: 0, last: null, ctx: null, page: null,
    };
  });
  const out = fs.openSync(outPath, 'w');
  const browser = await launchPeer(lib);

  const t0 = Date.now();
  let stopAt = t0 + duration * 1000;
  let kick = () => {};
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { stopAt = Date.now(); kick(); });
  for (const t of targets) t.due = t0;
  let inflight = 0, ok = 0, failed = 0;
  const errors = new Map();

  function publish(t, start, data) {
    const now = Date.now();
    const snap = {
      type: 'snapshot', target: t.id, adapter: lib, url: t.url, seq: ++t.seq,
      scraped_at: new Date(now).toISOString(), duration_ms: now - start, class: t.class || 'live', data,
    };
    fs.writeSync(out, `${JSON.stringify(snap)}\n`);
    const changed = [], added = [];
    for (const [k, v] of Object.entries(data)) {
      if (!t.last) added.push({ path: `/${k}`, value: v });
      else if (t.last[k] !== v) changed.push({ path: `/${k}`, from: t.last[k], to: v });
    }
    if (added.length || changed.length) {
      fs.writeSync(out, `${JSON.stringify({ type: 'delta', target: t.id, seq: t.seq, prev_seq: t.seq - 1, scraped_at: snap.scraped_at, added, changed, removed: [] })}\n`);
    }
    t.last = data;
  }

  async function scrape(t) {
    const start = Date.now();
    try {
      let raw;
      if (t.watch) {
        if (!t.page) {
          t.ctx = await browser.newContext();
          t.page = await t.ctx.newPage();
          await goto(t.page, t.url);
          if (t.wait_for) await waitFor(t.page, t.wait_for);
        }
        raw = await evaluate(t.page, t.js);
      } else {
        const ctx = await browser.newContext();
        try {
          const page = await ctx.newPage();
          await goto(page, t.url);
          if (t.wait_for) await waitFor(page, t.wait_for);
          raw = await evaluate(page, t.js);
        } finally {
          await ctx.close().catch(() => {});
        }
      }
      publish(t, start, normalise(t.fields, raw));
      ok++;
    } catch (e) {
      failed++;
      const k = e.message.split('\n')[0];
      errors.set(k, (errors.get(k) || 0) + 1);
      if (t.watch && t.ctx) { await t.ctx.close().catch(() => {}); t.ctx = null; t.page = null; }
    }
    t.due = Math.max(start + t.intervalMs, Date.now());
  }

  await new Promise((resolve) => {
    let timer = null;
    function pump() {
      if (timer) { clearTimeout(timer); timer = null; }
      const now = Date.now();
      if (now >= stopAt) { if (inflight === 0) resolve(); return; }
      while (inflight < conc) {
        let best = null;
        for (const t of targets) if (!t.running && t.due <= now && (!best || t.due < best.due)) best = t;
        if (!best) break;
        best.running = true;
        inflight++;
        scrape(best).finally(() => { best.running = false; inflight--; pump(); });
      }
      let next = stopAt;
      for (const t of targets) if (!t.running) next = Math.min(next, t.due);
      timer = setTimeout(pump, Math.max(1, next - Date.now()));
    }
    kick = pump;
    pump();
  });
  fs.closeSync(out);
  await browser.close();
  console.error(JSON.stringify({ side: lib, version: browser.version, targets: targets.length, ok, failed, errors: Object.fromEntries(errors) }));
}

module.exports = {
  run: (lib, script) => main(lib, script).catch((e) => { console.error(e); process.exit(1); }),
};
