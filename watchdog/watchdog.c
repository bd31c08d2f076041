/*
 * watchdog: the loop part (see watchdog.h). One interval timer runs the scans; one
 * one-shot timer follows up SIGTERMed orphans with SIGKILL. The per-scan work is: scan,
 * anchor (browsers and own children), orphans, zombies, guards, statistics.
 */
#include "watchdog/watchdog.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/envnum.h"
#include "util/log.h"

#define WD_MAX_BROWSERS 64
#define WD_ORPHAN_TRACK_MAX 4096
#define HEAD_LEN 100 /* bytes of a command line in a log line */

/* An orphan followed across scans, named by (pid, starttime). */
typedef struct orphan {
	pid_t pid;
	uint64_t starttime;
	uint64_t first_seen_ms; /* first of the consecutive scans that saw it as an orphan */
	uint64_t seen_scan;     /* number of the last scan that saw it */
	uint64_t term_ms;       /* when SIGTERM was sent; 0: not yet */
	int killed;             /* SIGKILL sent */
	enum wd_class klass;
	char head[HEAD_LEN + 1];
} orphan_t;

typedef struct debounce {
	int armed;
	uint64_t scan_no;
	pid_t browsers[WD_MAX_BROWSERS];
	size_t nbrowsers;
} debounce_t;

struct wd {
	uv_loop_t *loop;
	wd_opts_t o;
	wd_callbacks_t cb;
	uv_timer_t scan_timer, kill_timer;
	int started, closing, in_scan, open_handles;
	wd_closed_cb closed_cb;
	void *closed_ud;

	wd_tree_t tree;
	wd_stats_t st;
	uint64_t scan_no;

	orphan_t *orphans;
	size_t norphans, orphans_cap;
	pid_t *anchors;
	size_t nanchors, anchors_cap;
	debounce_t deb[WD_NRECYCLE];
};

static const char *const recycle_names[WD_NRECYCLE] = { "pid_threshold", "rss_limit" };

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q) {
		log_error("watchdog", "out of memory (%zu bytes)", n);
		abort();
	}
	return q;
}

/* ---- options ---- */

void wd_opts_init(wd_opts_t *o)
{
	memset(o, 0, sizeof *o);
	o->interval_ms = 10 * 1000;
	o->pid_threshold = 200;
	o->browser_rss_limit = 0;
	o->pids_headroom_percent = 80;
	o->orphan_grace_ms = 5 * 1000;
	snprintf(o->proc_root, sizeof o->proc_root, "/proc");
	snprintf(o->cgroup_root, sizeof o->cgroup_root, "/sys/fs/cgroup");
	snprintf(o->self_cgroup, sizeof o->self_cgroup, "/proc/self/cgroup");
}

/* A whole number in [lo, hi] (or 0 with zero_ok) into *out (envnum.h): 1 if set and valid. */
static int env_num(const char *name, uint64_t lo, uint64_t hi, int zero_ok, uint64_t *out,
                   errlist_t *errs, int *rc)
{
	double d = 0;
	int r = envnum_get(errs, name, (double)lo, (double)hi,
	                   ENVNUM_WHOLE | (zero_ok ? ENVNUM_ZERO_OK : 0), NULL, &d);

	if (r < 0)
		*rc = -EINVAL;
	else if (r > 0)
		*out = (uint64_t)d;
	return r > 0;
}

int wd_opts_from_env(wd_opts_t *o, errlist_t *errs)
{
	uint64_t v;
	int rc = 0;

	if (env_num("WATCHDOG_INTERVAL_SECONDS", 1, 3600, 0, &v, errs, &rc))
		o->interval_ms = (uint32_t)(v * 1000);
	if (env_num("PID_THRESHOLD", 10, 100000, 0, &v, errs, &rc))
		o->pid_threshold = (unsigned)v;
	if (env_num("BROWSER_RSS_LIMIT_MB", 64, 1048576, 1, &v, errs, &rc))
		o->browser_rss_limit = v * 1024 * 1024;
	if (env_num("PIDS_HEADROOM_PERCENT", 50, 99, 0, &v, errs, &rc))
		o->pids_headroom_percent = (unsigned)v;
	if (env_num("ORPHAN_GRACE_SECONDS", 1, 600, 0, &v, errs, &rc))
		o->orphan_grace_ms = (uint32_t)(v * 1000);
	return rc;
}

