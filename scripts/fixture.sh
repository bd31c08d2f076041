# scripts/fixture.sh: sourced (from the repository root) by scripts/demo.sh and bench/.
# start_fixture starts build/tests/fixture/cdpilot-fixture on an ephemeral port, sets $base
# to its URL and $tmp to a scratch dir, and installs a trap that stops the fixture and
# removes $tmp on any exit. stop_fixture stops it earlier. launch_fixture (below) is the
# start itself, for scripts that keep their own $tmp and trap (bench/daemon_lib.sh).

stop_fixture() {
	if [ -n "${fixture_pid:-}" ] && kill -0 "$fixture_pid" 2>/dev/null; then
		kill -TERM "$fixture_pid" 2>/dev/null || true
		wait "$fixture_pid" 2>/dev/null || true
	fi
	fixture_pid=
}

start_fixture() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/cdpilot-fixture.XXXXXX")
	fixture_pid=
	# shellcheck disable=SC2317 # called from the trap
	cleanup() {
		stop_fixture
		rm -rf "$tmp"
	}
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	launch_fixture build/tests/fixture/cdpilot-fixture
}

# launch_fixture BIN [ARG...]: starts the fixture server BIN on an ephemeral port, with ARGs
# (e.g. --host ADDR; bench/run-container.sh) after --port 0 (stdout and stderr
# in $tmp/fixture.out and $tmp/fixture.log), sets $fixture_pid and, once it listens, $base;
# exits 1 with its log if it does not start. start_fixture and bench/daemon_lib.sh use it.
launch_fixture() {
	"$1" --port 0 "${@:2}" >"$tmp/fixture.out" 2>"$tmp/fixture.log" &
	fixture_pid=$!
	base=
	for _ in $(seq 1 100); do
		line=$(head -n 1 "$tmp/fixture.out" 2>/dev/null || true)
		case "$line" in
		"listening on http://"*)
			base=${line#listening on }
			break
			;;
		esac
		kill -0 "$fixture_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$base" ]; then
		echo "$0: the fixture server did not start; its log:" >&2
		cat "$tmp/fixture.log" >&2
		exit 1
	fi
}
