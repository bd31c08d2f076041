#!/usr/bin/env bash
# bench/run-container.sh: what the container costs. The image's size and build time (with
# the build cache as it is, and whether its layers came from it), then cdpilot's footprint
# run in the container against the same run on the host: idle (1 target every 900 s) and
# busy (16 targets every 1 s on the fixture's /js pages). Each run lasts --seconds S after
# every target's first task; host and container take turns (round 1 host first, round 2
# container first, ...) over --rounds R. Sampled every SAMPLE_SECONDS from the host:
# processes, threads and RSS of cdpilot's tree (host: /proc below cdpilot's pid;
# container: the processes of the container's cgroup), `docker stats --no-stream` memory
# (container only), and tasks done (cdpilot_tasks_total on /metrics). Prints medians and
# container/host ratios; raw samples and logs go to $BUILD_DIR/bench-results/container/.
#
# usage: bench/run-container.sh [--seconds S] [--rounds R]    (defaults 60 and 2)
#   MODES ("idle busy"), SAMPLE_SECONDS (2), BUSY_TARGETS (16), BUSY_INTERVAL (1),
#   IDLE_INTERVAL (900), FIRST_TIMEOUT (120: the wait for every target's first task),
#   BUILD_DIR (build), NO_BUILD=1 to use cdpilot and cdpilot-fixture already built there,
#   BENCH_IMAGE (cdpilot:bench). The engine and the images: bench/docker_lib.sh (as
#   tests/docker/test_container.sh: a dockerd of its own when none answers, root only).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
REPO=$PWD

run_seconds=60
rounds=2
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) run_seconds=${2:-} && shift 2 ;;
	--rounds) rounds=${2:-} && shift 2 ;;
	*) echo "usage: bench/run-container.sh [--seconds S] [--rounds R]" >&2; exit 2 ;;
	esac
done
for v in "$run_seconds" "$rounds" "${SAMPLE_SECONDS:=2}" "${BUSY_TARGETS:=16}" "${FIRST_TIMEOUT:=120}"; do
	[[ $v =~ ^[1-9][0-9]{0,5}$ ]] || { echo "bench/run-container.sh: '$v': expected a positive integer" >&2; exit 2; }
done
MODES=${MODES:-idle busy}
BUSY_INTERVAL=${BUSY_INTERVAL:-1}
IDLE_INTERVAL=${IDLE_INTERVAL:-900}
IMAGE=${BENCH_IMAGE:-cdpilot:bench}
REDIS_IMAGE=unused # bench/docker_lib.sh's docker_redis_image is not called: no Redis here
NAME=cdpilot-bench-$$
build=${BUILD_DIR:-build}
out=$build/bench-results/container
PAGE_KB=$(($(getconf PAGESIZE) / 1024))
t_start=$SECONDS
failures=()

command -v docker >/dev/null 2>&1 || { echo "bench/run-container.sh: no docker command (Debian package docker.io)" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "bench/run-container.sh: no curl (package curl)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cdpbench-ctr.XXXXXX")
chmod 755 "$TMP"
HOST_PID=

say() { echo "[$((SECONDS - t_start))s] $*"; }
cannot_run() {
	echo "bench/run-container.sh: cannot run a Docker engine here: $*" >&2
	exit 1
}

# shellcheck source=bench/docker_lib.sh
. bench/docker_lib.sh
# shellcheck source=scripts/fixture.sh
. scripts/fixture.sh

