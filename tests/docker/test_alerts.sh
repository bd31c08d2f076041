#!/usr/bin/env bash
# test_alerts.sh: docker/alerts.yml, the alerting rules an operator loads as they are.
# promtool check rules accepts them; promtool test rules passes docker/alerts.test.yml; every
# rule has a severity (critical or warning), a for: duration, and a runbook_url naming a
# section of docs/operations.md that exists; every metric a rule or a test series names is
# in docker/metric-names.txt (or is Prometheus's own `up`); every test series carries the
# label keys docs/metrics.md gives its family (plus job and instance) with values /metrics
# writes; every rule has a test where it fires and one where it stays quiet; prometheus.yml
# loads the file. Then each check is run on a broken copy and must fail.
# shellcheck source=tests/docker/lib.sh
source "$(dirname "$0")/lib.sh"

need jq jq
need promtool prometheus

OPS=$REPO/docs/operations.md
METRICS_MD=$REPO/docs/metrics.md

# The anchors of docs/operations.md's headings, as GitHub makes them.
ANCHORS=$TMP/anchors.txt
sed -nE 's/^#{1,6} +//p' "$OPS" | tr 'A-Z' 'a-z' | sed -e 's/[^a-z0-9 _-]//g' -e 's/ /-/g' >"$ANCHORS"

# Label keys of each family, from the labels column of docs/metrics.md's table, as JSON.
LABELS_JSON=$(grep -E '^\| `cdpilot_[a-z0-9_]+` \|' "$METRICS_MD" |
	awk -F'|' '{ n = $2; l = $4; gsub(/[` ]/, "", n); gsub(/[` ]/, "", l); print n "\t" l }' |
	jq -R 'split("\t") | {(.[0]): (.[1] | if . == "" then [] else split(",") end)}' | jq -s 'add')
[ "$(jq length <<<"$LABELS_JSON")" -gt 40 ] || { echo "FATAL: no metrics table in $METRICS_MD" >&2; exit 1; }

# Label values /metrics writes (daemon/endpoints.c; docs/metrics.md lists them too).
VALUES_JSON='{
  "class": ["live", "imminent", "completed", "browser", "renderer", "gpu", "utility", "zygote", "crashpad", "other"],
  "stat": ["median", "p95", "max"],
  "grade": ["healthy", "degraded", "failing", "recovering"],
  "reason": ["uptime", "task_count", "requested", "stuck", "crash", "stall", "pid_threshold", "rss_limit", "pids_pressure"],
  "outcome": ["ok", "timeout", "browser_lost", "target_crashed", "failed"],
  "result": ["ok", "error", "refused_seq", "won", "held", "timeout", "agreed", "frozen", "failed"],
  "code": ["2xx", "3xx", "4xx", "5xx"]
}'

# check_rules RULES TESTS PROMETHEUS_YML: the checks above on these files (TESTS names the
# rules file as "alerts.yml", beside it).
check_rules() {
	local rules=$1 tests=$2 prom=$3 r t out known a
	if ! out=$(promtool check rules "$rules" 2>&1); then
		fail "promtool check rules $rules: $out"
		return 0
	fi
	if ! out=$(cd "$(dirname "$tests")" && promtool test rules "$(basename "$tests")" 2>&1); then
		fail "promtool test rules $tests: $(grep -v '^ *$' <<<"$out" | head -40)"
	fi
	r=$(yaml2json "$rules") || { fail "$rules does not parse"; return 0; }
	t=$(yaml2json "$tests") || { fail "$tests does not parse"; return 0; }
	known=$( (names "$DOCKER_DIR/metric-names.txt"; echo up) | jq -R . | jq -s .)

	# Per rule: severity, for, runbook.
	out=$(jq -r '.groups[].rules[] | select(.alert) |
		(if (.labels.severity // "") | IN("critical", "warning") | not
		 then "FAIL rule \(.alert): severity is \u0027\(.labels.severity // "")\u0027, expected critical or warning" else empty end),
		(if has("for") | not then "FAIL rule \(.alert): no for: duration" else empty end),
		(.annotations.runbook_url // "" |
		 if test("^docs/operations\\.md#[a-z0-9_-]+$") then "ANCHOR \(sub(".*#"; ""))"
		 else "FAIL rule runbook_url \u0027\(.)\u0027 is not docs/operations.md#SECTION" end)' <<<"$r")
	while read -r kind a; do
		case "$kind" in
		FAIL) fail "$a" ;;
		ANCHOR) grep -qxF "$a" "$ANCHORS" || fail "runbook_url: docs/operations.md has no section #$a" ;;
		esac
	done <<<"$out"

	# Metric names in the rules' expressions.
	for a in $(jq -r '.groups[].rules[].expr' <<<"$r" | grep -oE '\b(cdpilot_[a-z0-9_]+|up)\b' | sort -u); do
		jq -e --arg n "$a" 'index($n)' <<<"$known" >/dev/null ||
			fail "alerts.yml: metric $a is not in metric-names.txt"
	done

	# Test series: names, label keys, label values.
	jq -r '.tests[].input_series[].series' <<<"$t" | "$PYTHON3" -c '
import json, re, sys
labels, values, known = (json.loads(a) for a in sys.argv[1:4])
for s in sys.stdin:
    s = s.strip()
    m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}", s)
    if not m:
        print("FAIL series %s: expected NAME{LABELS}" % s); continue
    name, body = m.groups()
    base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in labels else name
    if base not in known:
        print("FAIL series %s: metric %s is not in metric-names.txt" % (s, name)); continue
    got = dict(re.findall(r"(\w+)=\"([^\"]*)\"", body))
    want = set(labels.get(base, [])) | {"job", "instance"}
    if name.endswith("_bucket"): want.add("le")
    if set(got) != want:
        print("FAIL series %s: labels %s, /metrics writes %s" % (s, sorted(got), sorted(want)))
    for k, v in got.items():
        if k in values and v not in values[k]:
            print("FAIL series %s: %s=\"%s\" is not a value /metrics writes" % (s, k, v))
