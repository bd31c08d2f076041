# shellcheck shell=bash
# bench/daemon_lib.sh: shared by bench/run-daemon.sh and bench/soak/run.sh (sourced, from the
# repository root). daemon_setup installs what is missing (scripts/deps.sh bench, npm ci in
# bench/ when a peer library is missing), builds cdpilot and cdpilot-fixture into
# $BUILD_DIR (default build/; NO_BUILD=1 skips the build), starts the fixture server on a
# free port and sets:
#   $base     the fixture's URL          $tmp   a scratch dir (removed on exit)
#   $cdpilot  the daemon binary          $fixture_pid
# daemon_redis starts a private redis-server (persistence off) on $tmp/redis.sock.
# A trap stops the fixture and every process registered with bg_track on any exit. The
# fixture is started with launch_fixture of scripts/fixture.sh (sourced by bench/lib.sh).

BUILD_DIR=${BUILD_DIR:-build}
bg_pids=()

# bg_track PID: stopped (TERM, then KILL) by the exit trap if still running.
bg_track() { bg_pids+=("$1"); }

daemon_cleanup() {
	local p
	for p in "${bg_pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${bg_pids[@]}"; do
		for _ in $(seq 1 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
	done
	stop_fixture
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
}

daemon_setup() {
	./scripts/deps.sh --current bench
	if [ "${NO_BUILD:-0}" != 1 ]; then
		echo "== building cdpilot and cdpilot-fixture into $BUILD_DIR/"
		cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo --log-level=WARNING
		cmake --build "$BUILD_DIR" -j"$(nproc)" --target cdpilot cdpilot-fixture
	fi
	cdpilot=$BUILD_DIR/daemon/cdpilot
	[ -x "$cdpilot" ] || { echo "$0: $cdpilot not found (unset NO_BUILD to build it)" >&2; exit 1; }
	# shellcheck source=bench/lib.sh
	. bench/lib.sh
	bench_browser_banner "$cdpilot"
	bench_npm
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/cdpilot-bench.XXXXXX")
	trap daemon_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	launch_fixture "$BUILD_DIR"/tests/fixture/cdpilot-fixture
}

# now_ms: Unix time in milliseconds.
now_ms() { date +%s%3N; }

# daemon_redis: a private redis-server on the unix socket $tmp/redis.sock (no TCP port, no
# persistence), stopped by the exit trap; sets $redis_sock once it answers PING.
daemon_redis() {
	redis_sock=$tmp/redis.sock
	redis-server --port 0 --unixsocket "$redis_sock" --unixsocketperm 700 --dir "$tmp" \
		--save '' --appendonly no --loglevel warning --logfile "$tmp/redis.log" &
	bg_track $!
	for _ in $(seq 1 100); do
		redis-cli -s "$redis_sock" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "$0: redis-server did not start; its log:" >&2
	cat "$tmp/redis.log" >&2
	exit 1
}
