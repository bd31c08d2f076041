#!/usr/bin/env python3
"""bench/adaptive_tool.py: the helper of bench/run-adaptive.sh (standard library only).

  targets --base URL --n N --interval S --out FILE
      N adaptive livescore targets a0..: /live/match/(i % 500 + 1)?k=i (a match page may
      be read by several targets: each learns and reads the endpoint on its own).
  wait-learned --status URL --n N --timeout S
      Polls /status until N targets read their endpoint; prints one JSON line: how long
      it took, how many were learned, not learned or still learning, page loads per second.
  window --pid PID --metrics URL --status URL --sink FILE --seconds S --n N --results FILE
      Measures S seconds: the daemon's CPU and its descendants' (Chromium), endpoint reads
      per second (cdpilot_adaptive_reads_total), the read and verified ages of /metrics
      (class live, p95 and max, sampled every 5 s), and at the end the age of what the
      sink holds (per target, now - the scraped_at of its last snapshot: p50, p95, max),
      the health grade, checks and load average. Appends one JSON line to FILE and prints
      it.
  table --results FILE
      The results as a table.
"""
import argparse
import http.client
import json
import os
import sys
import time
import urllib.request

CLK = os.sysconf("SC_CLK_TCK")


def get(url, timeout=30, tries=3):
    """GET url; a reply cut short or refused is asked again (tries in all), then raised."""
    for i in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.read().decode()
        except (http.client.IncompleteRead, OSError) as e:
            if i == tries - 1:
                raise
            print("adaptive_tool: GET %s: %s; again" % (url, e), file=sys.stderr)
            time.sleep(1)


def cmd_targets(a):
    t = []
    for i in range(a.n):
        t.append({"id": "a%d" % i, "adapter": "livescore", "class": "live",
                  "url": "%s/live/match/%d?k=%d" % (a.base, i % 500 + 1, i),
                  "interval_seconds": a.interval, "adaptive": True})
    with open(a.out, "w") as f:
        json.dump({"targets": t}, f)


def status_counts(url):
    st = json.loads(get(url))
    c = {"endpoint": 0, "learned": 0, "not_learned": 0, "learning": 0, "dropped": 0}
    reasons = {}
    for t in st.get("targets", []):
        ad = t.get("adaptive") or {}
        s = ad.get("state", "")
        c[s] = c.get(s, 0) + 1
        if t.get("read_mode") == "endpoint":
            c["endpoint"] += 1
        if s in ("not_learned", "dropped") and ad.get("reason"):
            reasons[ad["reason"][:120]] = reasons.get(ad["reason"][:120], 0) + 1
    return c, reasons, st


def cmd_wait_learned(a):
    t0 = time.time()
    c = {}
    reasons = {}
    try:
        before = status_counts(a.status)[0]["endpoint"]
    except OSError:
        before = 0
    while time.time() - t0 < a.timeout:
        try:
            c, reasons, _ = status_counts(a.status)
        except OSError:
            time.sleep(1)
            continue
        if c["endpoint"] >= a.n or c["learning"] + c["endpoint"] == 0 and c["not_learned"] >= a.n:
            break
        time.sleep(1)
    el = time.time() - t0
    out = {"phase": "learn", "n": a.n, "seconds": round(el, 1), "endpoint": c.get("endpoint", 0),
           "not_learned": c.get("not_learned", 0), "learning": c.get("learning", 0),
           "learned_per_s": round((c.get("endpoint", 0) - before) / el, 1) if el > 0 else None,
           "new": c.get("endpoint", 0) - before,
           "reasons": dict(list(reasons.items())[:3])}
    print(json.dumps(out))


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def children(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
            ppid = int(s[s.rindex(")") + 2:].split()[1])
            kids.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError):
            pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            out.append(k)
            todo.append(k)
    return out


def tree_ticks(pid):
    tot = 0
    for p in children(pid):
        try:
            tot += cpu_ticks(p)
        except OSError:
            pass
    return tot


def metric(text, name, labels=None):
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, val = line.rpartition(" ")
        if labels is None and head == name:
            return float(val)
        if labels and head.startswith(name + "{") and all(
                '%s="%s"' % kv in head for kv in labels.items()):
            return float(val)
    return None


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def sink_ages(path, now_ms):
    last = {}
    with open(path, "rb") as f:
        try:
            f.seek(-64 * 1024 * 1024, os.SEEK_END)
            f.readline()
        except OSError:
            f.seek(0)
        for line in f:
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if "data" in j and "scraped_at" in j:
                last[j["target"]] = j["scraped_at"]
    ages = []
    for s in last.values():
        t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
        ms = (time.mktime(t) - time.timezone) * 1000 + int(s[20:23])
        ages.append((now_ms - ms) / 1000.0)
    return ages


