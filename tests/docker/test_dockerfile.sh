#!/usr/bin/env bash
# test_dockerfile.sh: docker/Dockerfile, read without Docker. Checked: Debian bookworm
# bases; a build stage that compiles with -DCDPILOT_TESTS=OFF into /out from packages
# that exist in apt and cover every pkg-config module the build asks for; in the runtime
# (last) stage every COPY source exists in the context (and is not dropped by the
# context's .dockerignore, at the repository root, the one file both the legacy builder and
# BuildKit read; a docker/Dockerfile.dockerignore, which only BuildKit reads and which would
# shadow it there, is refused) or was produced by the build stage, the ENTRYPOINT is
# the binary copied from the build stage with no init wrapper (tini), the CMD is
# `run --targets /etc/cdpilot/targets/targets.json`, USER is not root, a HEALTHCHECK asks
# /healthz, STOPSIGNAL is SIGTERM, EXPOSE 9464, ENV METRICS_ADDR=0.0.0.0:9464 and only
# known environment variables, docker/runtime-steps.sh is copied and run. Then each check
# runs on a broken copy and must fail.
# shellcheck source=tests/docker/lib.sh
source "$(dirname "$0")/lib.sh"

need jq jq
need apt-cache apt
need dpkg dpkg
need pkg-config pkg-config

# pkg-config modules the test suite alone needs (under if(CDPILOT_TESTS), off in the image).
TEST_ONLY_MODULES=(cmocka)

# instructions FILE: one line per instruction, "INSTR args", continuations joined and
# comment lines dropped (also inside a continuation, as Docker does).
instructions() {
	awk '
		/^[[:space:]]*#/ { next }
		!cont && /^[[:space:]]*$/ { next }
		{ line = cont ? line " " $0 : $0 }
		/\\[[:space:]]*$/ { sub(/\\[[:space:]]*$/, "", line); cont = 1; next }
		{ cont = 0; sub(/^[[:space:]]+/, "", line); print line; line = "" }
		END { if (cont) print line }
	' "$1"
}

