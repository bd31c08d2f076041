#!/usr/bin/env bash
# check_config_docs.sh [ROOT]: the settings documentation is complete and true. Three lists
# of names must agree:
#   read   the environment variables the C code reads (ROOT/{cdp,pool,scheduler,adapters,
#          watchdog,daemon,util,store}): string literals passed to a call whose name
#          contains "env" (getenv, env_uint, sched__env_seconds...), and every literal that
#          is a whole SCREAMING_SNAKE_CASE name (tables of names such as the scheduler's
#          interval variables); daemon/config.c, the table itself, is not counted here;
#   table  the rows of daemon/config.c's settings table;
#   docs   the rows of the table in docs/configuration.md, plus the "Process environment"
#          list there (variables read but not settings: PATH, TMPDIR).
# read == docs (table rows + process environment), table == docs table rows, and for each
# row the flag, the default and the range are the same text in both (backticks aside).
# Without ROOT: checks the repository, then runs the same check on doctored copies (a
# variable read but not documented, a documented one nobody reads, a row missing from the
# code table, a default that differs) and fails unless each of them is caught.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PYTHON3=python3
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3
command -v "$PYTHON3" >/dev/null || { echo "FATAL: python3 not found" >&2; exit 1; }

# check ROOT: prints one "FAIL ..." line per problem; exit status 1 if any.
check() {
	local root=$1
	"$PYTHON3" - "$root" <<'PY'
import os, re, sys
root = sys.argv[1]
dirs = ["cdp", "pool", "scheduler", "adapters", "watchdog", "daemon", "util", "store"]
# Literals that look like variable names but are not read from the environment.
NOT_ENV = set()
fails = []

read = {}
call = re.compile(r'\b[A-Za-z_0-9]*env[A-Za-z_0-9]*\s*\(([^;{]*)')
lit = re.compile(r'"([A-Z][A-Z0-9_]*)"')
snake = re.compile(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"')
for d in dirs:
    top = os.path.join(root, d)
    for dp, _, files in os.walk(top):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(dp, f)
            rel = os.path.relpath(path, root)
            if rel == os.path.join("daemon", "config.c"):
                continue
            src = open(path, encoding="utf-8", errors="replace").read()
            src = re.sub(r'/\*.*?\*/', lambda m: "\n" * m.group(0).count("\n"), src, flags=re.S)
            for n, line in enumerate(src.split("\n"), 1):
                names = set()
                for m in call.finditer(line):
                    names.update(lit.findall(m.group(1)))
                names.update(snake.findall(line))
                for name in names - NOT_ENV:
                    read.setdefault(name, "%s:%d" % (rel, n))

cfg = os.path.join(root, "daemon", "config.c")
table = {}
row = re.compile(r'^\s*\{\s*"([A-Z][A-Z0-9_]*)",\s*"([^"]*)",\s*"([^"]*)",\s*"([^"]*)",\s*"([^"]*)",')
for line in open(cfg, encoding="utf-8"):
    m = row.match(line)
    if m:
        name, flag, group, default, rng = m.groups()
        if name in table:
            fails.append("daemon/config.c: %s has two rows" % name)
        if default.startswith("(") and default.endswith(")"):
            default = default[1:-1]
        table[name] = (flag, default, rng)
if not table:
    fails.append("daemon/config.c: no settings rows found (has the row format changed?)")

doc = os.path.join(root, "docs", "configuration.md")
docs, process = {}, set()
section = None
drow = re.compile(r'^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|(.*)\|\s*$')
for line in open(doc, encoding="utf-8"):
    if line.startswith("## "):
        section = line[3:].strip()
        continue
    m = drow.match(line)
    if m and section == "Settings":
        cells = [c.strip().replace("`", "") for c in m.group(2).split("|")]
        if len(cells) != 4:
            fails.append("docs/configuration.md: row %s has %d columns, expected 5"
                         % (m.group(1), len(cells) + 1))
            continue
        if m.group(1) in docs:
            fails.append("docs/configuration.md: %s has two rows" % m.group(1))
        docs[m.group(1)] = tuple(cells[:3])
    m = re.match(r'^- `([A-Z][A-Z0-9_]*)`:', line)
    if m and section == "Process environment":
        process.add(m.group(1))
if not docs:
    fails.append("docs/configuration.md: no rows found in the Settings table")

for name in sorted(set(read) - set(docs) - process):
    fails.append("%s reads %s, which docs/configuration.md does not document"
                 % (read[name], name))
for name in sorted((set(docs) | process) - set(read)):
    fails.append("docs/configuration.md documents %s, which no code reads" % name)
for name in sorted(set(docs) - set(table)):
    fails.append("docs/configuration.md documents %s, which daemon/config.c's table lacks"
                 % name)
for name in sorted(set(table) - set(docs)):
    fails.append("daemon/config.c's table has %s, which docs/configuration.md lacks" % name)
for name in sorted(set(table) & process):
    fails.append("%s is both a setting and process environment in docs/configuration.md" % name)
for name in sorted(set(table) & set(docs)):
    for what, a, b in zip(("flag", "default", "range"), table[name], docs[name]):
        if a != b:
            fails.append("%s: %s differs: daemon/config.c says '%s', docs/configuration.md '%s'"
                         % (name, what, a, b))
for f in fails:
    print("FAIL " + f)
print("checked %d names read, %d table rows, %d documented rows" % (len(read), len(table), len(docs)))
sys.exit(1 if fails else 0)
PY
}

if [ $# -ge 1 ]; then
	check "$1"
	exit $?
fi

fails=0
echo "== the repository"
check "$REPO" || fails=$((fails + 1))

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cdpilot-docscheck.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# copy: a fresh copy of the checked files in $TMP/c.
copy() {
	rm -rf "$TMP/c"
	mkdir -p "$TMP/c"
	for d in cdp pool scheduler adapters watchdog daemon util store docs; do
		[ -d "$REPO/$d" ] && cp -r "$REPO/$d" "$TMP/c/"
	done
}

# expect_fail WHAT PATTERN: the check of the doctored copy must fail saying PATTERN.
expect_fail() {
	local out
	out=$(check "$TMP/c")
	if [ $? -eq 0 ] || ! grep -q -- "$2" <<<"$out"; then
		echo "FAIL self-check ($1): the check did not report '$2'; it said:"
		echo "$out"
		fails=$((fails + 1))
	else
		echo "ok: self-check ($1) caught: $(grep -m1 -- "$2" <<<"$out")"
	fi
}

echo "== self-checks on doctored copies"
copy
cat >>"$TMP/c/util/log.c" <<'C'
static const char *doctored(void) { return getenv("DOCTORED_SETTING"); }
C
expect_fail "a variable read but not documented" "reads DOCTORED_SETTING"

copy
cat >>"$TMP/c/scheduler/sched.c" <<'C'
static const char *const doctored_vars[] = { "DOCTORED_TABLE_VAR" };
C
expect_fail "a name in a table of names" "reads DOCTORED_TABLE_VAR"

copy
sed -i 's/getenv("OUTPUT")/getenv("OUTPUT_RENAMED")/g' "$TMP/c/daemon/run_opts.c"
expect_fail "a documented variable nobody reads" "documents OUTPUT, which no code reads"

copy
sed -i '/^\t{ "WATCH_CAP",/d' "$TMP/c/daemon/config.c"
expect_fail "a row missing from the code table" "WATCH_CAP, which daemon/config.c's table lacks"

copy
sed -i '/^| `VIEWPORT` /d' "$TMP/c/docs/configuration.md"
expect_fail "a row missing from the docs" "reads VIEWPORT, which docs/configuration.md does not"

copy
sed -i 's/^| `CONCURRENCY_CAP` | `--concurrency-cap` | `8` |/| `CONCURRENCY_CAP` | `--concurrency-cap` | `16` |/' \
	"$TMP/c/docs/configuration.md"
expect_fail "a default that differs" "CONCURRENCY_CAP: default differs"

copy
sed -i '/^- `TMPDIR`:/d' "$TMP/c/docs/configuration.md"
expect_fail "process environment not listed" "reads TMPDIR"

if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all checks passed"