def cmd_window(a):
    m0 = get(a.metrics)
    r0 = metric(m0, "cdpilot_adaptive_reads_total", {"how": "endpoint"}) or 0
    p0 = metric(m0, "cdpilot_adaptive_reads_total", {"how": "page"}) or 0
    d0, c0, t0 = cpu_ticks(a.pid), tree_ticks(a.pid), time.time()
    read_p95, read_max, ver_p95, ver_max = [], [], [], []
    while time.time() - t0 < a.seconds:
        time.sleep(5)
        m = get(a.metrics)
        for arr, name, stat in ((read_p95, "cdpilot_read_age_seconds", "p95"),
                                (read_max, "cdpilot_read_age_seconds", "max"),
                                (ver_p95, "cdpilot_data_age_seconds", "p95"),
                                (ver_max, "cdpilot_data_age_seconds", "max")):
            v = metric(m, name, {"class": "live", "stat": stat})
            if v is not None:
                arr.append(v)
    el = time.time() - t0
    m1 = get(a.metrics)
    d1, c1 = cpu_ticks(a.pid), tree_ticks(a.pid)
    r1 = metric(m1, "cdpilot_adaptive_reads_total", {"how": "endpoint"}) or 0
    p1 = metric(m1, "cdpilot_adaptive_reads_total", {"how": "page"}) or 0
    ages = sink_ages(a.sink, time.time() * 1000)
    c, _, st = status_counts(a.status)
    out = {"phase": "window", "n": a.n, "interval": a.interval, "seconds": round(el, 1),
           "endpoint_reads_per_s": round((r1 - r0) / el, 1),
           "page_reads_per_s": round((p1 - p0) / el, 1),
           "want_reads_per_s": round(a.n / a.interval, 1),
           "cdpilot_cpu_pct": round(100.0 * (d1 - d0) / CLK / el, 1),
           "chromium_cpu_pct": round(100.0 * (c1 - c0) / CLK / el, 1),
           "read_age_p95_max_s": [max(read_p95) if read_p95 else None,
                                  max(read_max) if read_max else None],
           "verified_age_p95_max_s": [max(ver_p95) if ver_p95 else None,
                                      max(ver_max) if ver_max else None],
           "sink_age_s": {"targets": len(ages), "p50": pct(ages, 50), "p95": pct(ages, 95),
                          "max": pct(ages, 100)},
           "endpoints": c["endpoint"], "overdue_checks": sum(
               1 for t in st.get("targets", []) if (t.get("adaptive") or {}).get("check_overdue")),
           "checks": {k: metric(m1, "cdpilot_adaptive_checks_total", {"result": k})
                      for k in ("agreed", "differed", "failed")},
           "dropped": metric(m1, "cdpilot_adaptive_events_total", {"event": "dropped"}),
           "health": (st.get("health") or {}).get("grade"),
           "loadavg": open("/proc/loadavg").read().split()[:3]}
    with open(a.results, "a") as f:
        f.write(json.dumps(out) + "\n")
    print(json.dumps(out))


def cmd_table(a):
    rows = [json.loads(l) for l in open(a.results) if l.strip()]
    print("%6s %6s %8s %8s %7s %7s %16s %16s %18s %10s %s" % (
        "phase", "N", "reads/s", "want/s", "cd CPU", "chr CPU", "read age p95/max",
        "verified p95/max", "sink age p50/p95/max", "health", "load"))
    for r in rows:
        if r["phase"] == "learn":
            print("%6s %6d %d reading their endpoint, %d learned in %.0f s (%s/s), not learned"
                  " %d, still learning %d" % (
                      "learn", r["n"], r["endpoint"], r.get("new", r["endpoint"]), r["seconds"],
                      r["learned_per_s"], r["not_learned"], r["learning"]))
            continue
        s = r["sink_age_s"]
        print("%6s %6s %8.1f %8.1f %6.1f%% %6.1f%% %16s %16s %18s %10s %s" % (
            "window", "%d@%gs" % (r["n"], r.get("interval", 5)), r["endpoint_reads_per_s"], r["want_reads_per_s"],
            r["cdpilot_cpu_pct"], r["chromium_cpu_pct"],
            "%s/%s" % tuple(r["read_age_p95_max_s"]), "%s/%s" % tuple(r["verified_age_p95_max_s"]),
            "%.1f/%.1f/%.1f" % (s["p50"] or -1, s["p95"] or -1, s["max"] or -1), r["health"],
            " ".join(r["loadavg"])))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("targets")
    t.add_argument("--base", required=True)
    t.add_argument("--n", type=int, required=True)
    t.add_argument("--interval", type=float, default=5)
    t.add_argument("--out", required=True)
    w = sub.add_parser("wait-learned")
    w.add_argument("--status", required=True)
    w.add_argument("--n", type=int, required=True)
    w.add_argument("--timeout", type=float, default=300)
    m = sub.add_parser("window")
    for k in ("--metrics", "--status", "--sink", "--results"):
        m.add_argument(k, required=True)
    m.add_argument("--pid", type=int, required=True)
    m.add_argument("--seconds", type=float, default=30)
    m.add_argument("--n", type=int, required=True)
    m.add_argument("--interval", type=float, default=5)
    tb = sub.add_parser("table")
    tb.add_argument("--results", required=True)
    a = p.parse_args()
    {"targets": cmd_targets, "wait-learned": cmd_wait_learned, "window": cmd_window,
     "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
