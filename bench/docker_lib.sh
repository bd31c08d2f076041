# shellcheck shell=bash disable=SC2034 # DOCKER_OK, CACHE and BASE are read by the caller
# bench/docker_lib.sh: a Docker engine and the images, shared by
# tests/docker/test_container.sh and bench/run-container.sh (sourced, not run).
#
# The caller sets REPO (the repository root), TMP (its scratch directory), IMAGE (the tag of
# cdpilot's image; the build stage is tagged $IMAGE-build) and, for docker_redis_image,
# REDIS_IMAGE; it defines say MSG (a progress line) and cannot_run REASON (no engine can
# run here: it must not return). Its exit trap calls docker_engine_down.
#
#   docker_engine_up    the engine `docker info` reaches; if none answers, a dockerd of our
#                       own (root only; sets DOCKERD_PID and DOCKER_HOST). Sets DOCKER_OK=1.
#   docker_engine_down  stops the dockerd docker_engine_up started, if any (by its PID).
#   docker_base_image   sets BASE to the Dockerfile's FROM and makes it when it is missing.
#   docker_build_images builds $IMAGE-build and $IMAGE (log: $TMP/build.log).
#   docker_redis_image  builds $REDIS_IMAGE (Debian's redis-server on $BASE).

DOCKERD_PID=

# ---- the engine ----
docker_engine_up() {
	local t0
	CACHE=${CDPILOT_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cdpilot-docker}
	if docker info >/dev/null 2>&1; then
		say "using the running Docker engine ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
	else
		command -v dockerd >/dev/null 2>&1 ||
			cannot_run "no engine answers and there is no dockerd to start (Debian package docker.io)"
		[ "$(id -u)" = 0 ] || cannot_run "no engine answers, and starting dockerd needs root"
		mkdir -p "$CACHE/data-root" || cannot_run "cannot create $CACHE"
		# One dockerd per data-root: a second run waits for the first.
		exec 9>"$CACHE/lock"
		flock 9
		export DOCKER_HOST=unix://$TMP/docker.sock
		say "starting dockerd (data-root $CACHE/data-root, log $TMP/dockerd.log)"
		dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2 \
			--data-root "$CACHE/data-root" --exec-root "$TMP/exec" --pidfile "$TMP/dockerd.pid" \
			-H "$DOCKER_HOST" >"$TMP/dockerd.log" 2>&1 &
		DOCKERD_PID=$!
		t0=$SECONDS
		until docker info >/dev/null 2>&1; do
			if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
				wait "$DOCKERD_PID"
				DOCKERD_PID=
				tail -n 15 "$TMP/dockerd.log"
				cannot_run "dockerd exited at start (its log is above)"
			fi
			if [ $((SECONDS - t0)) -ge 60 ]; then
				tail -n 15 "$TMP/dockerd.log"
				cannot_run "dockerd did not answer within 60 s (its log is above)"
			fi
			sleep 0.5
		done
		say "dockerd $DOCKERD_PID answers"
	fi
	DOCKER_OK=1
}

docker_engine_down() {
	local i
	if [ -n "$DOCKERD_PID" ]; then
		# Only the dockerd this script started (containerd, its child, exits with it).
		kill -TERM "$DOCKERD_PID" 2>/dev/null
		for i in $(seq 1 60); do
			kill -0 "$DOCKERD_PID" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$DOCKERD_PID" 2>/dev/null; then
			echo "$(basename "$0" .sh): dockerd $DOCKERD_PID did not stop on SIGTERM: SIGKILL"
			kill -KILL "$DOCKERD_PID" 2>/dev/null
		fi
		wait "$DOCKERD_PID" 2>/dev/null
		# dockerd leaves its exec-root's netns/default bind-mounted: unmount what is ours.
		awk -v d="$TMP/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
			while read -r mnt; do umount "$mnt"; done
	fi
}

# ---- the base image ----
docker_base_image() {
	local MIRROR t0 root
	BASE=$(sed -nE 's/^ARG DEBIAN_IMAGE=([^[:space:]]+).*/\1/p' "$REPO/docker/Dockerfile")
	[ -n "$BASE" ] || { echo "FATAL: no ARG DEBIAN_IMAGE=... default in docker/Dockerfile"; exit 1; }
	if docker image inspect "$BASE" >/dev/null 2>&1; then
		say "base image $BASE is there"
	else
		command -v debootstrap >/dev/null 2>&1 ||
			cannot_run "base image $BASE missing and no debootstrap to make it (package debootstrap)"
		MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
		say "base image $BASE missing: debootstrap --variant=minbase bookworm from $MIRROR"
		t0=$SECONDS
		root=$TMP/rootfs
		if ! nice -n 19 debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$TMP/debootstrap.log" 2>&1; then
			tail -n 15 "$TMP/debootstrap.log"
			cannot_run "debootstrap failed (its log is above)"
		fi
		# The sources of Debian's own image: the release, its updates and security.
		rm -f "$root/etc/apt/sources.list"
		cat >"$root/etc/apt/sources.list.d/debian.sources" <<-EOF
			Types: deb
			URIs: $MIRROR
			Suites: bookworm bookworm-updates
			Components: main
			Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

			Types: deb
			URIs: ${MIRROR%/debian}/debian-security
			Suites: bookworm-security
			Components: main
			Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		EOF
		rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
		tar -C "$root" -c . | docker import - "$BASE" >/dev/null || { echo "FATAL: docker import failed"; exit 1; }
		rm -rf "$root"
		say "made $BASE in $((SECONDS - t0)) s: $(docker image inspect -f '{{.Size}}' "$BASE") bytes"
	fi
}

# ---- the images ----
# The build stage is tagged too: the legacy builder's cache is the chain of parents of
# tagged images, and an untagged build stage (761 MB) would be left dangling by every run.
# The images these tags named before are removed once the new ones are built.
docker_build_images() {
	local old_ids new_ids i t0
	old_ids=$(docker image inspect -f '{{.Id}}' "$IMAGE" "$IMAGE-build" 2>/dev/null)
	say "docker build --network host -f docker/Dockerfile -t $IMAGE ."
	t0=$SECONDS
	if ! (cd "$REPO" &&
		nice -n 19 docker build --network host -f docker/Dockerfile --target build -t "$IMAGE-build" . &&
		nice -n 19 docker build --network host -f docker/Dockerfile -t "$IMAGE" .) >"$TMP/build.log" 2>&1; then
		tail -n 30 "$TMP/build.log"
		echo "FAIL: docker build failed (the end of its log is above)"
		exit 1
	fi
	grep -iE '^Sending build context|transferring context' "$TMP/build.log" | tail -n 1
	say "built $IMAGE in $((SECONDS - t0)) s: $(docker image inspect -f '{{.Size}}' "$IMAGE") bytes"
	new_ids=$(docker image inspect -f '{{.Id}}' "$IMAGE" "$IMAGE-build")
	for i in $old_ids; do
		grep -qxF "$i" <<<"$new_ids" || docker rmi "$i" >/dev/null 2>&1
	done
}

docker_redis_image() {
	if ! printf 'FROM %s\nRUN apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*\nUSER redis\nCMD ["redis-server", "--protected-mode", "no", "--save", ""]\n' "$BASE" |
		nice -n 19 docker build --network host -t "$REDIS_IMAGE" - >"$TMP/redis-build.log" 2>&1; then
		tail -n 20 "$TMP/redis-build.log"
		echo "FAIL: building the Redis image failed (the end of its log is above)"
		exit 1
	fi
}