cleanup() {
	if [ -n "$HOST_PID" ]; then
		kill -TERM "$HOST_PID" 2>/dev/null
		wait "$HOST_PID" 2>/dev/null
	fi
	if [ -n "${DOCKER_OK:-}" ]; then
		docker rm -f "$NAME" >/dev/null 2>&1
		docker network rm "$NAME-net" >/dev/null 2>&1
	fi
	stop_fixture
	docker_engine_down
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- cdpilot and the fixture on the host ----
if [ "${NO_BUILD:-0}" != 1 ]; then
	say "building cdpilot and cdpilot-fixture into $build/"
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo --log-level=WARNING >/dev/null &&
		cmake --build "$build" -j2 --target cdpilot cdpilot-fixture >/dev/null || exit 1
fi
cdpilot=$build/daemon/cdpilot
[ -x "$cdpilot" ] || { echo "bench/run-container.sh: no $cdpilot (run without NO_BUILD=1)" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/*.log "$out"/samples.tsv "$out"/tasks.tsv

# ---- the engine and the image ----
docker_engine_up
docker_base_image
t0=$EPOCHREALTIME
docker_build_images
build_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
cp "$TMP/build.log" "$out/build.log"
# Whether the layers came from the cache: the legacy builder says " ---> Using cache" for a
# step it did not run, BuildKit "#N CACHED".
steps=$(grep -cE '^Step [0-9]+/[0-9]+ :|^#[0-9]+ \[' "$TMP/build.log")
cached=$(grep -cE '^ ---> Using cache|^#[0-9]+ CACHED' "$TMP/build.log")
ran=$(grep -cE '^ ---> Running in ' "$TMP/build.log")
if [ "$cached" -eq 0 ]; then
	cache_note="no layer from the cache"
elif [ "$ran" -eq 0 ] && ! grep -qE '^#[0-9]+ \[.*\] RUN' "$TMP/build.log"; then
	cache_note="every layer from the cache ($cached of $steps steps)"
elif [ "$ran" -eq 0 ]; then
	cache_note="$cached of $steps steps from the cache (BuildKit: see build.log for what ran)"
else
	cache_note="$cached of $steps steps from the cache, $ran RUN steps ran"
fi
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
image_mb=$(mb "$(docker image inspect -f '{{.Size}}' "$IMAGE")")
base_mb=$(mb "$(docker image inspect -f '{{.Size}}' "$BASE")")
say "image $IMAGE: $image_mb MB (base $BASE: $base_mb MB); built in $build_s s: $cache_note"

# ---- the network, the fixture (on the host, at the network's gateway) ----
docker network create "$NAME-net" >/dev/null || { echo "docker network create failed" >&2; exit 1; }
GW=$(docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "$NAME-net")
tmp=$TMP
launch_fixture "$build/tests/fixture/cdpilot-fixture" --host "$GW"
FIX=${base%/}
say "fixture at $FIX (both sides scrape it there)"

host_browser=$("$cdpilot" --version --browser 2>/dev/null | tail -n 1)
ctr_browser=$(docker run --rm --network "$NAME-net" "$IMAGE" --version --browser 2>/dev/null | tail -n 1)
echo "== chromium on the host: ${host_browser:-?}; in the image: ${ctr_browser:-?}"
echo "{\"host\": \"$host_browser\", \"container\": \"$ctr_browser\"}" >"$out/chromium-version.json"

# targets DIR N INTERVAL: DIR/targets.json, N live generic targets on the fixture's /js pages.
targets() {
	local i sep=
	mkdir -p "$1"
	chmod 755 "$1"
	{
		echo '{"targets": ['
		for i in $(seq 1 "$2"); do
			printf '%s{"id": "js%s", "adapter": "generic", "url": "%s/js?delay=10&page=%s", "class": "live", "interval_seconds": %s, "wait_for": "#out", "fields": {"out": {"selector": "#out"}, "title": {"selector": "title"}}}\n' \
				"$sep" "$i" "$FIX" "$i" "$3"
			sep=,
		done
		echo ']}'
	} >"$1/targets.json"
	chmod 644 "$1/targets.json"
}
targets "$TMP/targets-idle" 1 "$IDLE_INTERVAL"
targets "$TMP/targets-busy" "$BUSY_TARGETS" "$BUSY_INTERVAL"
ntargets() { if [ "$1" = idle ]; then echo 1; else echo "$BUSY_TARGETS"; fi; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo 19464
}

# metric URL NAME [LABEL]: the sum of NAME's samples (those whose labels hold LABEL).
metric() {
	curl -fsS --max-time 5 "$1/metrics" 2>/dev/null |
		awk -v n="$2" -v l="${3:-}" '($1 == n || index($1, n "{") == 1) && index($1, l) { s += $2; f = 1 }
			END { if (f) printf "%.0f\n", s }'
}

# footprint tree PID | footprint list FILE: "processes threads rss_kb" of the live (not
# zombie) processes below PID, PID included, or of those whose pids FILE lists.
footprint() {
	local pids=
	[ "$1" = list ] && pids=$(tr '\n' ' ' <"$2" 2>/dev/null)
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v mode="$1" -v root="$2" -v pids="$pids" -v pg="$PAGE_KB" '
		BEGIN { if (mode == "list") { n = split(pids, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 } }
		{ pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ")
		  state[pid] = f[1]; ppid[pid] = f[2]; thr[pid] = f[18]; rss[pid] = f[22] }
		END {
			if (mode == "tree") {
				want[root] = 1
				do { more = 0; for (p in ppid) if (!(p in want) && (ppid[p] in want)) { want[p] = 1; more = 1 } } while (more)
			}
			for (p in want) if ((p in state) && state[p] != "Z") { np++; nt += thr[p]; kb += rss[p] * pg }
			printf "%d %d %d\n", np, nt, kb
		}'
}

# cgroup_procs PID: the cgroup.procs file of PID's cgroup (v2, else v1's pids hierarchy).
cgroup_procs() {
	local line f
	line=$(grep -m 1 '^0::' "/proc/$1/cgroup" 2>/dev/null)
	if [ -n "$line" ]; then
		f=/sys/fs/cgroup${line#0::}/cgroup.procs
	else
		line=$(grep -m 1 -E '^[0-9]+:([^:]*,)?pids(,[^:]*)?:' "/proc/$1/cgroup" 2>/dev/null) || return 1
		f=/sys/fs/cgroup/pids${line#*:*:}/cgroup.procs
	fi
	[ -r "$f" ] && echo "$f"
}

# docker_mem_mb NAME: the container's memory as `docker stats --no-stream` shows it, in MiB.
docker_mem_mb() {
	docker stats --no-stream --format '{{.MemUsage}}' "$1" 2>/dev/null | awk '{
		v = $1; u = v; sub(/^[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v)
		m = (u == "B") ? 1 / 1048576 : (u == "KiB" || u == "kB") ? 1 / 1024 : (u == "MiB" || u == "MB") ? 1 : (u == "GiB" || u == "GB") ? 1024 : -1
		if (m < 0) print "-"; else printf "%.1f\n", v * m }'
}

# run_one MODE SIDE ROUND: cdpilot with MODE's targets on SIDE (host or container); once
# every target's first task is done, samples for $run_seconds s. Appends the samples to
# samples.tsv (mode side round t processes threads rss_kb docker_mem_mib) and the tasks to
# tasks.tsv (mode side round tasks ok seconds tasks_per_s).
run_one() {
	local mode=$1 side=$2 round=$3 n url log what procs_file cpid cid t0 t0r k0 ok0 k1 ok1 fp mem el
	n=$(ntargets "$mode")
	log=$out/$mode-$side-$round.log
	if [ "$side" = host ]; then
		local port
		port=$(free_port)
		url=http://127.0.0.1:$port
		# The image's environment (CHROMIUM_FLAGS, LOG_FORMAT), the same sink (none: /dev/null).
		env CHROMIUM_FLAGS=--no-sandbox LOG_FORMAT=json METRICS_ADDR="127.0.0.1:$port" OUTPUT=/dev/null \
			"$cdpilot" run --targets "$TMP/targets-$mode/targets.json" 2>"$log" &
		HOST_PID=$!
		what="tree below pid $HOST_PID"
		alive() { kill -0 "$HOST_PID" 2>/dev/null; }
	else
		# As docker/README.md runs it, on the bench's network, without Redis.
		docker run -d --name "$NAME" --network "$NAME-net" --shm-size=1g --pids-limit=512 --memory=2g \
			-e OUTPUT=/dev/null -v "$TMP/targets-$mode:/etc/cdpilot/targets:ro" "$IMAGE" >/dev/null ||
			{ failures+=("$mode $side round $round: docker run failed"); return; }
		url=http://$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$NAME"):9464
		cpid=$(docker inspect -f '{{.State.Pid}}' "$NAME")
		cid=$(docker inspect -f '{{.Id}}' "$NAME")
		if [ -r "/proc/$cpid/cgroup" ] && grep -q "$cid" "/proc/$cpid/cgroup" && procs_file=$(cgroup_procs "$cpid"); then
			what="cgroup $procs_file"
		elif [ -r "/proc/$cpid/stat" ]; then
			procs_file=
			what="tree below host pid $cpid (the container's cgroup was not found under /sys/fs/cgroup)"
		else
			failures+=("$mode $side: the container's processes are not in this host's /proc (a remote engine?)")
			docker rm -f "$NAME" >/dev/null 2>&1
			return
		fi
		alive() { [ "$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" = true ]; }
	fi
	t0=$SECONDS
	until [ "$(metric "$url" cdpilot_tasks_total)" -ge "$n" ] 2>/dev/null; do
		if ! alive || [ $((SECONDS - t0)) -ge "$FIRST_TIMEOUT" ]; then
			failures+=("$mode $side round $round: not every target's first task within $FIRST_TIMEOUT s (log: $log)")
			break
		fi
		sleep 0.5
	done
	say "$mode, $side, round $round: first tasks in $((SECONDS - t0)) s; sampling $what for $run_seconds s"
	t0=$SECONDS
	t0r=$EPOCHREALTIME
	k0=$(metric "$url" cdpilot_tasks_total)
	ok0=$(metric "$url" cdpilot_tasks_total 'outcome="ok"')
	while [ $((SECONDS - t0)) -lt "$run_seconds" ] && alive; do
		if [ "$side" = host ]; then
			fp=$(footprint tree "$HOST_PID")
			mem=-
		else
			if [ -n "$procs_file" ]; then fp=$(footprint list "$procs_file"); else fp=$(footprint tree "$cpid"); fi
			mem=$(docker_mem_mb "$NAME")
		fi
		echo "$mode $side $round $((SECONDS - t0)) $fp ${mem:--}" >>"$out/samples.tsv"
		sleep "$SAMPLE_SECONDS"
	done
	k1=$(metric "$url" cdpilot_tasks_total)
	ok1=$(metric "$url" cdpilot_tasks_total 'outcome="ok"')
	el=$(awk -v a="$t0r" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
	if ! alive; then
		failures+=("$mode $side round $round: cdpilot exited during the run (log: $log)")
	elif [ -z "$k0" ] || [ -z "$k1" ]; then
		failures+=("$mode $side round $round: no cdpilot_tasks_total on $url/metrics")
	else
		echo "$mode $side $round $((k1 - k0)) $((${ok1:-0} - ${ok0:-0})) $el" \
			"$(awk -v k=$((k1 - k0)) -v s="$el" 'BEGIN { printf "%.3f", k / s }')" >>"$out/tasks.tsv"
	fi
	if [ "$side" = host ]; then
		kill -TERM "$HOST_PID" 2>/dev/null
		wait "$HOST_PID" 2>/dev/null
		HOST_PID=
	else
		docker logs "$NAME" >"$log" 2>&1
		docker stop -t 30 "$NAME" >/dev/null
		docker rm -f "$NAME" >/dev/null 2>&1
	fi
	sleep 2 # Chromium's last processes gone before the other side starts
}

for mode in $MODES; do
	case "$mode" in idle | busy) ;; *) echo "MODES: '$mode': expected idle and/or busy" >&2; exit 2 ;; esac
	for round in $(seq 1 "$rounds"); do
		if [ $((round % 2)) = 1 ]; then sides="host container"; else sides="container host"; fi
		for side in $sides; do run_one "$mode" "$side" "$round"; done
	done
done

# ---- the table ----
median() {
	sort -g | awk '{ a[NR] = $1 } END {
		if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# col FILE MODE SIDE COLUMN [SCALE]: the median of COLUMN over FILE's lines of MODE and SIDE.
col() {
	awk -v m="$2" -v s="$3" -v c="$4" '$1 == m && $2 == s && $c != "-" { print $c }' "$1" 2>/dev/null | median |
		awk -v k="${5:-1}" '{ if ($1 == "-") print "-"; else printf "%.1f\n", $1 / k }'
}
ratio() { awk -v h="$1" -v c="$2" 'BEGIN { if (h == "-" || c == "-" || h + 0 == 0) print "-"; else printf "%.2fx\n", c / h }'; }
row() { printf '%-5s | %-38s | %9s | %9s | %14s\n' "$1" "$2" "$3" "$4" "$5"; }

echo
echo "== cdpilot in a container against the same run on the host ($rounds rounds of $run_seconds s, samples every $SAMPLE_SECONDS s)"
row mode metric host container container/host
row ----- -------------------------------------- --------- --------- --------------
row image "image size (MB)" - "$image_mb" -
row image "build time, cache as it was (s)" - "$build_s" -
for mode in $MODES; do
	h=$(col "$out/samples.tsv" "$mode" host 5); c=$(col "$out/samples.tsv" "$mode" container 5)
	row "$mode" "processes, median" "$h" "$c" "$(ratio "$h" "$c")"
	h=$(col "$out/samples.tsv" "$mode" host 6); c=$(col "$out/samples.tsv" "$mode" container 6)
	row "$mode" "threads, median" "$h" "$c" "$(ratio "$h" "$c")"
	h=$(col "$out/samples.tsv" "$mode" host 7 1024); c=$(col "$out/samples.tsv" "$mode" container 7 1024)
	row "$mode" "RSS of the processes (MiB), median" "$h" "$c" "$(ratio "$h" "$c")"
	c=$(col "$out/samples.tsv" "$mode" container 8)
	row "$mode" "docker stats memory (MiB), median" - "$c" -
	h=$(col "$out/tasks.tsv" "$mode" host 7); c=$(col "$out/tasks.tsv" "$mode" container 7)
	[ "$mode" = idle ] || row "$mode" "tasks/s, median of the rounds" "$h" "$c" "$(ratio "$h" "$c")"
	h=$(awk -v m="$mode" '$1 == m && $2 == "host" { k += $4; ok += $5 } END { printf "%d/%d", ok, k }' "$out/tasks.tsv" 2>/dev/null)
	c=$(awk -v m="$mode" '$1 == m && $2 == "container" { k += $4; ok += $5 } END { printf "%d/%d", ok, k }' "$out/tasks.tsv" 2>/dev/null)
	row "$mode" "tasks ok/done in the windows, all rounds" "$h" "$c" -
done
echo "image: $cache_note; base $BASE $base_mb MB. ratio = container / host: above 1 means"
echo "the container costs more (for tasks/s: did more). RSS is summed over processes (shared pages counted in each);"
echo "docker stats memory is the cgroup's usage less its inactive file cache."
echo "raw samples, tasks and logs: $out/"
if [ ${#failures[@]} -gt 0 ]; then
	echo
	echo "FAILED:"
	printf '  %s\n' "${failures[@]}"
	exit 1
fi
