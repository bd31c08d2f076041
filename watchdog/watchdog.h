/*
 * watchdog: periodic checks of cdpilot's own process tree on the loop. Every interval it
 * scans /proc from getpid() (wd_proc.h), kills orphans, reaps zombies that are nobody
 * else's, and tells the daemon, through callbacks, when the tree has too many processes,
 * when a browser's tree uses too much memory, and when the cgroup is close to its pids
 * limit. Knows processes, not pages: it never calls the pool; the daemon wires the
 * callbacks to pool_request_recycle() / pool_set_paused() and reads wd_get_stats() for
 * /metrics and /healthz.
 *
 * Who counts as what (each scan):
 * - Anchors: the browser main pids the daemon reports through browser_pids() (a browser
 *   being recycled or closed counts too, until its close is complete), and the daemon's
 *   own children: every pid of a live uv_process_t on the watchdog's loop (found with
 *   uv_walk(): the exec-wrapper that becomes Chromium is one from the moment uv_spawn()
 *   returns, before the pool reports it) plus every direct child for which
 *   is_own_child() returns non-zero (children made some other way, e.g. by fork()).
 * - A process is attributed to the nearest anchor among itself and its ancestors. A live
 *   process with no anchor is an orphan, except cdpilot itself and
 *   chrome_crashpad_handler processes while a browser is alive (a reported browser pid,
 *   or a Chromium main process under an own child): they leave Chromium's tree on purpose
 *   (own session, re-parented to cdpilot as a subreaper) and exit by themselves once their
 *   browser is gone.
 * - Orphans are killed only after being seen as orphans on consecutive scans for at least
 *   ORPHAN_GRACE_SECONDS (so at least two scans: a browser just launched, or a tree being
 *   closed by the pool, is never caught mid-way): SIGTERM, then SIGKILL ORPHAN_GRACE
 *   later if it is still alive. Before each signal (pid, starttime) is checked again, and
 *   the signal goes through a pidfd, so a reused pid is never hit. Each kill is logged
 *   (warn: pid, class, head of the command line) and counted.
 * - Zombies whose parent is cdpilot and that are not anchors are reaped by their own pid
 *   (waitpid(pid, WNOHANG)); cdpilot never calls waitpid(-1), which would steal libuv's
 *   children. Contract for the daemon: any child it starts other than with uv_spawn() on
 *   this loop must be declared through is_own_child(), or the watchdog may reap it.
 *
 * Guards (each scan, after the kills):
 * - pid_threshold: more than PID_THRESHOLD processes below cdpilot (zombies included) ->
 *   on_recycle(ud, "pid_threshold").
 * - rss_limit: one browser's tree (the browser and its descendants) over
 *   BROWSER_RSS_LIMIT_MB -> on_recycle(ud, "rss_limit").
 *   Both are debounced per reason: after firing, not again until none of the browser
 *   pids reported at that time is reported any more (the recycle completed), or until
 *   WD_RECYCLE_DEBOUNCE_SCANS scans have passed.
 * - pids pressure: cgroup pids.current >= PIDS_HEADROOM_PERCENT of pids.max ->
 *   on_pids_pressure(ud, 1, why) once; when it falls below (PIDS_HEADROOM_PERCENT - 5)%
 *   -> on_pids_pressure(ud, 0, why) once. Without a pids limit it never fires.
 *
 * Scans read /proc synchronously on the loop (procfs is in memory: about a millisecond
 * per hundred processes; wd_stats_t.last_scan_us says how long the last one took).
 *
 * Lifetime: wd_new -> wd_start -> ... -> wd_close(cb). Callbacks fire from the loop,
 * inside a scan: from the interval timer or from inside wd_scan_now(). They may call
 * wd_get_stats() and wd_close() (the rest of that scan then calls nothing), but not
 * wd_scan_now() (-EBUSY). Nothing fires after wd_close() is called, except closed_cb.
 */
#ifndef CDPILOT_WATCHDOG_WATCHDOG_H
#define CDPILOT_WATCHDOG_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "util/errlist.h"
#include "watchdog/wd_proc.h"

#define WD_RECYCLE_DEBOUNCE_SCANS 6

typedef struct wd wd_t;

