#!/usr/bin/env bash
# test_compose.sh: docker/docker-compose.yml and docker/prometheus.yml, without Docker.
# The compose file parses (no duplicate keys); it names only images that exist: a build
# whose context and Dockerfile are in the repository, or an allow-listed official image
# with a tag; every environment key (also commented ones) is a setting of docs/configuration.md; the
# settings the issue asks for are there (shm_size, pids_limit above PID_THRESHOLD, a
# memory limit, METRICS_ADDR on 0.0.0.0, redis with a healthcheck, the targets file
# mounted read-only, prometheus under the "monitoring" profile); every bind-mount source
# exists. prometheus.yml passes promtool, scrapes the cdpilot service's metrics port
# every 15 s, and each of its rule_files is mounted beside it in the prometheus service. Then each check is run on a broken copy and must fail.
# shellcheck source=tests/docker/lib.sh
source "$(dirname "$0")/lib.sh"

need jq jq
need promtool prometheus

# Official images the compose file may pull (repository names, without tag).
ALLOWED_IMAGES=(redis prom/prometheus)

# The compose checks that need only the parsed document, as one jq program (one process
# per check run keeps the test fast). Prints one line per finding: "FAIL message",
# "BUILD service context dockerfile" or "MOUNT source" for the shell to check on disk.
# $known: known env names; $commented: env-like keys in comments; $allowed: images.
# shellcheck disable=SC2016 # a jq program, not shell
COMPOSE_JQ='
def fail(m): "FAIL " + m;
def envmap: if type == "array" then map(capture("^(?<k>[^=]*)=?(?<v>.*)$") | {(.k): .v}) | add // {}
            else with_entries(.value |= tostring) end;
