#!/usr/bin/env bash
# bench/run-callgrind.sh: the controller's own cost in instructions (see bench/README.md).
# Builds cdpilot-bench-instr and the fixture into build/ (at nice 19, one job), starts the
# fixture, runs the harness under callgrind with instrumentation only around its two
# measured phases (E evaluate('1') round trips on one page, then T navigate tasks) and
# Chromium outside valgrind, and prints instructions per evaluate and per navigate task
# and each phase's top functions by inclusive cost. Instruction counts barely move with
# the machine's load, unlike timings. The callgrind files stay in build/bench-results/
# (callgrind_annotate --inclusive=yes FILE for more).
#
# usage: bench/run-callgrind.sh [--evals E] [--tasks T] [--top N]   (defaults 2000, 40, 25)
set -euo pipefail
cd "$(dirname "$0")/.."

evals=2000
tasks=40
top=25
while [ $# -gt 0 ]; do
	case "$1" in
	--evals) evals=${2:?--evals needs a value}; shift 2 ;;
	--tasks) tasks=${2:?--tasks needs a value}; shift 2 ;;
	--top) top=${2:?--top needs a value}; shift 2 ;;
	-h | --help)
		sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: bench/run-callgrind.sh [--evals E] [--tasks T] [--top N]" >&2
		exit 2
		;;
	esac
done

command -v valgrind >/dev/null || ./scripts/deps.sh bench

echo "== building into build/ (nice 19, one job)"
[ -f build/CMakeCache.txt ] ||
	nice -n 19 cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo --log-level=WARNING
nice -n 19 cmake --build build -j1 --target cdpilot-fixture cdpilot-bench-instr >/dev/null

# shellcheck source=scripts/fixture.sh
. scripts/fixture.sh
if [ -z "${CHROMIUM_PATH:-}" ]; then
	for c in /usr/lib/chromium/chromium-headless-shell /usr/lib/chromium/chromium; do
		if [ -x "$c" ]; then
			export CHROMIUM_PATH=$c
			break
		fi
	done
fi
results=build/bench-results
mkdir -p "$results"
rm -f "$results"/callgrind.out.*
start_fixture

echo "== callgrind: $evals evaluate('1'), $tasks navigate tasks (log: $results/callgrind.log)"
echo "== load: $(uptime | sed 's/.*load average/load average/')"
valgrind --tool=callgrind --instr-atstart=no --trace-children=no \
	--callgrind-out-file="$results/callgrind.out.%p" \
	build/bench/cdpilot-bench-instr --base "$base" --evals "$evals" --tasks "$tasks" \
	>"$results/callgrind.json" 2>"$results/callgrind.log" || {
	echo "run-callgrind.sh: the harness failed; its log:" >&2
	tail -n 30 "$results/callgrind.log" >&2
	exit 1
}

# The dump of one part: the file whose "desc: Trigger:" names it.
part_file() {
	grep -l "^desc: Trigger: Client Request: $1\$" "$results"/callgrind.out.* | head -n 1
}

for part in evaluate navigate; do
	f=$(part_file "$part")
	if [ -z "$f" ]; then
		echo "run-callgrind.sh: no callgrind dump for $part" >&2
		exit 1
	fi
	n=$evals
	[ "$part" = navigate ] && n=$tasks
	total=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$f")
	[ -n "$total" ] || total=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$f")
	echo
	echo "$part: $total instructions over $n = $((total / n)) per $part ($f)"
	for mode in yes no; do
		[ "$mode" = yes ] && echo "  top by inclusive cost (instructions per $part):" ||
			echo "  top by self cost (instructions per $part):"
		callgrind_annotate --inclusive="$mode" --threshold=100 "$f" 2>/dev/null |
			awk -v top="$top" -v n="$n" '
				/^-+$/ { dash++; next }
				# the inlined-file rows repeat their function: keep those naming an object
				dash >= 4 && NF >= 2 && $1 ~ /^[0-9,]+$/ && (/ \[/ || /PROGRAM TOTALS/) {
					ir = $1; gsub(",", "", ir)
					if (shown++ < top) {
						sub(/^[ \t]*[0-9,]+ +(\([^)]*\) +)?/, "")
						printf "  %10d  %s\n", ir / n, $0
					}
				}'
	done
done
echo
echo "raw: $results/callgrind.json $results/callgrind.out.*"
