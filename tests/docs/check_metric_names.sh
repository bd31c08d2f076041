#!/usr/bin/env bash
# check_metric_names.sh [ROOT]: three lists of metric families must be the same set:
#   code  the "cdpilot_..." string literals of the C code (ROOT/{daemon,util,store,
#         scheduler,watchdog,pool,runner,adapters,cdp}); only /metrics writes such names;
#   list  docker/metric-names.txt (comments after '#' aside);
#   docs  every cdpilot_ name in docs/metrics.md, a histogram's _bucket/_sum/_count by its
#         base name.
# The live side (every family a running daemon scrapes is listed, and the reverse) is
# dk_check_metric_names() in the daemon tests. Without ROOT: checks the repository, then
# doctored copies (a name dropped from the list, a name the docs lack, a family the code
# writes that nobody listed), and fails unless each of them is caught.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

# check ROOT: one "FAIL ..." line per problem; exit status 1 if any.
check() {
	local root=$1 tmp rc=0
	tmp=$(mktemp -d) || exit 1
	for d in daemon util store scheduler watchdog pool runner adapters cdp; do
		[ -d "$root/$d" ] || continue
		grep -rhoE --include='*.c' --include='*.h' '"cdpilot_[a-z0-9_]+"' "$root/$d"
	done | tr -d '"' | sort -u >"$tmp/code"
	sed -e 's/#.*//' -e 's/[[:space:]]//g' "$root/docker/metric-names.txt" | grep -v '^$' |
		sort >"$tmp/list.all"
	sort -u "$tmp/list.all" >"$tmp/list"
	grep -oE 'cdpilot_[a-z0-9_]+' "$root/docs/metrics.md" | sort -u | while read -r n; do
		b=${n%_bucket}; b=${b%_sum}; b=${b%_count}
		if [ "$b" != "$n" ] && grep -qx "$b" "$tmp/list"; then echo "$b"; else echo "$n"; fi
	done | sort -u >"$tmp/docs"
	if [ ! -s "$tmp/code" ] || [ ! -s "$tmp/list" ]; then
		echo "FAIL: no metric names found in the code or in metric-names.txt"
		rc=1
	fi
	uniq -d "$tmp/list.all" | sed 's/^/FAIL: metric-names.txt lists twice: /' | grep . && rc=1
	comm -23 "$tmp/code" "$tmp/list" | sed 's/^/FAIL: written by the code, not in docker\/metric-names.txt: /' | grep . && rc=1
	comm -13 "$tmp/code" "$tmp/list" | sed 's/^/FAIL: in docker\/metric-names.txt, written by no code: /' | grep . && rc=1
	comm -23 "$tmp/list" "$tmp/docs" | sed 's/^/FAIL: not documented in docs\/metrics.md: /' | grep . && rc=1
	comm -13 "$tmp/list" "$tmp/docs" | sed 's/^/FAIL: docs\/metrics.md names an unknown metric: /' | grep . && rc=1
	rm -rf "$tmp"
	return $rc
}

if [ $# -gt 0 ]; then
	check "$1"
	exit
fi

fails=0
echo "== the repository"
check "$REPO" || fails=$((fails + 1))
[ "$fails" -eq 0 ] && echo "ok: code, docker/metric-names.txt and docs/metrics.md agree ($(grep -c '^cdpilot_' "$REPO/docker/metric-names.txt") families)"

echo "== doctored copies must fail"
W=$(mktemp -d) || exit 1
trap 'rm -rf "$W"' EXIT
copy() { # copy NAME: a fresh copy of the parts the check reads
	rm -rf "${W:?}/$1"
	mkdir -p "$W/$1/docker" "$W/$1/docs"
	cp -r "$REPO/daemon" "$W/$1/"
	cp "$REPO/docker/metric-names.txt" "$W/$1/docker/"
	cp "$REPO/docs/metrics.md" "$W/$1/docs/"
	echo "$W/$1"
}
doctored() { # doctored WHAT EXPECTED ROOT
	local out
	if out=$(check "$3"); then
		echo "FAIL: $1 was not caught"
		fails=$((fails + 1))
	elif [[ $out != *"$2"* ]]; then
		echo "FAIL: $1: expected '$2', got: $out"
		fails=$((fails + 1))
	else
		echo "ok: $1 caught"
	fi
}
R=$(copy list)
sed -i '/^cdpilot_http_evicted_total/d' "$R/docker/metric-names.txt"
doctored "a name dropped from the list" \
	"written by the code, not in docker/metric-names.txt: cdpilot_http_evicted_total" "$R"
R=$(copy docs)
sed -i 's/cdpilot_zombies_reaped_total/cdpilot_zombies_reaped/g' "$R/docs/metrics.md"
doctored "a family the docs lack" "not documented in docs/metrics.md: cdpilot_zombies_reaped_total" "$R"
R=$(copy code)
echo 'static const char *x = "cdpilot_new_thing_total";' >>"$R/daemon/endpoints.c"
doctored "a new family nobody listed" "not in docker/metric-names.txt: cdpilot_new_thing_total" "$R"
R=$(copy twice)
echo 'cdpilot_ready' >>"$R/docker/metric-names.txt"
doctored "a name listed twice" "lists twice: cdpilot_ready" "$R"

[ "$fails" -eq 0 ] && echo "PASS check_metric_names" && exit 0
echo "FAILED check_metric_names: $fails"
exit 1
