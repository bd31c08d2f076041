#!/usr/bin/env python3
"""bench/share_tool.py: the measuring side of bench/run-share.sh (which starts redis-server,
the fixture and the cdpilot instances; this reads them from OUTSIDE cdpilot).

  share_tool.py targets --base URL --n N --out FILE
      N jsonapi targets s0000.. (class live) on the fixture's /json, each its own query.
  share_tool.py level --sock PATH --prefix P --n N --interval S --seconds S --lease S
                      --instances LABEL:PID:PORT,... [--kill LABEL] [--request-log FILE]
                      --out FILE.jsonl [--sample S] [--warmup S]
      One level: waits until every target has a `latest`, then WARMUP s more; measures
      SECONDS s (fresh fraction every SAMPLE s; Redis INFO cpu and commandstats, the
      instances' /proc CPU, scrapes); then, with --kill, SIGKILLs that instance and times
      the takeover of the targets its `owned` set held. Appends one JSON line to FILE,
      prints one line of summary.
  share_tool.py idle --sock PATH [--seconds 5]
      Redis CPU seconds per second of an idle server (its own timers), taken out of the
      levels' Redis CPU by --idle-cpu.
  share_tool.py report FILE.jsonl
      The table of the levels in FILE.

Standard library only: a small RESP client over the unix socket, urllib for /metrics.
"""
import argparse
import json
import math
import os
import signal
import socket
import statistics
import sys
import time
import urllib.request
from datetime import datetime

# Commands this tool itself sends during a window: subtracted from Redis's figures.
PROBE_CMDS = ("mget", "info")


