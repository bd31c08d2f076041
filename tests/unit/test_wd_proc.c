/*
 * Unit tests for the watchdog's pure part (wd_proc) and its settings: fake /proc and
 * cgroup trees generated into a temp dir by each test (real Chromium command lines,
 * processes that vanish mid-scan, kernel threads, odd command names, unreadable entries,
 * zombies, deep trees, cgroup v1 and v2 layouts), and the environment variables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/testutil.h"
#include "watchdog/watchdog.h"
#include "watchdog/wd_proc.h"

#define PF_KTHREAD 0x00200000u

static char g_root[256];

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(g_root, sizeof g_root, "%s/cdpilot-wdproc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(g_root))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	chmod(g_root, 0700);
	return tu_rm_rf(g_root);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	if (len)
		assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_str(const char *path, const char *s)
{
	write_file(path, s, strlen(s));
}

/* root/rel: creates every directory of rel (not the last component unless dir). */
static void mkdirs(const char *rel)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/%s", g_root, rel);
	assert_true(n > 0 && n < (int)sizeof path);
	for (char *p = path + strlen(g_root) + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
	mkdir(path, 0755);
}

static void put(const char *rel, const char *content)
{
	char path[PATH_MAX];
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof dir, "%s", rel);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		mkdirs(dir);
	}
	snprintf(path, sizeof path, "%s/%s", g_root, rel);
	write_str(path, content);
}

/* A fake /proc/PID with a stat (52 fields like Linux 6.x) and a cmdline (NULL: none). */
static void mkproc_full(int pid, const char *comm, char state, int ppid, unsigned flags,
                        unsigned threads, unsigned long long start, unsigned long long rss,
                        const char *cmd, size_t cmdlen)
{
	char rel[64], path[PATH_MAX], stat[1024];
	int n;

	snprintf(rel, sizeof rel, "%d", pid);
	mkdirs(rel);
	n = snprintf(
	        stat, sizeof stat,
	        "%d (%s) %c %d %d %d 0 -1 %u 100 0 0 0 5 3 0 0 20 0 %u 0 %llu 123456789 %llu "
	        "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
	        pid, comm, state, ppid, pid, pid, flags, threads, start, rss);
	snprintf(path, sizeof path, "%s/%d/stat", g_root, pid);
	write_file(path, stat, (size_t)n);
	if (cmd) {
		snprintf(path, sizeof path, "%s/%d/cmdline", g_root, pid);
		write_file(path, cmd, cmdlen);
	}
}

#define CMD(s) (s), sizeof(s) - 1
static void mkproc(int pid, int ppid, const char *cmd, size_t cmdlen)
{
	mkproc_full(pid, "proc", 'S', ppid, 0, 1, 1000 + (unsigned long long)pid, 10, cmd, cmdlen);
}

/* Real command lines from Chromium 156 on Debian 12 (the browser's own is NUL-separated;
 * its zygote children rewrite theirs into one space-separated string). */
#define CHROMIUM_MAIN                                                                       \
	"/usr/lib/chromium/chromium\0--headless\0--no-sandbox\0--remote-debugging-port=0\0" \
	"--user-data-dir=/tmp/cdpilot-chromium-AbC123\0--no-startup-window\0"               \
	"--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup\0"
#define CHROMIUM_ZYGOTE                                                                         \
	"/usr/lib/chromium/chromium --type=zygote --no-zygote-sandbox --no-sandbox --headless " \
	"--user-data-dir=/tmp/cdpilot-chromium-AbC123\0"
#define CHROMIUM_GPU                                                                           \
	"/usr/lib/chromium/chromium --type=gpu-process --gpu-recent-crash-count=0 --headless " \
	"--ozone-platform=headless --use-angle=swiftshader-webgl "                             \
	"--user-data-dir=/tmp/cdpilot-chromium-AbC123\0"
#define CHROMIUM_UTILITY                                                                            \
	"/usr/lib/chromium/chromium --type=utility "                                                \
	"--utility-sub-type=network.mojom.NetworkService --lang=en-US --service-sandbox-type=none " \
	"--user-data-dir=/tmp/cdpilot-chromium-AbC123\0"
#define CHROMIUM_RENDERER                                                          \
	"/usr/lib/chromium/chromium --type=renderer --crashpad-handler-pid=14928 " \
	"--user-data-dir=/tmp/cdpilot-chromium-AbC123 --no-sandbox --renderer-client-id=7\0"
#define CHROMIUM_WEBUI_RENDERER                                          \
	"/usr/lib/chromium/chromium --type=renderer --top-chrome-webui " \
	"--user-data-dir=/tmp/cdpilot-chromium-AbC123\0"
#define CRASHPAD                                                      \
	"/usr/lib/chromium/chrome_crashpad_handler\0--monitor-self\0" \
	"--monitor-self-annotation=ptype=crashpad-handler\0"          \
	"--database=/root/.config/chromium/Crash Reports\0--initial-client-fd=7\0"

