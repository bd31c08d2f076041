/*
 * Integration tests for the watchdog against the real /proc: the test process is a child
 * subreaper, makes orphans (a shell started with uv_spawn() starts a grandchild in the
 * background and exits, so the grandchild is re-parented to the test) and checks that the
 * watchdog SIGTERMs them, SIGKILLs those that ignore SIGTERM, reaps zombies that are
 * nobody's, leaves libuv's own children and every process under a declared browser pid
 * alone, and calls the guards. Every process a test starts carries a marker argument
 * ("sleep 300.<pid><n>") and is audited at the end; the whole binary's processes are
 * tagged (tu_tag_processes) and none may be left.
 *
 * One case launches a real Chromium (through the browser module's exec-wrapper, as the
 * pool does): its whole tree, crashpad handlers re-parented to the test included, is
 * classified and left alone while the browser lives, and nothing is left after its close.
 *
 * The cgroup pids pressure case points the watchdog at a fake cgroup tree: the real
 * cgroup cannot be driven near its pids.max from a test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cdp/cdp_ws.h"
#include "pool/browser.h"
#include "tests/support/testutil.h"
#include "util/log.h"
#include "watchdog/watchdog.h"

static uv_loop_t g_loop;
static unsigned g_seq;
static wd_t *g_wd;        /* the running test's watchdog until finish() */
static int g_loop_open;   /* until finish() closed it */
static char g_marker[64]; /* the running test's marker */

/* What the callbacks saw. */
static struct {
	pid_t browsers[4];
	size_t nbrowsers;
	pid_t own; /* declared through is_own_child */
	unsigned recycle_pid, recycle_rss, recycle_other;
	unsigned pressure_on, pressure_off;
	char pressure_why[200];
	int closed;
} g;

static size_t cb_browser_pids(void *ud, pid_t *out, size_t max)
{
	size_t n = g.nbrowsers < max ? g.nbrowsers : max;
	memcpy(out, g.browsers, n * sizeof *out);
	return n;
}

static int cb_is_own_child(void *ud, pid_t pid)
{
	return g.own && pid == g.own;
}

static void cb_on_recycle(void *ud, const char *reason)
{
	if (strcmp(reason, "pid_threshold") == 0)
		g.recycle_pid++;
	else if (strcmp(reason, "rss_limit") == 0)
		g.recycle_rss++;
	else
		g.recycle_other++;
}

static void cb_on_pids_pressure(void *ud, int active, const char *why)
{
	if (active)
		g.pressure_on++;
	else
		g.pressure_off++;
	snprintf(g.pressure_why, sizeof g.pressure_why, "%s", why);
}

static const wd_callbacks_t g_cbs = {
	.browser_pids = cb_browser_pids,
	.is_own_child = cb_is_own_child,
	.on_recycle = cb_on_recycle,
	.on_pids_pressure = cb_on_pids_pressure,
};

static void on_closed(wd_t *wd, void *ud)
{
	g.closed = 1;
}

static void fast_opts(wd_opts_t *o)
{
	wd_opts_init(o);
	o->interval_ms = 1000;
	o->orphan_grace_ms = 1000;
	o->pid_threshold = 100000;
}

static void new_marker(char *m, size_t n)
{
	snprintf(m, n, "300.%d%03u", (int)getpid(), ++g_seq);
	snprintf(g_marker, sizeof g_marker, "%s", m);
}

static wd_t *new_wd(const wd_opts_t *o, const wd_callbacks_t *cbs)
{
	g_wd = wd_new(&g_loop, o, cbs);
	return g_wd;
}

/* ---- /proc helpers ---- */

/* Reads /proc/PID/stat: state and ppid. 0 or -1. */
static int proc_state(pid_t pid, char *state, pid_t *ppid)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;
	char *rp;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	if (!rp || sscanf(rp + 1, " %c %d", state, ppid) != 2)
		return -1;
	return 0;
}

/* Live processes whose command line has needle in an argument and whose comm is comm
 * (NULL: any). Writes up to max pids; returns the count. */
