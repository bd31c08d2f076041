#!/usr/bin/env bash
# deps.sh: installs the Debian 12 packages cdpilot needs for one purpose and that are not
# installed yet. Usage: scripts/deps.sh [--dry-run] [--current] build|test|bench
#
#   build  compiler, cmake, the libraries, Chromium's headless shell (the browser cdpilot
#          runs) and redis-server (the demo runs both)
#   test   build + the full chromium (one watchdog test checks its process tree too),
#          procps, util-linux, curl, clang with libFuzzer (the fuzz smoke run),
#          prometheus (for promtool, which checks /metrics), jq and python3-yaml (the
#          container files' checks), docker.io, docker-compose and debootstrap (the
#          container test builds and runs the image on a Docker engine; it starts dockerd
#          itself when none runs, and makes the base image with debootstrap when the engine
#          lacks it)
#   bench  build + nodejs and npm (the Playwright side of bench/), python3
#          (bench/share_tool.py, the outside view of bench/run-share.sh) and valgrind
#          (callgrind and its header, for bench/run-callgrind.sh)
#
# cdpilot starts its own redis-server on a private unix socket; on a systemd host the
# package also starts a system-wide one, which cdpilot does not use.
#
# Each package is checked with dpkg-query; apt-get update and apt-get install run only when
# something is missing, as root directly or else through sudo. --dry-run only says what
# would be installed. Prints one line: what it installs, or that nothing is missing.
#
# --current (the test command and the benchmarks use it): Chromium must be the build a new
# user gets today, not whatever this machine installed months ago. It refreshes the
# package lists (apt-get update), upgrades chromium-headless-shell and chromium when Debian
# has a newer build than the installed one, and prints the build in use. If the lists
# cannot be refreshed (no network), it says so and goes on with the installed build; in CI
# (CI=true) that is an error. CHROMIUM_PATH set: that browser is used, nothing is upgraded.
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config git ca-certificates
	libuv1-dev libwebsockets-dev libwebsockets-evlib-uv libjansson-dev
	libcurl4-openssl-dev libcmocka-dev libhiredis-dev
	chromium-headless-shell fonts-liberation redis-server)
TEST_PKGS=(chromium procps util-linux curl clang libclang-rt-dev prometheus jq python3-yaml
	docker.io docker-compose debootstrap)
BENCH_PKGS=(nodejs npm python3 valgrind)

die() {
	echo "deps.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: scripts/deps.sh [--dry-run] [--current] build|test|bench" >&2
	exit 2
}

dry_run=0
current=0
mode=
for arg in "$@"; do
	case "$arg" in
	--dry-run) dry_run=1 ;;
	--current) current=1 ;;
	build | test | bench)
		[ -z "$mode" ] || usage
		mode=$arg
		;;
	-h | --help)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0
		;;
	*) usage ;;
	esac
done
[ -n "$mode" ] || usage

wanted=("${BUILD_PKGS[@]}")
case "$mode" in
test) wanted+=("${TEST_PKGS[@]}") ;;
bench) wanted+=("${BENCH_PKGS[@]}") ;;
esac

# Node.js may come from outside Debian (e.g. a nodejs package that bundles npm): a working
# command is enough, and installing Debian's npm next to such a nodejs would conflict.
provided_by_command() {
	case "$1" in
	nodejs) command -v node >/dev/null 2>&1 ;;
	npm) command -v npm >/dev/null 2>&1 ;;
	*) return 1 ;;
	esac
}

if ! command -v dpkg-query >/dev/null 2>&1; then
	die "dpkg-query not found: this script installs Debian 12 packages. Install the" \
		"equivalents of these yourself: ${wanted[*]}"
fi

missing=()
for pkg in "${wanted[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [ "$status" = "install ok installed" ] || provided_by_command "$pkg"; then
		continue
	fi
	missing+=("$pkg")
done

# Root runs apt-get itself; anyone else goes through sudo (prompting only on a terminal).
# Sets as_root, or returns 1 when neither is possible.
find_root() {
	if [ "$(id -u)" = 0 ]; then
		as_root=(env DEBIAN_FRONTEND=noninteractive)
	elif command -v sudo >/dev/null 2>&1; then
		if [ -t 0 ]; then
			as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
		else
			as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
		fi
	else
		return 1
	fi
}

installed_version() {
	dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true
}

# --current: upgrade the Chromium packages to Debian's candidate and say which build runs.
ensure_current_chromium() {
	local pkg have cand upgrade=() lists_fresh=0
	if [ -n "${CHROMIUM_PATH:-}" ]; then
		echo "deps ($mode): CHROMIUM_PATH=$CHROMIUM_PATH: that browser is used as it is"
		return 0
	fi
	if [ "$lists_updated" = 1 ]; then
		lists_fresh=1
	elif find_root && "${as_root[@]}" apt-get -q=2 update >/dev/null 2>&1; then
		lists_fresh=1
	elif [ -n "${CI:-}" ]; then
		die "--current: apt-get update failed, so whether Chromium is Debian's current" \
			"build cannot be checked (in CI that is an error)"
	else
		echo "deps ($mode): WARNING: apt-get update failed; Chromium is not checked" \
			"against Debian's current build"
	fi
	for pkg in chromium-headless-shell chromium; do
		have=$(installed_version "$pkg")
		[ -n "$have" ] || continue
		[ "$lists_fresh" = 1 ] || continue
		cand=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ { print $2 }')
		if [ -n "$cand" ] && [ "$cand" != "(none)" ] &&
			dpkg --compare-versions "$cand" gt "$have"; then
			echo "deps ($mode): $pkg $have is not Debian's current build: upgrading to $cand"
			upgrade+=("$pkg")
		fi
	done
	if [ ${#upgrade[@]} -gt 0 ]; then
		[ "$dry_run" = 0 ] || return 0
		if ! "${as_root[@]}" apt-get -q -y install --only-upgrade --no-install-recommends \
			"${upgrade[@]}"; then
			die "apt-get install --only-upgrade ${upgrade[*]} failed: the tests would" \
				"run a Chromium build no new user gets"
		fi
	fi
	for pkg in chromium-headless-shell chromium; do
		have=$(installed_version "$pkg")
		[ -z "$have" ] || echo "deps ($mode): $pkg $have$([ "$lists_fresh" = 1 ] &&
			echo " (Debian's current build)")"
	done
}

lists_updated=0
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps ($mode): nothing missing"
elif [ "$dry_run" = 1 ]; then
	echo "deps ($mode): would install: ${missing[*]}"
else
	if ! find_root; then
		die "not root and sudo is not installed. As root, run:" \
			"apt-get update && apt-get install --no-install-recommends ${missing[*]}"
	fi
	echo "deps ($mode): installing: ${missing[*]}"
	if ! "${as_root[@]}" apt-get -q update; then
		die "apt-get update failed (as ${as_root[0]}). Install these yourself:" \
			"apt-get install --no-install-recommends ${missing[*]}"
	fi
	lists_updated=1
	# --no-install-recommends keeps the set small; Chromium's one real need among its
	# recommendations, fonts-liberation, is listed explicitly above.
	if ! "${as_root[@]}" apt-get -q -y install --no-install-recommends "${missing[@]}"; then
		die "apt-get install failed. Install these yourself:" \
			"apt-get install --no-install-recommends ${missing[*]}"
	fi
fi
if [ "$current" = 1 ]; then
	ensure_current_chromium
fi
