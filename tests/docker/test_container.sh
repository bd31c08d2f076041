#!/usr/bin/env bash
# test_container.sh: the image, built and run on a real Docker engine, the way a user runs it.
#
# Engine: the one `docker info` reaches (DOCKER_HOST or the default socket); if none answers,
# this test starts its own dockerd (root only) with
#   --iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2
# its data-root in a cache dir ($CDPILOT_DOCKER_CACHE, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/cdpilot-docker/data-root, so images and build layers
# survive between runs), its exec-root, pidfile and socket in a temp dir, and stops exactly
# that dockerd (by PID) when it ends, failed or not.
# Base image: the Dockerfile's FROM (ARG DEBIAN_IMAGE); if the engine lacks it (no registry
# is reachable here) it is made with debootstrap --variant=minbase bookworm and docker
# import. Redis: an image of Debian's redis-server built from the same base.
# Then: docker build --network host, and a run with --pids-limit/--memory on a user-defined
# network with a Redis container, scraping the fixture server (on the host, at the
# network's gateway). Checks: cdpilot is PID 1, `ps` works in the image, the health check
# turns healthy, /metrics shows the cgroup's limits, snapshots reach Redis, SIGHUP re-reads
# the targets file (replaced by a rename, then written in place), processes stay flat for CDPILOT_CONTAINER_SOAK_SECONDS
# (default 120), `docker stop` ends in exit 0 (not the SIGKILL after the grace), and after
# `docker kill -s KILL` no process of the container is left on the host.
#
# Where no engine can run, it says why and is skipped (exit 77); with CI set it fails.
# Tools: docker (Debian docker.io), debootstrap when the base image is missing, curl.
# The engine, the base image and the image builds are bench/docker_lib.sh's (shared with
# bench/run-container.sh).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SOAK=${CDPILOT_CONTAINER_SOAK_SECONDS:-120}
PIDS_LIMIT=256
MEM_LIMIT=$((1024 * 1024 * 1024))
IMAGE=cdpilot:ctest
REDIS_IMAGE=cdpilot-ctest-redis:bookworm
NAME=cdpilot-ctest-$$
fails=0
t_start=$SECONDS
# shellcheck source=bench/docker_lib.sh
. "$REPO/bench/docker_lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cdpctr.XXXXXX")
chmod 755 "$TMP"
FIXTURE_PID=

say() { echo "[$((SECONDS - t_start))s] $*"; }
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

ci_set() {
	case "${CI:-}" in
	'' | 0 | false) return 1 ;;
	*) return 0 ;;
	esac
}

# cannot_run REASON: no engine here. Skipped (77) outside CI, a failure in CI.
cannot_run() {
	echo "test_container: cannot run a Docker engine here: $*"
	if ci_set; then
		echo "FAIL: CI is set, and integration tests never skip in CI"
		exit 1
	fi
	echo "SKIPPED (install docker.io: scripts/deps.sh test; run as root or with a running engine)"
	exit 77
}

