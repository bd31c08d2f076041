/*
 * wd_proc: the watchdog's pure part. Reads a /proc tree and builds the tree of every
 * descendant of one process, each classified by its command line (Chromium's process
 * types); reads the cgroup limits the process runs under. No loop, no signals, no global
 * state: the proc root and the cgroup root are parameters, so unit tests scan fake trees
 * made in a temp dir, and the watchdog (watchdog.h) scans "/proc".
 *
 * Robustness: a scan never fails because of one process. Entries that are not numbers,
 * processes that vanish between readdir() and the read of their files, entries that
 * cannot be read (EACCES), kernel threads (PF_KTHREAD, pid 2 and its children), command
 * names with spaces, ')' or newlines (fields are counted from the LAST ')' of
 * /proc/PID/stat, as procps does) are all handled: skipped, or kept with what could be
 * read, and counted in wd_tree_t.skipped / .unreadable.
 *
 * Identity: a pid alone can be reused; (pid, starttime) names one process for its whole
 * life. Callers that act on a pid later (signals) check the starttime again first.
 */
#ifndef CDPILOT_WATCHDOG_WD_PROC_H
#define CDPILOT_WATCHDOG_WD_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Kind of process, from its command line. Indexes the per-class totals. */
enum wd_class {
	WD_CLASS_BROWSER = 0, /* a Chromium binary without --type=: the browser main process */
	WD_CLASS_RENDERER,    /* --type=renderer */
	WD_CLASS_GPU,         /* --type=gpu-process */
	WD_CLASS_UTILITY,     /* --type=utility (network, storage, audio services) */
	WD_CLASS_ZYGOTE,      /* --type=zygote */
	WD_CLASS_CRASHPAD,    /* chrome_crashpad_handler */
	WD_CLASS_OTHER,       /* anything else, zombies and unreadable command lines included */
	WD_NCLASSES
};

/* "browser", "renderer", "gpu", "utility", "zygote", "crashpad", "other"; never NULL. */
const char *wd_class_name(enum wd_class c);

/*
 * Classifies a command line as read from /proc/PID/cmdline: args (len bytes, need not be
 * NUL-terminated) separated by NULs, or by spaces (Chromium's zygote children rewrite
 * their command line into one space-separated string). argv[0]'s base name decides
 * crashpad ("*crashpad_handler") and whether a process without --type= is a browser
 * (chromium, chromium-headless-shell, chromium-browser, chrome, google-chrome*,
 * headless_shell); the first --type=VALUE argument decides the rest. Empty input is WD_CLASS_OTHER.
 */
enum wd_class wd_classify(const char *args, size_t len);

/* What one /proc/PID/stat says that the watchdog uses. */
typedef struct wd_stat {
	pid_t pid, ppid;
	char state;         /* 'R', 'S', 'D', 'Z' (zombie), 'X', ... */
	char comm[64];      /* as the kernel reports it (may hold spaces, ')' and '\n') */
	unsigned flags;     /* field 9; PF_KTHREAD is 0x00200000 */
	unsigned threads;   /* field 20 */
	uint64_t starttime; /* field 22, clock ticks after boot */
	uint64_t rss_pages; /* field 24 */
} wd_stat_t;

/*
 * Parses the content of a /proc/PID/stat file (len bytes, need not be NUL-terminated):
 * "pid (comm) state ppid ...", fields after the comm counted from its LAST ')'. Returns 0,
 * or -EINVAL if the text does not have that shape (missing fields, non-numbers).
 */
int wd_parse_stat(const char *buf, size_t len, wd_stat_t *out);

/* Reads and parses proc_root/PID/stat. 0, -ENOENT/-ESRCH (gone), -EACCES, -EINVAL. */
int wd_read_stat(const char *proc_root, pid_t pid, wd_stat_t *out);

#define WD_CMDLINE_MAX 256        /* bytes kept of a command line (with its NUL) */
#define WD_TREE_MAX (128 * 1024)  /* descendants kept by one scan; more: truncated */
#define WD_SCAN_MAX (1024 * 1024) /* /proc entries looked at by one scan; more: truncated */

