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

# shellcheck source=scripts/fixture.sh
. scripts/fixture.sh

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
start_fixture
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

stop_fixture

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