cleanup() {
	if [ -n "${DOCKER_OK:-}" ]; then
		docker rm -f "$NAME" "$NAME-redis" >/dev/null 2>&1
		docker network rm "$NAME-net" >/dev/null 2>&1
	fi
	if [ -n "$FIXTURE_PID" ]; then
		kill "$FIXTURE_PID" 2>/dev/null
		wait "$FIXTURE_PID" 2>/dev/null
	fi
	docker_engine_down
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until LIMIT_S DESC CMD...: runs CMD every second until it succeeds. LIMIT is a guard
# against a hang, not a bound on speed; past it the check fails with DESC.
wait_until() {
	local limit=$1 desc=$2 t0=$SECONDS
	shift 2
	until "$@" >/dev/null 2>&1; do
		if [ $((SECONDS - t0)) -ge "$limit" ]; then
			fail "$desc (still not true after ${limit} s)"
			return 1
		fi
		sleep 1
	done
	say "ok: $desc ($((SECONDS - t0)) s)"
}

command -v docker >/dev/null 2>&1 || cannot_run "no docker command (Debian package docker.io)"
command -v curl >/dev/null 2>&1 || { echo "FATAL: curl not found (package curl)"; exit 1; }
[ -n "${CDPILOT_FIXTURE_BIN:-}" ] || { echo "FATAL: CDPILOT_FIXTURE_BIN unset: run through ctest"; exit 1; }

# ---- the engine ----
docker_engine_up

# ---- the base image ----
docker_base_image

# ---- the images ----
docker_build_images
docker_redis_image

# ---- network, Redis, the fixture server ----
docker network create "$NAME-net" >/dev/null || { echo "FAIL: docker network create"; exit 1; }
GW=$(docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "$NAME-net")
docker run -d --name "$NAME-redis" --network "$NAME-net" "$REDIS_IMAGE" >/dev/null ||
	{ echo "FAIL: cannot start the Redis container"; exit 1; }
redis() { docker exec "$NAME-redis" redis-cli "$@"; }
wait_until 60 "Redis answers PING" bash -c "[ \"\$(docker exec $NAME-redis redis-cli PING)\" = PONG ]" || exit 1

"$CDPILOT_FIXTURE_BIN" --host "$GW" --port 0 >"$TMP/fixture.out" 2>"$TMP/fixture.log" &
FIXTURE_PID=$!
wait_until 30 "the fixture server listens on $GW" grep -q '^listening on ' "$TMP/fixture.out" || exit 1
FIX=$(sed -n 's/^listening on //p' "$TMP/fixture.out" | head -n 1)
FIX=${FIX%/}

# targets ID...: a targets file (on stdout) with one live target per ID on the fixture's static page.
targets() {
	local id sep=
	{
		echo '{"targets": ['
		for id in "$@"; do
			printf '%s{"id": "%s", "adapter": "generic", "url": "%s/static?t=%s", "class": "live", "interval_seconds": 2, "fields": {"heading": {"selector": "h1"}}}\n' \
				"$sep" "$id" "$FIX" "$id"
			sep=,
		done
		echo ']}'
	}
}
# The directory is mounted, as the docs say (a single-file mount never sees a replaced file).
mkdir -p "$TMP/targets"
chmod 755 "$TMP/targets"
TARGETS=$TMP/targets/targets.json
targets t1 >"$TARGETS"
chmod 644 "$TARGETS"

# ---- cdpilot ----
# The image's own health check, every 2 s instead of 30 s so the test does not wait for it.
docker run -d --name "$NAME" --network "$NAME-net" \
	--pids-limit "$PIDS_LIMIT" --memory "$MEM_LIMIT" --shm-size 512m \
	--health-interval 2s --health-start-period 30s \
	-e REDIS_URL="redis://$NAME-redis:6379/0" \
	-v "$TMP/targets:/etc/cdpilot/targets:ro" "$IMAGE" >/dev/null ||
	{ echo "FAIL: docker run $IMAGE failed"; exit 1; }
IP=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$NAME")
M=http://$IP:9464
say "cdpilot container $NAME at $IP"

metrics() { curl -fsS --max-time 5 "$M/metrics" >"$TMP/metrics" 2>/dev/null; }
# metric NAME: the sum of NAME's samples (all label sets) in a fresh scrape.
metric() {
	metrics || return 1
	awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2; found = 1 }
		END { if (found) printf "%.0f\n", s }' "$TMP/metrics"
}
health() { docker inspect -f '{{.State.Health.Status}}' "$NAME"; }

comm=$(docker exec "$NAME" cat /proc/1/comm)
if [ "$comm" = cdpilot ]; then say "ok: PID 1 is cdpilot"; else fail "PID 1 is '$comm', not cdpilot"; fi
if ps_out=$(docker exec "$NAME" ps -o pid=,comm= -p 1 2>&1); then
	say "ok: ps in the image: ${ps_out//[$'\n']/ }"
else
	fail "ps does not run in the image (procps): $ps_out"
fi

wait_until 180 "the health check turns healthy" bash -c "[ \"\$(docker inspect -f '{{.State.Health.Status}}' $NAME)\" = healthy ]" || {
	docker logs --tail 30 "$NAME"
	exit 1
}

v=$(metric cdpilot_cgroup_pids_max)
if [ "$v" = "$PIDS_LIMIT" ]; then say "ok: cdpilot_cgroup_pids_max $v"; else
	fail "cdpilot_cgroup_pids_max is '$v', the container runs with --pids-limit $PIDS_LIMIT"
fi
v=$(metric cdpilot_cgroup_memory_max_bytes)
if [ "$v" = "$MEM_LIMIT" ]; then say "ok: cdpilot_cgroup_memory_max_bytes $v"; else
	fail "cdpilot_cgroup_memory_max_bytes is '$v', the container runs with --memory $MEM_LIMIT"
fi

snap_has() { redis GET "cdpilot:latest:$1" | grep -q 'Hello fixture'; }
wait_until 120 "a snapshot of t1 reaches Redis" snap_has t1 || docker logs --tail 30 "$NAME"

# The file replaced as an editor or git does (a new file renamed over it), no signal: the
# mounted directory shows the container the new file, and cdpilot's watch reads it.
targets t1 t2 >"$TMP/targets/.targets.json.new"
chmod 644 "$TMP/targets/.targets.json.new"
mv -f "$TMP/targets/.targets.json.new" "$TARGETS"
wait_until 120 "after the file is replaced, the new target t2 reaches Redis" snap_has t2 ||
	docker logs --tail 30 "$NAME"
