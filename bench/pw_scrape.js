#!/usr/bin/env node
// pw_scrape.js: the Playwright side of cdpilot's benchmark (see README.md). For each of N
// runs it launches Debian's Chromium with playwright-core and measures (a) launch to a
// ready page (launch + newContext + newPage), (b) E sequential page.evaluate('1') round
// trips, (c) a full scrape of the fixture's /js page (goto, waitForSelector('#out'),
// evaluate {title, url, text}), then closes the browser. Prints one JSON object with the
// same fields as cdpilot-bench.
//
// usage: node pw_scrape.js --base http://127.0.0.1:PORT [--runs N] [--evals E]
//                          [--chromium PATH]
// Exit status: 0 when every measurement succeeded, 1 if any failed (the JSON lists the
// errors), 2 on a usage error.
//
// Flags: Chromium gets the same switches cdpilot uses, read from base_flags[] and
// OUR_DISABLED_FEATURES in ../pool/browser_launch.c so the two sides cannot drift apart (the
// list below is the fallback if that file cannot be read), less the
// --remote-debugging-* switches (Playwright uses a pipe), plus --no-sandbox as root.
// Playwright puts its own default switches first (--remote-debugging-pipe,
// --no-startup-window, --enable-unsafe-swiftshader, its own --disable-features list and
// others); ours come after. Chromium keeps only the last --disable-features, so ours
// replaces Playwright's list. The JSON output lists the switches we passed.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { chromium } = require('playwright-core');
const { cdpilotFlags, chromiumExecutable, FALLBACK_FLAGS } = require('./chromium_flags');
const pwVersion = require('playwright-core/package.json').version;

const STEP_TIMEOUT_MS = 30000;


function usage(out) {
  out.write('usage: node pw_scrape.js --base http://127.0.0.1:PORT [--runs N] [--evals E] ' +
            '[--chromium PATH]\n');
}

function parseArgs(argv) {
  const o = {
    base: null,
    runs: 5,
    evals: 1000,
    chromium: chromiumExecutable(),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      usage(process.stdout);
      process.exit(0);
    }
    const v = argv[i + 1];
    if (v === undefined) {
      process.stderr.write(`pw_scrape.js: ${a} needs a value\n`);
      process.exit(2);
    }
    i++;
    if (a === '--base') {
      o.base = v.replace(/\/+$/, '');
    } else if (a === '--chromium') {
      o.chromium = v;
    } else if (a === '--runs' || a === '--evals') {
      const n = Number(v);
      const max = a === '--runs' ? 1000 : 1000000;
      if (!/^[0-9]+$/.test(v) || n < 1 || n > max) {
        process.stderr.write(`pw_scrape.js: ${a} '${v}': expected 1..${max}\n`);
        process.exit(2);
      }
      o[a.slice(2)] = n;
    } else {
      process.stderr.write(`pw_scrape.js: unknown argument '${a}'\n`);
      usage(process.stderr);
      process.exit(2);
    }
  }
  if (!o.base) {
    usage(process.stderr);
    process.exit(2);
  }
  return o;
}

// {n, median, p95, min, max, mean}, or null when there are no samples. p95 is the
// nearest-rank percentile, as in bench_cdp.c. Milliseconds, rounded to the microsecond.
function stats(samples) {
  if (samples.length === 0) return null;
  const v = [...samples].sort((x, y) => x - y);
  const n = v.length;
  const median = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  const p95 = v[Math.ceil(0.95 * n) - 1];
  const mean = v.reduce((s, x) => s + x, 0) / n;
  const r = (x) => Math.round(x * 1000) / 1000;
  return { n, median: r(median), p95: r(p95), min: r(v[0]), max: r(v[n - 1]), mean: r(mean) };
}

async function runOnce(o, url, args, s) {
  const t0 = performance.now();
  const browser = await chromium.launch({
    executablePath: o.chromium,
    args,
    headless: true,
    timeout: STEP_TIMEOUT_MS,
  });
  try {
    s.browser.push(performance.now() - t0);
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    s.ready.push(performance.now() - t0);

    for (let i = 0; i < o.evals; i++) {
      const t = performance.now();
      const v = await page.evaluate('1');
      s.evals.push(performance.now() - t);
      if (v !== 1) throw new Error(`evaluate #${i + 1}: expected 1, got ${JSON.stringify(v)}`);
    }

    const ts = performance.now();
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('#out');
    const out = await page.evaluate(() => ({
      title: document.title,
      url: location.href,
      text: document.querySelector('#out').textContent,
    }));
    if (!out || typeof out.text !== 'string') throw new Error('scrape: no {title, url, text}');
    s.scrape.push(performance.now() - ts);
    await context.close();
  } finally {
    await browser.close();
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const url = `${o.base}/js`;
  const s = { browser: [], ready: [], evals: [], scrape: [] };
  const errors = [];
  let args = cdpilotFlags();
  if (!args) {
    process.stderr.write('pw_scrape.js: cannot read the flags from ../pool/browser_launch.c; ' +
                         'using the built-in copy\n');
    args = [...FALLBACK_FLAGS];
  }
  if (typeof process.getuid === 'function' && process.getuid() === 0) args.push('--no-sandbox');

  for (let i = 0; i < o.runs; i++) {
    try {
      await runOnce(o, url, args, s);
    } catch (e) {
      errors.push(`run ${i + 1}: ${String(e && e.message ? e.message : e).split('\n')[0]}`);
    }
  }
  const result = {
    tool: 'playwright',
    playwright_version: pwVersion,
    node_version: process.version,
    url,
    runs: o.runs,
    evals_per_run: o.evals,
    launch_to_ready_ms: stats(s.ready),
    browser_ready_ms: stats(s.browser),
    eval_ms: stats(s.evals),
    scrape_ms: stats(s.scrape),
    cli_scrape_ms: null,
    chromium: o.chromium,
    chromium_flags: args,
    errors,
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  process.exitCode = errors.length ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`pw_scrape.js: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
