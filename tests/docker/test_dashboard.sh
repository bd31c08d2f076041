#!/usr/bin/env bash
# test_dashboard.sh: docker/grafana-dashboard.json parses, has 6 to 8 panels each with a
# query, and every metric its queries name is in docker/metric-names.txt (histogram
# series by their base name). Every PromQL expression passes promtool (as a recording
# rule, with Grafana's $__rate_interval and variables filled in). Then broken copies fail.
# shellcheck source=tests/docker/lib.sh
source "$(dirname "$0")/lib.sh"

need jq jq
need promtool prometheus

# Metrics with _bucket/_sum/_count series.
HISTOGRAMS=(cdpilot_task_duration_seconds)
# PromQL words that are not metric names.
KEYWORDS=" by without on ignoring group_left group_right bool and or unless offset inf nan le "

# check_dashboard JSON METRIC_NAMES
check_dashboard() {
	local file=$1 list=$2 out n name base known
	if ! out=$(jq -e 'type == "object"' "$file" 2>&1); then
		fail "dashboard does not parse: $out"
		return 0
	fi
	known=" $(names "$list" | tr '\n' ' ') "
	for name in "${HISTOGRAMS[@]}"; do
		[[ $known == *" $name "* ]] || fail "histogram $name is not in metric-names.txt"
	done
	n=$(jq '[.panels[]? | select(.type != "row")] | length' "$file")
	if [ "$n" -lt 6 ] || [ "$n" -gt 8 ]; then
		fail "dashboard has $n panels, expected 6 to 8"
	fi
	jq -r '.panels[]? | select(.type != "row") | select((.targets // []) | map(.expr // "") | any(. != "") | not) | .title' \
		"$file" | while IFS= read -r name; do echo "FAIL: panel '$name' has no query"; done |
		grep . && fail "panels without a query"

	# Every cdpilot_* word in any string (queries, variables), then every identifier of
	# every expression that is not a function, a keyword or a label.
	while IFS= read -r name; do
		base=$name
		for h in "${HISTOGRAMS[@]}"; do
			case "$name" in "${h}_bucket" | "${h}_sum" | "${h}_count") base=$h ;; esac
		done
		[[ $known == *" $base "* ]] || fail "metric $name is not in metric-names.txt"
	done < <(
		jq -r '.. | strings' "$file" | grep -oE '\bcdpilot_[a-z0-9_]+' | sort -u
		jq -r '.. | objects | .expr? // empty' "$file" |
			sed -E 's/"[^"]*"//g; s/\{[^}]*\}//g; s/\[[^]]*\]//g' |
			sed -E 's/\b(by|without|on|ignoring|group_left|group_right)[[:space:]]*\([^)]*\)//g' |
			grep -oP '\b[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()' | sort -u |
			while read -r w; do [[ $KEYWORDS == *" $w "* ]] || echo "$w"; done
	)

	# PromQL syntax: promtool checks the expressions as recording rules.
	{
		echo "groups:"
		echo "  - name: dashboard"
		echo "    rules:"
		jq -r '.. | objects | .expr? // empty' "$file" | awk '{
			gsub(/\$__rate_interval|\$__interval|\$__range/, "5m")
			gsub(/\$[A-Za-z_]+/, "x")
			gsub(/\\/, "\\\\"); gsub(/"/, "\\\"")
			printf "      - record: dashboard:expr%d\n        expr: \"%s\"\n", NR, $0 }'
	} >"$TMP/rules.yml"
	if ! out=$(promtool check rules "$TMP/rules.yml" 2>&1); then
		fail "promtool check rules (the dashboard's queries): $out"
	fi
	return 0
}

D=$DOCKER_DIR/grafana-dashboard.json
M=$DOCKER_DIR/metric-names.txt

echo "== the real dashboard"
check_dashboard "$D" "$M"
[ "$fails" -eq 0 ] && echo "ok: grafana-dashboard.json"
[ "$(names "$M" | sort | uniq -d)" = "" ] || fail "metric-names.txt lists a name twice"
names "$M" | grep -vxE 'cdpilot_[a-z0-9_]+' | while read -r w; do
	echo "FAIL: metric-names.txt: '$w' is not a cdpilot_ metric name"
done | grep . && fail "bad names in metric-names.txt"

echo "== broken copies must fail"
broken() { # broken NAME SED-SCRIPT [FILE]
	sed -e "$2" "${3:-$D}" >"$TMP/$1"
	cmp -s "${3:-$D}" "$TMP/$1" && echo "FATAL: sed '$2' changed nothing" >&2 && exit 1
	echo "$TMP/$1"
}
self_check "unknown cdpilot metric" "metric cdpilot_tasks_done_total is not in" \
	check_dashboard "$(broken m1 's/cdpilot_tasks_total/cdpilot_tasks_done_total/')" "$M"
self_check "foreign metric" "metric process_resident_memory_bytes is not in" \
	check_dashboard "$(broken m2 's/"cdpilot_self_rss_bytes{job=~\\"$job\\"}"/"process_resident_memory_bytes"/')" "$M"
self_check "histogram suffix on a counter" "metric cdpilot_tasks_total_count is not in" \
	check_dashboard "$(broken m3 's/cdpilot_tasks_total/cdpilot_tasks_total_count/')" "$M"
self_check "name dropped from the list" "metric cdpilot_watch_pages is not in" \
	check_dashboard "$D" "$(broken list '/^cdpilot_watch_pages$/d' "$M")"
self_check "not JSON" "does not parse" check_dashboard "$(broken j '1s/{/[/')" "$M"
self_check "PromQL syntax error" "promtool check rules" \
	check_dashboard "$(broken q 's/sum by (outcome) (rate(/sum by (outcome) (rate((/')" "$M"
jq 'del(.panels[0:3])' "$D" >"$TMP/few.json"
self_check "too few panels" "dashboard has 5 panels" check_dashboard "$TMP/few.json" "$M"
jq '.panels[1].targets = []' "$D" >"$TMP/noq.json"
self_check "panel without query" "panel 'Tasks per second by outcome' has no query" \
	check_dashboard "$TMP/noq.json" "$M"

finish test_dashboard