# SIGHUP after an in-place write (same inode).
ino=$(stat -c %i "$TARGETS")
targets t1 t2 t3 >"$TARGETS"
[ "$(stat -c %i "$TARGETS")" = "$ino" ] || fail "the targets file was replaced, not written in place"
docker kill -s HUP "$NAME" >/dev/null
wait_until 120 "after SIGHUP the new target t3 reaches Redis" snap_has t3 || docker logs --tail 30 "$NAME"

# ---- footprint over time ----
# sample: one line of the footprint: cdpilot's tree (cdpilot and Chromium): processes,
# threads, RSS in MB; the cgroup's pids (threads) and memory in MB; rows of docker top.
sample() {
	local procs threads rss
	procs=$(metric cdpilot_tree_processes)
	threads=$(($(metric cdpilot_threads) + $(metric cdpilot_self_threads)))
	rss=$((($(metric cdpilot_rss_bytes) + $(metric cdpilot_self_rss_bytes)) / 1048576))
	printf '%s %s %s %s %s %s\n' "$procs" "$threads" "$rss" "$(metric cdpilot_cgroup_pids_current)" \
		$(($(metric cdpilot_cgroup_memory_current_bytes) / 1048576)) "$(($(docker top "$NAME" | wc -l) - 1))"
}
say "sampling for $SOAK s: tree processes, threads, RSS MB, cgroup pids, cgroup memory MB, docker top rows"
: >"$TMP/samples"
t0=$SECONDS
while [ $((SECONDS - t0)) -lt "$SOAK" ]; do
	sample | tee -a "$TMP/samples"
	sleep 10
done
say "tasks run so far: $(metric cdpilot_tasks_total)"
# Flat: the second half of the samples never goes above the first half's maximum (+2 for
# a renderer starting at the moment of the sample).
if ! awk '{ p[NR] = $1; d[NR] = $6 } END {
	h = int(NR / 2); if (h < 1) exit 1
	for (i = 1; i <= h; i++) { if (p[i] > mp) mp = p[i]; if (d[i] > md) md = d[i] }
	if (mp < 2) exit 1 # no browser tree sampled: the check would be empty
	for (i = h + 1; i <= NR; i++) if (p[i] > mp + 2 || d[i] > md + 2) exit 1
}' "$TMP/samples"; then
	fail "processes grew over $SOAK s (samples above)"
else
	say "ok: processes flat over $SOAK s"
fi
# A renderer that just exited is a zombie until its parent reaps it, so one scan may count
# one; what must not happen is a zombie that stays (the watchdog scans every 10 s).
wait_until 60 "no zombie stays in the container (cdpilot_zombies 0)" \
	bash -c "curl -fsS --max-time 5 $M/metrics | grep -qx 'cdpilot_zombies 0'"

# ---- docker stop: exit 0 before the grace ends (after it, Docker sends SIGKILL: 137) ----
t0=$SECONDS
docker stop -t 30 "$NAME" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
if [ "$code" = 0 ]; then say "ok: docker stop: exit 0 after $((SECONDS - t0)) s"; else
	fail "docker stop: exit code $code (137 means the grace ran out)"
fi

# ---- docker kill -s KILL: nothing of the container stays on the host ----
docker start "$NAME" >/dev/null
wait_until 120 "after a restart, Chromium runs in the container" \
	bash -c "docker top $NAME -eo pid,comm | grep -qi chrom" || exit 1
id=$(docker inspect -f '{{.Id}}' "$NAME")
mapfile -t pids < <(docker top "$NAME" -eo pid | tail -n +2)
chrome_host_before=$(pgrep -c chrom || true)
say "before the kill: ${#pids[@]} container processes on the host; host chromium processes $chrome_host_before"
in_cgroup() { grep -l "$id" /proc/[0-9]*/cgroup 2>/dev/null | wc -l; }
# The check below looks for the container's cgroup in /proc: it must see the processes now.
[ "$(in_cgroup)" -gt 0 ] ||
	fail "no process of the container is visible in this host's /proc (a remote engine?)"
docker kill -s KILL "$NAME" >/dev/null
docker wait "$NAME" >/dev/null
alive() {
	local p n=0
	for p in "${pids[@]}"; do [ -d "/proc/$p" ] && grep -q "$id" "/proc/$p/cgroup" 2>/dev/null && n=$((n + 1)); done
	echo "$n"
}
wait_until 30 "after docker kill -s KILL no process of the container is left on the host" \
	bash -c "[ \$(grep -l '$id' /proc/[0-9]*/cgroup 2>/dev/null | wc -l) = 0 ]" ||
	echo "left: $(in_cgroup) processes in its cgroup, $(alive) of the ${#pids[@]} pids"
say "host chromium processes after: $(pgrep -c chrom || true) (before the kill: $chrome_host_before; other tests may run Chromium too)"

say "total $((SECONDS - t_start)) s"
if [ "$fails" -ne 0 ]; then
	echo "test_container: $fails failure(s)"
	docker logs --tail 20 "$NAME" 2>&1
	exit 1
fi
echo "test_container: all checks passed"