static void test_wd_proc__classifies_chromium_command_lines(void **state)
{
	assert_int_equal(wd_classify(CMD(CHROMIUM_MAIN)), WD_CLASS_BROWSER);
	assert_int_equal(wd_classify(CMD(CHROMIUM_ZYGOTE)), WD_CLASS_ZYGOTE);
	assert_int_equal(wd_classify(CMD(CHROMIUM_GPU)), WD_CLASS_GPU);
	assert_int_equal(wd_classify(CMD(CHROMIUM_UTILITY)), WD_CLASS_UTILITY);
	assert_int_equal(wd_classify(CMD(CHROMIUM_RENDERER)), WD_CLASS_RENDERER);
	assert_int_equal(wd_classify(CMD(CHROMIUM_WEBUI_RENDERER)), WD_CLASS_RENDERER);
	assert_int_equal(wd_classify(CMD(CRASHPAD)), WD_CLASS_CRASHPAD);
	/* Chrome's in-binary handler and other builds */
	assert_int_equal(wd_classify(CMD("/opt/google/chrome/chrome\0--type=crashpad-handler\0")),
	                 WD_CLASS_CRASHPAD);
	assert_int_equal(wd_classify(CMD("/opt/google/chrome/chrome\0--headless=new\0")),
	                 WD_CLASS_BROWSER);
	assert_int_equal(wd_classify(CMD("google-chrome-stable\0about:blank\0")), WD_CLASS_BROWSER);
	assert_int_equal(wd_classify(CMD("/x/chrome-headless-shell\0--no-sandbox\0")),
	                 WD_CLASS_BROWSER);
	assert_int_equal(wd_classify(CMD("/usr/lib/chromium/chromium-headless-shell\0"
	                                 "--remote-debugging-port=0\0")),
	                 WD_CLASS_BROWSER);
	assert_int_equal(wd_classify(CMD("/opt/google/chrome/chrome --type=renderer\0")),
	                 WD_CLASS_RENDERER);
	/* not browsers */
	assert_int_equal(wd_classify(CMD("/usr/bin/cdpilot\0__cdpilot-exec\0"
	                                 "123\0"
	                                 "/usr/lib/chromium/chromium\0--headless\0")),
	                 WD_CLASS_OTHER);
	assert_int_equal(wd_classify(CMD("sleep\0"
	                                 "300\0")),
	                 WD_CLASS_OTHER);
	assert_int_equal(wd_classify(CMD("/usr/bin/chromedriver\0--port=9515\0")), WD_CLASS_OTHER);
	assert_int_equal(wd_classify(CMD("/usr/lib/chromium/chromium --type=broker\0")),
	                 WD_CLASS_OTHER);
	assert_int_equal(wd_classify(CMD("/usr/lib/chromium/chromium\0--type=\0")), WD_CLASS_OTHER);
	assert_int_equal(wd_classify(CMD("/usr/lib/chromium/chromium\0--x=--type=renderer\0")),
	                 WD_CLASS_BROWSER);
	assert_int_equal(wd_classify("", 0), WD_CLASS_OTHER);
	assert_int_equal(wd_classify(CMD("\0\0\0")), WD_CLASS_OTHER);
	/* not NUL-terminated: only len bytes are read */
	assert_int_equal(wd_classify("chromium --type=renderer", 8), WD_CLASS_BROWSER);
	assert_string_equal(wd_class_name(WD_CLASS_GPU), "gpu");
	assert_string_equal(wd_class_name(WD_NCLASSES), "other");
}

static void test_wd_proc__parses_stat_with_odd_comm(void **state)
{
	wd_stat_t st;
	static const char tail[] = " 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 7 0 98765 1000 42 9 9\n";
	char buf[512];
	int n;

	n = snprintf(buf, sizeof buf, "321 (a) b) c) S 12 1 1%s", tail);
	assert_int_equal(wd_parse_stat(buf, (size_t)n, &st), 0);
	assert_int_equal(st.pid, 321);
	assert_string_equal(st.comm, "a) b) c");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 12);
	assert_int_equal(st.threads, 7);
	assert_int_equal(st.starttime, 98765);
	assert_int_equal(st.rss_pages, 42);

	n = snprintf(buf, sizeof buf, "5 (new\nline ) Z 1 1 1%s", tail);
	assert_int_equal(wd_parse_stat(buf, (size_t)n, &st), 0);
	assert_string_equal(st.comm, "new\nline ");
	assert_int_equal(st.state, 'Z');

	n = snprintf(buf, sizeof buf, "6 () R 1 1 1%s", tail);
	assert_int_equal(wd_parse_stat(buf, (size_t)n, &st), 0);
	assert_string_equal(st.comm, "");

	/* a comm that looks like the rest of a stat line */
	n = snprintf(buf, sizeof buf, "7 (x) Z 99 1 1 0) S 3 1 1%s", tail);
	assert_int_equal(wd_parse_stat(buf, (size_t)n, &st), 0);
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 3);

	/* malformed */
	assert_int_equal(wd_parse_stat(CMD("8 (x) S 1 1 1 0 -1\n"), &st), -EINVAL);
	assert_int_equal(wd_parse_stat(CMD("8 x S 1 1 1"), &st), -EINVAL);
	assert_int_equal(wd_parse_stat(CMD(""), &st), -EINVAL);
	n = snprintf(buf, sizeof buf, "9 (x) S abc 1 1%s", tail);
	assert_int_equal(wd_parse_stat(buf, (size_t)n, &st), -EINVAL);
	n = snprintf(buf, sizeof buf, "-9 (x) S 1 1 1%s", tail);
	assert_int_equal(wd_parse_stat(buf, (size_t)n, &st), -EINVAL);
	n = snprintf(buf, sizeof buf, "9 (x) SS 1 1 1%s", tail);
	assert_int_equal(wd_parse_stat(buf, (size_t)n, &st), -EINVAL);
	/* cut short: only len bytes count */
	n = snprintf(buf, sizeof buf, "9 (x) S 1 1 1%s", tail);
	assert_int_equal(wd_parse_stat(buf, 30, &st), -EINVAL);
}

