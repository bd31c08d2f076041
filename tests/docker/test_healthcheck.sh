#!/usr/bin/env bash
# test_healthcheck.sh: docker/healthcheck.sh (the image's HEALTHCHECK) against a real
# local HTTP server: healthy when /healthz answers 200 at METRICS_ADDR's port (0.0.0.0 is
# asked on loopback), unhealthy when it answers 404, when nothing listens, or when
# METRICS_ADDR is not HOST:PORT.
# shellcheck source=tests/docker/lib.sh
source "$(dirname "$0")/lib.sh"

need curl curl
need "$PYTHON3" python3

HC=$DOCKER_DIR/healthcheck.sh
server_pid=

# serve DIR: a static HTTP server on a free loopback port; sets port.
serve() {
	local _
	"$PYTHON3" -u -m http.server --bind 127.0.0.1 0 --directory "$1" >"$TMP/server.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 1 100); do
		port=$(sed -nE 's/.* port ([0-9]+) .*/\1/p' "$TMP/server.log" | head -n 1)
		[ -n "$port" ] && return 0
		sleep 0.05
	done
	echo "FATAL: the test HTTP server did not start: $(cat "$TMP/server.log")" >&2
	exit 1
}
trap '[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null; rm -rf "$TMP"' EXIT

# expect RC METRICS_ADDR WHAT
expect() {
	local rc=0
	METRICS_ADDR=$2 sh "$HC" >"$TMP/hc.out" 2>&1 || rc=$?
	if [ "$rc" -ne "$1" ]; then
		fail "$3: METRICS_ADDR=$2: exit $rc, expected $1 ($(cat "$TMP/hc.out"))"
	else
		echo "ok $3"
	fi
}

mkdir -p "$TMP/www"
echo ok >"$TMP/www/healthz"
serve "$TMP/www"
expect 0 "0.0.0.0:$port" "healthy on the wildcard address"
expect 0 "127.0.0.1:$port" "healthy on loopback"
rm "$TMP/www/healthz"
expect 1 "0.0.0.0:$port" "unhealthy on 404"
kill "$server_pid" && wait "$server_pid" 2>/dev/null
server_pid=
expect 1 "127.0.0.1:$port" "unhealthy when nothing listens"
expect 1 "nonsense" "unhealthy on a bad METRICS_ADDR"
grep -q 'expected HOST:PORT' "$TMP/hc.out" || fail "a bad METRICS_ADDR is not explained"

finish test_healthcheck
