/*
 * wd_proc: /proc and cgroup reading for the watchdog (see wd_proc.h). Pure functions over
 * a root directory; the only state is the caller's wd_tree_t.
 */
#include "watchdog/wd_proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/procstat.h"
#include "watchdog/wd_priv.h"

#define PF_KTHREAD_FLAG 0x00200000u
#define STAT_READ_MAX 4096
#define CMDLINE_READ_MAX (16 * 1024)

static const char *const class_names[WD_NCLASSES] = {
	[WD_CLASS_BROWSER] = "browser", [WD_CLASS_RENDERER] = "renderer",
	[WD_CLASS_GPU] = "gpu",         [WD_CLASS_UTILITY] = "utility",
	[WD_CLASS_ZYGOTE] = "zygote",   [WD_CLASS_CRASHPAD] = "crashpad",
	[WD_CLASS_OTHER] = "other",
};

const char *wd_class_name(enum wd_class c)
{
	if ((unsigned)c >= WD_NCLASSES)
		return "other";
	return class_names[c];
}

/* Base names of Chromium builds whose process without --type= is a browser. */
static const char *const browser_names[] = { "chromium", "chromium-browser", "chrome",
	                                     "headless_shell", "chrome-headless-shell",
	                                     "chromium-headless-shell" };

/* The value of --type= and the class it means. */
static const struct {
	const char *type;
	enum wd_class klass;
} type_classes[] = {
	{ "renderer", WD_CLASS_RENDERER },         { "gpu-process", WD_CLASS_GPU },
	{ "utility", WD_CLASS_UTILITY },           { "zygote", WD_CLASS_ZYGOTE },
	{ "crashpad-handler", WD_CLASS_CRASHPAD },
};

static int is_sep(char c)
{
	return c == '\0' || c == ' ';
}

static int tok_eq(const char *t, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(t, s, n) == 0;
}

static int tok_ends_with(const char *t, size_t n, const char *s)
{
	size_t sl = strlen(s);
	return n >= sl && memcmp(t + n - sl, s, sl) == 0;
}

enum wd_class wd_classify(const char *args, size_t len)
{
	size_t i = 0, tokn = 0;
	const char *argv0 = NULL, *base;
	size_t argv0n = 0, basen;

	while (i < len) {
		size_t start, n;
		while (i < len && is_sep(args[i]))
			i++;
		if (i >= len)
			break;
		start = i;
		while (i < len && !is_sep(args[i]))
			i++;
		n = i - start;
		if (tokn++ == 0) {
			argv0 = args + start;
			argv0n = n;
			continue;
		}
		if (n >= 7 && memcmp(args + start, "--type=", 7) == 0) {
			const char *v = args + start + 7;
			/* A crashpad binary is crashpad whatever its arguments say. */
			if (tok_ends_with(argv0, argv0n, "crashpad_handler"))
				return WD_CLASS_CRASHPAD;
			for (size_t k = 0; k < sizeof type_classes / sizeof type_classes[0]; k++)
				if (tok_eq(v, n - 7, type_classes[k].type))
					return type_classes[k].klass;
			return WD_CLASS_OTHER;
		}
	}
	if (!argv0)
		return WD_CLASS_OTHER;
	base = argv0;
	for (size_t k = 0; k < argv0n; k++)
		if (argv0[k] == '/')
			base = argv0 + k + 1;
	basen = argv0n - (size_t)(base - argv0);
	if (tok_ends_with(base, basen, "crashpad_handler"))
		return WD_CLASS_CRASHPAD;
	for (size_t k = 0; k < sizeof browser_names / sizeof browser_names[0]; k++)
		if (tok_eq(base, basen, browser_names[k]))
			return WD_CLASS_BROWSER;
	if (basen >= 13 && memcmp(base, "google-chrome", 13) == 0)
		return WD_CLASS_BROWSER;
	return WD_CLASS_OTHER;
}

/* ---- /proc/PID/stat ---- */

