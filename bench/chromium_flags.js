// chromium_flags.js: the Chromium switches and binary cdpilot launches with, for the
// Playwright side of every benchmark. The switches are read from base_flags[],
// OUR_DISABLED_FEATURES and build_args()'s --block-new-web-contents in
// ../pool/browser_launch.c so the two sides cannot drift apart;
// FALLBACK_FLAGS is used if that file cannot be read.
// The --remote-debugging-* switches are left out (Playwright talks over a pipe).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const FALLBACK_FLAGS = [
  '--headless',
  '--disable-gpu',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-breakpad',
  '--disable-dev-shm-usage',
  '--mute-audio',
  '--hide-scrollbars',
  '--metrics-recording-only',
  '--password-store=basic',
  '--use-mock-keychain',
  '--disable-quic',
  '--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup',
  '--block-new-web-contents',
];

// cdpilot's launch switches from pool/browser_launch.c, or null if they cannot be found there.
function cdpilotFlags() {
  let src;
  try {
    src = fs.readFileSync(path.join(__dirname, '..', 'pool', 'browser_launch.c'), 'utf8');
  } catch (e) {
    return null;
  }
  const arr = /base_flags\[\]\s*=\s*\{([\s\S]*?)\};/.exec(src);
  const feats = /#define\s+OUR_DISABLED_FEATURES\s+"([^"]*)"/.exec(src);
  if (!arr) return null;
  const body = arr[1].replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  const flags = [...body.matchAll(/"([^"]*)"/g)]
    .map((m) => m[1])
    .filter((f) => !f.startsWith('--remote-debugging-'));
  if (flags.length === 0) return null;
  if (feats && feats[1]) flags.push(`--disable-features=${feats[1]}`);
  // pushed by build_args() unless browser_opts.allow_new_windows: no page opens a window
  const noWindows = /sv_push\(sv, "(--block-new-web-contents)"\)/.exec(src);
  if (noWindows) flags.push(noWindows[1]);
  return flags;
}

// The Chromium binary both sides run: $CHROMIUM_PATH (bench/lib.sh sets it), else the one
// cdpilot would pick on a Debian host: the headless shell, then the full browser.
function chromiumExecutable() {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const p of ['/usr/lib/chromium/chromium-headless-shell', '/usr/lib/chromium/chromium']) {
    if (fs.existsSync(p)) return p;
  }
  return 'chromium';
}

module.exports = { cdpilotFlags, chromiumExecutable, FALLBACK_FLAGS };