int wd_make_subreaper(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
		return -errno;
	return 0;
}

/* ---- signals, with the identity checked ---- */

/*
 * Sends sig to the process (pid, starttime) if it is still that process and not a zombie.
 * The pidfd pins the process between the check and the signal. 0, or -ESRCH if it is
 * gone or is another process now, or -errno.
 */
static int signal_checked(const wd_t *wd, pid_t pid, uint64_t starttime, int sig)
{
	wd_stat_t st;
	int fd = pidfd_open(pid, 0), rc;

	if (fd < 0 && errno != ENOSYS)
		return errno == ESRCH ? -ESRCH : -errno;
	rc = wd_read_stat(wd->o.proc_root, pid, &st);
	if (rc == 0 && (st.starttime != starttime || st.state == 'Z' || st.state == 'X'))
		rc = -ESRCH;
	if (rc == -ENOENT)
		rc = -ESRCH;
	if (rc == 0) {
		if (fd >= 0)
			rc = pidfd_send_signal(fd, sig, NULL, 0) == 0 ? 0 : -errno;
		else
			rc = kill(pid, sig) == 0 ? 0 : -errno;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}


/* ---- SIGKILL follow-up ---- */

static void kill_timer_cb(uv_timer_t *t);

static void arm_kill_timer(wd_t *wd)
{
	uint64_t next = UINT64_MAX, now = now_ms();

	if (wd->closing)
		return;
	for (size_t i = 0; i < wd->norphans; i++) {
		const orphan_t *r = &wd->orphans[i];
		if (r->term_ms && !r->killed && r->term_ms + wd->o.orphan_grace_ms < next)
			next = r->term_ms + wd->o.orphan_grace_ms;
	}
	if (next == UINT64_MAX)
		uv_timer_stop(&wd->kill_timer);
	else
		uv_timer_start(&wd->kill_timer, kill_timer_cb, next > now ? next - now : 0, 0);
}

static void kill_timer_cb(uv_timer_t *t)
{
	wd_t *wd = t->data;
	uint64_t now = now_ms();

	for (size_t i = 0; i < wd->norphans; i++) {
		orphan_t *r = &wd->orphans[i];
		if (!r->term_ms || r->killed || now < r->term_ms + wd->o.orphan_grace_ms)
			continue;
		r->killed = 1;
		if (signal_checked(wd, r->pid, r->starttime, SIGKILL) == 0) {
			wd->st.orphans_sigkilled++;
			log_warn("watchdog",
			         "orphan pid %d (%s) alive %u ms after SIGTERM, sent SIGKILL: %s",
			         (int)r->pid, wd_class_name(r->klass),
			         (unsigned)wd->o.orphan_grace_ms, r->head);
		}
	}
	arm_kill_timer(wd);
}

/* ---- anchors ---- */

static void add_anchor(wd_t *wd, pid_t pid)
{
	for (size_t i = 0; i < wd->nanchors; i++)
		if (wd->anchors[i] == pid)
			return;
	if (wd->nanchors == wd->anchors_cap) {
		wd->anchors_cap = wd->anchors_cap ? wd->anchors_cap * 2 : 32;
		wd->anchors = xrealloc(wd->anchors, wd->anchors_cap * sizeof *wd->anchors);
	}
	wd->anchors[wd->nanchors++] = pid;
}

/* Live uv_process_t handles on the loop: children libuv spawned and will reap. */
static void walk_cb(uv_handle_t *h, void *arg)
{
	wd_t *wd = arg;
	if (h->type == UV_PROCESS && uv_is_active(h)) {
		int pid = uv_process_get_pid((uv_process_t *)h);
		if (pid > 0)
			add_anchor(wd, (pid_t)pid);
	}
}

/* Browser pids first (indexes 0..nbrowsers-1 of the anchors), then own children. */
static size_t collect_anchors(wd_t *wd)
{
	pid_t b[WD_MAX_BROWSERS];
	size_t nb = 0, nbrowsers;
	pid_t self = getpid();

	wd->nanchors = 0;
	if (wd->cb.browser_pids)
		nb = wd->cb.browser_pids(wd->cb.ud, b, WD_MAX_BROWSERS);
	if (nb > WD_MAX_BROWSERS)
		nb = WD_MAX_BROWSERS;
	for (size_t i = 0; i < nb; i++)
		if (b[i] > 0)
			add_anchor(wd, b[i]);
	nbrowsers = wd->nanchors;
	uv_walk(wd->loop, walk_cb, wd);
	for (size_t i = 0; i < wd->tree.nprocs; i++) {
		const wd_proc_t *p = &wd->tree.procs[i];
		if (p->parent != -1)
			break; /* breadth-first: the root's children come first */
		if (p->ppid == self && wd->cb.is_own_child &&
		    wd->cb.is_own_child(wd->cb.ud, p->pid))
			add_anchor(wd, p->pid);
	}
	return nbrowsers;
}

/* ---- orphans ---- */

static orphan_t *find_orphan(wd_t *wd, const wd_proc_t *p)
{
	for (size_t i = 0; i < wd->norphans; i++)
		if (wd->orphans[i].pid == p->pid && wd->orphans[i].starttime == p->starttime)
			return &wd->orphans[i];
	return NULL;
}

static void handle_orphan(wd_t *wd, const wd_proc_t *p, uint64_t now)
{
	orphan_t *r = find_orphan(wd, p);
	int rc;

	if (!r) {
		if (wd->norphans >= WD_ORPHAN_TRACK_MAX)
			return; /* followed once others are gone */
		if (wd->norphans == wd->orphans_cap) {
			wd->orphans_cap = wd->orphans_cap ? wd->orphans_cap * 2 : 16;
			wd->orphans = xrealloc(wd->orphans, wd->orphans_cap * sizeof *wd->orphans);
		}
		r = &wd->orphans[wd->norphans++];
		memset(r, 0, sizeof *r);
		r->pid = p->pid;
		r->starttime = p->starttime;
		r->first_seen_ms = now;
		r->seen_scan = wd->scan_no;
		r->klass = p->klass;
		snprintf(r->head, sizeof r->head, "%.*s", HEAD_LEN,
		         p->cmdline[0] ? p->cmdline : p->comm);
		log_debug("watchdog", "orphan pid %d (%s) seen: %s", (int)p->pid,
		          wd_class_name(p->klass), r->head);
		return;
	}
	if (r->seen_scan + 1 != wd->scan_no)
		r->first_seen_ms = now; /* not an orphan on the scan before: start again */
	r->seen_scan = wd->scan_no;
	if (r->term_ms || now - r->first_seen_ms < wd->o.orphan_grace_ms)
		return;
	rc = signal_checked(wd, r->pid, r->starttime, SIGTERM);
	if (rc == 0) {
		/* the grace before SIGKILL counts from the signal, not from the scan's start
		 * (`now`): a scan slowed by load took part of it */
		r->term_ms = now_ms();
		wd->st.orphans_killed++;
		log_warn("watchdog",
		         "killing orphan pid %d (%s), an orphan for %llu ms: SIGTERM: %s",
		         (int)r->pid, wd_class_name(r->klass),
		         (unsigned long long)(now - r->first_seen_ms), r->head);
	} else if (rc != -ESRCH) {
		log_warn("watchdog", "cannot signal orphan pid %d: %s", (int)r->pid, strerror(-rc));
		r->term_ms = now_ms(); /* do not retry every scan; SIGKILL after the grace */
	}
}

/* Forgets orphans this scan did not see (gone, reaped, or adopted by an anchor). */
static void prune_orphans(wd_t *wd)
{
	size_t o = 0;
	for (size_t i = 0; i < wd->norphans; i++)
		if (wd->orphans[i].seen_scan == wd->scan_no)
			wd->orphans[o++] = wd->orphans[i];
	wd->norphans = o;
}

static void reap(wd_t *wd, const wd_proc_t *p)
{
	int status = 0;
	pid_t r = waitpid(p->pid, &status, WNOHANG);

	if (r == p->pid) {
		wd->st.zombies_reaped++;
		log_debug("watchdog", "reaped zombie pid %d (%s)", (int)p->pid, p->comm);
	}
}

/* ---- guards ---- */

static int browser_listed(const pid_t *list, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == pid)
			return 1;
	return 0;
}