/* Digits only, no sign, no overflow. */
int wd__parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int wd_parse_stat(const char *buf, size_t len, wd_stat_t *out)
{
	const char *lp = NULL, *rp = NULL, *p, *end = buf + len;
	uint64_t v;
	size_t n, field = 3;

	memset(out, 0, sizeof *out);
	if (len)
		lp = memchr(buf, '(', len);
	p = procstat_after_comm(buf, len);
	if (p)
		rp = p - 1;
	if (!lp || !rp || rp < lp || lp == buf || lp[-1] != ' ')
		return -EINVAL;
	if (wd__parse_u64(buf, (size_t)(lp - 1 - buf), &v) || v == 0 || v > INT_MAX)
		return -EINVAL;
	out->pid = (pid_t)v;
	n = (size_t)(rp - lp - 1);
	if (n >= sizeof out->comm)
		n = sizeof out->comm - 1;
	memcpy(out->comm, lp + 1, n);
	out->comm[n] = '\0';

	/* Fields from 3 on, one space apart; the last may end in '\n'. */
	while (field <= 24) {
		const char *t = NULL;
		if (procstat_next_field(&p, end, &t, &n))
			return -EINVAL;
		switch (field) {
		case 3:
			if (n != 1)
				return -EINVAL;
			out->state = t[0];
			break;
		case 4:
			if (wd__parse_u64(t, n, &v) || v > INT_MAX)
				return -EINVAL;
			out->ppid = (pid_t)v;
			break;
		case 9:
			if (wd__parse_u64(t, n, &v) || v > UINT_MAX)
				return -EINVAL;
			out->flags = (unsigned)v;
			break;
		case 20:
			if (wd__parse_u64(t, n, &v) || v > UINT_MAX)
				return -EINVAL;
			out->threads = (unsigned)v;
			break;
		case 22:
			if (wd__parse_u64(t, n, &out->starttime))
				return -EINVAL;
			break;
		case 24:
			if (wd__parse_u64(t, n, &out->rss_pages))
				return -EINVAL;
			break;
		default: break;
		}
		field++;
	}
	return 0;
}

