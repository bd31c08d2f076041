#!/usr/bin/env bash
# bench/run-redis-targets.sh: how long the Redis targets hash holds the daemon's loop when
# many of its entries change at once. Starts a real redis-server on a temporary socket and
# `cdpilot run` against it (one target in its file), waits for /healthz, then writes N
# targets into {prefix}:targets in one pipeline (every entry new), and later rewrites all N
# (every entry changed). Throughout, a client asks /healthz every 5 ms (a connection
# each): a request that comes while the loop is held is answered when it is free
# again, so the slowest answer bounds the longest hold (plus the machine's own scheduling
# delay: compare with the idle figure). Prints, per phase, the slowest and the 99th
# percentile /healthz answer, and what the daemon's log says of the parse (off the loop)
# and the reconcile (on it).
#
# usage: bench/run-redis-targets.sh [N]     (default 20000)
#   BUILD_DIR (default build); the binary must be built (cmake --build build --target cdpilot)
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-20000}
[[ $n =~ ^[1-9][0-9]{0,5}$ ]] || { echo "run-redis-targets.sh: N '$n': expected 1..999999" >&2; exit 2; }
bin=${BUILD_DIR:-build}/daemon/cdpilot
[ -x "$bin" ] || bin=${BUILD_DIR:-build}/cdpilot
[ -x "$bin" ] || { echo "run-redis-targets.sh: no cdpilot binary under ${BUILD_DIR:-build}" >&2; exit 2; }

dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ "${KEEP:-0}" = 1 ] && echo "kept $dir" >&2 || rm -rf "$dir"
}
trap cleanup EXIT

redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --dir "$dir" \
	--save '' --appendonly no >"$dir/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$dir/redis.sock" ] && break; sleep 0.1; done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/targets.json" <<EOF
{"targets": [{"id": "file1", "adapter": "jsonapi", "url": "http://127.0.0.1:9/file1",
  "class": "completed", "fields": {"a": {"pointer": "/a"}}}]}
EOF
REDIS_URL="unix://$dir/redis.sock" METRICS_ADDR="127.0.0.1:$port" LOG_LEVEL=debug \
	"$bin" run --targets "$dir/targets.json" >"$dir/daemon.out" 2>"$dir/daemon.log" &
pids+=($!)

python3 - "$dir/redis.sock" "$port" "$n" <<'EOF'
import socket, sys, threading, time

sock_path, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def healthz(_=None):
    """One GET /healthz on a fresh connection, read to its end."""
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while c.recv(65536):
        pass
    c.close()

def connect():
    for _ in range(600):
        try:
            healthz()
            return None
        except OSError:
            time.sleep(0.1)
    sys.exit("the daemon's /healthz never answered")

def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

def write_hash(gen):
    r = socket.socket(socket.AF_UNIX)
    r.connect(sock_path)
    cmds = [resp("HSET", "cdpilot:targets", "r%d" % i,
                 '{"adapter":"jsonapi","url":"http://127.0.0.1:9/r/%d","class":"completed",'
                 '"interval_seconds":%d,"fields":{"home":{"pointer":"/home"}}}' % (i, 3600 + gen))
            for i in range(n)]
    cmds.append(resp("INCR", "cdpilot:targets:version"))
    r.sendall(b"".join(cmds))
    got = 0
    buf = b""
    while got < n + 1:
        buf += r.recv(1 << 20)
        got = buf.count(b"\r\n")
    r.close()

def probe(conn, seconds, action=None):
    lat = []
    if action:
        threading.Thread(target=action).start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        healthz(conn)
        lat.append((time.monotonic() - t) * 1000)
        time.sleep(0.005)
    lat.sort()
    return lat[-1], lat[int(len(lat) * 0.99)], len(lat)

conn = connect()
time.sleep(2)
for name, act in (("idle", None), ("%d new" % n, lambda: write_hash(0)),
                  ("%d changed" % n, lambda: write_hash(1))):
    worst, p99, count = probe(conn, 12, act)
    print("%-14s /healthz slowest %7.1f ms, p99 %6.1f ms (%d asks)" % (name, worst, p99, count))
EOF
echo "the daemon's log on the Redis targets:"
grep -E "Redis targets|targets hash" "$dir/daemon.log" | grep -v "bad entries" | tail -6 || true
