#!/usr/bin/env bash
# runtime-steps.sh: the runtime image's setup, as one script so the Dockerfile RUNs it and
# a test (tests/docker/test_runtime_steps.sh) runs the same steps without Docker.
#
#   runtime-steps.sh                      in the image build, as root: install the runtime
#                                         packages, check them, create the user and dirs
#   runtime-steps.sh --check [--root DIR] no installs: every package must have an apt
#                                         candidate; the user and dirs are made under DIR
#                                         (default: a new temp dir, removed afterwards)
#   runtime-steps.sh --list               print the runtime packages, one a line
#
# The user is cdpilot (uid and gid 10001, home /home/cdpilot, no login shell). Chromium's
# crash handler writes under $HOME/.config; browser profiles go to $TMPDIR (/tmp).
set -euo pipefail

CDPILOT_UID=10001
CDPILOT_USER=cdpilot
CDPILOT_HOME=/home/cdpilot

# Runtime libraries of the cdpilot binary (libwebsockets17 is libwebsockets.so.17), the
# libwebsockets libuv plugin (dlopen'ed at run time, NOT pulled in by libwebsockets17:
# without it the lws context on the libuv loop cannot be created), Chromium's headless shell with the fonts
# it needs (installed without recommends), CA certificates for https targets, and curl
# (a few hundred KB next to libcurl4) for the HEALTHCHECK, and procps (ps, top, about
# 1 MB) so that `docker exec CONTAINER ps -ef` shows cdpilot's process tree.
RUNTIME_PKGS=(libuv1 libwebsockets17 libwebsockets-evlib-uv libjansson4 libcurl4
	libhiredis0.14 chromium-headless-shell fonts-liberation ca-certificates curl procps)

# Files that must be there after the install (globs: the lib dir names the architecture):
# the lws libuv plugin and the headless shell's real binary (cdpilot resolves
# /usr/bin/chromium-headless-shell to it).
REQUIRED_FILES=('/usr/lib/*/libwebsockets-evlib_uv.so' /usr/lib/chromium/chromium-headless-shell)

die() {
	echo "runtime-steps.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: runtime-steps.sh [--check [--root DIR] | --list]" >&2
	exit 2
}