class Redis:
    """Just enough RESP2 for pipelined commands and their replies."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.s.recv(max(1 << 20, n + 2 - len(self.buf)))
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("redis: unexpected reply %r" % line[:40])

    @staticmethod
    def _encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def pipe(self, *cmds):
        self.s.sendall(b"".join(self._encode(c) for c in cmds))
        return [self._reply() for _ in cmds]

    def call(self, *args):
        return self.pipe(args)[0]


def info(r):
    """INFO cpu + commandstats: (cpu seconds, {command: (calls, usec)})."""
    text = r.call("INFO", "all").decode()
    cpu, cmds = 0.0, {}
    for line in text.splitlines():
        if line.startswith(("used_cpu_sys:", "used_cpu_user:")):
            cpu += float(line.split(":", 1)[1])
        elif line.startswith("cmdstat_"):
            name, rest = line[len("cmdstat_"):].split(":", 1)
            kv = dict(p.split("=", 1) for p in rest.split(","))
            cmds[name] = (int(kv["calls"]), int(kv["usec"]))
    return cpu, cmds


def proc_cpu(pid):
    """utime + stime of one process, in seconds (0 once it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tasks_total(port):
    """Sum of cdpilot_tasks_total on one instance's /metrics (None if it does not answer)."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as res:
            text = res.read().decode()
    except OSError:
        return None
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith("cdpilot_tasks_total{"))


def scraped_ms(raw):
    """scraped_at of a `latest` value in Unix ms, None if absent."""
    if raw is None:
        return None
    try:
        at = json.loads(raw)["scraped_at"]
        return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000
    except (ValueError, KeyError, TypeError):
        return None


def latest(r, prefix, ids):
    return [scraped_ms(v) for v in r.call("MGET", *["%s:latest:%s" % (prefix, t) for t in ids])]


def log_count(path, t0, t1):
    """Requests in the fixture's request log ("<unix ms> <path?query>") from t0 to t1 (ms)."""
    if not path or not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    n = 0
    with open(path, "rb") as f:
        for line in f:
            try:
                ms = int(line.split(b" ", 1)[0])
            except ValueError:
                continue
            n += t0 <= ms < t1
    return n


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


def takeover(r, a, victim, pid):
    """SIGKILL the victim; seconds until every target its owned set held is fresh again."""
    keys = r.call("KEYS", "%s:owned:%s#*" % (a.prefix, victim))
    held = sorted({t.decode() for k in keys for t in r.call("SMEMBERS", k)})
    out = {"victim": victim, "owned_keys": len(keys), "held": len(held)}
    if not held:
        return out
    kill_ms = time.time() * 1000
    os.kill(pid, signal.SIGKILL)
    limit = a.lease + 6 * a.interval + 30
    back = {}
    while len(back) < len(held) and time.time() * 1000 - kill_ms < limit * 1000:
        time.sleep(0.25)
        rest = [t for t in held if t not in back]
        for t, ms in zip(rest, latest(r, a.prefix, rest)):
            if ms is not None and ms > kill_ms:
                back[t] = (ms - kill_ms) / 1000
    out["back"] = len(back)
    out["limit_s"] = limit
    if back:
        out["takeover_p50_s"] = round(statistics.median(back.values()), 2)
        out["takeover_max_s"] = round(max(back.values()), 2)
    return out


def level(a):
    insts = []
    for spec in a.instances.split(","):
        label, pid, port = spec.split(":")
        insts.append((label, int(pid), int(port)))
    ids = ["s%04d" % i for i in range(a.n)]
    r = Redis(a.sock)
    res = {"instances": len(insts), "targets": a.n, "interval_s": a.interval,
           "lease_s": a.lease, "seconds": a.seconds}

    # Warm-up: every target written once, then the shares settle.
    deadline = time.time() + max(60, a.lease * 4)
    while time.time() < deadline:
        if all(ms is not None for ms in latest(r, a.prefix, ids)):
            break
        time.sleep(1)
    else:
        res["warmup_error"] = "not every target had a latest after the warm-up"
    time.sleep(a.warmup)

    cpu0, cmd0 = info(r)
    pcpu0 = sum(proc_cpu(p) for _, p, _ in insts)
    tasks0 = [tasks_total(port) for _, _, port in insts]
    t0 = time.time() * 1000
    # The INFO at t0 is in the delta (Redis counts a command after it ran), the one at t1 not.
    fresh, probes = [], {"mget": 0, "info": 1}
    # A whole number of intervals: the instances scrape in waves, one per interval.
    window = math.ceil(a.seconds / a.interval) * a.interval
    res["seconds"] = window
    while time.time() * 1000 - t0 < window * 1000:
        now = time.time() * 1000
        got = latest(r, a.prefix, ids)
        probes["mget"] += 1
        fresh.append(sum(1 for ms in got if ms is not None and now - ms <= 1.5 * a.interval * 1000)
                     / len(ids))
        time.sleep(max(0, a.sample - (time.time() * 1000 - now) / 1000))
    t1 = time.time() * 1000
    cpu1, cmd1 = info(r)
    pcpu1 = sum(proc_cpu(p) for _, p, _ in insts)
    tasks1 = [tasks_total(port) for _, _, port in insts]
    span = (t1 - t0) / 1000

    scrapes = log_count(a.request_log, t0, t1)
    res["scrapes_from"] = "fixture request log"
    if scrapes is None:
        res["scrapes_from"] = "cdpilot_tasks_total (no fixture request log)"
        scrapes = sum(b - a_ for a_, b in zip(tasks0, tasks1) if a_ is not None and b is not None)
    delta = {c: (cmd1.get(c, (0, 0))[0] - cmd0.get(c, (0, 0))[0],
                 cmd1.get(c, (0, 0))[1] - cmd0.get(c, (0, 0))[1]) for c in cmd1}
    probe_usec = sum(delta.get(c, (0, 0))[1] for c in PROBE_CMDS)
    calls = sum(v[0] for c, v in delta.items()) - sum(probes.values())
    evals = sum(delta.get(c, (0, 0))[0] for c in ("eval", "evalsha", "eval_ro", "evalsha_ro"))
    # Less what an idle redis-server spends (serverCron, measured before the first level):
    # a fixed cost, not one per scrape.
    idle = a.idle_cpu * span
    redis_cpu = max(0.0, cpu1 - cpu0 - probe_usec / 1e6 - idle)
    res.update({
        "scrapes": int(scrapes), "scrapes_per_s": round(scrapes / span, 1),
        "expected_per_s": round(a.n / a.interval, 1),
        "fresh_p50": percentile(fresh, 0.5), "fresh_min": min(fresh) if fresh else None,
        "samples": len(fresh),
        "redis_cpu_s": round(redis_cpu, 3), "probe_usec": probe_usec,
        "redis_idle_cpu_s": round(idle, 3), "redis_idle_ms_per_s": round(a.idle_cpu * 1000, 2),
        "commands": {c: v[0] for c, v in sorted(delta.items()) if v[0] and c not in PROBE_CMDS},
        "cdpilot_cpu_s": round(pcpu1 - pcpu0, 2),
    })
    if scrapes:
        res["redis_us_per_scrape"] = round(redis_cpu * 1e6 / scrapes, 1)
        res["cmds_per_scrape"] = round(calls / scrapes, 2)
        res["evals_per_scrape"] = round(evals / scrapes, 2)
        res["cdpilot_ms_per_scrape"] = round((pcpu1 - pcpu0) * 1000 / scrapes, 3)
        if redis_cpu > 0:
            res["one_core_scrapes_per_s"] = round(scrapes / redis_cpu)
    if a.kill:
        pid = next(p for l, p, _ in insts if l == a.kill)
        res["takeover"] = takeover(r, a, a.kill, pid)
    with open("/proc/loadavg") as f:
        res["loadavg"] = " ".join(f.read().split()[:3])
    with open(a.out, "a") as f:
        f.write(json.dumps(res) + "\n")
    to = res.get("takeover", {})
    print("   %s scrapes/s, fresh p50 %s min %s, Redis %s us and %s commands per scrape%s"
          % (res["scrapes_per_s"], fmt(res["fresh_p50"], "%.3f"), fmt(res["fresh_min"], "%.3f"),
             fmt(res.get("redis_us_per_scrape")), fmt(res.get("cmds_per_scrape")),
             ", takeover of %d targets: %s s" % (to["held"], fmt(to.get("takeover_max_s")))
             if to else ""), flush=True)


def fmt(v, spec="%s"):
    return "-" if v is None else spec % v


def report(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    cols = ["inst", "targets", "scrapes/s", "fresh p50", "fresh min", "Redis us/scrape",
            "cmds/scrape", "evals/scrape", "cdpilot ms/scrape", "takeover max (p50) +past lease s",
            "1 Redis core: scrapes/s", "load avg"]
    lines = []
    for x in rows:
        to = x.get("takeover")
        if to is None:
            tk = "-"
        elif "takeover_max_s" not in to:
            tk = "none held" if not to.get("held") else "not in %ss" % to["limit_s"]
        else:
            tk = "%.1f (%.1f) +%.1f" % (to["takeover_max_s"], to["takeover_p50_s"],
                                       to["takeover_max_s"] - x["lease_s"])
            if to["back"] < to["held"]:
                tk += " %d/%d back" % (to["back"], to["held"])
        lines.append([str(x["instances"]), str(x["targets"]),
                      "%s/%s" % (x["scrapes_per_s"], x["expected_per_s"]),
                      fmt(x["fresh_p50"], "%.3f"), fmt(x["fresh_min"], "%.3f"),
                      fmt(x.get("redis_us_per_scrape")), fmt(x.get("cmds_per_scrape")),
                      fmt(x.get("evals_per_scrape")), fmt(x.get("cdpilot_ms_per_scrape")),
                      tk, fmt(x.get("one_core_scrapes_per_s")), x["loadavg"]])
    width = [max(len(c), *(len(l[i]) for l in lines)) for i, c in enumerate(cols)]
    print(" | ".join(c.rjust(w) for c, w in zip(cols, width)))
    print("-|-".join("-" * w for w in width))
    for l in lines:
        print(" | ".join(c.rjust(w) for c, w in zip(l, width)))
    if rows:
        x = rows[0]
        print("interval %ss, SCHEDULE_LEASE_SECONDS=%s, %ss measured per level; scrapes from %s;"
              % (x["interval_s"], x["lease_s"], x["seconds"], x["scrapes_from"]))
        print("Redis CPU less the probe's commands and an idle server's %.2f ms/s"
              % x.get("redis_idle_ms_per_s", 0))
    for x in rows:
        extra = []
        if x.get("warmup_error"):
            extra.append(x["warmup_error"])
        to = x.get("takeover")
        if to:
            extra.append("killed %s holding %d targets" % (to["victim"], to["held"]))
        extra.append("Redis commands: " + ", ".join("%s %d" % kv for kv in x["commands"].items()))
        print("  %d instance(s): %s" % (x["instances"], "; ".join(extra)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("targets")
    t.add_argument("--base", required=True)
    t.add_argument("--n", type=int, required=True)
    t.add_argument("--out", required=True)
    lv = sub.add_parser("level")
    lv.add_argument("--sock", required=True)
    lv.add_argument("--prefix", default="cdpilot")
    lv.add_argument("--n", type=int, required=True)
    lv.add_argument("--interval", type=float, default=5)
    lv.add_argument("--seconds", type=float, default=60)
    lv.add_argument("--lease", type=float, default=15)
    lv.add_argument("--instances", required=True)
    lv.add_argument("--kill")
    lv.add_argument("--request-log")
    lv.add_argument("--sample", type=float, default=3)
    lv.add_argument("--warmup", type=float, default=10)
    lv.add_argument("--out", required=True, help="JSON lines file the level is appended to")
    lv.add_argument("--idle-cpu", type=float, default=0,
                    help="Redis CPU seconds per second when idle (share_tool.py idle)")
    il = sub.add_parser("idle")
    il.add_argument("--sock", required=True)
    il.add_argument("--seconds", type=float, default=5)
    rp = sub.add_parser("report")
    rp.add_argument("file")
    a = p.parse_args()
    if a.cmd == "targets":
        items = [{"id": "s%04d" % i, "adapter": "jsonapi", "class": "live",
                  "url": "%s/json?t=%d" % (a.base, i), "fields": {"n": {"pointer": "/n"}}}
                 for i in range(a.n)]
        with open(a.out, "w") as f:
            json.dump({"targets": items}, f)
    elif a.cmd == "level":
        level(a)
    elif a.cmd == "idle":
        r = Redis(a.sock)
        c0 = info(r)[0]
        time.sleep(a.seconds)
        print("%.6f" % max(0.0, (info(r)[0] - c0) / a.seconds))
    else:
        report(a.file)


if __name__ == "__main__":
    sys.exit(main())
