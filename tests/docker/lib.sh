# shellcheck shell=bash disable=SC2034 # variables are used by the sourcing test
# lib.sh: helpers shared by the docker/ tests (sourced, not run). Each test checks the
# real files in docker/, then breaks copies of them on purpose and expects the same check
# to fail with a given message (self_check), so a check that cannot fail is caught.
#
# Tools: bash, jq, python3 with python3-yaml (Debian packages jq python3-yaml), apt-cache
# and dpkg (Debian), promtool (package prometheus). A missing tool fails the test.

set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DOCKER_DIR=$REPO/docker
fails=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cdpilot-dockertest.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# fail MSG: records a failure of the check being run (checks print, never exit).
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# in_list WORD ITEM...: WORD is one of the items. No pipe: `printf ... | grep -q` under
# pipefail fails now and then, when grep has matched and exited before printf wrote the rest
# (SIGPIPE), which a loaded machine made happen.
in_list() {
	local w=$1 x
	shift
	for x in "$@"; do [ "$x" = "$w" ] && return 0; done
	return 1
}

# need TOOL PACKAGE: the test cannot run without TOOL.
need() {
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "FATAL: $1 not found: install the Debian package $2 (scripts/deps.sh test)" >&2
		exit 1
	fi
}

# Debian's python3 (which has python3-yaml) before any other python3 on PATH.
PYTHON3=python3
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3

# yaml2json FILE: the YAML document as JSON on stdout; a syntax error or a duplicate key
# (which Docker Compose refuses, and PyYAML would silently resolve) fails with a message.
yaml2json() {
	"$PYTHON3" - "$1" <<'PY'
import json, sys
try:
    import yaml
except ImportError:
    sys.exit("python3-yaml is not installed (Debian package python3-yaml)")

class Strict(yaml.SafeLoader):
    pass

def mapping(loader, node, deep=False):
    seen = set()
    for k, _ in node.value:
        key = loader.construct_object(k, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), k.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)

Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
try:
    with open(sys.argv[1]) as f:
        doc = yaml.load(f, Loader=Strict)
except (OSError, yaml.YAMLError) as e:
    sys.exit("%s: %s" % (sys.argv[1], e))
json.dump(doc, sys.stdout)
PY
}

# names FILE: the names of a one-a-line list file, comments and blank lines dropped.
names() {
	sed -e 's/#.*//' -e 's/[[:space:]]//g' "$1" | grep -v '^$'
}

# self_check WHAT EXPECTED CMD...: CMD (a check on a broken copy) must fail and print
# EXPECTED; the check's own failure count is discarded.
self_check() {
	local what=$1 expected=$2 out rc
	shift 2
	# shellcheck disable=SC2030,SC2031 # the broken copy's failures stay in the subshell
	out=$(fails=0 && "$@" 2>&1 && [ "$fails" -eq 0 ])
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "FAIL: self-check '$what': the check passed on a broken copy"
		# shellcheck disable=SC2031
		fails=$((fails + 1))
	elif ! grep -qF -- "$expected" <<<"$out"; then
		echo "FAIL: self-check '$what': failed without saying '$expected'; it said:"
		sed 's/^/    /' <<<"$out"
		fails=$((fails + 1))
	else
		echo "ok self-check: $what"
	fi
}

# finish NAME: the test's verdict.
finish() {
	if [ "$fails" -ne 0 ]; then
		echo "$1: $fails failure(s)"
		exit 1
	fi
	echo "$1: all checks passed"
	exit 0
}

# The environment names the container files may use: every setting in the table of
# docs/configuration.md (which tests/docs/check_config_docs.sh keeps in step with the code),
# plus the process environment the image sets for Chromium and cdpilot (HOME, TMPDIR).
KNOWN_ENV=$TMP/known-env.txt
{
	grep -oE '^\| `[A-Z][A-Z0-9_]*`' "$REPO/docs/configuration.md" | tr -d '|` '
	echo HOME
	echo TMPDIR
} >"$KNOWN_ENV"
[ "$(wc -l <"$KNOWN_ENV")" -gt 20 ] || { echo "FATAL: no settings table in docs/configuration.md" >&2; exit 1; }
