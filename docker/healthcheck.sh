#!/bin/sh
# healthcheck.sh: the image's HEALTHCHECK. Asks cdpilot's /healthz (200 while its loop
# answers) at the address of METRICS_ADDR (default 127.0.0.1:9464); a wildcard listen
# address (0.0.0.0, [::] or empty) is asked on loopback. Exit 0 healthy, 1 not.
# Tested by tests/docker/test_healthcheck.sh.
set -u

addr=${METRICS_ADDR:-127.0.0.1:9464}
port=${addr##*:}
host=${addr%:*}
case "$host" in
"" | 0.0.0.0 | "*") host=127.0.0.1 ;;
"[::]") host="[::1]" ;;
esac
case "$port" in
"" | *[!0-9]*)
	echo "healthcheck: METRICS_ADDR=\"$addr\": expected HOST:PORT" >&2
	exit 1
	;;
esac

curl -fsS -g -o /dev/null --max-time 4 \
	"http://$host:$port/healthz" || exit 1