static void guard(wd_t *wd, enum wd_recycle_reason reason, int over, size_t nbrowsers,
                  const char *detail)
{
	debounce_t *d = &wd->deb[reason];

	if (d->armed) {
		int still = 0;
		for (size_t i = 0; i < d->nbrowsers; i++)
			still |= browser_listed(wd->anchors, nbrowsers, d->browsers[i]);
		if ((d->nbrowsers > 0 && !still) ||
		    wd->scan_no - d->scan_no >= WD_RECYCLE_DEBOUNCE_SCANS)
			d->armed = 0;
	}
	if (!over || d->armed || wd->closing)
		return;
	d->armed = 1;
	d->scan_no = wd->scan_no;
	d->nbrowsers = nbrowsers;
	memcpy(d->browsers, wd->anchors, nbrowsers * sizeof *wd->anchors);
	wd->st.recycles_requested[reason]++;
	log_warn("watchdog", "asking for a browser recycle (%s): %s", recycle_names[reason],
	         detail);
	if (wd->cb.on_recycle)
		wd->cb.on_recycle(wd->cb.ud, recycle_names[reason]);
}

static void pids_guard(wd_t *wd)
{
	const wd_cgroup_t *cg = &wd->st.cgroup;
	char why[160];
	uint64_t pct = wd->o.pids_headroom_percent;
	int limited = cg->has_pids && cg->pids_max != WD_UNLIMITED && cg->pids_max > 0;

	if (!wd->st.pids_pressure) {
		if (!limited || cg->pids_current * 100 < pct * cg->pids_max)
			return;
		snprintf(why, sizeof why, "pids.current %llu >= %u%% of pids.max %llu",
		         (unsigned long long)cg->pids_current, (unsigned)pct,
		         (unsigned long long)cg->pids_max);
		wd->st.pids_pressure = 1;
		log_warn("watchdog", "cgroup near its process limit: %s", why);
	} else {
		if (limited && cg->pids_current * 100 >= (pct - 5) * cg->pids_max)
			return;
		if (limited)
			snprintf(why, sizeof why, "pids.current %llu < %u%% of pids.max %llu",
			         (unsigned long long)cg->pids_current, (unsigned)(pct - 5),
			         (unsigned long long)cg->pids_max);
		else
			snprintf(why, sizeof why, "no pids limit any more");
		wd->st.pids_pressure = 0;
		log_info("watchdog", "cgroup process pressure cleared: %s", why);
	}
	if (wd->cb.on_pids_pressure && !wd->closing)
		wd->cb.on_pids_pressure(wd->cb.ud, wd->st.pids_pressure, why);
}

