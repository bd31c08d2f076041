# bench/lib.sh: shared by the benchmark scripts (sourced, from the repository root).
# bench_npm installs the pinned peers (playwright-core, puppeteer-core; neither downloads a
# browser) if bench/node_modules lacks one. bench_setup runs it, exports
# CHROMIUM_PATH for both sides, starts the fixture server (scripts/fixture.sh: sets $base
# and $tmp, cleans up on exit) and sets $results to build/bench-results.

# shellcheck source=scripts/fixture.sh
. scripts/fixture.sh

# bench_browser_banner CDPILOT: the Chromium build a benchmark drives, as Browser.getVersion
# reports it (printed first, so every figure can be traced to its build).
bench_browser_banner() {
	local v
	v=$("$1" --version --browser 2>/dev/null | tail -n 1) || v="(cdpilot --version --browser failed)"
	echo "== chromium: $v"
	mkdir -p "${results:-build/bench-results}"
	echo "$v" >"${results:-build/bench-results}/chromium-version.json"
}

bench_npm() {
	if [ ! -d bench/node_modules/playwright-core ] || [ ! -d bench/node_modules/puppeteer-core ]; then
		echo "== npm ci in bench/"
		(cd bench && npm ci --no-audit --no-fund)
	fi
}

bench_setup() {
	bench_npm
	# Both sides run the same Chromium binary: the one cdpilot picks on its own (the
	# headless shell, else the full browser), unless CHROMIUM_PATH says otherwise.
	if [ -z "${CHROMIUM_PATH:-}" ]; then
		for c in /usr/lib/chromium/chromium-headless-shell /usr/lib/chromium/chromium; do
			if [ -x "$c" ]; then
				export CHROMIUM_PATH=$c
				break
			fi
		done
	fi
	echo "== Chromium for every side: ${CHROMIUM_PATH:-chromium on PATH}"
	results=build/bench-results
	mkdir -p "$results"
	bench_browser_banner build/daemon/cdpilot
	start_fixture
}