/*
 * root 100 (cdpilot) -> 101 browser -> 103 zygote -> 105, 106 renderers
 *                                   -> 104 gpu, 107 utility
 *                    -> 102 "sleep 300" (an orphan) -> 108 zombie
 *                    -> 109 crashpad (re-parented, own session)
 * Elsewhere: 1 init, 2 kthreadd, 50 a kernel thread, 200 someone else's.
 */
static void make_chromium_tree(void)
{
	mkproc_full(1, "systemd", 'S', 0, 0, 1, 1, 100, CMD("/sbin/init\0"));
	mkproc_full(2, "kthreadd", 'S', 0, PF_KTHREAD, 1, 1, 0, CMD(""));
	mkproc_full(50, "kworker/0:1-events", 'I', 2, PF_KTHREAD, 1, 5, 0, CMD(""));
	mkproc_full(100, "cdpilot", 'S', 1, 0, 3, 900, 2000, CMD("./cdpilot\0run\0"));
	mkproc_full(101, "chromium", 'S', 100, 0, 20, 1001, 3000, CMD(CHROMIUM_MAIN));
	mkproc_full(102, "sleep", 'S', 100, 0, 1, 1002, 50,
	            CMD("sleep\0"
	                "300\0"));
	mkproc_full(103, "chromium", 'S', 101, 0, 1, 1003, 400, CMD(CHROMIUM_ZYGOTE));
	mkproc_full(104, "chromium", 'S', 101, 0, 8, 1004, 500, CMD(CHROMIUM_GPU));
	mkproc_full(105, "chromium", 'S', 103, 0, 12, 1005, 600, CMD(CHROMIUM_RENDERER));
	mkproc_full(106, "chromium", 'R', 103, 0, 13, 1006, 700, CMD(CHROMIUM_WEBUI_RENDERER));
	mkproc_full(107, "chromium", 'S', 101, 0, 6, 1007, 800, CMD(CHROMIUM_UTILITY));
	mkproc_full(108, "sh", 'Z', 102, 0, 1, 1008, 0, CMD(""));
	mkproc_full(109, "chrome_crashpad", 'S', 100, 0, 2, 1009, 90, CMD(CRASHPAD));
	mkproc_full(200, "bash", 'S', 1, 0, 1, 2000, 70, CMD("-bash\0"));
	/* things that are not processes */
	mkdirs("self");
	mkdirs("net/dev");
	mkdirs("12ab");
	mkdirs("0042");
	put("uptime", "123.45 67.89\n");
}