' "$LABELS_JSON" "$VALUES_JSON" "$known" >"$TMP/series.out"
	while read -r _ a; do fail "$a"; done <"$TMP/series.out"

	# Every rule fires in a test and is quiet in one.
	for a in $(jq -r '.groups[].rules[] | .alert // empty' <<<"$r"); do
		jq -e --arg a "$a" '[.tests[].alert_rule_test[]? | select(.alertname == $a) |
			(.exp_alerts // []) | length > 0] | (index(true) != null) and (index(false) != null)' \
			<<<"$t" >/dev/null || fail "alerts.test.yml: rule $a lacks a firing or a quiet case"
	done

	jq -e --arg f "$(basename "$rules")" '.rule_files // [] | index($f)' <<<"$(yaml2json "$prom")" \
		>/dev/null || fail "prometheus.yml: rule_files does not list $(basename "$rules")"
	return 0
}

echo "== the real files"
check_rules "$DOCKER_DIR/alerts.yml" "$DOCKER_DIR/alerts.test.yml" "$DOCKER_DIR/prometheus.yml"
[ "$fails" -eq 0 ] && echo "ok: alerts.yml, alerts.test.yml"

echo "== broken copies must fail"
R=$DOCKER_DIR/alerts.yml
T=$DOCKER_DIR/alerts.test.yml
P=$DOCKER_DIR/prometheus.yml
# broken NAME FILE SED-SCRIPT: a directory NAME holding alerts.yml and alerts.test.yml, with
# SED-SCRIPT applied to FILE (one of them); prints the directory.
broken() {
	local d=$TMP/$1
	mkdir -p "$d"
	cp "$R" "$T" "$d/"
	sed -e "$3" "$2" >"$d/$(basename "$2")"
	cmp -s "$2" "$d/$(basename "$2")" && echo "FATAL: sed '$3' changed nothing" >&2 && exit 1
	echo "$d"
}
d=$(broken expr "$R" 's/cdpilot_zombies > 0/cdpilot_zombies > 5/')
self_check "a rule that does not fire in its test" "promtool test rules" \
	check_rules "$d/alerts.yml" "$d/alerts.test.yml" "$P"
d=$(broken syntax "$R" 's/cdpilot_zombies > 0/cdpilot_zombies >/')
self_check "a rule promtool refuses" "promtool check rules" \
	check_rules "$d/alerts.yml" "$d/alerts.test.yml" "$P"
d=$(broken name "$R" 's/cdpilot_zombies > 0/cdpilot_zombie_count > 0/')
self_check "a metric name /metrics does not write" "metric cdpilot_zombie_count is not in metric-names.txt" \
	check_rules "$d/alerts.yml" "$d/alerts.test.yml" "$P"
d=$(broken sev "$R" '0,/severity: warning/s//severity: page/')
self_check "a bad severity" "rule CdpilotProcessGrowth: severity is 'page'" \
	check_rules "$d/alerts.yml" "$d/alerts.test.yml" "$P"
d=$(broken for "$R" '0,/for: 15m/{/for: 15m/d}')
self_check "a rule without for:" "rule CdpilotProcessGrowth: no for: duration" \
	check_rules "$d/alerts.yml" "$d/alerts.test.yml" "$P"
d=$(broken anchor "$R" 's/operations.md#crash-loop/operations.md#crashes/')
self_check "a runbook to no section" "docs/operations.md has no section #crashes" \
	check_rules "$d/alerts.yml" "$d/alerts.test.yml" "$P"
d=$(broken series "$T" 's/cdpilot_zombies{job/cdpilot_zombie_count{job/')
self_check "a test series /metrics does not write" "metric cdpilot_zombie_count is not in metric-names.txt" \
	check_rules "$d/alerts.yml" "$d/alerts.test.yml" "$P"
d=$(broken label "$T" 's/class="renderer"}/class="renderer", pid="7"}/')
self_check "a test series with a label /metrics does not write" "labels ['class', 'instance', 'job', 'pid']" \
	check_rules "$d/alerts.yml" "$d/alerts.test.yml" "$P"
d=$(broken value "$T" 's/stat="p95"/stat="p99"/')
self_check "a test series with a label value /metrics does not write" 'stat="p99" is not a value' \
	check_rules "$d/alerts.yml" "$d/alerts.test.yml" "$P"
d=$(broken quiet "$T" '/- eval_time: 4m/{N;/CdpilotZombies/{N;d}}')
self_check "a rule without a quiet case" "rule CdpilotZombies lacks a firing or a quiet case" \
	check_rules "$d/alerts.yml" "$d/alerts.test.yml" "$P"
sed '/^rule_files:/,/alerts.yml/d' "$P" >"$TMP/prometheus.yml"
self_check "prometheus.yml without the rules" "rule_files does not list alerts.yml" \
	check_rules "$R" "$T" "$TMP/prometheus.yml"

finish test_alerts
