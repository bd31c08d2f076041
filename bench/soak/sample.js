// bench/soak/sample.js: the soak's sampler. Every --every seconds until the daemon exits,
// reads the daemon's /metrics and /status and, at the same moment, /proc, and appends a
// CSV row:
//   t_s, unix_ms,
//   procs, procs_proc        processes below the daemon: cdpilot_tree_processes | /proc walk
//   threads, threads_proc    threads of the daemon and everything below it:
//                            sum(cdpilot_threads) + cdpilot_self_threads | /proc num_threads
//   rss_mb, rss_mb_proc      the daemon's own RSS: cdpilot_self_rss_bytes | VmRSS
//   fds, fds_proc            the daemon's open fds: cdpilot_self_open_fds | /proc/PID/fd
//   zombies, recycles, launches, tasks_ok, tasks_failed   (/metrics, /status: cumulative)
//
//   node sample.js --pid PID --url http://127.0.0.1:PORT --out FILE.csv --seconds S [--every 5]
// Stops after S seconds (or when the daemon is gone), so no sample sees the shutdown.
'use strict';
const fs = require('node:fs');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Prometheus text: sum of every sample of name (all label sets).
function metric(text, name) {
  let sum = 0, seen = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) { sum += v; seen = true; }
  }
  return seen ? sum : NaN;
}

// Descendants of root from /proc: count and threads (root's own threads included).
function procTree(root) {
  const info = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      info.set(Number(d), { ppid: Number(f[1]), threads: Number(f[17]) });
    } catch (e) { /* gone */ }
  }
  let procs = 0, threads = info.has(root) ? info.get(root).threads : 0;
  for (const [pid, p] of info) {
    let q = p.ppid;
    for (let depth = 0; depth < 64 && q > 1; depth++) {
      if (q === root) { procs++; threads += p.threads; break; }
      const up = info.get(q);
      if (!up) break;
      q = up.ppid;
    }
    void pid;
  }
  return { procs, threads };
}

async function main() {
  const pid = Number(arg('--pid'));
  const url = arg('--url');
  const outPath = arg('--out');
  const every = Number(arg('--every', '5')) * 1000;
  const seconds = Number(arg('--seconds', '1800'));
  if (!pid || !url || !outPath) { console.error('usage: node sample.js --pid PID --url URL --out FILE [--every S]'); process.exit(2); }
  const cols = ['t_s', 'unix_ms', 'procs', 'procs_proc', 'threads', 'threads_proc', 'rss_mb', 'rss_mb_proc',
    'fds', 'fds_proc', 'zombies', 'recycles', 'launches', 'tasks_ok', 'tasks_failed'];
  fs.writeFileSync(outPath, `${cols.join(',')}\n`);
  const t0 = Date.now();
  let next = t0;
  while (Date.now() - t0 < seconds * 1000) {
    try { process.kill(pid, 0); } catch (e) { break; }
    let text, status;
    try {
      text = await (await fetch(`${url}/metrics`)).text();
      status = await (await fetch(`${url}/status`)).json();
    } catch (e) {
      console.error(`sample: ${e.message}`);
      next += every;
      await sleep(Math.max(0, next - Date.now()));
      continue;
    }
    const now = Date.now();
    let tree, rss = NaN, fds = NaN;
    try {
      tree = procTree(pid);
      const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      rss = Number(/VmRSS:\s+(\d+)/.exec(st)[1]) / 1024;
      fds = fs.readdirSync(`/proc/${pid}/fd`).length;
    } catch (e) { break; }
    const row = {
      t_s: ((now - t0) / 1000).toFixed(1), unix_ms: now,
      procs: metric(text, 'cdpilot_tree_processes'), procs_proc: tree.procs,
      threads: metric(text, 'cdpilot_threads') + metric(text, 'cdpilot_self_threads'), threads_proc: tree.threads,
      rss_mb: (metric(text, 'cdpilot_self_rss_bytes') / 1048576).toFixed(2), rss_mb_proc: rss.toFixed(2),
      fds: metric(text, 'cdpilot_self_open_fds'), fds_proc: fds,
      zombies: metric(text, 'cdpilot_zombies'), recycles: metric(text, 'cdpilot_recycles_total'),
      launches: metric(text, 'cdpilot_browser_launches_total'),
      tasks_ok: status.tasks ? status.tasks.ok : NaN, tasks_failed: status.tasks ? status.tasks.failed : NaN,
    };
    fs.appendFileSync(outPath, `${cols.map((c) => row[c]).join(',')}\n`);
    next += every;
    await sleep(Math.max(0, next - Date.now()));
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
