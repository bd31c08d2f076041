#!/usr/bin/env bash
# demo.sh: installs what is missing (scripts/deps.sh build), builds cdpilot into build/,
# starts the local fixture web server, and scrapes its JavaScript-rendered page /js with
# `cdpilot scrape URL --wait-for '#out' --screenshot build/demo.png`. Prints the JSON
# result and where the screenshot is. The fixture is stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

./scripts/deps.sh build

echo "== building cdpilot into build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo --log-level=WARNING
cmake --build build -j"$(nproc)" --target cdpilot cdpilot-fixture

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cdpilot-demo.XXXXXX")
fixture_pid=

cleanup() {
	if [ -n "$fixture_pid" ] && kill -0 "$fixture_pid" 2>/dev/null; then
		kill -TERM "$fixture_pid" 2>/dev/null || true
		wait "$fixture_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Pretty-prints one JSON document from stdin without jq or python: a newline and an indent
# after { [ and ,  and before } ], nothing touched inside strings.
pretty_json() {
	if command -v jq >/dev/null 2>&1; then
		jq .
		return
	fi
	awk '
	function nl() { printf "\n%*s", depth * 2, "" }
	{
		n = length($0)
		for (i = 1; i <= n; i++) {
			c = substr($0, i, 1)
			if (instr) {
				printf "%s", c
				if (esc) esc = 0
				else if (c == "\\") esc = 1
				else if (c == "\"") instr = 0
				continue
			}
			if (c == "\"") { instr = 1; printf "%s", c }
			else if (c == "{" || c == "[") {
				nx = substr($0, i + 1, 1)
				if ((c == "{" && nx == "}") || (c == "[" && nx == "]")) {
					printf "%s%s", c, nx; i++
				} else { depth++; printf "%s", c; nl() }
			}
			else if (c == "}" || c == "]") { depth--; nl(); printf "%s", c }
			else if (c == ",") { printf ","; nl() }
			else if (c == ":") printf ": "
			else if (c != " " && c != "\t") printf "%s", c
		}
		printf "\n"
	}'
}

echo "== starting the fixture web server"
build/tests/fixture/cdpilot-fixture --port 0 >"$tmp/fixture.out" 2>"$tmp/fixture.log" &
fixture_pid=$!
base=
for _ in $(seq 1 100); do
	line=$(head -n 1 "$tmp/fixture.out" 2>/dev/null || true)
	case "$line" in
	"listening on http://"*)
		base=${line#listening on }
		break
		;;
	esac
	if ! kill -0 "$fixture_pid" 2>/dev/null; then
		break
	fi
	sleep 0.1
done
if [ -z "$base" ]; then
	echo "demo.sh: the fixture server did not start; its log:" >&2
	cat "$tmp/fixture.log" >&2
	exit 1
fi
echo "fixture: $base"

url="$base/js"
shot="$root/build/demo.png"
rm -f "$shot"
echo "== build/daemon/cdpilot scrape $url --wait-for '#out' --screenshot build/demo.png"
rc=0
out=$(build/daemon/cdpilot scrape "$url" --wait-for '#out' --screenshot "$shot") || rc=$?
if [ -n "$out" ]; then
	printf '%s\n' "$out" | pretty_json
fi

kill -TERM "$fixture_pid" 2>/dev/null || true
wait "$fixture_pid" 2>/dev/null || true
fixture_pid=

if [ "$rc" -ne 0 ]; then
	echo "demo.sh: cdpilot exited with $rc (exit codes are listed in README.md)" >&2
	exit "$rc"
fi
if [ -s "$shot" ]; then
	echo "screenshot: $shot ($(wc -c <"$shot") bytes)"
else
	echo "demo.sh: cdpilot succeeded but wrote no screenshot at $shot" >&2
	exit 1
fi
