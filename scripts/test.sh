#!/usr/bin/env bash
# test.sh: the whole test suite, as CI runs it. Installs what is missing and brings
# Chromium to Debian's current build (scripts/deps.sh --current test), then builds and runs
# ctest, one test at a time (integration tests count Chromium processes), in:
#   build/        the normal build (RelWithDebInfo)
#   build-asan/   -DCDPILOT_SANITIZE=ON: AddressSanitizer with LeakSanitizer, UBSan
#   build-fuzz/   clang -DCDPILOT_FUZZ=ON: a short smoke run of each libFuzzer target
# Prints one summary line per build and a total, and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

./scripts/deps.sh --current test || exit 1

jobs=$(nproc 2>/dev/null || echo 2)
started=$SECONDS

# CI-friendly environment: full output of failing tests, no colours, no prompts.
export CTEST_OUTPUT_ON_FAILURE=1
export CMAKE_BUILD_PARALLEL_LEVEL=$jobs
export DEBIAN_FRONTEND=noninteractive
if [ -n "${CI:-}" ]; then
	export NO_COLOR=1 CLICOLOR=0 TERM=dumb
fi

summaries=()
total_pass=0
total_fail=0
total_skip=0

# Reads ctest's output (file $1) and sets pass/fail/skip. ctest counts skipped tests as
# passed in its "N% tests passed, F tests failed out of T" line; we report them apart.
count_ctest() {
	local line
	pass=0 fail=0 skip=0
	line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -n 1)
	if [ -z "$line" ]; then
		return 1
	fi
	fail=$(sed -E 's/.* ([0-9]+) tests? failed.*/\1/' <<<"$line")
	local total
	total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
	skip=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)[[:space:]]*$' "$1" || true)
	pass=$((total - fail - skip))
	return 0
}

# run_build NAME DIR LABEL_ARGS -- CMAKE_ARGS...: configure, build, ctest; records a summary.
run_build() {
	local name=$1 dir=$2 ctest_args=$3
	shift 4
	local t0=$SECONDS log="$dir/ctest.log" status
	echo
	echo "===== $name: configure and build $dir/"
	if ! cmake -S . -B "$dir" --log-level=WARNING "$@" || ! cmake --build "$dir" -j"$jobs"; then
		summaries+=("$(printf '%-12s FAILED to build (%d s)' "$dir/" $((SECONDS - t0)))")
		total_fail=$((total_fail + 1))
		return
	fi
	if [ "$dir" = build ]; then
		# Before any test: the Chromium build this run drives, as the browser itself says.
		echo "===== chromium: $("$dir/daemon/cdpilot" --version --browser 2>&1 | tail -n 1)"
	fi
	echo "===== $name: ctest -j1 in $dir/"
	# shellcheck disable=SC2086 # ctest_args is a word list on purpose
	(cd "$dir" && ctest --output-on-failure -j1 --no-tests=error $ctest_args) 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	if ! count_ctest "$log"; then
		pass=0 fail=1 skip=0
	fi
	if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1 # ctest failed without a failing test (e.g. no tests found)
	fi
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
	summaries+=("$(printf '%-12s %s  %d passed, %d failed, %d skipped (%d s)' "$dir/" \
		"$([ "$status" -eq 0 ] && echo ok || echo FAILED)" "$pass" "$fail" "$skip" \
		$((SECONDS - t0)))")
}

# LeakSanitizer stops the process with ptrace-like machinery at exit; it cannot run under a
# debugger or tracer, nor where ptrace is forbidden (some containers, yama ptrace_scope 3).
# Try it on a program with a known leak before trusting it with the suite.
lsan_probe() {
	local d out cc=${CC:-cc}
	d=$(mktemp -d "${TMPDIR:-/tmp}/cdpilot-lsan.XXXXXX")
	printf '#include <stdlib.h>\nvoid *volatile keep;\nint main(void)\n{\n\tkeep = malloc(7);\n\tkeep = 0;\n\treturn 0;\n}\n' >"$d/leak.c"
	if ! "$cc" -fsanitize=address -g "$d/leak.c" -o "$d/leak" 2>"$d/cc.log"; then
		echo "test.sh: cannot build an AddressSanitizer program with $cc:" >&2
		cat "$d/cc.log" >&2
		rm -rf "$d"
		lsan_detect=1
		return
	fi
	out=$(ASAN_OPTIONS=detect_leaks=1 "$d/leak" 2>&1 || true)
	rm -rf "$d"
	if grep -q 'detected memory leaks' <<<"$out"; then
		lsan_detect=1
		echo "LeakSanitizer works here: leak checks are on"
		return
	fi
	lsan_detect=0
	local tracer yama
	tracer=$(awk '/^TracerPid:/ {print $2}' /proc/self/status 2>/dev/null || echo 0)
	yama=$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo none)
	echo "test.sh: LeakSanitizer cannot run here, so leak checks are OFF (detect_leaks=0)."
	if [ "${tracer:-0}" != 0 ]; then
		echo "  reason: this shell is being traced (TracerPid $tracer); LSan does not work under ptrace."
	elif grep -q 'does not work under ptrace' <<<"$out"; then
		echo "  reason: LSan reports it is running under ptrace (strace, gdb, ...)."
	else
		echo "  reason: LSan could not stop the process to scan it (ptrace restricted:" \
			"yama ptrace_scope=$yama, or a seccomp policy)."
	fi
	echo "  its output was:"
	printf '%s\n' "$out" | head -n 5 | sed 's/^/    /'
}

# The fuzz smoke run needs clang with libFuzzer (deps.sh test installs both).
fuzz_available() {
	local d ok=1
	command -v clang >/dev/null 2>&1 || return 1
	d=$(mktemp -d "${TMPDIR:-/tmp}/cdpilot-fuzz.XXXXXX")
	printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)\n{\n\treturn (int)(d && n) * 0;\n}\n' >"$d/f.c"
	clang -fsanitize=fuzzer "$d/f.c" -o "$d/f" >/dev/null 2>&1 && ok=0
	rm -rf "$d"
	return $ok
}

# 1. The normal build.
run_build "normal" build "" -- -DCMAKE_BUILD_TYPE=RelWithDebInfo

# 2. ASan + UBSan.
lsan_probe
export ASAN_OPTIONS="detect_leaks=$lsan_detect"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run_build "sanitizers" build-asan "" -- -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCDPILOT_SANITIZE=ON

# 3. Fuzz smoke run (the targets carry their own time limit in tests/fuzz/CMakeLists.txt),
#    with the same sanitizer options.
if fuzz_available; then
	run_build "fuzz smoke" build-fuzz "-L fuzz" -- -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCDPILOT_FUZZ=ON -DCDPILOT_TESTS=OFF -DCMAKE_C_COMPILER=clang
else
	summaries+=("$(printf '%-12s skipped: clang with libFuzzer is not installed' build-fuzz/)")
fi

echo
echo "===== summary ($((SECONDS - started)) s)"
for s in "${summaries[@]}"; do
	echo "  $s"
done
echo "total: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
