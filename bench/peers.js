// peers.js: the two peer libraries (playwright-core, puppeteer-core) behind one small
// interface, for the pool and schedule benchmarks (peer_pool.js, peer_schedule.js and
// their entry points pw_*.js / pp_*.js), plus what those share: the page sets and the
// controller's own figures read from /proc.
//
// launchPeer(lib, { defaults }) launches the Chromium cdpilot picks (chromium_flags.js):
//   defaults false: identical switches on every side: cdpilot's (pool/browser_launch.c),
//     the library's own default switches dropped (ignoreDefaultArgs: true), a pipe
//     transport and a temporary user-data-dir added, --no-sandbox as root (as cdpilot).
//   defaults true: the library as it launches by default, executablePath only (and
//     --no-sandbox as root for Puppeteer, which Chromium needs as root; Playwright adds it
//     itself): playwright chromium.launch(), puppeteer.launch().
// Both ways the library's SIGINT/SIGTERM/SIGHUP handlers are off: the callers stop on
// their own (finishing what is in flight) and close the browser.
// It resolves to { lib, version, flags, newContext(), close() }; a context has newPage()
// and close(); goto(page, url), waitFor(page, css) and evaluate(page, expression) work on
// the page of either library.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { cdpilotFlags, chromiumExecutable, FALLBACK_FLAGS } = require('./chromium_flags');

const LIBS = { playwright: 'playwright-core', puppeteer: 'puppeteer-core' };
const TIMEOUT_MS = 30000;

// The page sets: what one pool task loads, waits for and reads. cdpilot's side
// (bench_pool.c --pages) does the same.
//   js:   50 small JS-rendered pages; load, read document.title
//   real: 50 realistic match pages (/real/match/K: stylesheet, web font, images, a script
//         bundle; the live score rendered from a JSON fetch); load, wait for the live
//         score (#live-score[data-ready]), read it
const PAGES = {
  js: { url: (base, i) => `${base}/js?delay=10&page=${i % 50}`, waitFor: null, read: 'document.title' },
  real: {
    url: (base, i) => `${base}/real/match/${i % 50}`,
    waitFor: '#live-score[data-ready]',
    read: "document.querySelector('#live-score').textContent",
  },
};

function isRoot() { return Boolean(process.getuid && process.getuid() === 0); }

async function launchPeer(lib, { defaults = false } = {}) {
  const mod = LIBS[lib];
  if (!mod) throw new Error(`unknown peer "${lib}": expected ${Object.keys(LIBS).join(' or ')}`);
  const version = require(`${mod}/package.json`).version;
  const noSignals = { handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false };
  const executablePath = chromiumExecutable();
  let udd = null, opts;
  if (defaults) {
    opts = { executablePath, ...noSignals };
    if (lib === 'puppeteer' && isRoot()) opts.args = ['--no-sandbox'];
  } else {
    udd = fs.mkdtempSync(path.join(os.tmpdir(), `${lib}-bench-`));
    const args = [...(cdpilotFlags() || FALLBACK_FLAGS), '--remote-debugging-pipe', `--user-data-dir=${udd}`];
    if (isRoot()) args.push('--no-sandbox');
    opts = { executablePath, ignoreDefaultArgs: true, args, ...noSignals };
    // --no-startup-window: there is no first page for Puppeteer to wait for
    if (lib === 'puppeteer') Object.assign(opts, { pipe: true, waitForInitialPage: false });
  }
  let browser, newContext;
  if (lib === 'playwright') {
    browser = await require(mod).chromium.launch(opts);
    newContext = async () => browser.newContext();
  } else {
    browser = await require(mod).launch(opts);
    newContext = async () => browser.createBrowserContext();
  }
  return {
    lib, version, flags: defaults ? 'defaults' : 'cdpilot',
    newContext,
    async close() {
      await browser.close();
      // Chromium's helpers may still be writing the profile for a moment after close()
      if (udd) {
        try { fs.rmSync(udd, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }); } catch (e) {
          console.error(`could not remove ${udd}: ${e.message}`);
        }
      }
    },
  };
}

// The same calls on a page of either library (their signatures agree for these).
const goto = (page, url) => page.goto(url, { waitUntil: 'load', timeout: TIMEOUT_MS });
const waitFor = (page, css) => page.waitForSelector(css, { timeout: TIMEOUT_MS });
const evaluate = (page, expression) => page.evaluate(expression);

// Processes whose ancestry reaches root (root included).
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
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

// Samples the peak process count of this process's tree and its peak RSS every 100 ms;
// the CPU spent sampling is kept apart (it is not the controller's work).
function startSampler() {
  const s = { peakProcs: 0, peakRss: 0, samplerUs: 0 };
  const take = () => {
    const c0 = process.cpuUsage();
    s.peakProcs = Math.max(s.peakProcs, countTree(process.pid));
    s.peakRss = Math.max(s.peakRss, rssMb());
    const c = process.cpuUsage(c0);
    s.samplerUs += c.user + c.system;
  };
  const timer = setInterval(take, 100);
  s.stop = () => { clearInterval(timer); take(); return s; };
  return s;
}

module.exports = { LIBS, PAGES, launchPeer, goto, waitFor, evaluate, startSampler, countTree };