static void test_wd_proc__scans_a_chromium_tree(void **state)
{
	wd_tree_t t;
	long page = sysconf(_SC_PAGESIZE);
	int i;

	make_chromium_tree();
	wd_tree_init(&t);
	assert_int_equal(wd_scan(g_root, 100, &t), 0);
	assert_true(t.root_found);
	assert_int_equal(t.root.pid, 100);
	assert_int_equal(t.root.threads, 3);
	assert_int_equal(t.root.rss_bytes, 2000ull * (uint64_t)page);
	assert_int_equal(t.nprocs, 9);
	assert_int_equal(t.zombies, 1);
	assert_int_equal(t.truncated, 0);
	assert_int_equal(t.unreadable, 0);

	/* breadth-first: every parent comes before its children */
	for (size_t k = 0; k < t.nprocs; k++) {
		const wd_proc_t *p = &t.procs[k];
		if (p->parent < 0) {
			assert_int_equal(p->ppid, 100);
			assert_int_equal(p->depth, 1);
		} else {
			assert_true((size_t)p->parent < k);
			assert_int_equal(t.procs[p->parent].pid, p->ppid);
			assert_int_equal(p->depth, t.procs[p->parent].depth + 1);
		}
	}
	i = wd_tree_find(&t, 105);
	assert_true(i >= 0);
	assert_int_equal(t.procs[i].klass, WD_CLASS_RENDERER);
	assert_int_equal(t.procs[i].depth, 3);
	assert_int_equal(t.procs[i].starttime, 1005);
	assert_int_equal(t.procs[i].rss_bytes, 600ull * (uint64_t)page);
	assert_string_equal(t.procs[i].comm, "chromium");
	assert_int_equal(
	        strncmp(t.procs[i].cmdline, "/usr/lib/chromium/chromium --type=renderer", 42), 0);
	assert_true(strlen(t.procs[i].cmdline) < WD_CMDLINE_MAX);
	i = wd_tree_find(&t, 101);
	assert_int_equal(t.procs[i].klass, WD_CLASS_BROWSER);
	/* NULs shown as spaces, no trailing space */
	assert_int_equal(strncmp(t.procs[i].cmdline,
	                         "/usr/lib/chromium/chromium --headless --no-sandbox", 50),
	                 0);
	assert_int_equal(t.procs[wd_tree_find(&t, 102)].klass, WD_CLASS_OTHER);
	assert_string_equal(t.procs[wd_tree_find(&t, 102)].cmdline, "sleep 300");
	assert_int_equal(t.procs[wd_tree_find(&t, 108)].state, 'Z');
	assert_int_equal(t.procs[wd_tree_find(&t, 108)].depth, 2);
	assert_int_equal(t.procs[wd_tree_find(&t, 109)].klass, WD_CLASS_CRASHPAD);
	/* not descendants: init, kernel threads, someone else's shell */
	assert_int_equal(wd_tree_find(&t, 1), -1);
	assert_int_equal(wd_tree_find(&t, 2), -1);
	assert_int_equal(wd_tree_find(&t, 50), -1);
	assert_int_equal(wd_tree_find(&t, 200), -1);

	assert_int_equal(t.by_class[WD_CLASS_BROWSER].procs, 1);
	assert_int_equal(t.by_class[WD_CLASS_RENDERER].procs, 2);
	assert_int_equal(t.by_class[WD_CLASS_RENDERER].threads, 25);
	assert_int_equal(t.by_class[WD_CLASS_RENDERER].rss_bytes, 1300ull * (uint64_t)page);
	assert_int_equal(t.by_class[WD_CLASS_GPU].procs, 1);
	assert_int_equal(t.by_class[WD_CLASS_UTILITY].procs, 1);
	assert_int_equal(t.by_class[WD_CLASS_ZYGOTE].procs, 1);
	assert_int_equal(t.by_class[WD_CLASS_CRASHPAD].procs, 1);
	assert_int_equal(t.by_class[WD_CLASS_OTHER].procs, 2); /* sleep and the zombie */
	assert_int_equal(t.total.procs, 9);
	assert_int_equal(t.total.threads, 20 + 1 + 1 + 8 + 12 + 13 + 6 + 1 + 2);
	assert_int_equal(t.total.rss_bytes,
	                 (3000ull + 50 + 400 + 500 + 600 + 700 + 800 + 0 + 90) * (uint64_t)page);

	/* anchors: the browser's subtree belongs to it, the rest to nobody */
	{
		pid_t anchors[] = { 101, 555 };
		wd_tree_anchor(&t, anchors, 2);
		assert_int_equal(t.procs[wd_tree_find(&t, 101)].anchor, 0);
		assert_int_equal(t.procs[wd_tree_find(&t, 106)].anchor, 0);
		assert_int_equal(t.procs[wd_tree_find(&t, 107)].anchor, 0);
		assert_int_equal(t.procs[wd_tree_find(&t, 102)].anchor, -1);
		assert_int_equal(t.procs[wd_tree_find(&t, 108)].anchor, -1);
		assert_int_equal(t.procs[wd_tree_find(&t, 109)].anchor, -1);
		pid_t anchors2[] = { 101, 103 };
		wd_tree_anchor(&t, anchors2, 2);
		assert_int_equal(t.procs[wd_tree_find(&t, 105)].anchor, 1); /* nearest wins */
		assert_int_equal(t.procs[wd_tree_find(&t, 104)].anchor, 0);
	}

	/* the same storage scans again (a smaller tree) */
	assert_int_equal(wd_scan(g_root, 103, &t), 0);
	assert_int_equal(t.nprocs, 2);
	assert_int_equal(t.by_class[WD_CLASS_RENDERER].procs, 2);
	assert_int_equal(t.by_class[WD_CLASS_BROWSER].procs, 0);
	/* a root that does not exist has no tree */
	assert_int_equal(wd_scan(g_root, 4242, &t), 0);
	assert_false(t.root_found);
	assert_int_equal(t.nprocs, 0);
	wd_tree_release(&t);
}