static int find_procs(const char *needle, const char *comm, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char path[300], buf[4096], c[64] = "", state;
		pid_t pid, ppid;
		size_t len;
		FILE *f;
		int hit = 0;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = (pid_t)strtol(e->d_name, NULL, 10);
		if (proc_state(pid, &state, &ppid) || state == 'Z' || state == 'X')
			continue;
		snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		len = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[len] = '\0';
		for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
			hit |= strstr(buf + i, needle) != NULL;
		if (!hit)
			continue;
		snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
		if (comm && (f = fopen(path, "r"))) {
			if (fgets(c, sizeof c, f))
				c[strcspn(c, "\n")] = '\0';
			fclose(f);
		}
		if (comm && strcmp(c, comm) != 0)
			continue;
		if (n < max)
			out[n] = pid;
		n++;
	}
	closedir(d);
	return n;
}

static int count_marked(const char *marker)
{
	pid_t p[64];
	return find_procs(marker, NULL, p, 64);
}

/* Zombie children of this process. */
static int my_zombies(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char state;
		pid_t ppid;
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		if (proc_state((pid_t)strtol(e->d_name, NULL, 10), &state, &ppid) == 0 &&
		    ppid == getpid() && (state == 'Z' || state == 'X'))
			n++;
	}
	closedir(d);
	return n;
}

/* Our zombies after scans: a killed orphan may still be exiting (its /proc/PID/cmdline
 * already empty, not yet a zombie) when the scan that follows its kill runs, so scan
 * again until none is left or 5 s pass. The count left. */
static int zombies_after_scans(wd_t *wd)
{
	uint64_t end = tu_now_ms() + 5000;

	do {
		assert_int_equal(wd_scan_now(wd), 0);
		if (my_zombies() == 0)
			return 0;
		usleep(50 * 1000);
	} while (tu_now_ms() < end);
	return my_zombies();
}

/* Reaps this process's zombie children one by one (the loop is closed: none is libuv's). */
static int reap_my_zombies(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char state;
		pid_t ppid, pid;
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = (pid_t)strtol(e->d_name, NULL, 10);
		if (proc_state(pid, &state, &ppid) == 0 && ppid == getpid() &&
		    (state == 'Z' || state == 'X'))
			waitpid(pid, NULL, WNOHANG);
	}
	closedir(d);
	return 0;
}

/* Kills whatever a failed test left behind, and reaps it (never libuv's: only marked). */
static void kill_marked(const char *marker)
{
	pid_t p[64];
	int n = find_procs(marker, NULL, p, 64);
	for (int i = 0; i < n && i < 64; i++)
		kill(p[i], SIGKILL);
}

/* ---- running the loop until something holds ---- */

static void heartbeat(uv_timer_t *t)
{
}

static int run_until(int (*cond)(void *), void *arg, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;
	uv_timer_t *beat = malloc(sizeof *beat);
	int ok;

	assert_non_null(beat);
	uv_timer_init(&g_loop, beat);
	uv_timer_start(beat, heartbeat, 20, 20);
	while (!(ok = cond(arg)) && tu_now_ms() < end)
		uv_run(&g_loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)beat, (uv_close_cb)free);
	uv_run(&g_loop, UV_RUN_NOWAIT);
	return ok;
}

static int never(void *arg)
{
	return 0;
}

static void run_for(uint64_t ms)
{
	run_until(never, NULL, ms);
}

static int marked_gone(void *arg)
{
	return count_marked(arg) == 0;
}

/* ---- children through libuv ---- */

typedef struct child {
	uv_process_t proc;
	int exited;
	int64_t status;
	int signal;
} child_t;

static void child_closed(uv_handle_t *h)
{
	free(h->data);
}

static void child_exit(uv_process_t *p, int64_t status, int sig)
{
	child_t *c = p->data;
	c->exited = 1;
	c->status = status;
	c->signal = sig;
}