/* Reads up to cap bytes of path into buf. 0 and *len, or -errno. */
int wd__read_small(const char *path, char *buf, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	size_t got = 0;
	int rc = 0;

	*len = 0;
	if (fd < 0)
		return -errno;
	while (got < cap) {
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*len = got;
	return rc;
}

int wd_read_stat(const char *proc_root, pid_t pid, wd_stat_t *out)
{
	char path[PATH_MAX], buf[STAT_READ_MAX];
	size_t len = 0;
	int rc;

	if (snprintf(path, sizeof path, "%s/%d/stat", proc_root, (int)pid) >= (int)sizeof path)
		return -ENAMETOOLONG;
	rc = wd__read_small(path, buf, sizeof buf, &len);
	if (rc)
		return rc;
	if (len == 0)
		return -ESRCH;
	rc = wd_parse_stat(buf, len, out);
	if (rc == 0 && out->pid != pid)
		return -EINVAL;
	return rc;
}

/* ---- the tree ---- */

void wd_tree_init(wd_tree_t *t)
{
	memset(t, 0, sizeof *t);
}

void wd_tree_release(wd_tree_t *t)
{
	free(t->all);
	free(t->procs);
	memset(t, 0, sizeof *t);
}

static int by_ppid(const void *a, const void *b)
{
	const wd_stat_t *x = a, *y = b;
	if (x->ppid != y->ppid)
		return x->ppid < y->ppid ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* First index in all[0..n) (sorted by ppid) with ppid >= key. */
static size_t lower_ppid(const wd_stat_t *all, size_t n, pid_t key)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (all[mid].ppid < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int is_numeric_name(const char *s, pid_t *pid)
{
	uint64_t v;
	size_t n = strlen(s);

	if (wd__parse_u64(s, n, &v) || v == 0 || v > INT_MAX || (n > 1 && s[0] == '0'))
		return 0;
	*pid = (pid_t)v;
	return 1;
}

static void fill_proc(wd_proc_t *p, const wd_stat_t *s, long page)
{
	memset(p, 0, sizeof *p);
	p->pid = s->pid;
	p->ppid = s->ppid;
	p->state = s->state;
	p->threads = s->threads;
	p->starttime = s->starttime;
	p->rss_bytes = s->rss_pages * (uint64_t)page;
	p->klass = WD_CLASS_OTHER;
	p->parent = -1;
	p->anchor = -1;
	memcpy(p->comm, s->comm, sizeof p->comm);
}

/* Reads the command line of p: class and display copy. Counts EACCES as unreadable. */
static void read_cmdline(const char *proc_root, wd_proc_t *p, char *buf, wd_tree_t *t)
{
	char path[PATH_MAX];
	size_t len = 0, o = 0;
	int rc;

	p->cmdline[0] = '\0';
	if (snprintf(path, sizeof path, "%s/%d/cmdline", proc_root, (int)p->pid) >=
	    (int)sizeof path)
		return;
	rc = wd__read_small(path, buf, CMDLINE_READ_MAX, &len);
	if (rc == -EACCES || rc == -EPERM)
		t->unreadable++;
	if (rc)
		return; /* gone meanwhile or unreadable: kept, as "other" */
	p->klass = wd_classify(buf, len);
	for (size_t i = 0; i < len && o + 1 < sizeof p->cmdline; i++) {
		unsigned char c = (unsigned char)buf[i];
		p->cmdline[o++] = c == '\0' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	while (o > 0 && p->cmdline[o - 1] == ' ')
		o--;
	p->cmdline[o] = '\0';
}

static void reset_results(wd_tree_t *t, pid_t root)
{
	t->root_pid = root;
	t->root_found = 0;
	memset(&t->root, 0, sizeof t->root);
	t->nprocs = 0;
	memset(&t->total, 0, sizeof t->total);
	memset(t->by_class, 0, sizeof t->by_class);
	t->zombies = t->skipped = t->unreadable = 0;
	t->truncated = 0;
}

/* Makes room for one more entry in t->all, which holds n. 0: room; 1: the cap
 * WD_SCAN_MAX is reached (t->truncated set); -ENOMEM. */
static int stats_room(wd_tree_t *t, size_t n)
{
	size_t cap = t->all_cap ? t->all_cap * 2 : 256;
	wd_stat_t *all;

	if (n < t->all_cap)
		return 0;
	if (n >= WD_SCAN_MAX) {
		t->truncated = 1;
		return 1;
	}
	if (cap > WD_SCAN_MAX)
		cap = WD_SCAN_MAX;
	all = realloc(t->all, cap * sizeof *all);
	if (!all)
		return -ENOMEM;
	t->all = all;
	t->all_cap = cap;
	return 0;
}

/* The same for t->procs, capped at WD_TREE_MAX. */
static int procs_room(wd_tree_t *t)
{
	size_t cap = t->procs_cap ? t->procs_cap * 2 : 64;
	wd_proc_t *p;

	if (t->nprocs < t->procs_cap)
		return 0;
	if (t->nprocs >= WD_TREE_MAX) {
		t->truncated = 1;
		return 1;
	}
	if (cap > WD_TREE_MAX)
		cap = WD_TREE_MAX;
	p = realloc(t->procs, cap * sizeof *p);
	if (!p)
		return -ENOMEM;
	t->procs = p;
	t->procs_cap = cap;
	return 0;
}

/* Pass 1: the stat of every process below proc_root (d), kernel threads left out, into
 * t->all; *nall says how many. Returns 0 or -ENOMEM. */
static int read_all_stats(DIR *d, const char *proc_root, wd_tree_t *t, size_t *nall)
{
	struct dirent *e;

	*nall = 0;
	while ((e = readdir(d)) != NULL) {
		wd_stat_t st;
		pid_t pid;
		int r;

		if (!is_numeric_name(e->d_name, &pid))
			continue;
		r = wd_read_stat(proc_root, pid, &st);
		if (r == -EACCES || r == -EPERM) {
			t->unreadable++;
			continue;
		}
		if (r) {
			t->skipped++;
			continue;
		}
		if ((st.flags & PF_KTHREAD_FLAG) || st.pid == 2 || st.ppid == 2)
			continue; /* kernel thread */
		r = stats_room(t, *nall);
		if (r < 0)
			return r;
		if (r > 0)
			break;
		((wd_stat_t *)t->all)[(*nall)++] = st;
	}
	return 0;
}

/* Pass 2: breadth-first from the root through all (sorted by ppid); the procs array is
 * the queue. Returns 0 or -ENOMEM. */
static int build_tree(wd_tree_t *t, const wd_stat_t *all, size_t nall, pid_t root, long page)
{
	for (size_t q = 0; q <= t->nprocs; q++) {
		pid_t parent_pid = q == 0 ? root : t->procs[q - 1].pid;
		int parent_idx = q == 0 ? -1 : (int)(q - 1);
		unsigned depth = q == 0 ? 1 : t->procs[q - 1].depth + 1;

		for (size_t k = lower_ppid(all, nall, parent_pid);
		     k < nall && all[k].ppid == parent_pid; k++) {
			wd_proc_t *p;
			int r;
			if (all[k].pid == root)
				continue; /* a cycle back to the root (only in broken fake trees) */
			r = procs_room(t);
			if (r < 0)
				return r;
			if (r > 0)
				break;
			p = &t->procs[t->nprocs++];
			fill_proc(p, &all[k], page);
			p->parent = parent_idx;
			p->depth = depth;
		}
	}
	return 0;
}

/* Pass 3: command lines, classes, totals. */
static void sum_tree(const char *proc_root, wd_tree_t *t, char *cmdbuf)
{
	for (size_t i = 0; i < t->nprocs; i++) {
		wd_proc_t *p = &t->procs[i];
		if (p->state == 'Z' || p->state == 'X')
			t->zombies++;
		else
			read_cmdline(proc_root, p, cmdbuf, t);
		t->total.procs++;
		t->total.threads += p->threads;
		t->total.rss_bytes += p->rss_bytes;
		t->by_class[p->klass].procs++;
		t->by_class[p->klass].threads += p->threads;
		t->by_class[p->klass].rss_bytes += p->rss_bytes;
	}
}

int wd_scan(const char *proc_root, pid_t root, wd_tree_t *t)
{
	long page = sysconf(_SC_PAGESIZE);
	wd_stat_t *all = NULL;
	size_t nall = 0;
	DIR *d = NULL;
	char *cmdbuf = NULL;
	int rc = 0;

	reset_results(t, root);
	if (page <= 0)
		page = 4096;
	d = opendir(proc_root);
	if (!d)
		return -errno;

	rc = read_all_stats(d, proc_root, t, &nall);
	if (rc)
		goto out;
	all = t->all;
	cmdbuf = malloc(CMDLINE_READ_MAX);
	if (!cmdbuf) {
		rc = -ENOMEM;
		goto out;
	}
	qsort(all, nall, sizeof *all, by_ppid);

	for (size_t i = 0; i < nall; i++) {
		if (all[i].pid == root) {
			fill_proc(&t->root, &all[i], page);
			read_cmdline(proc_root, &t->root, cmdbuf, t);
			t->root_found = 1;
			break;
		}
	}
	rc = build_tree(t, all, nall, root, page);
	if (rc)
		goto out;
	sum_tree(proc_root, t, cmdbuf);
out:
	if (rc)
		reset_results(t, root);
	free(cmdbuf);
	closedir(d);
	return rc;
}

void wd_tree_anchor(wd_tree_t *t, const pid_t *anchors, size_t n)
{
	for (size_t i = 0; i < t->nprocs; i++) {
		wd_proc_t *p = &t->procs[i];
		p->anchor = p->parent >= 0 ? t->procs[p->parent].anchor : -1;
		for (size_t k = 0; k < n; k++) {
			if (anchors[k] == p->pid) {
				p->anchor = (int)k;
				break;
			}
		}
	}
}

int wd_tree_find(const wd_tree_t *t, pid_t pid)
{
	for (size_t i = 0; i < t->nprocs; i++)
		if (t->procs[i].pid == pid)
			return (int)i;
	return -1;
}
