// bench/cli.js: the command-line helpers the bench tools share (daemon_tool.js,
// daemon_report.js, verify_tool.js, watch_tool.js): `--name value` arguments, a JSON GET,
// the check that the demo site's matches are all live, JSON-lines files and percentiles.
'use strict';
const fs = require('node:fs');

// The value after --name, or dflt.
function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

// need(name) for tool: the value after --name, or exit 2 saying it is required.
function needFor(tool) {
  return (name) => {
    const v = arg(name);
    if (v === undefined) { console.error(`${tool} ${process.argv[2]}: ${name} is required`); process.exit(2); }
    return v;
  };
}

// GET url as JSON (not cached); throws on an HTTP error.
async function getJson(url) {
  const res = await fetch(url, { cache: 'no-store' });
  const body = await res.text();
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}: ${body.slice(0, 200)}`);
  return JSON.parse(body);
}

// Exits 1 unless every one of the n matches of the demo site at base is live.
async function requireAllLive(base, n) {
  const all = await getJson(`${base}/live/api/matches`);
  const live = all.matches.filter((m) => m.status === 'live').length;
  if (live !== n) { console.error(`site: ${live} of ${n} matches live after start`); process.exit(1); }
}

// The generic adapter's fields for a demo match page; withVersion adds the page's
// data-version (which the fixture bumps on every control call, a mute included).
function matchFields(withVersion) {
  const f = {
    home: { selector: '#home' },
    away: { selector: '#away' },
    score_home: { selector: '#score-home', type: 'int' },
    score_away: { selector: '#score-away', type: 'int' },
    minute: { selector: '#minute', type: 'int' },
    status: { selector: '#status' },
  };
  if (withVersion) f.version = { selector: '#match', attr: 'data-version', type: 'int' };
  return f;
}

// The JSON lines of file ([] if it is missing); a line cut by a kill is skipped.
function lines(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).flatMap((l) => {
    try { return [JSON.parse(l)]; } catch (e) { return []; }
  });
}

// The nearest-rank p-th percentile of an ascending array (null if empty).
function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

module.exports = { arg, needFor, getJson, requireAllLive, matchFields, lines, pct };
