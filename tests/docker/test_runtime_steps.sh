#!/usr/bin/env bash
# test_runtime_steps.sh: docker/runtime-steps.sh, the runtime stage's setup, run here in
# --check mode: every package has an apt candidate, the lws libuv plugin and Chromium's
# binary come from listed packages, and the user and directories are made in a temp root
# (twice: the steps are idempotent). The shared libraries the built cdpilot needs
# ($CDPILOT_BIN, set by ctest) all come from listed packages. shellcheck runs on the
# docker/ scripts when it is installed. Then broken copies must fail.
# shellcheck source=tests/docker/lib.sh
source "$(dirname "$0")/lib.sh"

need apt-cache apt
need dpkg dpkg
need ldd libc-bin

STEPS=$DOCKER_DIR/runtime-steps.sh
BIN=${CDPILOT_BIN:-$REPO/build/daemon/cdpilot}

# Packages every Debian image has (Essential or required by apt itself).
BASE_PKGS=(libc6 libgcc-s1 libstdc++6 zlib1g)

# check_steps SCRIPT ROOT: --check passes and leaves the expected user and dirs in ROOT.
check_steps() {
	local steps=$1 root=$2 out line mode
	if ! out=$(bash "$steps" --check --root "$root" 2>&1); then
		fail "runtime-steps.sh --check failed: $out"
		return 0
	fi
	line=$(grep '^cdpilot:' "$root/etc/passwd" || true)
	[ "$line" = "cdpilot:x:10001:10001:cdpilot daemon:/home/cdpilot:/usr/sbin/nologin" ] ||
		fail "passwd entry is '$line'"
	grep -qx 'cdpilot:x:10001:' "$root/etc/group" || fail "no group cdpilot with gid 10001"
	[ "$(grep -c '^cdpilot:' "$root/etc/passwd")" -eq 1 ] || fail "user cdpilot added twice"
	for line in /etc/cdpilot:755:0 /home/cdpilot:750:10001 /var/lib/cdpilot:750:10001 /tmp:1777:0; do
		IFS=: read -r p want owner <<<"$line"
		if [ ! -d "$root$p" ]; then
			fail "directory $p was not made"
			continue
		fi
		mode=$(stat -c %a "$root$p")
		[ "$mode" = "$want" ] || fail "$p has mode $mode, expected $want"
		if [ "$(id -u)" = 0 ]; then
			[ "$(stat -c %u "$root$p")" = "$owner" ] || fail "$p is owned by $(stat -c %u "$root$p"), expected $owner"
		fi
	done
	return 0
}

# check_libs BIN PKGLIST: every library BIN needs directly (DT_NEEDED) is in a package of
# PKGLIST, a direct dependency of one (e.g. libcap2 of libwebsockets17: a sanitizer build
# links -lcap from lws's pkg-config file, which --as-needed drops otherwise) or a package
# of every Debian image; sanitizer runtimes of a test build are skipped.
check_libs() {
	local bin=$1 list=$2 needed so path pkg deps
	if [ ! -x "$bin" ]; then
		fail "no cdpilot binary at $bin (set CDPILOT_BIN)"
		return 0
	fi
	needed=$(LC_ALL=C objdump -p "$bin" 2>/dev/null | awk '$1 == "NEEDED" { print $2 }')
	[ -n "$needed" ] || needed=$(LC_ALL=C readelf -d "$bin" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p')
	[ -n "$needed" ] || { fail "cannot read the NEEDED libraries of $bin"; return 0; }
	mapfile -t deps < <(xargs apt-cache depends --no-recommends --no-suggests \
		--no-conflicts --no-breaks --no-replaces --no-enhances <"$list" 2>/dev/null |
		awk '$1 == "Depends:" || $1 == "|Depends:" { print $2 }' | sort -u)
	for so in $needed; do
		case "$so" in libasan* | libubsan* | liblsan* | libtsan* | ld-linux*) continue ;; esac
		path=$(ldd "$bin" | awk -v s="$so" '$1 == s { print $3; exit }')
		if [ -z "$path" ] || [ "$path" = "not" ]; then
			fail "$so: not found by ldd"
			continue
		fi
		pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1)
		[ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
		if [ -z "$pkg" ]; then
			fail "$so ($path): no Debian package owns it"
		elif ! grep -qxF "$pkg" "$list" &&
			! in_list "$pkg" "${BASE_PKGS[@]}" "${deps[@]}"; then
			fail "$so ($pkg) is not installed by runtime-steps.sh"
		else
			echo "ok lib $so from $pkg"
		fi
	done
	return 0
}

echo "== the real runtime steps"
if command -v shellcheck >/dev/null 2>&1; then
	out=$(shellcheck -S warning "$STEPS" "$DOCKER_DIR/healthcheck.sh" 2>&1) ||
		fail "shellcheck: $out"
else
	echo "shellcheck not installed: lint skipped (the other checks run)"
fi
mkdir -p "$TMP/root"
check_steps "$STEPS" "$TMP/root"
check_steps "$STEPS" "$TMP/root"
bash "$STEPS" --list >"$TMP/pkgs" || fail "runtime-steps.sh --list failed"
grep -qxF libwebsockets-evlib-uv "$TMP/pkgs" ||
	fail "libwebsockets-evlib-uv (lws's libuv plugin, loaded at run time) is not installed"
check_libs "$BIN" "$TMP/pkgs"
[ "$fails" -eq 0 ] && echo "ok: runtime steps"

echo "== broken copies must fail"
sed 's/^RUNTIME_PKGS=(libuv1 /RUNTIME_PKGS=(libnothere0 libuv1 /' "$STEPS" >"$TMP/bogus.sh"
self_check "package without apt candidate" "no apt candidate for: libnothere0" \
	check_steps "$TMP/bogus.sh" "$(mktemp -d "$TMP/r.XXXX")"
sed 's/ libwebsockets-evlib-uv / /' "$STEPS" >"$TMP/noplugin.sh"
self_check "plugin package dropped" "shipped by libwebsockets-evlib-uv, which is not in the list" \
	check_steps "$TMP/noplugin.sh" "$(mktemp -d "$TMP/r.XXXX")"
sed 's/--uid "$CDPILOT_UID"/--uid 10002/' "$STEPS" >"$TMP/uid.sh"
self_check "wrong uid" "passwd entry is 'cdpilot:x:10002:10001" \
	check_steps "$TMP/uid.sh" "$(mktemp -d "$TMP/r.XXXX")"
sed 's|owned "$root" /var/lib/cdpilot 0750|owned "$root" /var/lib/cdpilot 0777|' "$STEPS" >"$TMP/mode.sh"
self_check "world-writable dir" "/var/lib/cdpilot has mode 777, expected 750" \
	check_steps "$TMP/mode.sh" "$(mktemp -d "$TMP/r.XXXX")"
grep -vxF libjansson4 "$TMP/pkgs" >"$TMP/pkgs-nojansson"
self_check "runtime library missing" "libjansson.so.4 (libjansson4) is not installed" \
	check_libs "$BIN" "$TMP/pkgs-nojansson"

finish test_runtime_steps