typedef struct wd_proc {
	pid_t pid, ppid;
	char state;
	unsigned threads;
	uint64_t starttime;
	uint64_t rss_bytes;
	enum wd_class klass;
	int parent;     /* index in wd_tree_t.procs of the parent; -1: the root */
	unsigned depth; /* 1 for the root's children */
	int anchor;     /* set by wd_tree_anchor(); -1 before */
	char comm[64];
	char cmdline[WD_CMDLINE_MAX]; /* NULs made spaces, unprintable bytes '?', capped */
} wd_proc_t;

typedef struct wd_totals {
	unsigned procs;
	uint64_t threads;
	uint64_t rss_bytes;
} wd_totals_t;

/*
 * Result of one scan. Caller storage: wd_tree_init() once, wd_scan() as often as wanted
 * (the arrays are reused and grow up to their caps), wd_tree_release() at the end.
 */
typedef struct wd_tree {
	pid_t root_pid;
	int root_found;   /* the root's own entry is in .root */
	wd_proc_t root;   /* cdpilot itself when the watchdog scans (not in procs) */
	wd_proc_t *procs; /* the descendants in breadth-first order (parents first) */
	size_t nprocs;
	wd_totals_t total; /* over procs (the root excluded) */
	wd_totals_t by_class[WD_NCLASSES];
	unsigned zombies;    /* procs in state 'Z' or 'X' */
	unsigned skipped;    /* entries gone or malformed while scanning */
	unsigned unreadable; /* entries (stat or cmdline) refused with EACCES/EPERM */
	int truncated;       /* more than WD_SCAN_MAX entries or WD_TREE_MAX descendants */
	/* scratch kept between scans */
	void *all;
	size_t all_cap, procs_cap;
} wd_tree_t;

void wd_tree_init(wd_tree_t *t);
void wd_tree_release(wd_tree_t *t);

/*
 * Scans proc_root (normally "/proc") and fills *out with every descendant of root (the
 * root's own entry goes to out->root). Reads PID/stat of every process (pid, ppid, state,
 * threads, starttime, RSS = field 24 pages x the page size) and PID/cmdline of the
 * descendants (classification and a capped display copy). Returns 0 (single processes
 * that could not be read do not fail the scan), -errno if proc_root cannot be opened, or
 * -ENOMEM (out then holds nothing).
 */
int wd_scan(const char *proc_root, pid_t root, wd_tree_t *out);

/*
 * Marks each proc's .anchor with the index in anchors[0..n) of the nearest of itself or
 * its ancestors (within the tree) whose pid is listed, or -1 when none is. The watchdog
 * passes the browser pids and the daemon's own children: what is left at -1 is an orphan.
 */
void wd_tree_anchor(wd_tree_t *t, const pid_t *anchors, size_t n);

/* Index in t->procs of pid, or -1. */
int wd_tree_find(const wd_tree_t *t, pid_t pid);

/* ---- cgroups ---- */

#define WD_UNLIMITED UINT64_MAX

typedef struct wd_cgroup {
	int version;       /* 2 (unified), 1 (legacy controllers), 0: nothing found */
	int has_pids;      /* the pids controller was found */
	uint64_t pids_max; /* WD_UNLIMITED for "max" */
	uint64_t pids_current;
	int has_memory;
	uint64_t memory_max;     /* bytes; WD_UNLIMITED for "max" or v1's huge "no limit" */
	uint64_t memory_current; /* bytes */
	char path[256];          /* the cgroup path of the process ("/" at a namespace root) */
} wd_cgroup_t;

/*
 * Reads the pids and memory limits of the cgroup that self_cgroup_file (normally
 * "/proc/self/cgroup") names, under root (normally "/sys/fs/cgroup"). v2 (the "0::PATH"
 * line): root/PATH/pids.max, pids.current, memory.max, memory.current. v1 (lines
 * "N:CONTROLLERS:PATH"): root/CONTROLLERS/PATH/pids.max, pids.current and
 * memory.limit_in_bytes, memory.usage_in_bytes. A v1 controller wins over the v2 line
 * (hybrid hosts). If root/PATH does not exist (a container that sees its own cgroup as the
 * root) the root itself is read. A limit may be set on an ancestor: every level from the
 * process's cgroup up to the root is read and the level with the least headroom
 * (max - current) is reported. Returns 0 (out->version 0 if no cgroup is found; missing
 * controllers leave has_* at 0), or -errno if self_cgroup_file cannot be read.
 */
int wd_cgroup_read(const char *root, const char *self_cgroup_file, wd_cgroup_t *out);

#endif