static void test_wd_proc__vanishing_and_malformed_entries(void **state)
{
	wd_tree_t t;
	char path[PATH_MAX];

	mkproc(100, 1, CMD("cdpilot\0"));
	mkproc(101, 100, CMD("a\0"));
	/* 102: its directory is there but the process is gone (no stat) */
	mkdirs("102");
	/* 103: stat present, cmdline gone (vanished between the two reads) */
	mkproc(103, 100, NULL, 0);
	/* 104: an empty stat (what a reaped process's file reads as) */
	mkdirs("104");
	snprintf(path, sizeof path, "%s/104/stat", g_root);
	write_str(path, "");
	/* 105: a garbage stat */
	mkdirs("105");
	snprintf(path, sizeof path, "%s/105/stat", g_root);
	write_str(path, "not a stat line at all\n");
	/* 106: a stat naming another pid */
	mkproc(106, 100, CMD("b\0"));
	snprintf(path, sizeof path, "%s/107", g_root);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/106/stat", g_root);
	{
		char dst[PATH_MAX];
		snprintf(dst, sizeof dst, "%s/107/stat", g_root);
		assert_int_equal(rename(path, dst), 0); /* 107/stat says pid 106 */
	}
	/* 108: stat is a directory */
	mkdirs("108/stat");
	/* 109: a child of 103 (the vanished one): still found */
	mkproc(109, 103, CMD("c\0"));
	/* 110: a FIFO for a cmdline must not block the scan */
	mkproc(110, 100, NULL, 0);
	snprintf(path, sizeof path, "%s/110/cmdline", g_root);
	assert_int_equal(mkfifo(path, 0644), 0);

	wd_tree_init(&t);
	assert_int_equal(wd_scan(g_root, 100, &t), 0);
	assert_int_equal(t.nprocs, 4); /* 101, 103, 110, 109 */
	assert_true(wd_tree_find(&t, 101) >= 0);
	assert_true(wd_tree_find(&t, 103) >= 0);
	assert_true(wd_tree_find(&t, 109) >= 0);
	assert_true(wd_tree_find(&t, 110) >= 0);
	assert_int_equal(t.procs[wd_tree_find(&t, 103)].klass, WD_CLASS_OTHER);
	assert_string_equal(t.procs[wd_tree_find(&t, 103)].cmdline, "");
	assert_string_equal(t.procs[wd_tree_find(&t, 110)].cmdline, "");
	assert_int_equal(t.skipped, 6); /* 102, 104, 105, 106 (stat moved), 107, 108 */
	assert_int_equal(t.unreadable, 0);
	wd_tree_release(&t);

	/* a proc root that does not exist */
	wd_tree_init(&t);
	snprintf(path, sizeof path, "%s/nope", g_root);
	assert_int_equal(wd_scan(path, 1, &t), -ENOENT);
	wd_tree_release(&t);
}

/* Runs in a child that is not root when the test runs as root: EACCES needs it. */
static int unreadable_checks(void)
{
	wd_tree_t t;
	int bad = 0;

	wd_tree_init(&t);
	if (wd_scan(g_root, 100, &t) != 0)
		bad = __LINE__;
	else if (t.nprocs != 3) /* 101, 103, 104 (102 is unreadable) */
		bad = __LINE__;
	else if (t.unreadable != 2) /* 102's stat, 103's cmdline */
		bad = __LINE__;
	else if (wd_tree_find(&t, 103) < 0 ||
	         t.procs[wd_tree_find(&t, 103)].klass != WD_CLASS_OTHER)
		bad = __LINE__;
	else if (wd_tree_find(&t, 104) < 0 ||
	         t.procs[wd_tree_find(&t, 104)].klass != WD_CLASS_RENDERER)
		bad = __LINE__;
	wd_tree_release(&t);
	return bad;
}