/* Starts /bin/sh -c script; the child is freed by child_release after it exited. */
static child_t *spawn_sh(const char *script)
{
	child_t *c = calloc(1, sizeof *c);
	char *args[] = { "/bin/sh", "-c", (char *)script, NULL };
	/* nothing inherited: a process left behind must not hold ctest's output pipe */
	uv_stdio_container_t stdio[3] = { { .flags = UV_IGNORE },
		                          { .flags = UV_IGNORE },
		                          { .flags = UV_IGNORE } };
	uv_process_options_t o = { .exit_cb = child_exit,
		                   .file = "/bin/sh",
		                   .args = args,
		                   .stdio = stdio,
		                   .stdio_count = 3 };

	assert_non_null(c);
	c->proc.data = c;
	assert_int_equal(uv_spawn(&g_loop, &c->proc, &o), 0);
	return c;
}

static int child_exited(void *arg)
{
	return ((child_t *)arg)->exited;
}

static void child_release(child_t *c)
{
	c->proc.data = c;
	uv_close((uv_handle_t *)&c->proc, child_closed);
}

/* Runs `script & exit 0` in a shell and waits for the shell to exit: what it started in
 * the background is then an orphan re-parented to this process. */
static void make_orphan(const char *background)
{
	char script[512];
	child_t *c;

	snprintf(script, sizeof script, "%s & exit 0", background);
	c = spawn_sh(script);
	assert_true(run_until(child_exited, c, 10000));
	assert_int_equal(c->status, 0);
	child_release(c);
}

static struct {
	const char *marker, *comm;
	pid_t pid;
} g_find;

static int found(void *arg)
{
	return find_procs(g_find.marker, g_find.comm, &g_find.pid, 1) == 1;
}

/* Waits for the one live process with marker in its command line and comm as its name. */
static pid_t wait_proc(const char *marker, const char *comm)
{
	g_find.marker = marker;
	g_find.comm = comm;
	g_find.pid = 0;
	assert_true(run_until(found, NULL, 5000));
	return g_find.pid;
}

static int int_flag(void *arg)
{
	return *(int *)arg;
}

static int stats_orphans_killed_at_least(void *arg)
{
	wd_stats_t s;
	wd_get_stats(arg, &s);
	return s.orphans_killed >= 1;
}

/* Closes the watchdog and runs the loop until it is gone; the loop stays open. */
static void finish_keep_loop(wd_t *wd)
{
	g.closed = 0;
	g_wd = NULL;
	wd_close(wd, on_closed, NULL);
	assert_true(run_until(int_flag, &g.closed, 5000));
}

static void finish(wd_t *wd)
{
	g.closed = 0;
	g_wd = NULL;
	wd_close(wd, on_closed, NULL);
	g_loop_open = 0;
	tu_loop_finish(&g_loop);
	assert_true(g.closed);
}

static int setup(void **state)
{
	memset(&g, 0, sizeof g);
	g_marker[0] = '\0';
	g_loop_open = 1;
	return uv_loop_init(&g_loop);
}

static void close_any(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h)) {
		if (h->type == UV_PROCESS)
			uv_process_kill((uv_process_t *)h, SIGKILL);
		uv_close(h, h->type == UV_PROCESS ? child_closed : NULL);
	}
}

/* After a failed test: the watchdog, children and orphans it left are cleaned up, so the
 * next test starts from nothing. Does nothing after a test that finished. */
static int teardown(void **state)
{
	int zombies_left;

	if (!g_loop_open)
		return 0;
	g_loop_open = 0;
	if (g_wd) {
		wd_close(g_wd, NULL, NULL);
		g_wd = NULL;
	}
	if (g_marker[0])
		kill_marked(g_marker);
	uv_walk(&g_loop, close_any, NULL);
	uv_run(&g_loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&g_loop) != 0)
		return -1;
	/* orphans killed above are our zombies now: reap them by pid */
	usleep(100 * 1000);
	zombies_left = reap_my_zombies();
	return zombies_left;
}

/* ---- tests ---- */