if (type != "object") or ((.services | type) != "object") then fail("compose: no services mapping")
else
  . as $doc | .services as $s | ($s.cdpilot.environment // {} | envmap) as $env |
  (keys[] | select(test("^(version|services|networks|volumes|configs|secrets|x-.*)$") | not) |
     fail("compose: top-level key \u0027\(.)\u0027 is refused by Compose v1 (docker-compose 1.29, Debian 12)")),
  (["redis", "cdpilot", "prometheus"][] | . as $n | select($s | has($n) | not) |
     fail("compose: service \u0027\(.)\u0027 is missing")),
  ($s | to_entries[] | .key as $n | .value |
    if has("build") then
      (.build | if type == "string" then {context: .} else . end) as $b |
      "BUILD \($n) \($b.context // ".") \($b.dockerfile // "Dockerfile")"
    elif (.image // "") == "" then fail("service \($n): neither image nor build")
    else .image as $img |
      ($img | sub("[:@].*$"; "") | sub("^docker\\.io/"; "") | sub("^library/"; "")) as $repo |
      ($img | capture("(?<t>[:@].*)$").t // "") as $tag |
      if ($allowed | index($repo) | not) then
        fail("service \($n): image \u0027\($img)\u0027 is not an allowed official image (\($allowed | join(" ")))")
      elif $tag == "" or $tag == ":latest" then
        fail("service \($n): image \u0027\($img)\u0027 needs a fixed tag, not latest")
      else empty end
    end),
  ((([$s[] | .environment // {} | envmap | keys[]]) + $commented) | unique[] |
     select(. as $k | $known | index($k) | not) |
     fail("compose: environment variable \(.) is not a setting in docs/configuration.md")),
  ($env.METRICS_ADDR // "" | select(. != "0.0.0.0:9464") |
     fail("cdpilot: METRICS_ADDR is \u0027\(.)\u0027, expected 0.0.0.0:9464")),
  ($env.REDIS_URL // "" | (capture("^redis://(?<h>[^:/@]+)").h // null) as $h |
     if $h == null then fail("cdpilot: REDIS_URL is \u0027\(.)\u0027, expected redis://SERVICE:6379/0")
     elif ($s | has($h) | not) then fail("cdpilot: REDIS_URL \u0027\(.)\u0027 names no service of the compose file")
     else empty end),
  ($s.cdpilot | select(has("shm_size") | not) |
     fail("cdpilot: no shm_size (Chromium needs more than Docker\u0027s 64 MB /dev/shm)")),
  ($s.cdpilot | select((.mem_limit // .deploy.resources.limits.memory // null) == null) |
     fail("cdpilot: no memory limit")),
  ($s.cdpilot | (.pids_limit // .deploy.resources.limits.pids // 0) as $p |
     ($env.PID_THRESHOLD // "200" | tonumber) as $t |
     if $p <= 0 then fail("cdpilot: no pids_limit")
     elif $p <= $t then fail("cdpilot: pids_limit \($p) is not above PID_THRESHOLD \($t)")
     else empty end),
  (select($s.cdpilot.depends_on.redis.condition != "service_healthy") |
     fail("cdpilot: does not wait for redis to be healthy")),
  (select(($s.redis.healthcheck.test // null) == null) | fail("redis: no healthcheck")),
  (select($s.prometheus.profiles // [] | index("monitoring") | not) |
     fail("prometheus: not under the \u0027monitoring\u0027 profile")),
  (select($s.cdpilot.volumes // [] | map(
       if type == "string" then test(":/etc/cdpilot/targets:ro$")
       else (.target == "/etc/cdpilot/targets" and .read_only == true) end) | any | not) |
     fail("cdpilot: the targets directory is not mounted read-only at /etc/cdpilot/targets")),
  (select($s.cdpilot.volumes // [] | map(
       if type == "string" then test(":/etc/cdpilot/targets/")
       else (.target // "" | startswith("/etc/cdpilot/targets/")) end) | any) |
     fail("cdpilot: a single file is mounted in /etc/cdpilot/targets/; a file replaced on the host (a rename over it) is never seen through a file mount: mount the directory")),
  ($s[] | .volumes // [] | .[] |
     (if type == "string" then (split(":") | if length > 1 then .[0] else empty end)
      else (.source // empty) end) as $src |
     if ($src | test("^(\\.|/)")) then "MOUNT \($src)"
     elif ($doc.volumes // {} | has($src)) then empty
     else fail("compose: volume \u0027\($src)\u0027 is not declared under volumes:") end)
end'

# check_compose COMPOSE BASE KNOWN_ENV: BASE is the directory relative paths start from.
check_compose() {
	local file=$1 base=$2 known=$3 j out kind a b c
	if ! j=$(yaml2json "$file" 2>&1); then
		fail "compose does not parse: $j"
		return 0
	fi
	if ! out=$(jq -r --argjson allowed "$(printf '%s\n' "${ALLOWED_IMAGES[@]}" | jq -R . | jq -s .)" \
		--argjson known "$(names "$known" | jq -R . | jq -s .)" \
		--argjson commented "$(sed -nE 's/^[[:space:]]*#[[:space:]]*([A-Z][A-Z0-9_]+):[[:space:]].*/\1/p' "$file" | jq -R . | jq -s .)" \
		"$COMPOSE_JQ" <<<"$j" 2>&1); then
		fail "compose checks: jq: $out"
		return 0
	fi
	while read -r kind a b c; do
		case "$kind" in
		FAIL) fail "$a $b $c" ;;
		BUILD)
			if [ ! -d "$base/$b" ]; then
				fail "service $a: build context '$b' does not exist (from $base)"
			elif [ ! -f "$base/$b/$c" ]; then
				fail "service $a: Dockerfile '$c' does not exist in context '$b'"
			fi
			;;
		MOUNT)
			[[ $a == /* ]] || a=$base/$a
			[ -e "$a" ] || fail "compose: bind-mount source $a does not exist"
			;;
		esac
	done <<<"$out"
	return 0
}

# check_compose_cli COMPOSE: each Compose installed here accepts the file (`config -q`
# reads it as `up` would, with the .env next to it). Compose v1 is Debian 12's
# docker-compose; v2 is the `docker compose` plugin, when there is one. Without either,
# nothing is checked here, and in CI (CI set) that is a failure.
check_compose_cli() {
	local file=$1 dir out ran=0
	dir=$(dirname "$file")
	if command -v docker-compose >/dev/null 2>&1; then
		ran=1
		out=$(cd "$dir" && docker-compose -f "$(basename "$file")" config -q 2>&1) ||
			fail "docker-compose (v1) refuses $(basename "$file"): $out"
	fi
	if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
		ran=1
		out=$(cd "$dir" && docker compose -f "$(basename "$file")" config -q 2>&1) ||
			fail "docker compose (v2) refuses $(basename "$file"): $out"
	fi
	if [ $ran = 0 ]; then
		case "${CI:-}" in
		'' | 0 | false) echo "note: no Compose installed (package docker-compose): not run through Compose" ;;
		*) fail "no Compose installed (package docker-compose), and CI is set" ;;
		esac
	fi
	return 0
}

# check_prometheus PROMETHEUS_YML COMPOSE: promtool accepts it, and it scrapes the
# compose file's cdpilot service on METRICS_ADDR's port every 15 s.
check_prometheus() {
	local file=$1 compose=$2 j c port out
	if ! out=$(promtool check config "$file" 2>&1); then
		fail "promtool check config $file: $out"
		return 0
	fi
	j=$(yaml2json "$file") || { fail "$file does not parse"; return 0; }
	c=$(yaml2json "$compose") || { fail "$compose does not parse"; return 0; }
	port=$(jq -r '.services.cdpilot.environment.METRICS_ADDR // "" | sub(".*:"; "")' <<<"$c")
	jq -e --arg t "cdpilot:$port" '[.scrape_configs[]? | select(.static_configs[]?.targets[]? == $t)] | length > 0' \
		<<<"$j" >/dev/null || fail "prometheus: no scrape config targets cdpilot:$port"
	# Every rule file (relative to prometheus.yml) is mounted beside it in the container.
	local rf
	while read -r rf; do
		[ -n "$rf" ] || continue
		jq -e --arg m "./$rf:/etc/prometheus/$rf:ro" '.services.prometheus.volumes // [] | index($m)' \
			<<<"$c" >/dev/null || fail "prometheus: rule file $rf is not mounted at /etc/prometheus/$rf"
	done < <(jq -r '.rule_files[]? // empty' <<<"$j")
	jq -e --arg t "cdpilot:$port" '(.global.scrape_interval // "1m") as $g |
			[.scrape_configs[]? | select(.static_configs[]?.targets[]? == $t) |
			 (.scrape_interval // $g)] | all(. == "15s")' <<<"$j" >/dev/null ||
		fail "prometheus: cdpilot:$port is not scraped every 15s"
	return 0
}

echo "== the real files"
check_compose "$DOCKER_DIR/docker-compose.yml" "$DOCKER_DIR" "$KNOWN_ENV"
check_compose_cli "$DOCKER_DIR/docker-compose.yml"
grep -qx 'COMPOSE_PROJECT_NAME=cdpilot' "$DOCKER_DIR/.env" ||
	fail "docker/.env does not set COMPOSE_PROJECT_NAME=cdpilot (the project name for v1 and v2)"
check_prometheus "$DOCKER_DIR/prometheus.yml" "$DOCKER_DIR/docker-compose.yml"
[ "$fails" -eq 0 ] && echo "ok: docker-compose.yml and prometheus.yml"

echo "== broken copies must fail"
C=$DOCKER_DIR/docker-compose.yml
K=$KNOWN_ENV
broken() { # broken NAME SED-SCRIPT: a copy of the compose file with SED-SCRIPT applied
	sed -e "$2" "$C" >"$TMP/$1.yml"
	cmp -s "$C" "$TMP/$1.yml" && echo "FATAL: sed '$2' changed nothing" >&2 && exit 1
	echo "$TMP/$1.yml"
}
self_check "unknown env var" "environment variable BOGUS_SETTING is not a setting" \
	check_compose "$(broken env 's/^\( *\)LOG_LEVEL: info/&\n\1BOGUS_SETTING: "1"/')" "$DOCKER_DIR" "$K"
self_check "unknown env var in a comment" "environment variable BROWSER_RSS_LIMT_MB" \
	check_compose "$(broken cenv 's/# BROWSER_RSS_LIMIT_MB:/# BROWSER_RSS_LIMT_MB:/')" "$DOCKER_DIR" "$K"
self_check "image not allowed" "image 'evilcorp/redis:7' is not an allowed" \
	check_compose "$(broken img 's|image: redis:7-bookworm|image: evilcorp/redis:7|')" "$DOCKER_DIR" "$K"
self_check "untagged image" "needs a fixed tag" \
	check_compose "$(broken tag 's|image: redis:7-bookworm|image: redis|')" "$DOCKER_DIR" "$K"
self_check "missing build context" "build context '../nowhere' does not exist" \
	check_compose "$(broken ctx 's|context: \.\.$|context: ../nowhere|')" "$DOCKER_DIR" "$K"
self_check "missing Dockerfile" "Dockerfile 'docker/Dockerfile.gone' does not exist" \
	check_compose "$(broken df 's|dockerfile: docker/Dockerfile|dockerfile: docker/Dockerfile.gone|')" "$DOCKER_DIR" "$K"
self_check "duplicate key" "duplicate key 'LOG_LEVEL'" \
	check_compose "$(broken dup 's/^\( *\)LOG_FORMAT: json/\1LOG_LEVEL: debug/')" "$DOCKER_DIR" "$K"
self_check "not YAML" "does not parse" \
	check_compose "$(broken syntax 's/^services:/services: [/')" "$DOCKER_DIR" "$K"
self_check "loopback METRICS_ADDR" "METRICS_ADDR is '127.0.0.1:9464'" \
	check_compose "$(broken addr 's/METRICS_ADDR: 0.0.0.0:9464/METRICS_ADDR: 127.0.0.1:9464/')" "$DOCKER_DIR" "$K"
self_check "no shm_size" "no shm_size" \
	check_compose "$(broken shm '/^ *shm_size:/d')" "$DOCKER_DIR" "$K"
self_check "pids_limit below PID_THRESHOLD" "pids_limit 150 is not above PID_THRESHOLD 200" \
	check_compose "$(broken pids 's/pids_limit: 512/pids_limit: 150/')" "$DOCKER_DIR" "$K"
self_check "no memory limit" "no memory limit" \
	check_compose "$(broken mem '/^ *mem_limit:/d')" "$DOCKER_DIR" "$K"
self_check "targets mounted read-write" "not mounted read-only" \
	check_compose "$(broken rw 's|/etc/cdpilot/targets:ro|/etc/cdpilot/targets|')" "$DOCKER_DIR" "$K"
self_check "targets file mounted alone" "a single file is mounted in /etc/cdpilot/targets/" \
	check_compose "$(broken onefile 's|- ./targets:/etc/cdpilot/targets:ro|- ./targets/targets.json:/etc/cdpilot/targets/targets.json:ro|')" "$DOCKER_DIR" "$K"
self_check "missing bind-mount source" "bind-mount source $DOCKER_DIR/./gone does not exist" \
	check_compose "$(broken src 's|- ./targets:|- ./gone:|')" "$DOCKER_DIR" "$K"
self_check "prometheus not in a profile" "not under the 'monitoring' profile" \
	check_compose "$(broken prof '/profiles: \["monitoring"\]/d')" "$DOCKER_DIR" "$K"
self_check "redis without healthcheck" "redis: no healthcheck" \
	check_compose "$(broken hc 's/^\(    \)healthcheck:/\1x-healthcheck:/')" "$DOCKER_DIR" "$K"
self_check "service missing" "service 'prometheus' is missing" \
	check_compose "$(broken nosvc 's/^  prometheus:/  prom:/')" "$DOCKER_DIR" "$K"
self_check "top-level name: (Compose v1 refuses it)" "top-level key 'name' is refused by Compose v1" \
	check_compose "$(broken name '1s/^/name: cdpilot\n/')" "$DOCKER_DIR" "$K"
if command -v docker-compose >/dev/null 2>&1; then
	sed '1s/^/name: cdpilot\n/' "$C" >"$DOCKER_DIR/.broken-$$.yml"
	self_check "docker-compose refuses a file" "docker-compose (v1) refuses" \
		check_compose_cli "$DOCKER_DIR/.broken-$$.yml"
	rm -f "$DOCKER_DIR/.broken-$$.yml"
fi
self_check "REDIS_URL naming no service" "names no service" \
	check_compose "$(broken url 's|redis://redis:6379/0|redis://cache:6379/0|')" "$DOCKER_DIR" "$K"

# rule_files are relative to the config: the broken copies get the real rules beside them.
cp "$DOCKER_DIR/alerts.yml" "$TMP/alerts.yml"
sed 's/cdpilot:9464/cdpilot:9999/' "$DOCKER_DIR/prometheus.yml" >"$TMP/p-target.yml"
self_check "prometheus scrapes the wrong port" "no scrape config targets cdpilot:9464" \
	check_prometheus "$TMP/p-target.yml" "$C"
sed 's/15s/30s/g' "$DOCKER_DIR/prometheus.yml" >"$TMP/p-int.yml"
self_check "prometheus interval" "is not scraped every 15s" check_prometheus "$TMP/p-int.yml" "$C"
self_check "rule file not mounted" "rule file alerts.yml is not mounted at /etc/prometheus/alerts.yml" \
	check_prometheus "$DOCKER_DIR/prometheus.yml" "$(broken rules '/alerts.yml:\/etc\/prometheus\/alerts.yml:ro/d')"
sed 's/scrape_configs:/scrape_confs:/' "$DOCKER_DIR/prometheus.yml" >"$TMP/p-bad.yml"
self_check "prometheus config refused by promtool" "promtool check config" \
	check_prometheus "$TMP/p-bad.yml" "$C"

finish test_compose
