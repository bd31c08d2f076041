#!/usr/bin/env bash
# bench/run-targets.sh: big targets lists. For each size, cdpilot-bench-targets writes a
# generated targets file of that many targets and times, each on its own: validating it
# (targets_load_file, as at startup and on SIGHUP), reconciling it into an empty runner
# (every target added), parsing and reconciling it again unchanged (SIGHUP without an edit)
# and reconciling an empty list (every target removed); plus the process's peak RSS. Each
# size runs in its own process. Prints a table; raw JSON lines go to
# $BUILD_DIR/bench-results/targets.jsonl.
#
# usage: bench/run-targets.sh [SIZE...]      (default: 1000 10000 100000)
#   BUILD_DIR (default build), NO_BUILD=1 to use the binary already built there.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
for s in "${sizes[@]}"; do
	if ! [[ $s =~ ^[1-9][0-9]{0,6}$ ]]; then
		echo "bench/run-targets.sh: size '$s': expected a positive integer up to 9999999" >&2
		exit 2
	fi
done

build=${BUILD_DIR:-build}
if [ "${NO_BUILD:-0}" != 1 ]; then
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo --log-level=WARNING >/dev/null
	cmake --build "$build" -j2 --target cdpilot-bench-targets >/dev/null
fi
bin=$build/bench/cdpilot-bench-targets
mkdir -p "$build/bench-results"
out=$build/bench-results/targets.jsonl
: >"$out"

printf '%9s %10s %10s %10s %10s %10s %9s\n' targets parse_s add_s reparse_s unchanged_s \
	remove_s rss_MB
for s in "${sizes[@]}"; do
	line=$("$bin" --targets "$s")
	echo "$line" >>"$out"
	f() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" <<<"$line"; }
	printf '%9s %10s %10s %10s %10s %10s %9s\n' "$s" "$(f parse_wall_s)" "$(f add_wall_s)" \
		"$(f reparse_wall_s)" "$(f unchanged_wall_s)" "$(f remove_wall_s)" "$(f maxrss_mb)"
done
echo "(wall seconds; CPU seconds are in $out)"