static void test_watchdog__orphan_killed_and_reaped(void **state)
{
	char marker[64], cmd[128];
	wd_opts_t o;
	wd_stats_t s;
	wd_t *wd;
	pid_t pid;
	char st;
	pid_t ppid;

	new_marker(marker, sizeof marker);
	fast_opts(&o);
	wd = new_wd(&o, &g_cbs);
	assert_int_equal(wd_start(wd), 0);
	assert_int_equal(wd_start(wd), -EALREADY);
	snprintf(cmd, sizeof cmd, "sleep %s", marker);
	make_orphan(cmd);
	pid = wait_proc(marker, "sleep");
	assert_int_equal(proc_state(pid, &st, &ppid), 0);
	assert_int_equal(ppid, getpid()); /* re-parented to us, the subreaper */

	/* seen on one scan, killed on a later one at least the grace after */
	assert_true(run_until(marked_gone, marker, 10000));
	wd_get_stats(wd, &s);
	assert_int_equal(s.orphans_killed, 1);
	assert_int_equal(s.orphans_sigkilled, 0); /* sleep dies on SIGTERM */
	assert_int_equal(s.recycles_requested[WD_RECYCLE_PID_THRESHOLD], 0);
	/* the dead orphan is our zombie until the next scan reaps it */
	assert_int_equal(wd_scan_now(wd), 0);
	assert_int_equal(wd_scan_now(wd), 0);
	wd_get_stats(wd, &s);
	assert_true(s.zombies_reaped >= 1);
	assert_int_equal(my_zombies(), 0);
	assert_true(s.scans >= 3);
	assert_true(s.last_scan_unix_ms > 0);
	assert_true(s.self_rss_bytes > 0);
	assert_true(s.self_threads >= 1);
	assert_true(s.self_fds >= 3);
	assert_int_equal(s.total.procs, 0);
	finish(wd);
	kill_marked(marker);
}

static void test_watchdog__sigterm_ignored_then_sigkill(void **state)
{
	char marker[64], cmd[160];
	wd_opts_t o;
	wd_stats_t s;
	wd_t *wd;

	new_marker(marker, sizeof marker);
	fast_opts(&o);
	wd = new_wd(&o, &g_cbs);
	assert_int_equal(wd_start(wd), 0);
	/* a subshell that ignores SIGTERM and keeps ignoring it across exec */
	snprintf(cmd, sizeof cmd, "(trap '' TERM; exec sleep %s)", marker);
	make_orphan(cmd);
	/* the shell that started it has exited, but the subshell may not have exec'd sleep yet
	 * (seen with the machine loaded): wait for it, as the other tests do */
	wait_proc(marker, "sleep");
	assert_int_equal(count_marked(marker), 1);

	assert_true(run_until(stats_orphans_killed_at_least, wd, 10000));
	run_for(300);
	assert_int_equal(count_marked(marker), 1); /* SIGTERM did nothing */
	assert_true(run_until(marked_gone, marker, 10000));
	wd_get_stats(wd, &s);
	assert_int_equal(s.orphans_killed, 1);
	assert_int_equal(s.orphans_sigkilled, 1);
	assert_int_equal(zombies_after_scans(wd), 0);
	finish(wd);
	kill_marked(marker);
}

static int zombie_present(void *arg)
{
	return my_zombies() > 0;
}

static void test_watchdog__zombie_orphan_reaped(void **state)
{
	wd_opts_t o;
	wd_stats_t s;
	wd_t *wd;

	fast_opts(&o);
	wd = new_wd(&o, &g_cbs);
	/* a grandchild that exits at once, after its parent: our zombie, not libuv's */
	make_orphan("sleep 0.2");
	assert_true(run_until(zombie_present, NULL, 5000));
	assert_int_equal(my_zombies(), 1);
	assert_int_equal(wd_scan_now(wd), 0);
	wd_get_stats(wd, &s);
	assert_int_equal(s.zombies_reaped, 1);
	assert_int_equal(s.zombies, 1); /* it was there when the scan read /proc */
	assert_int_equal(s.orphans_killed, 0);
	assert_int_equal(my_zombies(), 0);
	assert_int_equal(wd_scan_now(wd), 0);
	wd_get_stats(wd, &s);
	assert_int_equal(s.zombies, 0);
	finish(wd);
}

static void rescan(uv_timer_t *t)
{
	wd_scan_now(t->data);
}

static int all_exited(void *arg)
{
	child_t **c = arg;
	for (int i = 0; i < 10; i++)
		if (!c[i]->exited)
			return 0;
	return 1;
}