/* ---- the scan ---- */

static unsigned count_fds(const char *proc_root, pid_t pid)
{
	char path[300];
	unsigned n = 0;
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof path, "%s/%d/fd", proc_root, (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0; /* the directory's own fd */
}

static int is_zombie(const wd_proc_t *p)
{
	return p->state == 'Z' || p->state == 'X';
}

/* How many of the first nbrowsers anchors (the browsers reported) are alive in the tree. */
static unsigned count_live_browsers(const wd_t *wd, size_t nbrowsers)
{
	unsigned alive = 0;

	for (size_t k = 0; k < nbrowsers; k++) {
		int i = wd_tree_find(&wd->tree, wd->anchors[k]);
		if (i >= 0 && !is_zombie(&wd->tree.procs[i]))
			alive++;
	}
	return alive;
}

/* Crashpad handlers belong to any live browser: a reported one, or a Chromium main
 * process under an own child (launched, not reported yet). */
static int crashpad_owned(const wd_t *wd, unsigned browsers_alive)
{
	int ok = browsers_alive > 0;

	for (size_t i = 0; i < wd->tree.nprocs && !ok; i++) {
		const wd_proc_t *p = &wd->tree.procs[i];
		ok = p->anchor >= 0 && p->klass == WD_CLASS_BROWSER && !is_zombie(p);
	}
	return ok;
}

/* Walks the tree: adds each browser tree's memory into tree_rss, reaps own zombie
 * children and hands every other process outside a browser tree to the orphan
 * handling. */
static void sweep_tree(wd_t *wd, size_t nbrowsers, int crashpad_ok, pid_t self, uint64_t now,
                       uint64_t *tree_rss)
{
	wd->st.orphans = 0;
	for (size_t i = 0; i < wd->tree.nprocs; i++) {
		const wd_proc_t *p = &wd->tree.procs[i];
		if (p->anchor >= 0) {
			if ((size_t)p->anchor < nbrowsers)
				tree_rss[p->anchor] += p->rss_bytes;
			continue;
		}
		if (is_zombie(p)) {
			if (p->ppid == self)
				reap(wd, p);
			continue;
		}
		if (p->klass == WD_CLASS_CRASHPAD && crashpad_ok)
			continue;
		wd->st.orphans++;
		handle_orphan(wd, p, now);
	}
	prune_orphans(wd);
	arm_kill_timer(wd);
}

/* The statistics of this scan, before the guards, so their callbacks see it. */
static void record_scan(wd_t *wd, pid_t self, unsigned browsers_alive, uint64_t rss_sum,
                        uint64_t rss_max)
{
	struct timespec ts;

	wd->st.scans++;
	clock_gettime(CLOCK_REALTIME, &ts);
	wd->st.last_scan_unix_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	wd->st.total = wd->tree.total;
	memcpy(wd->st.by_class, wd->tree.by_class, sizeof wd->st.by_class);
	wd->st.zombies = wd->tree.zombies;
	wd->st.browsers = browsers_alive;
	wd->st.browser_rss_bytes = rss_sum;
	wd->st.browser_rss_max_bytes = rss_max;
	wd->st.self_rss_bytes = wd->tree.root_found ? wd->tree.root.rss_bytes : 0;
	wd->st.self_threads = wd->tree.root_found ? wd->tree.root.threads : 0;
	wd->st.self_fds = count_fds(wd->o.proc_root, self);
	if (wd_cgroup_read(wd->o.cgroup_root, wd->o.self_cgroup, &wd->st.cgroup) != 0)
		wd->st.scan_errors++;
}

/* The process count, browser memory and cgroup pids guards. */
static void run_guards(wd_t *wd, size_t nbrowsers, uint64_t rss_max)
{
	char detail[160];

	snprintf(detail, sizeof detail, "%u processes below cdpilot, more than PID_THRESHOLD %u",
	         wd->tree.total.procs, wd->o.pid_threshold);
	guard(wd, WD_RECYCLE_PID_THRESHOLD, wd->tree.total.procs > wd->o.pid_threshold, nbrowsers,
	      detail);
	snprintf(detail, sizeof detail, "a browser tree uses %llu MiB, more than %llu MiB",
	         (unsigned long long)(rss_max >> 20),
	         (unsigned long long)(wd->o.browser_rss_limit >> 20));
	guard(wd, WD_RECYCLE_RSS_LIMIT,
	      wd->o.browser_rss_limit && rss_max > wd->o.browser_rss_limit, nbrowsers, detail);
	pids_guard(wd);
}

static int do_scan(wd_t *wd)
{
	uint64_t t0 = uv_hrtime(), now = now_ms();
	pid_t self = getpid();
	size_t nbrowsers;
	unsigned browsers_alive = 0;
	int rc;
	uint64_t tree_rss[WD_MAX_BROWSERS] = { 0 }, rss_max = 0, rss_sum = 0;

	if (wd->closing)
		return -ECANCELED;
	if (wd->in_scan)
		return -EBUSY;
	wd->in_scan = 1;
	rc = wd_scan(wd->o.proc_root, self, &wd->tree);
	if (rc) {
		wd->st.scan_errors++;
		log_warn("watchdog", "cannot scan %s: %s", wd->o.proc_root, strerror(-rc));
		goto out;
	}
	wd->scan_no++;
	wd->st.scan_errors += (uint64_t)wd->tree.truncated + wd->tree.unreadable;

	nbrowsers = collect_anchors(wd);
	wd_tree_anchor(&wd->tree, wd->anchors, wd->nanchors);
	browsers_alive = count_live_browsers(wd, nbrowsers);
	sweep_tree(wd, nbrowsers, crashpad_owned(wd, browsers_alive), self, now, tree_rss);
	for (size_t k = 0; k < nbrowsers; k++) {
		rss_sum += tree_rss[k];
		if (tree_rss[k] > rss_max)
			rss_max = tree_rss[k];
	}
	record_scan(wd, self, browsers_alive, rss_sum, rss_max);
	run_guards(wd, nbrowsers, rss_max);
	wd->st.last_scan_us = (uv_hrtime() - t0) / 1000;
out:
	wd->in_scan = 0;
	return rc;
}

static void scan_timer_cb(uv_timer_t *t)
{
	do_scan(t->data);
}

/* ---- lifetime ---- */

wd_t *wd_new(uv_loop_t *loop, const wd_opts_t *opts, const wd_callbacks_t *cbs)
{
	wd_t *wd = calloc(1, sizeof *wd);

	if (!wd) {
		log_error("watchdog", "out of memory");
		abort();
	}
	wd->loop = loop;
	wd->o = *opts;
	if (cbs)
		wd->cb = *cbs;
	wd_tree_init(&wd->tree);
	uv_timer_init(loop, &wd->scan_timer);
	uv_timer_init(loop, &wd->kill_timer);
	wd->scan_timer.data = wd->kill_timer.data = wd;
	wd->open_handles = 2;
	return wd;
}

int wd_start(wd_t *wd)
{
	if (wd->started || wd->closing)
		return -EALREADY;
	wd->started = 1;
	uv_timer_start(&wd->scan_timer, scan_timer_cb, 0,
	               wd->o.interval_ms ? wd->o.interval_ms : 1000);
	return 0;
}

int wd_scan_now(wd_t *wd)
{
	return do_scan(wd);
}

void wd_get_stats(const wd_t *wd, wd_stats_t *out)
{
	*out = wd->st;
}

static void on_handle_closed(uv_handle_t *h)
{
	wd_t *wd = h->data;

	if (--wd->open_handles > 0)
		return;
	if (wd->closed_cb)
		wd->closed_cb(wd, wd->closed_ud);
	wd_tree_release(&wd->tree);
	free(wd->orphans);
	free(wd->anchors);
	free(wd);
}

void wd_close(wd_t *wd, wd_closed_cb cb, void *ud)
{
	if (wd->closing)
		return;
	wd->closing = 1;
	wd->closed_cb = cb;
	wd->closed_ud = ud;
	uv_close((uv_handle_t *)&wd->scan_timer, on_handle_closed);
	uv_close((uv_handle_t *)&wd->kill_timer, on_handle_closed);
}