static void test_wd_proc__unreadable_entries(void **state)
{
	char path[PATH_MAX];
	int status = 0;
	pid_t pid;

	mkproc(100, 1, CMD("cdpilot\0"));
	mkproc(101, 100, CMD("a\0"));
	mkproc(102, 100, CMD("b\0"));
	mkproc(103, 100, CMD(CHROMIUM_MAIN));
	mkproc(104, 101, CMD(CHROMIUM_RENDERER));
	snprintf(path, sizeof path, "%s/102", g_root);
	assert_int_equal(chmod(path, 0), 0);
	snprintf(path, sizeof path, "%s/103/cmdline", g_root);
	assert_int_equal(chmod(path, 0), 0);
	assert_int_equal(chmod(g_root, 0755), 0);

	if (geteuid() != 0) {
		assert_int_equal(unreadable_checks(), 0);
	} else {
		/* root reads everything: check as nobody, in a child */
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
				_exit(2);
			_exit(unreadable_checks() ? 1 : 0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	snprintf(path, sizeof path, "%s/102", g_root);
	chmod(path, 0755);
}

static void test_wd_proc__odd_comm_names(void **state)
{
	wd_tree_t t;

	mkproc_full(100, "cdpilot", 'S', 1, 0, 1, 1, 1, CMD("cdpilot\0"));
	mkproc_full(101, "a) (b c", 'S', 100, 0, 2, 2, 2, CMD("x\0"));
	mkproc_full(102, ") Z 1 1 1 0 (", 'S', 101, 0, 3, 3, 3, CMD("y\0"));
	mkproc_full(103, "new\nline", 'S', 102, 0, 4, 4, 4, CMD("z\0"));
	mkproc_full(104, "", 'S', 103, 0, 5, 5, 5, CMD("w\0"));
	wd_tree_init(&t);
	assert_int_equal(wd_scan(g_root, 100, &t), 0);
	assert_int_equal(t.nprocs, 4);
	assert_string_equal(t.procs[0].comm, "a) (b c");
	assert_string_equal(t.procs[1].comm, ") Z 1 1 1 0 (");
	assert_int_equal(t.procs[1].state, 'S');
	assert_int_equal(t.procs[1].ppid, 101);
	assert_int_equal(t.procs[1].threads, 3);
	assert_string_equal(t.procs[2].comm, "new\nline");
	assert_int_equal(t.procs[3].depth, 4);
	assert_int_equal(t.zombies, 0);
	wd_tree_release(&t);
}

static void test_wd_proc__zombies(void **state)
{
	wd_tree_t t;

	mkproc(100, 1, CMD("cdpilot\0"));
	mkproc_full(101, "chromium", 'Z', 100, 0, 1, 5, 0, CMD(""));
	mkproc_full(102, "sleep", 'X', 100, 0, 1, 6, 0, NULL, 0);
	mkproc(103, 100,
	       CMD("sleep\0"
	           "300\0"));
	wd_tree_init(&t);
	assert_int_equal(wd_scan(g_root, 100, &t), 0);
	assert_int_equal(t.nprocs, 3);
	assert_int_equal(t.zombies, 2);
	assert_int_equal(t.procs[wd_tree_find(&t, 101)].klass, WD_CLASS_OTHER);
	assert_int_equal(t.procs[wd_tree_find(&t, 101)].rss_bytes, 0);
	assert_int_equal(t.by_class[WD_CLASS_OTHER].procs, 3);
	wd_tree_release(&t);
}

static void test_wd_proc__deep_and_wide_trees(void **state)
{
	wd_tree_t t;
	enum { DEPTH = 3000, WIDE = 500 };

	mkproc(1, 0, CMD("init\0"));
	for (int i = 0; i < DEPTH; i++)
		mkproc(1000 + i, i == 0 ? 1 : 1000 + i - 1, CMD("deep\0"));
	for (int i = 0; i < WIDE; i++)
		mkproc(10000 + i, 1000, CMD("wide\0"));
	wd_tree_init(&t);
	assert_int_equal(wd_scan(g_root, 1, &t), 0);
	assert_int_equal(t.nprocs, DEPTH + WIDE);
	assert_int_equal(t.procs[wd_tree_find(&t, 1000 + DEPTH - 1)].depth, DEPTH);
	assert_int_equal(t.procs[wd_tree_find(&t, 10000 + WIDE - 1)].depth, 2);
	assert_int_equal(t.total.threads, DEPTH + WIDE);
	wd_tree_release(&t);
}

static void test_wd_proc__cycles_do_not_loop(void **state)
{
	wd_tree_t t;

	/* the root's parent is its own child (impossible in /proc, possible in a bad tree) */
	mkproc(100, 102, CMD("root\0"));
	mkproc(101, 100, CMD("a\0"));
	mkproc(102, 101, CMD("b\0"));
	mkproc(200, 201, CMD("c\0"));
	mkproc(201, 200, CMD("d\0"));
	mkproc(300, 300, CMD("self-parent\0"));
	/* a fresh tree and a root without children */
	wd_tree_init(&t);
	assert_int_equal(wd_scan(g_root, 300, &t), 0);
	assert_int_equal(t.nprocs, 0);
	assert_true(t.root_found);
	wd_tree_release(&t);
	wd_tree_init(&t);
	assert_int_equal(wd_scan(g_root, 100, &t), 0);
	assert_int_equal(t.nprocs, 2);
	assert_int_equal(wd_scan(g_root, 300, &t), 0);
	assert_int_equal(t.nprocs, 0);
	wd_tree_release(&t);
}

/* ---- cgroups ---- */

static void cg_paths(char *root, char *self, size_t n)
{
	snprintf(root, n, "%s/cg", g_root);
	snprintf(self, n, "%s/self_cgroup", g_root);
}

static void test_wd_proc__cgroup_v2(void **state)
{
	char root[PATH_MAX], self[PATH_MAX];
	wd_cgroup_t cg;

	cg_paths(root, self, sizeof root);
	put("self_cgroup", "0::/kubepods/pod1\n");
	put("cg/cgroup.controllers", "cpu memory pids\n");
	put("cg/pids.current", "400\n"); /* the root: no .max */
	put("cg/kubepods/pids.max", "100\n");
	put("cg/kubepods/pids.current", "90\n");
	put("cg/kubepods/memory.max", "max\n");
	put("cg/kubepods/memory.current", "99999\n");
	put("cg/kubepods/pod1/pids.max", "max\n");
	put("cg/kubepods/pod1/pids.current", "17\n");
	put("cg/kubepods/pod1/memory.max", "max\n");
	put("cg/kubepods/pod1/memory.current", "1234\n");
	assert_int_equal(wd_cgroup_read(root, self, &cg), 0);
	assert_int_equal(cg.version, 2);
	assert_string_equal(cg.path, "/kubepods/pod1");
	assert_true(cg.has_pids);
	assert_int_equal(cg.pids_max, 100); /* the parent's limit is the tight one */
	assert_int_equal(cg.pids_current, 90);
	assert_true(cg.has_memory);
	assert_true(cg.memory_max == WD_UNLIMITED);
	assert_int_equal(cg.memory_current, 1234); /* the leaf's, no level has a limit */

	/* the leaf's own limit is tighter */
	put("cg/kubepods/pod1/pids.max", "20\n");
	put("cg/kubepods/pod1/memory.max", "1048576\n");
	assert_int_equal(wd_cgroup_read(root, self, &cg), 0);
	assert_int_equal(cg.pids_max, 20);
	assert_int_equal(cg.pids_current, 17);
	assert_int_equal(cg.memory_max, 1048576);

	/* a namespace root: "0::/" reads the root itself */
	put("self_cgroup", "0::/\n");
	put("cg/pids.max", "max\n");
	assert_int_equal(wd_cgroup_read(root, self, &cg), 0);
	assert_true(cg.has_pids);
	assert_true(cg.pids_max == WD_UNLIMITED);
	assert_int_equal(cg.pids_current, 400);
	assert_false(cg.has_memory);
	assert_true(cg.memory_max == WD_UNLIMITED);

	/* a path the mount does not show (container without cgroupns): the root is read */
	put("self_cgroup", "0::/docker/0123abcd\n");
	put("cg/pids.max", "1000\n");
	assert_int_equal(wd_cgroup_read(root, self, &cg), 0);
	assert_int_equal(cg.pids_max, 1000);
	assert_int_equal(cg.pids_current, 400);

	/* garbage values are not limits */
	put("cg/pids.max", "lots\n");
	assert_int_equal(wd_cgroup_read(root, self, &cg), 0);
	assert_true(cg.pids_max == WD_UNLIMITED);
}

static void test_wd_proc__cgroup_v1(void **state)
{
	char root[PATH_MAX], self[PATH_MAX];
	wd_cgroup_t cg;

	cg_paths(root, self, sizeof root);
	/* as on this kind of host: v1 controllers plus an empty unified line */
	put("self_cgroup", "9:name=systemd:/\n8:pids:/docker/x\n7:blkio:/\n"
	                   "4:memory:/process_api/34ddc5\n2:cpu,cpuacct:/\n0::/\n");
	put("cg/pids/cgroup.procs", "");
	put("cg/pids/docker/pids.max", "max\n");
	put("cg/pids/docker/pids.current", "30\n");
	put("cg/pids/docker/x/pids.max", "64\n");
	put("cg/pids/docker/x/pids.current", "3\n");
	put("cg/memory/memory.limit_in_bytes", "9223372036854771712\n");
	put("cg/memory/memory.usage_in_bytes", "8000000000\n");
	put("cg/memory/process_api/memory.limit_in_bytes", "1073741824\n");
	put("cg/memory/process_api/memory.usage_in_bytes", "600000000\n");
	put("cg/memory/process_api/34ddc5/memory.limit_in_bytes", "9223372036854771712\n");
	put("cg/memory/process_api/34ddc5/memory.usage_in_bytes", "5000\n");
	assert_int_equal(wd_cgroup_read(root, self, &cg), 0);
	assert_int_equal(cg.version, 1);
	assert_true(cg.has_pids);
	assert_int_equal(cg.pids_max, 64);
	assert_int_equal(cg.pids_current, 3);
	assert_true(cg.has_memory);
	assert_int_equal(cg.memory_max, 1073741824);
	assert_int_equal(cg.memory_current, 600000000);

	/* v1's "no limit" anywhere: unlimited, the leaf's usage */
	put("cg/memory/process_api/memory.limit_in_bytes", "9223372036854771712\n");
	assert_int_equal(wd_cgroup_read(root, self, &cg), 0);
	assert_true(cg.memory_max == WD_UNLIMITED);
	assert_int_equal(cg.memory_current, 5000);

	/* controllers mounted together, and the root pids cgroup without files */
	put("self_cgroup", "3:cpu,pids:/a\n5:memory:/\n");
	put("cg/cpu,pids/a/pids.max", "max\n");
	put("cg/cpu,pids/a/pids.current", "7\n");
	assert_int_equal(wd_cgroup_read(root, self, &cg), 0);
	assert_true(cg.has_pids);
	assert_true(cg.pids_max == WD_UNLIMITED);
	assert_int_equal(cg.pids_current, 7);
	assert_true(cg.has_memory);
	assert_int_equal(cg.memory_current, 8000000000ull);

	put("self_cgroup", "8:pids:/\n");
	assert_int_equal(wd_cgroup_read(root, self, &cg), 0);
	assert_int_equal(cg.version, 1);
	assert_false(cg.has_pids); /* the root of a v1 hierarchy has no pids.current */
	assert_false(cg.has_memory);
}

static void test_wd_proc__cgroup_missing(void **state)
{
	char root[PATH_MAX], self[PATH_MAX];
	wd_cgroup_t cg;

	cg_paths(root, self, sizeof root);
	assert_int_equal(wd_cgroup_read(root, self, &cg), -ENOENT);
	put("self_cgroup", "1:name=systemd:/user.slice\nnonsense\n\n::\n");
	assert_int_equal(wd_cgroup_read(root, self, &cg), 0);
	assert_int_equal(cg.version, 0);
	assert_false(cg.has_pids);
	assert_true(cg.pids_max == WD_UNLIMITED);
	/* the real machine: whatever it has, it reads without error */
	assert_int_equal(wd_cgroup_read("/sys/fs/cgroup", "/proc/self/cgroup", &cg), 0);
}

/* ---- settings ---- */

static const char *const vars[] = { "WATCHDOG_INTERVAL_SECONDS", "PID_THRESHOLD",
	                            "BROWSER_RSS_LIMIT_MB", "PIDS_HEADROOM_PERCENT",
	                            "ORPHAN_GRACE_SECONDS" };

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
}

static void test_wd_proc__opts_defaults_and_values(void **state)
{
	wd_opts_t o;
	errlist_t e;

	clear_env();
	errlist_init(&e);
	wd_opts_init(&o);
	assert_int_equal(wd_opts_from_env(&o, &e), 0);
	assert_int_equal(o.interval_ms, 10000);
	assert_int_equal(o.pid_threshold, 200);
	assert_int_equal(o.browser_rss_limit, 0);
	assert_int_equal(o.pids_headroom_percent, 80);
	assert_int_equal(o.orphan_grace_ms, 5000);
	assert_string_equal(o.proc_root, "/proc");
	assert_int_equal(e.count, 0);

	setenv("WATCHDOG_INTERVAL_SECONDS", "3600", 1);
	setenv("PID_THRESHOLD", "10", 1);
	setenv("BROWSER_RSS_LIMIT_MB", "2048", 1);
	setenv("PIDS_HEADROOM_PERCENT", "99", 1);
	setenv("ORPHAN_GRACE_SECONDS", "1", 1);
	assert_int_equal(wd_opts_from_env(&o, &e), 0);
	assert_int_equal(o.interval_ms, 3600u * 1000);
	assert_int_equal(o.pid_threshold, 10);
	assert_int_equal(o.browser_rss_limit, 2048ull << 20);
	assert_int_equal(o.pids_headroom_percent, 99);
	assert_int_equal(o.orphan_grace_ms, 1000);
	setenv("BROWSER_RSS_LIMIT_MB", "0", 1);
	assert_int_equal(wd_opts_from_env(&o, &e), 0);
	assert_int_equal(o.browser_rss_limit, 0);
	errlist_release(&e);
	clear_env();
}

static void test_wd_proc__opts_every_bad_value_listed(void **state)
{
	static const struct {
		const char *var, *value, *expected;
	} bad[] = {
		{ "WATCHDOG_INTERVAL_SECONDS", "0", "from 1 to 3600" },
		{ "PID_THRESHOLD", "9", "from 10 to 100000" },
		{ "BROWSER_RSS_LIMIT_MB", "63", "0 (none) or a whole number from 64 to 1048576" },
		{ "PIDS_HEADROOM_PERCENT", "100", "from 50 to 99" },
		{ "ORPHAN_GRACE_SECONDS", "-1", "from 1 to 600" },
	};
	static const char *const junk[] = {
		"", " 5", "5s", "+5", "1e3", "99999999999999999999999"
	};
	wd_opts_t o;
	errlist_t e;

	clear_env();
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		setenv(bad[i].var, bad[i].value, 1);
	errlist_init(&e);
	wd_opts_init(&o);
	assert_int_equal(wd_opts_from_env(&o, &e), -EINVAL);
	assert_int_equal(e.count, 5);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char line[256];
		snprintf(line, sizeof line, "%s='%s': expected ", bad[i].var, bad[i].value);
		assert_non_null(strstr(errlist_text(&e), line));
		assert_non_null(strstr(errlist_text(&e), bad[i].expected));
	}
	/* the defaults stay */
	assert_int_equal(o.interval_ms, 10000);
	assert_int_equal(o.pid_threshold, 200);
	errlist_release(&e);

	clear_env();
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		errlist_init(&e);
		setenv("PID_THRESHOLD", junk[i], 1);
		assert_int_equal(wd_opts_from_env(&o, &e), -EINVAL);
		assert_int_equal(e.count, 1);
		errlist_release(&e);
	}
	clear_env();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wd_proc__classifies_chromium_command_lines),
		cmocka_unit_test(test_wd_proc__parses_stat_with_odd_comm),
		cmocka_unit_test_setup_teardown(test_wd_proc__scans_a_chromium_tree, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_wd_proc__vanishing_and_malformed_entries,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_wd_proc__unreadable_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wd_proc__odd_comm_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wd_proc__zombies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wd_proc__deep_and_wide_trees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wd_proc__cycles_do_not_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wd_proc__cgroup_v2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wd_proc__cgroup_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wd_proc__cgroup_missing, setup, teardown),
		cmocka_unit_test(test_wd_proc__opts_defaults_and_values),
		cmocka_unit_test(test_wd_proc__opts_every_bad_value_listed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