static void test_watchdog__libuv_children_left_alone(void **state)
{
	char marker[64], cmd[128];
	wd_opts_t o;
	wd_stats_t s;
	wd_t *wd;
	child_t *sleeper, *quick[10];
	uv_timer_t *hammer = malloc(sizeof *hammer);

	assert_non_null(hammer);
	new_marker(marker, sizeof marker);
	fast_opts(&o);
	wd = new_wd(&o, &g_cbs);
	assert_int_equal(wd_start(wd), 0);
	snprintf(cmd, sizeof cmd, "exec sleep %s", marker);
	sleeper = spawn_sh(cmd);

	/* Scans every 2 ms while short-lived libuv children exit: their zombies are libuv's,
	 * so each exit status must still reach its exit callback. */
	uv_timer_init(&g_loop, hammer);
	hammer->data = wd;
	uv_timer_start(hammer, rescan, 1, 2);
	for (int i = 0; i < 10; i++)
		quick[i] = spawn_sh("exit 7");
	assert_true(run_until(all_exited, quick, 10000));
	for (int i = 0; i < 10; i++) {
		assert_int_equal(quick[i]->status, 7);
		child_release(quick[i]);
	}
	uv_close((uv_handle_t *)hammer, (uv_close_cb)free);

	/* a long-lived libuv child survives many grace periods */
	run_for(3500);
	assert_int_equal(count_marked(marker), 1);
	assert_false(sleeper->exited);
	wd_get_stats(wd, &s);
	assert_int_equal(s.orphans_killed, 0);
	assert_int_equal(s.zombies_reaped, 0);
	assert_int_equal(s.total.procs, 1);
	assert_int_equal(s.by_class[WD_CLASS_OTHER].procs, 1);

	uv_process_kill(&sleeper->proc, SIGKILL);
	assert_true(run_until(child_exited, sleeper, 5000));
	assert_int_equal(sleeper->signal, SIGKILL);
	child_release(sleeper);
	finish(wd);
}

static int two_sleeps(void *arg)
{
	pid_t p[2];
	return find_procs(arg, "sleep", p, 2) == 2;
}

static void test_watchdog__declared_browser_tree_kept_then_orphaned(void **state)
{
	char marker[64], cmd[256];
	wd_opts_t o;
	wd_stats_t s;
	wd_t *wd;
	pid_t browser;

	new_marker(marker, sizeof marker);
	fast_opts(&o);
	o.pid_threshold = 2;
	o.browser_rss_limit = 1; /* any tree is over it */
	wd = new_wd(&o, &g_cbs);
	/* a "browser": a shell with two children, itself an orphan (not libuv's child) */
	snprintf(cmd, sizeof cmd, "sh -c 'sleep %s & sleep %s & wait'", marker, marker);
	make_orphan(cmd);
	assert_true(run_until(two_sleeps, marker, 5000)); /* the shell starts its children */
	{
		pid_t sleeps[2];
		pid_t ppid2;
		char st;
		assert_int_equal(find_procs(marker, "sleep", sleeps, 2), 2);
		assert_int_equal(proc_state(sleeps[0], &st, &browser), 0);
		assert_int_equal(proc_state(sleeps[1], &st, &ppid2), 0);
		assert_int_equal(browser, ppid2);
		assert_true(browser != getpid());
	}
	assert_int_equal(count_marked(marker), 3);
	g.browsers[0] = browser;
	g.nbrowsers = 1;

	assert_int_equal(wd_start(wd), 0);
	run_for(3500);
	assert_int_equal(count_marked(marker), 3);
	wd_get_stats(wd, &s);
	assert_int_equal(s.orphans_killed, 0);
	assert_int_equal(s.orphans, 0);
	assert_int_equal(s.browsers, 1);
	assert_int_equal(s.total.procs, 3);
	assert_true(s.browser_rss_bytes > 0);
	assert_int_equal(s.browser_rss_bytes, s.browser_rss_max_bytes);
	/* both guards fired once: debounced while the same browser is reported */
	assert_int_equal(g.recycle_pid, 1);
	assert_int_equal(g.recycle_rss, 1);
	assert_int_equal(g.recycle_other, 0);
	assert_int_equal(s.recycles_requested[WD_RECYCLE_PID_THRESHOLD], 1);
	assert_int_equal(s.recycles_requested[WD_RECYCLE_RSS_LIMIT], 1);

	/* no longer a browser: the shell and then its children are orphans */
	g.nbrowsers = 0;
	assert_true(run_until(marked_gone, marker, 15000));
	wd_get_stats(wd, &s);
	assert_int_equal(s.orphans_killed, 3);
	assert_int_equal(zombies_after_scans(wd), 0);
	finish(wd);
	kill_marked(marker);
}

