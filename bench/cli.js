// bench/cli.js: the command-line helpers the bench tools share (daemon_tool.js,
// daemon_report.js, verify_tool.js): `--name value` arguments, a JSON GET, and the
// check that the demo site's matches are all live.
'use strict';

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

module.exports = { arg, needFor, getJson, requireAllLive, matchFields };
