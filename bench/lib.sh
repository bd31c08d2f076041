# bench/lib.sh: shared by the benchmark scripts (sourced, from the repository root).
# bench_setup installs the pinned playwright-core if bench/node_modules lacks it, starts
# the fixture server (scripts/fixture.sh: sets $base and $tmp, cleans up on exit) and
# sets $results to build/bench-results.

# shellcheck source=scripts/fixture.sh
. scripts/fixture.sh

bench_setup() {
	if [ ! -d bench/node_modules/playwright-core ]; then
		echo "== npm ci in bench/"
		(cd bench && npm ci --no-audit --no-fund)
	fi
	start_fixture
	results=build/bench-results
	mkdir -p "$results"
}