static void test_watchdog__declared_own_child_kept(void **state)
{
	char marker[64], cmd[128];
	wd_opts_t o;
	wd_stats_t s;
	wd_t *wd;
	pid_t pid;

	new_marker(marker, sizeof marker);
	fast_opts(&o);
	wd = new_wd(&o, &g_cbs);
	snprintf(cmd, sizeof cmd, "sleep %s", marker);
	make_orphan(cmd);
	pid = wait_proc(marker, "sleep");
	g.own = pid; /* e.g. started by fork(): the daemon declares it */
	assert_int_equal(wd_start(wd), 0);
	run_for(3500);
	assert_int_equal(count_marked(marker), 1);
	wd_get_stats(wd, &s);
	assert_int_equal(s.orphans_killed, 0);
	assert_int_equal(s.orphans, 0);
	/* and it stays ours to reap: the watchdog does not wait for it */
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_true(run_until(zombie_present, NULL, 5000));
	assert_int_equal(wd_scan_now(wd), 0);
	assert_int_equal(my_zombies(), 1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	g.own = 0;
	finish(wd);
}

static void test_watchdog__pid_threshold_fires(void **state)
{
	child_t *c[12];
	char marker[64], cmd[128];
	wd_opts_t o;
	wd_stats_t s;
	wd_t *wd;

	new_marker(marker, sizeof marker);
	fast_opts(&o);
	o.pid_threshold = 10;
	wd = new_wd(&o, &g_cbs);
	snprintf(cmd, sizeof cmd, "exec sleep %s", marker);
	for (int i = 0; i < 10; i++)
		c[i] = spawn_sh(cmd);
	assert_int_equal(wd_scan_now(wd), 0);
	assert_int_equal(g.recycle_pid, 0); /* 10 is not more than 10 */
	for (int i = 10; i < 12; i++)
		c[i] = spawn_sh(cmd);
	assert_int_equal(wd_scan_now(wd), 0);
	assert_int_equal(g.recycle_pid, 1);
	wd_get_stats(wd, &s);
	assert_int_equal(s.total.procs, 12);
	/* debounced: no browser was reported, so only scans count */
	for (int i = 1; i < WD_RECYCLE_DEBOUNCE_SCANS; i++)
		assert_int_equal(wd_scan_now(wd), 0);
	assert_int_equal(g.recycle_pid, 1);
	assert_int_equal(wd_scan_now(wd), 0);
	assert_int_equal(g.recycle_pid, 2);
	assert_int_equal(g.recycle_rss, 0); /* no limit set */

	for (int i = 0; i < 12; i++)
		uv_process_kill(&c[i]->proc, SIGKILL);
	for (int i = 0; i < 12; i++) {
		assert_true(run_until(child_exited, c[i], 5000));
		child_release(c[i]);
	}
	finish(wd);
	assert_int_equal(count_marked(marker), 0);
}

static void put(const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(value, f);
	assert_int_equal(fclose(f), 0);
}

static void test_watchdog__pids_pressure_on_and_off(void **state)
{
	char dir[100], cg[120];
	wd_opts_t o;
	wd_stats_t s;
	wd_t *wd;

	snprintf(dir, sizeof dir, "/tmp/cdpilot-wdcg-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cg, sizeof cg, "%s/cg", dir);
	assert_int_equal(mkdir(cg, 0755), 0);
	put(dir, "cgroup", "0::/\n");
	put(cg, "pids.max", "100\n");
	put(cg, "pids.current", "79\n");

	fast_opts(&o);
	snprintf(o.cgroup_root, sizeof o.cgroup_root, "%s", cg);
	snprintf(o.self_cgroup, sizeof o.self_cgroup, "%s/cgroup", dir);
	wd = new_wd(&o, &g_cbs);
	assert_int_equal(wd_scan_now(wd), 0);
	assert_int_equal(g.pressure_on, 0);
	put(cg, "pids.current", "80\n");
	assert_int_equal(wd_scan_now(wd), 0);
	assert_int_equal(g.pressure_on, 1);
	assert_non_null(strstr(g.pressure_why, "pids.current 80"));
	assert_non_null(strstr(g.pressure_why, "pids.max 100"));
	wd_get_stats(wd, &s);
	assert_true(s.pids_pressure);
	assert_int_equal(s.cgroup.pids_max, 100);
	assert_int_equal(s.cgroup.pids_current, 80);
	/* hysteresis: it clears below 75% */
	put(cg, "pids.current", "76\n");
	assert_int_equal(wd_scan_now(wd), 0);
	assert_int_equal(g.pressure_on, 1);
	assert_int_equal(g.pressure_off, 0);
	put(cg, "pids.current", "74\n");
	assert_int_equal(wd_scan_now(wd), 0);
	assert_int_equal(g.pressure_off, 1);
	wd_get_stats(wd, &s);
	assert_false(s.pids_pressure);
	assert_int_equal(wd_scan_now(wd), 0);
	assert_int_equal(g.pressure_on, 1);
	assert_int_equal(g.pressure_off, 1);
	finish(wd);
	assert_int_equal(tu_rm_rf(dir), 0);
}

static void test_watchdog__real_cgroup_and_close_before_start(void **state)
{
	wd_opts_t o;
	wd_stats_t s;
	wd_t *wd;

	wd_opts_init(&o);
	wd = new_wd(&o, NULL);
	wd_get_stats(wd, &s);
	assert_int_equal(s.scans, 0);
	assert_int_equal(wd_scan_now(wd), 0);
	wd_get_stats(wd, &s);
	assert_int_equal(s.scans, 1);
	assert_int_equal(s.scan_errors, 0);
	assert_true(s.cgroup.version == 1 || s.cgroup.version == 2);
	finish(wd);
}

/* ---- a real Chromium ---- */

static struct {
	int ready, status, closed;
	char why[256];
} gb;

static void b_ready(browser_t *b, int status, const char *why, void *ud)
{
	gb.ready = 1;
	gb.status = status;
	snprintf(gb.why, sizeof gb.why, "%s", why);
}

static void b_closed(browser_t *b, void *ud)
{
	gb.closed = 1;
}

static int tree_empty(void *arg)
{
	wd_stats_t s;
	wd_scan_now(arg);
	wd_get_stats(arg, &s);
	return s.total.procs == 0;
}

/* A real browser's tree, launched from path (NULL: the default executable). The full
 * Chromium starts crashpad handlers, which are re-parented to us; the headless shell
 * starts none. */
static void real_browser_tree(const char *path, int with_crashpad)
{
	browser_opts_t bo;
	cdp_wsctx_t *ws;
	browser_t *b;
	wd_opts_t o;
	wd_stats_t s;
	wd_t *wd;

	tu_require_chromium();
	memset(&gb, 0, sizeof gb);
	ws = cdp_wsctx_new(&g_loop);
	assert_non_null(ws);
	fast_opts(&o);
	wd = new_wd(&o, &g_cbs);
	assert_int_equal(wd_start(wd), 0);
	browser_opts_init(&bo);
	bo.chromium_path = path;
	b = browser_new(&g_loop, ws, &bo);
	assert_non_null(b);
	assert_int_equal(browser_start(b, b_ready, NULL, NULL), 0);
	/* not reported while it launches: the exec-wrapper is a libuv child, which anchors it */
	assert_true(run_until(int_flag, &gb.ready, 30000));
	if (gb.status != 0)
		fail_msg("launch failed: %d %s", gb.status, gb.why);
	g.browsers[0] = browser_pid(b);
	g.nbrowsers = 1;

	run_for(3500); /* several scans, well past the orphan grace */
	wd_get_stats(wd, &s);
	print_message("chromium tree: %u processes (browser %u, zygote %u, gpu %u, utility %u, "
	              "renderer %u, crashpad %u, other %u), %llu MiB; scan %llu us\n",
	              s.total.procs, s.by_class[WD_CLASS_BROWSER].procs,
	              s.by_class[WD_CLASS_ZYGOTE].procs, s.by_class[WD_CLASS_GPU].procs,
	              s.by_class[WD_CLASS_UTILITY].procs, s.by_class[WD_CLASS_RENDERER].procs,
	              s.by_class[WD_CLASS_CRASHPAD].procs, s.by_class[WD_CLASS_OTHER].procs,
	              (unsigned long long)(s.total.rss_bytes >> 20),
	              (unsigned long long)s.last_scan_us);
	assert_int_equal(s.orphans_killed, 0);
	assert_int_equal(s.orphans, 0);
	assert_int_equal(s.browsers, 1);
	assert_int_equal(s.by_class[WD_CLASS_BROWSER].procs, 1);
	assert_true(s.by_class[WD_CLASS_ZYGOTE].procs >= 1);
	assert_true(s.by_class[WD_CLASS_UTILITY].procs >= 1);
	print_message("%s\n", browser_executable(b));
	/* re-parented to us (the subreaper), outside the browser's tree, and kept */
	if (with_crashpad) {
		assert_true(s.by_class[WD_CLASS_CRASHPAD].procs >= 1);
		assert_true(s.browser_rss_bytes < s.total.rss_bytes); /* not the browser's */
	} else {
		assert_int_equal(s.by_class[WD_CLASS_CRASHPAD].procs, 0);
	}
	assert_true(s.browser_rss_bytes > 0);
	assert_true(s.by_class[WD_CLASS_BROWSER].threads > 1);

	browser_close(b, b_closed, NULL);
	assert_true(run_until(int_flag, &gb.closed, 30000));
	g.nbrowsers = 0;
	/* the crashpad handlers exit by themselves; their zombies are ours and get reaped */
	assert_true(run_until(tree_empty, wd, 10000));
	assert_int_equal(my_zombies(), 0);
	finish_keep_loop(wd);
	cdp_wsctx_close(ws);
	uv_run(&g_loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(ws);
	g_loop_open = 0;
	assert_int_equal(uv_loop_close(&g_loop), 0);
}

static void test_watchdog__real_browser_tree_left_alone(void **state)
{
	char path[4096], err[1024];

	tu_require_chromium();
	assert_int_equal(browser_find_executable(NULL, path, sizeof path, err, sizeof err), 0);
	real_browser_tree(NULL, strstr(path, "headless-shell") == NULL);
}

/* The full browser too (the suite's packages install both): its crashpad handlers. */
static void test_watchdog__real_full_chromium_tree_left_alone(void **state)
{
	const char *full = "/usr/lib/chromium/chromium";

	if (access(full, X_OK) != 0)
		fail_msg("%s is required for this test (the README's test command installs the "
		         "chromium package)", full);
	real_browser_tree(full, 1);
}

static int group_teardown(void **state)
{
	/* nothing this binary started may be left, wherever it was re-parented */
	int n = tu_wait_tagged_count(0, 5000);
	if (n != 0)
		fprintf(stderr, "%d tagged processes left\n", n);
	return n == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_watchdog__orphan_killed_and_reaped, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_watchdog__sigterm_ignored_then_sigkill, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_watchdog__zombie_orphan_reaped, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_watchdog__libuv_children_left_alone, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(
		        test_watchdog__declared_browser_tree_kept_then_orphaned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog__declared_own_child_kept, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_watchdog__pid_threshold_fires, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_watchdog__pids_pressure_on_and_off, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_watchdog__real_cgroup_and_close_before_start,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog__real_full_chromium_tree_left_alone,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog__real_browser_tree_left_alone, setup,
		                                teardown),
	};

	if (tu_browser_test_init(argc, argv)) /* tags this process's tree too */
		return 127;
	if (wd_make_subreaper() != 0) {
		fprintf(stderr, "cannot become a child subreaper\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