# ignored PATH IGNOREFILE: PATH (relative to the context) is dropped by a pattern.
ignored() {
	local path=$1 p
	[ -f "$2" ] || return 1
	while IFS= read -r p; do
		p=${p%%#*}
		p=${p%"${p##*[![:space:]]}"}
		[ -n "$p" ] || continue
		[[ $p == !* ]] && continue
		p=${p#/}
		p=${p%/}
		p=${p//\*\*\//}
		# shellcheck disable=SC2053 # the pattern is a glob on purpose
		if [[ $path == $p || $path == $p/* ]]; then
			echo "$p"
			return 0
		fi
	done <"$2"
	return 1
}

# apt_missing PKG...: prints the packages without an apt candidate. apt-cache is slow
# (~0.5 s a call), so answers are kept in $TMP/apt-known for the later checks.
apt_missing() {
	local p ask=()
	touch "$TMP/apt-known"
	for p in "$@"; do
		grep -q "^$p " "$TMP/apt-known" || ask+=("$p")
	done
	if [ ${#ask[@]} -gt 0 ]; then
		apt-cache policy "${ask[@]}" 2>/dev/null | awk -v want="${ask[*]}" '
			/^[^ ].*:$/ { pkg = substr($0, 1, length($0) - 1) }
			/^ *Candidate:/ { if ($2 != "(none)") ok[pkg] = 1 }
			END { n = split(want, w, " ")
			      for (i = 1; i <= n; i++) print w[i], (w[i] in ok) ? "ok" : "missing" }' \
			>>"$TMP/apt-known"
	fi
	for p in "$@"; do
		grep -q "^$p ok$" "$TMP/apt-known" || echo "$p"
	done
}

# module_package MODULE: the Debian package whose .pc file provides a pkg-config module
# here, or nothing (memoized in $TMP/pc-known).
module_package() {
	local pc owner
	touch "$TMP/pc-known"
	if ! grep -q "^$1 " "$TMP/pc-known"; then
		pc=$(pkg-config --path "$1" 2>/dev/null || true)
		owner=
		[ -z "$pc" ] || owner=$(dpkg -S "$pc" 2>/dev/null | head -n 1 | cut -d: -f1)
		echo "$1 ${owner:--}" >>"$TMP/pc-known"
	fi
	owner=$(awk -v m="$1" '$1 == m { print $2; exit }' "$TMP/pc-known")
	[ "$owner" = - ] || echo "$owner"
}

# check_dockerfile DOCKERFILE CONTEXT IGNOREFILE KNOWN_ENV
check_dockerfile() {
	local df=$1 ctx=$2 ign=$3 known=$4
	local instr args stage=-1 name base line w p v k
	local -a names=() build_pkgs=() words=() cmakefiles=()
	local -A argdef=() produced=() copied_from=() copied_src=()
	local runtime_user="" healthcheck="" stopsignal="" entrypoint="" cmd="" expose=""
	local ran_steps=0 tests_off=0 builds_out=0 n_stages

	[ -f "$df" ] || { fail "no Dockerfile at $df"; return 0; }
	n_stages=$(instructions "$df" | grep -ci '^FROM ')
	while IFS= read -r line; do
		instr=${line%% *}
		instr=${instr^^}
		args=${line#* }
		[ "$args" = "$line" ] && args=
		case "$instr" in
		ARG)
			k=${args%%=*}
			[[ $args == *=* ]] && argdef[$k]=${args#*=}
			;;
		FROM)
			stage=$((stage + 1))
			read -r base _ name <<<"$args"
			for k in "${!argdef[@]}"; do
				base=${base//\$\{$k\}/${argdef[$k]}}
				base=${base//\$$k/${argdef[$k]}}
			done
			names[stage]=${name:-$stage}
			if ! in_list "$base" "${names[@]:0:stage}" &&
				[[ $base != debian:bookworm* ]]; then
				fail "FROM $base: not Debian bookworm (debian:bookworm or debian:bookworm-slim)"
			fi
			;;
		RUN)
			if [ "${names[stage]}" = build ]; then
				[[ $args == *-DCDPILOT_TESTS=OFF* ]] && tests_off=1
				for w in $args; do
					if [[ $w == /out/* ]]; then
						produced[$w]=1
						builds_out=1
					fi
				done
				if [[ $args =~ apt-get[^\&]*[[:space:]]install[[:space:]]([^\&]*) ]]; then
					for w in ${BASH_REMATCH[1]}; do
						[[ $w == -* ]] || build_pkgs+=("$w")
					done
				fi
			fi
			if [ "$stage" -eq $((n_stages - 1)) ]; then
				for p in "${!copied_src[@]}"; do
					[ "${copied_src[$p]}" = docker/runtime-steps.sh ] &&
						[[ $args == *"$p"* ]] && ran_steps=1
				done
			fi
			;;
		COPY | ADD)
			local from="" src dest
			words=()
			read -r -a words <<<"$args"
			while [[ ${words[0]:-} == --* ]]; do
				[[ ${words[0]} == --from=* ]] && from=${words[0]#--from=}
				words=("${words[@]:1}")
			done
			if [[ ${words[0]:-} == \[* ]]; then
				mapfile -t words < <(jq -r '.[]' <<<"${words[*]}" 2>/dev/null)
			fi
			if [ ${#words[@]} -lt 2 ]; then
				fail "$instr $args: expected sources and a destination"
				continue
			fi
			dest=${words[-1]}
			for src in "${words[@]:0:${#words[@]}-1}"; do
				if [[ $src == *://* ]]; then
					fail "$instr $src: no URLs (the image must build from the repository)"
				elif [ -n "$from" ]; then
					if [ "$from" != build ] && ! in_list "$from" "${names[@]}"; then
						fail "COPY --from=$from: no such stage"
					elif [ -z "${produced[$src]:-}" ]; then
						fail "COPY --from=$from $src: not produced by the $from stage (it writes: ${!produced[*]})"
					fi
					if [[ $dest == */ ]]; then
						copied_from[$dest${src##*/}]=$src
					else
						copied_from[$dest]=$src
					fi
				else
					src=${src#./}
					if [ "$src" != . ] && [ ! -e "$ctx/$src" ]; then
						fail "COPY source $src does not exist in the context $ctx"
					elif p=$(ignored "$src" "$ign"); then
						fail "COPY source $src is dropped by $(basename "$ign") ('$p')"
					fi
					copied_src[$dest]=$src
				fi
			done
			;;
		USER) runtime_user=$args ;;
		HEALTHCHECK) healthcheck=$args ;;
		STOPSIGNAL) stopsignal=$args ;;
		ENTRYPOINT) entrypoint=$args ;;
		CMD) cmd=$args ;;
		EXPOSE) expose="$expose $args" ;;
		ENV)
			# ENV K=V K2="V 2" ... (the legacy "ENV K V" form is refused)
			if [[ $args != *=* ]]; then
				fail "ENV $args: use the KEY=VALUE form"
				continue
			fi
			while [[ $args =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|[^[:space:]]*)(.*)$ ]]; do
				k=${BASH_REMATCH[1]}
				v=${BASH_REMATCH[2]}
				args=${BASH_REMATCH[3]}
				v=${v#\"}
				v=${v%\"}
				if [ "$stage" -eq $((n_stages - 1)) ]; then
					grep -qxF "$k" <(names "$known") ||
						fail "ENV $k is not in $(basename "$known")"
					if [ "$k" = METRICS_ADDR ] && [ "$v" != 0.0.0.0:9464 ]; then
						fail "ENV METRICS_ADDR=$v: the container must listen on 0.0.0.0:9464"
					fi
					[ "$k" = METRICS_ADDR ] && expose="$expose metrics_addr_ok"
				fi
			done
			;;
		esac
		# Settings of the last stage only (the image); reset them on each FROM.
		if [ "$instr" = FROM ]; then
			runtime_user="" healthcheck="" stopsignal="" entrypoint="" cmd="" expose=""
		fi
	done < <(instructions "$df")

	# stages
	if [ "$n_stages" -lt 2 ] || ! in_list build "${names[@]}"; then
		fail "expected a multi-stage build with a stage named 'build'"
	fi
	[ "${names[-1]:-}" = runtime ] || fail "the last stage should be named 'runtime' (is '${names[-1]:-}')"
	[ $tests_off = 1 ] || fail "the build stage does not configure with -DCDPILOT_TESTS=OFF"
	[ $builds_out = 1 ] || fail "the build stage puts nothing into /out"

	# build packages: in apt, and covering every pkg-config module of the build
	if [ ${#build_pkgs[@]} -eq 0 ]; then
		fail "the build stage installs no packages"
	else
		for p in $(apt_missing "${build_pkgs[@]}"); do
			fail "build stage package $p: no apt candidate"
		done
		local mod owner
		mapfile -t cmakefiles < <(find "$ctx" -path "$ctx/build*" -prune -o \
			-path "$ctx/tests" -prune -o \( -name CMakeLists.txt -o -name '*.cmake' \) -print)
		for mod in $(grep -hoE 'pkg_check_modules\([^)]*\)' "${cmakefiles[@]}" 2>/dev/null |
			sed -E 's/pkg_check_modules\(//; s/\)//' |
			awk '{ for (i = 2; i <= NF; i++) if ($i != "REQUIRED" && $i != "IMPORTED_TARGET" && $i != "QUIET") print $i }' |
			sed -E 's/[<>=].*//' | sort -u); do
			in_list "$mod" "${TEST_ONLY_MODULES[@]}" && continue
			owner=$(module_package "$mod")
			if [ -z "$owner" ]; then
				fail "pkg-config module $mod is not installed here: cannot tell its package"
				continue
			fi
			in_list "$owner" "${build_pkgs[@]}" ||
				fail "pkg-config module $mod ($owner) is not installed by the build stage"
		done
	fi

	# the image
	if [[ $entrypoint != \[* ]]; then
		fail "ENTRYPOINT must be the exec (JSON) form so cdpilot is PID 1, got '$entrypoint'"
	else
		p=$(jq -r '.[0] // ""' <<<"$entrypoint" 2>/dev/null)
		if [ -z "${copied_from[$p]:-}" ]; then
			fail "ENTRYPOINT $p is not copied from the build stage"
		fi
	fi
	if grep -qiE '(^|[/" ])(tini|dumb-init)([" ]|$)' <<<"$entrypoint $cmd"; then
		fail "ENTRYPOINT/CMD use an init (tini): cdpilot is PID 1 and reaps its children"
	fi
	grep -qE '^[[:space:]]*#.*PID 1' "$df" ||
		fail "no comment says why cdpilot runs as PID 1 without tini"
	[ "$(jq -c . <<<"$cmd" 2>/dev/null)" = '["run","--targets","/etc/cdpilot/targets/targets.json"]' ] ||
		fail "CMD is '$cmd', expected [\"run\", \"--targets\", \"/etc/cdpilot/targets/targets.json\"]"
	case "${runtime_user%%:*}" in
	"") fail "no USER in the runtime stage: it runs as root" ;;
	root | 0) fail "USER $runtime_user: runs as root" ;;
	esac
	if [ -z "$healthcheck" ] || [[ ${healthcheck^^} == NONE* ]]; then
		fail "no HEALTHCHECK in the runtime stage"
	else
		p=$(sed -nE 's/.*CMD[[:space:]]+\[[[:space:]]*"([^"]+)".*/\1/p' <<<"$healthcheck")
		if [[ $healthcheck != */healthz* ]] &&
			! { [ -n "$p" ] && [ -n "${copied_src[$p]:-}" ] &&
				grep -q '/healthz' "$ctx/${copied_src[$p]}"; }; then
			fail "HEALTHCHECK does not ask /healthz: $healthcheck"
		fi
	fi
	[ "$stopsignal" = SIGTERM ] || fail "STOPSIGNAL is '$stopsignal', expected SIGTERM"
	[[ " $expose " == *" 9464 "* || " $expose " == *" 9464/tcp "* ]] || fail "no EXPOSE 9464"
	[[ $expose == *metrics_addr_ok* ]] || fail "no ENV METRICS_ADDR in the runtime stage"
	[ $ran_steps = 1 ] || fail "the runtime stage does not copy and run docker/runtime-steps.sh"
	return 0
}

D=$DOCKER_DIR/Dockerfile
I=$REPO/.dockerignore
K=$KNOWN_ENV

# check_ignore_files CONTEXT: the context's .dockerignore exists, and no
# <Dockerfile>.dockerignore next to the Dockerfile makes BuildKit use other rules than the
# legacy builder.
check_ignore_files() {
	[ -f "$1/.dockerignore" ] || fail "no .dockerignore at the context root $1"
	[ ! -e "$1/docker/Dockerfile.dockerignore" ] ||
		fail "docker/Dockerfile.dockerignore: only BuildKit reads it (and then not .dockerignore)"
	return 0
}
check_ignore_files "$REPO"

echo "== the real Dockerfile"
check_dockerfile "$D" "$REPO" "$I" "$K"
[ "$fails" -eq 0 ] && echo "ok: docker/Dockerfile"

# The image's command line is one the binary accepts: its subcommand and every --flag of
# the CMD appear in that subcommand's --help.
check_cmd_matches_help() { # DOCKERFILE
	local cmd sub help flag
	cmd=$(sed -nE 's/^CMD[[:space:]]+\[(.*)\]/\1/p' "$1" | tr -d '",')
	sub=${cmd%% *}
	help=$("$CDPILOT_BIN" "$sub" --help 2>&1) || { fail "cdpilot $sub --help failed"; return 0; }
	for flag in $cmd; do
		case "$flag" in
		--*) grep -q -- "$flag" <<<"$help" || fail "CMD flag $flag is not in 'cdpilot $sub --help'" ;;
		esac
	done
	return 0
}
if [ -n "${CDPILOT_BIN:-}" ]; then
	check_cmd_matches_help "$D"
elif [ -n "${CI:-}" ]; then
	fail "CDPILOT_BIN is not set: run this test through ctest"
fi

echo "== broken copies must fail"
broken() { # broken NAME SED-SCRIPT [FILE]
	sed -e "$2" "${3:-$D}" >"$TMP/$1"
	cmp -s "${3:-$D}" "$TMP/$1" && echo "FATAL: sed '$2' changed nothing" >&2 && exit 1
	echo "$TMP/$1"
}
if [ -n "${CDPILOT_BIN:-}" ]; then
	self_check "CMD flag unknown to the binary" "CMD flag --tragets is not in" \
		check_cmd_matches_help "$(broken cmdflag 's|"--targets"|"--tragets"|')"
fi
self_check "root user" "USER root: runs as root" \
	check_dockerfile "$(broken user 's/^USER .*/USER root/')" "$REPO" "$I" "$K"
self_check "no user" "no USER in the runtime stage" \
	check_dockerfile "$(broken nouser '/^USER /d')" "$REPO" "$I" "$K"
self_check "no healthcheck" "no HEALTHCHECK" \
	check_dockerfile "$(broken hc '/^HEALTHCHECK/,/^  CMD/d')" "$REPO" "$I" "$K"
self_check "healthcheck without /healthz" "HEALTHCHECK does not ask /healthz" \
	check_dockerfile "$(broken hcz 's|CMD \["/usr/local/bin/cdpilot-healthcheck"\]|CMD ["/bin/true"]|')" "$REPO" "$I" "$K"
self_check "missing COPY source" "COPY source docker/nothere.sh does not exist" \
	check_dockerfile "$(broken src 's|^COPY docker/healthcheck.sh|COPY docker/nothere.sh|')" "$REPO" "$I" "$K"
self_check "COPY source dropped by the ignore file" "is dropped by" \
	check_dockerfile "$D" "$REPO" "$(printf 'build\ndocker/*.sh\n' >"$TMP/ign" && echo "$TMP/ign")" "$K"
mkdir -p "$TMP/ctx1/docker" "$TMP/ctx2/docker"
touch "$TMP/ctx2/.dockerignore" "$TMP/ctx2/docker/Dockerfile.dockerignore"
self_check "no .dockerignore at the context root" "no .dockerignore at the context root" \
	check_ignore_files "$TMP/ctx1"
self_check "a BuildKit-only Dockerfile.dockerignore" "only BuildKit reads it" \
	check_ignore_files "$TMP/ctx2"
self_check "ignore file dropping sources" "COPY source . is" \
	check_dockerfile "$D" "$REPO" "$(printf '.\n' >"$TMP/ign2" && echo "$TMP/ign2")" "$K"
self_check "ENTRYPOINT not from the build stage" "ENTRYPOINT /usr/local/bin/cdpilotd is not copied from the build stage" \
	check_dockerfile "$(broken ep 's|^ENTRYPOINT .*|ENTRYPOINT ["/usr/local/bin/cdpilotd"]|')" "$REPO" "$I" "$K"
self_check "COPY --from of a file the build does not make" "COPY --from=build /out/cdpilot2: not produced" \
	check_dockerfile "$(broken out 's|^COPY --from=build /out/cdpilot |COPY --from=build /out/cdpilot2 |')" "$REPO" "$I" "$K"
self_check "tests on in the image build" "-DCDPILOT_TESTS=OFF" \
	check_dockerfile "$(broken tests 's/-DCDPILOT_TESTS=OFF//')" "$REPO" "$I" "$K"
self_check "non-Debian base" "FROM ubuntu:24.04: not Debian bookworm" \
	check_dockerfile "$(broken base 's/^ARG DEBIAN_IMAGE=.*/ARG DEBIAN_IMAGE=ubuntu:24.04/')" "$REPO" "$I" "$K"
self_check "single stage" "expected a multi-stage build" \
	check_dockerfile "$(broken stage 's/ AS build$/ AS compile/; s/--from=build/--from=compile/')" "$REPO" "$I" "$K"
self_check "unknown ENV" "ENV FOO_BAR is not in" \
	check_dockerfile "$(broken env 's/^ENV METRICS_ADDR=0.0.0.0:9464 /ENV FOO_BAR=1 METRICS_ADDR=0.0.0.0:9464 /')" "$REPO" "$I" "$K"
self_check "loopback METRICS_ADDR" "ENV METRICS_ADDR=127.0.0.1:9464" \
	check_dockerfile "$(broken addr 's/METRICS_ADDR=0.0.0.0:9464/METRICS_ADDR=127.0.0.1:9464/')" "$REPO" "$I" "$K"
self_check "STOPSIGNAL" "STOPSIGNAL is 'SIGKILL'" \
	check_dockerfile "$(broken sig 's/^STOPSIGNAL .*/STOPSIGNAL SIGKILL/')" "$REPO" "$I" "$K"
self_check "no EXPOSE" "no EXPOSE 9464" \
	check_dockerfile "$(broken expose '/^EXPOSE/d')" "$REPO" "$I" "$K"
self_check "tini" "use an init (tini)" \
	check_dockerfile "$(broken tini 's|^ENTRYPOINT .*|ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/cdpilot"]|')" "$REPO" "$I" "$K"
self_check "shell-form ENTRYPOINT" "ENTRYPOINT must be the exec (JSON) form" \
	check_dockerfile "$(broken shellep 's|^ENTRYPOINT .*|ENTRYPOINT /usr/local/bin/cdpilot|')" "$REPO" "$I" "$K"
self_check "CMD" "CMD is '[\"run\"]'" \
	check_dockerfile "$(broken cmd 's|^CMD .*|CMD ["run"]|')" "$REPO" "$I" "$K"
self_check "runtime steps not run" "does not copy and run docker/runtime-steps.sh" \
	check_dockerfile "$(broken steps '/^RUN bash .*runtime-steps.sh/d')" "$REPO" "$I" "$K"
self_check "build package not in apt" "build stage package libuv-nonexistent-dev: no apt candidate" \
	check_dockerfile "$(broken pkg 's/libuv1-dev/libuv-nonexistent-dev libuv1-dev/')" "$REPO" "$I" "$K"
self_check "build package missing for a pkg-config module" "pkg-config module jansson (libjansson-dev) is not installed by the build stage" \
	check_dockerfile "$(broken pc 's/ libjansson-dev / /')" "$REPO" "$I" "$K"

finish test_dockerfile