# check_candidates: every runtime package must have an install candidate in apt (one
# apt-cache call: each call reads the whole package cache).
check_candidates() {
	local pkg cand bad=() policy
	policy=$(apt-cache policy "${RUNTIME_PKGS[@]}" 2>/dev/null | awk '
		/^[^ ].*:$/ { pkg = substr($0, 1, length($0) - 1) }
		/^ *Candidate:/ { print pkg, $2 }')
	for pkg in "${RUNTIME_PKGS[@]}"; do
		cand=$(awk -v p="$pkg" '$1 == p { print $2; exit }' <<<"$policy")
		if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
			bad+=("$pkg")
		else
			echo "ok package $pkg $cand"
		fi
	done
	[ ${#bad[@]} -eq 0 ] || die "no apt candidate for: ${bad[*]} (apt-get update? package renamed?)"
}

install_packages() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get -q update
	apt-get -q -y install --no-install-recommends "${RUNTIME_PKGS[@]}"
	apt-get clean
	rm -rf /var/lib/apt/lists/*
}

# check_files ROOT: every REQUIRED_FILES glob matches a file under ROOT; prints each.
check_files() {
	local root=$1 pat m missing=()
	for pat in "${REQUIRED_FILES[@]}"; do
		# shellcheck disable=SC2206 # the glob is wanted
		m=($root$pat)
		if [ -e "${m[0]}" ]; then
			echo "ok file ${m[0]#"$root"}"
		else
			missing+=("$pat")
		fi
	done
	[ ${#missing[@]} -eq 0 ] || die "missing after install: ${missing[*]}"
}

# in_list WORD ITEM...: WORD is one of the items (no `printf | grep -q` pipe: under pipefail
# it fails when grep exits before printf has written everything).
in_list() {
	local w=$1 x
	shift
	for x in "$@"; do [ "$x" = "$w" ] && return 0; done
	return 1
}

# check_owners: on a host that has them installed (CI installs both for the build),
# each REQUIRED_FILES file belongs to a package of RUNTIME_PKGS, so the list names the
# package that really ships it.
check_owners() {
	local pat m pkg bad=()
	for pat in "${REQUIRED_FILES[@]}"; do
		# shellcheck disable=SC2206 # the glob is wanted
		m=($pat)
		pkg=$(dpkg -S "${m[0]}" 2>/dev/null | head -n 1 | cut -d: -f1 || true)
		if [ -z "$pkg" ]; then
			bad+=("$pat (not installed here: no package owns it)")
		elif ! in_list "$pkg" "${RUNTIME_PKGS[@]}"; then
			bad+=("$pat (shipped by $pkg, which is not in the list)")
		else
			echo "ok owner $pkg ${m[0]}"
		fi
	done
	[ ${#bad[@]} -eq 0 ] || die "required files: ${bad[*]}"
}

# add_user ROOT: group and user cdpilot in ROOT's /etc files (useradd --prefix writes
# ROOT/etc/{passwd,group,shadow,gshadow} without chroot), then the home directory.
add_user() {
	local root=$1
	if ! grep -q "^$CDPILOT_USER:" "$root/etc/group"; then
		groupadd --prefix "$root" --gid "$CDPILOT_UID" "$CDPILOT_USER"
	fi
	if ! grep -q "^$CDPILOT_USER:" "$root/etc/passwd"; then
		useradd --prefix "$root" --uid "$CDPILOT_UID" --gid "$CDPILOT_UID" \
			--home-dir "$CDPILOT_HOME" --no-create-home --shell /usr/sbin/nologin \
			--comment "cdpilot daemon" "$CDPILOT_USER"
	fi
}

# owned ROOT PATH MODE OWNER: a directory with this mode; chown needs root (outside the
# image build a non-root --check only reports it).
owned() {
	local root=$1 path=$2 mode=$3 owner=$4
	install -d -m "$mode" "$root$path"
	if [ "$(id -u)" = 0 ]; then
		chown "$owner" "$root$path"
	else
		echo "not root: would chown $owner $path"
	fi
}

# make_dirs ROOT: the daemon's directories.
#   /etc/cdpilot        root-owned: the targets file (a read-only mount in compose)
#   /home/cdpilot       the user's HOME (Chromium's crash handler writes under .config)
#   /var/lib/cdpilot    writable by the daemon: an OUTPUT file if one is configured
make_dirs() {
	local root=$1
	owned "$root" /etc/cdpilot 0755 0:0
	owned "$root" "$CDPILOT_HOME" 0750 "$CDPILOT_UID:$CDPILOT_UID"
	owned "$root" /var/lib/cdpilot 0750 "$CDPILOT_UID:$CDPILOT_UID"
	install -d -m 1777 "$root/tmp"
}

mode=build
root=
while [ $# -gt 0 ]; do
	case "$1" in
	--check) mode=check ;;
	--list) mode=list ;;
	--root)
		[ $# -ge 2 ] || usage
		root=$2
		shift
		;;
	-h | --help)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0
		;;
	*) usage ;;
	esac
	shift
done
[ -z "$root" ] || [ "$mode" = check ] || usage

case "$mode" in
list)
	printf '%s\n' "${RUNTIME_PKGS[@]}"
	;;
build)
	[ "$(id -u)" = 0 ] || die "the image build runs this as root"
	install_packages
	check_files ""
	add_user ""
	make_dirs ""
	echo "runtime steps done: ${RUNTIME_PKGS[*]}"
	;;
check)
	check_candidates
	check_owners
	cleanup=
	if [ -z "$root" ]; then
		root=$(mktemp -d "${TMPDIR:-/tmp}/cdpilot-rootfs.XXXXXX")
		cleanup=$root
	fi
	trap '[ -z "$cleanup" ] || rm -rf "$cleanup"' EXIT
	# A base image's /etc: root only, as in debian:bookworm-slim.
	install -d -m 0755 "$root/etc"
	[ -e "$root/etc/passwd" ] || echo 'root:x:0:0:root:/root:/bin/bash' >"$root/etc/passwd"
	[ -e "$root/etc/group" ] || echo 'root:x:0:' >"$root/etc/group"
	[ -e "$root/etc/shadow" ] || echo 'root:*:19000:0:99999:7:::' >"$root/etc/shadow"
	[ -e "$root/etc/login.defs" ] || [ ! -e /etc/login.defs ] || cp /etc/login.defs "$root/etc/login.defs"
	[ -e "$root/etc/gshadow" ] || echo 'root:*::' >"$root/etc/gshadow"
	add_user "$root"
	make_dirs "$root"
	echo "runtime steps checked under $root"
	;;
esac