typedef struct wd_opts {
	uint32_t interval_ms;           /* WATCHDOG_INTERVAL_SECONDS, 1..3600, default 10 */
	unsigned pid_threshold;         /* PID_THRESHOLD, 10..100000, default 200 */
	uint64_t browser_rss_limit;     /* BROWSER_RSS_LIMIT_MB (bytes here), 0 = none (default),
	                                   else 64..1048576 MiB */
	unsigned pids_headroom_percent; /* PIDS_HEADROOM_PERCENT, 50..99, default 80 */
	uint32_t orphan_grace_ms;       /* ORPHAN_GRACE_SECONDS, 1..600, default 5 */
	char proc_root[256];            /* "/proc" */
	char cgroup_root[256];          /* "/sys/fs/cgroup" */
	char self_cgroup[256];          /* "/proc/self/cgroup" */
} wd_opts_t;

typedef struct wd_callbacks {
	/* Writes up to max browser main pids (current, being launched, being recycled or
	 * closed) to out; returns how many. NULL: no browsers. */
	size_t (*browser_pids)(void *ud, pid_t *out, size_t max);
	/* Non-zero if pid (a direct child of cdpilot) is the daemon's own. May be NULL:
	 * children spawned with uv_spawn() on the loop are recognised without it. */
	int (*is_own_child)(void *ud, pid_t pid);
	/* reason: "pid_threshold" or "rss_limit" (static strings). May be NULL. */
	void (*on_recycle)(void *ud, const char *reason);
	/* active 1: stop new leases (why says e.g. "pids.current 820 >= 80% of pids.max
	 * 1000"); 0: pressure cleared. why is borrowed for the call. May be NULL. */
	void (*on_pids_pressure)(void *ud, int active, const char *why);
	void *ud;
} wd_callbacks_t;

enum wd_recycle_reason { WD_RECYCLE_PID_THRESHOLD = 0, WD_RECYCLE_RSS_LIMIT, WD_NRECYCLE };

typedef struct wd_stats {
	uint64_t scans;             /* completed scans */
	uint64_t last_scan_unix_ms; /* wall clock of the last scan; 0 before the first */
	uint64_t last_scan_us;      /* how long it took */
	wd_totals_t total;          /* processes below cdpilot (cdpilot excluded) */
	wd_totals_t by_class[WD_NCLASSES];
	uint64_t browser_rss_bytes;     /* all browser trees together */
	uint64_t browser_rss_max_bytes; /* the largest single browser tree */
	unsigned browsers;              /* browser pids reported and found alive */
	unsigned zombies;               /* in the last scan */
	unsigned orphans;               /* in the last scan, killed or not yet */
	uint64_t orphans_killed;        /* total orphans signalled (SIGTERM) */
	uint64_t orphans_sigkilled;     /* of which needed SIGKILL */
	uint64_t zombies_reaped;        /* total */
	uint64_t scan_errors;           /* total: failed scans, truncated scans, unreadable
	                                     entries */
	uint64_t recycles_requested[WD_NRECYCLE];
	int pids_pressure;       /* on_pids_pressure(1) in force */
	wd_cgroup_t cgroup;      /* as of the last scan */
	uint64_t self_rss_bytes; /* cdpilot itself */
	unsigned self_threads;
	unsigned self_fds; /* entries of /proc/self/fd */
} wd_stats_t;

/* Defaults (see wd_opts_t), then environment: every bad value is added to errs with its
 * name, its value and what was expected. Returns 0 or -EINVAL (the defaults stay in force
 * for the bad ones). */
void wd_opts_init(wd_opts_t *o);
int wd_opts_from_env(wd_opts_t *o, errlist_t *errs);

/* Makes the calling process a child subreaper (PR_SET_CHILD_SUBREAPER), so orphans of
 * its descendants are re-parented to it instead of to PID 1. Called by the daemon at
 * start, before the first browser. Returns 0 or -errno. */
int wd_make_subreaper(void);

/* opts and cbs are copied. Aborts on out of memory (daemon plumbing). Scans nothing until
 * wd_start(). */
wd_t *wd_new(uv_loop_t *loop, const wd_opts_t *opts, const wd_callbacks_t *cbs);

/* First scan on the next loop iteration, then every interval. 0, or -EALREADY. */
int wd_start(wd_t *wd);

/* Scans now (same work as a timed scan; the interval timer is not moved). Returns 0, the
 * scan's negative errno, -EBUSY from inside a watchdog callback, -ECANCELED after
 * wd_close(). */
int wd_scan_now(wd_t *wd);

/* Copies the counters (valid from any point; zeros before the first scan). */
void wd_get_stats(const wd_t *wd, wd_stats_t *out);

/* Stops everything; cb (may be NULL) fires from the loop once every handle is closed,
 * and wd is freed after it returns. Orphans already sent SIGTERM are not followed up. */
typedef void (*wd_closed_cb)(wd_t *wd, void *ud);
void wd_close(wd_t *wd, wd_closed_cb cb, void *ud);

#endif
