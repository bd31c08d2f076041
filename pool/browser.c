/*
 * browser: launches one headless Chromium (or attaches to a running one) and owns its CDP
 * connection. Launching finds the executable, makes a fresh user-data-dir, spawns Chromium
 * through this same executable in exec-wrapper mode (parent-death signal, own session),
 * polls the profile for DevToolsActivePort and connects the websocket. Liveness is a
 * two-event rendezvous: the browser is lost only once its process has exited and its
 * socket has closed. Closing walks Browser.close -> SIGTERM -> SIGKILL, waits until no
 * process of the browser's session is left, removes the profile on the thread pool, and
 * only then calls back and frees. Every step runs on the caller's loop.
 */
#include "pool/browser.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cdp/cdp_err.h"
#include "util/fetch.h"
#include "util/log.h"

#define LOG_COMP "browser"
#define EXEC_MODE_ARG "__cdpilot-exec"
#define DEBIAN_CHROMIUM_DIR "/usr/lib/chromium"
/* In every user-data-dir we make, locked by us while the browser lives: the sweep takes a
 * directory whose lock nobody holds for a leftover. */
#define OWNER_LOCK "cdpilot.lock"
#define PORT_FILE "DevToolsActivePort"
#define PORT_POLL_MS 25
#define SESSION_POLL_MS 50
#define VERSION_MAX_BYTES ((size_t)1024 * 1024)
#define MAX_STRAGGLERS 256
/* Features we always disable (see notes: the omnibox popup renderer per context). */
#define OUR_DISABLED_FEATURES "WebUIOmniboxPopup,WebUIOmniboxAimPopup"

static const char *const candidate_names[] = {
	/* Debian's build of the old headless shell: the automation build, no UI layer; about
	 * three times the tasks per CPU second of the full browser (bench/README.md) */
	"chromium-headless-shell",
	"chromium",
	"chromium-browser",
	"google-chrome-stable",
	"google-chrome",
};

static const char *const base_flags[] = {
	"--headless",
	"--disable-gpu",
	"--no-first-run",
	"--no-default-browser-check",
	/* no initial tab: every page is created in a context of its own anyway, and the
	 * startup tab's renderer cost ~110 ms of launch (296 -> 182 ms to a ready browser) */
	"--no-startup-window",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--disable-default-apps",
	"--disable-extensions",
	/*
	 * Not --disable-crashpad-for-testing: with Chromium 156 (Debian 12) it makes every
	 * utility process crash at start ("Crashing due to FD ownership violation"), the
	 * network service among them, so no page ever loads while DevTools still answers.
	 * The two crashpad handlers it would have removed live in sessions of their own, but
	 * they exit by themselves once the browser is gone (measured: before close_cb, after
	 * Browser.close and after SIGKILL of the main process alike).
	 */
	"--disable-breakpad",
	"--disable-dev-shm-usage",
	"--mute-audio",
	"--hide-scrollbars",
	"--metrics-recording-only",
	"--password-store=basic",
	"--use-mock-keychain",
	"--disable-quic",
	"--remote-debugging-address=127.0.0.1",
	"--remote-debugging-port=0",
};

/* ---- state ---- */

enum browser_state {
	BS_NEW,        /* created, not started */
	BS_RESOLVING,  /* attach: GET /json/version */
	BS_LAUNCHING,  /* spawned, waiting for DevToolsActivePort */
	BS_CONNECTING, /* websocket handshake */
	BS_READY,      /* ready_cb(0) fired; conn open */
	BS_FAILED,     /* ready_cb(error) fired */
	BS_LOST,       /* on_lost fired */
	BS_CLOSING,    /* browser_close() running */
	BS_CLOSED,     /* closed_cb about to fire */
};

static const char *const state_names[] = {
	"new",    "resolving", "launching", "connecting", "ready",
	"failed", "lost",      "closing",   "closed",
};

#define S(x) (1u << (x))
static const unsigned legal_next[] = {
	[BS_NEW] =
	        S(BS_RESOLVING) | S(BS_LAUNCHING) | S(BS_CONNECTING) | S(BS_FAILED) | S(BS_CLOSING),
	[BS_RESOLVING] = S(BS_CONNECTING) | S(BS_FAILED) | S(BS_CLOSING),
	[BS_LAUNCHING] = S(BS_CONNECTING) | S(BS_FAILED) | S(BS_CLOSING),
	[BS_CONNECTING] = S(BS_READY) | S(BS_FAILED) | S(BS_CLOSING),
	[BS_READY] = S(BS_LOST) | S(BS_CLOSING),
	[BS_FAILED] = S(BS_CLOSING),
	[BS_LOST] = S(BS_CLOSING),
	[BS_CLOSING] = S(BS_CLOSED),
	[BS_CLOSED] = 0,
};
#undef S

struct browser {
	uv_loop_t *loop;
	cdp_wsctx_t *ws;
	enum browser_state state;

	/* options (strings owned) */
	char *opt_chromium_path;
	char *opt_extra_flags;
	char *opt_cdp_url;
	uint32_t launch_timeout_ms;
	uint32_t grace_ms;
	int allow_new_windows;
	cdp_conn_opts_t conn_opts;

	/* callbacks */
	browser_ready_cb ready_cb;
	browser_lost_cb lost_cb;
	void *ud;
	int ready_fired;
	int in_start;        /* inside browser_start(): failures are reported from the loop */
	int deferred_status; /* failure found inside browser_start(), reported from the loop */
	char deferred_why[1536];
	browser_closed_cb closed_cb;
	void *closed_ud;

	/* what we run or attach to */
	int attached;
	char *exe;        /* launched: the path executed */
	char *udd;        /* launched: the user-data-dir (NULL until made) */
	int lock_fd;      /* launched: OWNER_LOCK in udd, flock()ed; -1 if none */
	char *attach_url; /* attached: CDP_URL as given */
	char ws_url[1024];
	char port_prev[512]; /* last partial DevToolsActivePort content seen */

	/* the process */
	uv_process_t proc;
	int proc_inited;  /* uv_spawn() was called: the handle must be closed */
	int proc_running; /* spawned and not yet reaped by libuv */
	int proc_closed;  /* the handle's close callback ran */
	pid_t pid;        /* main pid = its session and process group id; kept after exit */
	int pidfd;
	int64_t exit_status;
	int term_signal;
	uint64_t spawn_ns, exit_ms;
	uint64_t launch_ms;
	int session_empty;
	int straggler_kills;

	/* timers */
	uv_timer_t t_launch; /* launch deadline; also reports deferred failures */
	uv_timer_t t_poll;   /* DevToolsActivePort poll, later the session scan */
	uv_timer_t t_kill;   /* close: Browser.close -> SIGTERM -> SIGKILL */
	int kill_step;
	int timers_open;

	/* attach lookup */
	fetch_ctx_t *fetch;
	int fetch_closing;

	/* connection */
	cdp_conn_t *conn;
	int connect_pending;
	int conn_lost;
	int conn_closing;
	int conn_closed;
	char lost_why[512];

	/* close */
	uint64_t close_start_ms;
	int rm_started;
	int rm_rc;
	uv_work_t rm_work;
};

static void browser_set_state(browser_t *b, enum browser_state next)
{
	if (!(legal_next[b->state] & (1u << next))) {
		log_error(LOG_COMP, "illegal state transition %s -> %s", state_names[b->state],
		          state_names[next]);
		abort();
	}
	log_debug(LOG_COMP, "%s -> %s", state_names[b->state], state_names[next]);
	b->state = next;
}

static void close_progress(browser_t *b);
static void on_conn_closed(cdp_conn_t *conn, void *ud);

/* ---- small helpers ---- */

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static void fire_ready(browser_t *b, int status, const char *why)
{
	if (b->ready_fired || !b->ready_cb)
		return;
	b->ready_fired = 1;
	b->ready_cb(b, status, why ? why : "", b->ud);
}

/* Signals the main process and its process group, only while libuv has not reaped it. */
static void kill_tree(browser_t *b, int sig)
{
	if (!b->proc_running)
		return;
	log_debug(LOG_COMP, "sending SIG%s to Chromium pid %d and its process group",
	          sigabbrev_np(sig), (int)b->pid);
	if (b->pidfd >= 0)
		pidfd_send_signal(b->pidfd, sig, NULL, 0);
	else
		kill(b->pid, sig);
	kill(-b->pid, sig);
}

static void conn_close(browser_t *b)
{
	if (!b->conn || b->conn_closing)
		return;
	b->conn_closing = 1;
	cdp_conn_close(b->conn, on_conn_closed, b);
}

static void on_fetch_closed(void *ud);
static void on_launch_timer(uv_timer_t *t);

/*
 * A launch or attach failure before ready: stop what is running and report it (from the
 * loop: inside browser_start() the report waits for a 0 ms timer).
 */
static void launch_fail(browser_t *b, int status, const char *why)
{
	log_warn(LOG_COMP, "browser start failed: %s", why);
	browser_set_state(b, BS_FAILED);
	uv_timer_stop(&b->t_launch);
	uv_timer_stop(&b->t_poll);
	kill_tree(b, SIGKILL);
	if (b->fetch && !b->fetch_closing) {
		b->fetch_closing = 1;
		fetch_ctx_close(b->fetch, on_fetch_closed, b);
	}
	conn_close(b);
	if (b->in_start) {
		b->deferred_status = status;
		snprintf(b->deferred_why, sizeof b->deferred_why, "%s", why);
		uv_timer_start(&b->t_launch, on_launch_timer, 0, 0);
		return;
	}
	fire_ready(b, status, why);
}

/* ---- /proc ---- */

int browser_parse_proc_stat(const char *buf, size_t len, char *state, pid_t *sid)
{
	const char *p = NULL, *end = buf + len;
	long v[4] = { 0 };
	char st;

	for (size_t i = len; i > 0; i--) {
		if (buf[i - 1] == ')') {
			p = buf + i;
			break;
		}
	}
	if (!p)
		return -EINVAL;
	/* " S ppid pgrp session ..." */
	if (p >= end || *p != ' ')
		return -EINVAL;
	p++;
	if (p >= end || !isalpha((unsigned char)*p))
		return -EINVAL;
	st = *p++;
	for (int f = 0; f < 3; f++) {
		int neg = 0;
		long n = 0;
		if (p >= end || *p != ' ')
			return -EINVAL;
		p++;
		if (p < end && *p == '-') {
			neg = 1;
			p++;
		}
		if (p >= end || !isdigit((unsigned char)*p))
			return -EINVAL;
		while (p < end && isdigit((unsigned char)*p)) {
			if (n > (LONG_MAX - 9) / 10)
				return -EINVAL;
			n = n * 10 + (*p++ - '0');
		}
		v[f] = neg ? -n : n;
	}
	if (p < end && *p != ' ' && *p != '\n')
		return -EINVAL;
	if (v[2] < 0 || v[2] > INT_MAX)
		return -EINVAL;
	*state = st;
	*sid = (pid_t)v[2];
	return 0;
}

int browser_session_members(const char *proc_root, pid_t sid, pid_t *pids, size_t max)
{
	DIR *d = opendir(proc_root);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX], buf[1024], st = 0;
		pid_t s = 0;
		ssize_t r;
		int fd;
		char *endp;
		long pid = strtol(e->d_name, &endp, 10);

		if (!isdigit((unsigned char)e->d_name[0]) || *endp || pid <= 0)
			continue;
		if (snprintf(path, sizeof path, "%s/%s/stat", proc_root, e->d_name) >=
		    (int)sizeof path)
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone meanwhile */
		r = read(fd, buf, sizeof buf);
		close(fd);
		if (r <= 0)
			continue;
		if (browser_parse_proc_stat(buf, (size_t)r, &st, &s) != 0)
			continue;
		if (s != sid || st == 'Z' || st == 'X' || st == 'x')
			continue;
		if (pids && (size_t)n < max)
			pids[n] = (pid_t)pid;
		n++;
	}
	closedir(d);
	return n;
}

/* ---- executable ---- */

static int is_executable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int is_shell_script(const char *path)
{
	char head[2] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return 0;
	r = read(fd, head, sizeof head);
	close(fd);
	return r == 2 && head[0] == '#' && head[1] == '!';
}

/* Writes path (or the Debian binary behind a wrapper script) to out. Debian's
 * /usr/bin/chromium and /usr/bin/chromium-headless-shell are scripts that add flags of
 * their own; the binary of the same name in /usr/lib/chromium is what they run. */
static int resolve_found(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *use = path, *base = strrchr(path, '/');
	char bin[PATH_MAX];

	base = base ? base + 1 : path;
	if (is_shell_script(path) &&
	    ((snprintf(bin, sizeof bin, "%s/%s", DEBIAN_CHROMIUM_DIR, base) < (int)sizeof bin &&
	      is_executable_file(bin)) ||
	     (snprintf(bin, sizeof bin, "%s/chromium", DEBIAN_CHROMIUM_DIR) < (int)sizeof bin &&
	      is_executable_file(bin)))) {
		use = bin;
		log_info(LOG_COMP,
		         "%s is a shell script (a wrapper that adds flags of its own); "
		         "using the binary %s",
		         path, use);
	} else {
		log_info(LOG_COMP, "using Chromium at %s", use);
	}
	if (snprintf(out, outlen, "%s", use) >= (int)outlen) {
		snprintf(err, errlen, "Chromium path '%s' is too long", use);
		return -ENAMETOOLONG;
	}
	return 0;
}

int browser_find_executable(const char *explicit_path, char *out, size_t outlen, char *err,
                            size_t errlen)
{
	const char *given = explicit_path && *explicit_path ? explicit_path : NULL;
	const char *source = "the chromium_path option";
	const char *path_env = env_nonempty("PATH");
	const char *dirs = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
	char tried[1024] = "";
	size_t tl = 0;

	if (errlen)
		err[0] = '\0';
	if (!given && (given = env_nonempty("CHROMIUM_PATH")) != NULL)
		source = "CHROMIUM_PATH";
	if (given) {
		if (!is_executable_file(given)) {
			int e = access(given, F_OK) != 0 ? errno : 0;
			snprintf(err, errlen,
			         "Chromium path '%s' (from %s) is not an executable file%s%s",
			         given, source, e ? ": " : "", e ? strerror(e) : "");
			return CDP_ENOBROWSER;
		}
		/* Used as given, even a wrapper script: the operator chose it. */
		if (snprintf(out, outlen, "%s", given) >= (int)outlen) {
			snprintf(err, errlen, "Chromium path '%s' (from %s) is too long", given,
			         source);
			return CDP_ENOBROWSER;
		}
		log_info(LOG_COMP, "using Chromium at %s (from %s)%s", given, source,
		         is_shell_script(given) ? "; it is a script, run as given" : "");
		return 0;
	}

	for (size_t i = 0; i < sizeof candidate_names / sizeof *candidate_names; i++) {
		const char *p = dirs;
		while (*p) {
			const char *colon = strchr(p, ':');
			size_t dl = colon ? (size_t)(colon - p) : strlen(p);
			char cand[PATH_MAX];

			if (dl > 0 &&
			    snprintf(cand, sizeof cand, "%.*s/%s", (int)dl, p, candidate_names[i]) <
			            (int)sizeof cand &&
			    is_executable_file(cand))
				return resolve_found(cand, out, outlen, err, errlen) == 0
				               ? 0
				               : CDP_ENOBROWSER;
			p += dl;
			if (*p == ':')
				p++;
		}
		tl += (size_t)snprintf(tried + tl, tl < sizeof tried ? sizeof tried - tl : 0,
		                       "%s%s", i ? ", " : "", candidate_names[i]);
		if (tl >= sizeof tried)
			tl = sizeof tried - 1;
	}
	snprintf(err, errlen,
	         "no Chromium executable found: CHROMIUM_PATH is not set and none of %s is in "
	         "any directory of %s '%s'; install chromium or set CHROMIUM_PATH",
	         tried, path_env ? "PATH" : "the default PATH", dirs);
	return CDP_ENOBROWSER;
}

/* ---- exec wrapper ---- */

int browser_exec_wrapper_main(int argc, char **argv)
{
	char *end = NULL;
	long ppid;

	if (argc < 4 || strcmp(argv[1], EXEC_MODE_ARG) != 0)
		return 0;
	errno = 0;
	ppid = strtol(argv[2], &end, 10);
	if (errno || !end || *end || ppid <= 0)
		_exit(127);
	/* Before exec: the kernel kills Chromium when the thread that spawned us dies. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		_exit(127);
	/* The parent may have died before prctl(): then nobody would ever kill us. */
	if (getppid() != (pid_t)ppid)
		_exit(1);
	execv(argv[3], &argv[3]);
	fprintf(stderr, "cdpilot: cannot execute %s: %s\n", argv[3], strerror(errno));
	_exit(127);
}

/* ---- command line ---- */

typedef struct strvec {
	char **v;
	size_t n, cap;
} strvec_t;

static int sv_push(strvec_t *sv, const char *s)
{
	if (sv->n + 2 > sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 64;
		char **nv = realloc(sv->v, cap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		sv->v = nv;
		sv->cap = cap;
	}
	if (!(sv->v[sv->n] = strdup(s)))
		return -ENOMEM;
	sv->n++;
	sv->v[sv->n] = NULL;
	return 0;
}

static void sv_free(strvec_t *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof *sv);
}

/* Appends each comma-separated feature of list to feats (a "a,b,c" string) unless present. */
static int merge_features(char *feats, size_t cap, const char *list)
{
	const char *p = list;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);
		int present = 0;

		for (const char *q = feats; l && *q;) {
			const char *qc = strchr(q, ',');
			size_t ql = qc ? (size_t)(qc - q) : strlen(q);
			if (ql == l && memcmp(q, p, l) == 0)
				present = 1;
			q += ql;
			if (*q == ',')
				q++;
		}
		if (l && !present) {
			size_t fl = strlen(feats);
			if (fl + 1 + l + 1 > cap)
				return -E2BIG;
			snprintf(feats + fl, cap - fl, "%s%.*s", fl ? "," : "", (int)l, p);
		}
		p += l;
		if (*p == ',')
			p++;
	}
	return 0;
}

/*
 * Builds "<argv0> __cdpilot-exec <pid> <chromium> flags..." for uv_spawn. No URL: every
 * page is made in a context of its own, and the headless shell (which ignores
 * --no-startup-window) would keep a renderer alive for a startup about:blank all along.
 * Writes a reason to why on error.
 */
static int build_args(browser_t *b, strvec_t *sv, char *why, size_t whylen)
{
	const char *extra =
	        b->opt_extra_flags ? b->opt_extra_flags : env_nonempty("CHROMIUM_FLAGS");
	char feats[4096] = "";
	char *copy = NULL, *save = NULL, *tok;
	char num[32], buf[PATH_MAX + 32];
	strvec_t user = { 0 };
	int rc = 0;

	merge_features(feats, sizeof feats, OUR_DISABLED_FEATURES);
	if (extra) {
		if (!(copy = strdup(extra))) {
			rc = -ENOMEM;
			goto out;
		}
		for (tok = strtok_r(copy, " \t\r\n", &save); tok;
		     tok = strtok_r(NULL, " \t\r\n", &save)) {
			if (strncmp(tok, "--disable-features=", 19) == 0) {
				if (merge_features(feats, sizeof feats, tok + 19) != 0) {
					snprintf(why, whylen,
					         "too many --disable-features in CHROMIUM_FLAGS");
					rc = -E2BIG;
					goto out;
				}
			} else if (strncmp(tok, "--user-data-dir", 15) == 0) {
				log_warn(LOG_COMP,
				         "ignoring extra flag '%s': cdpilot makes a fresh "
				         "user-data-dir for every launch",
				         tok);
			} else if (tok[0] != '-') {
				log_warn(LOG_COMP,
				         "ignoring extra argument '%s': not a flag (headless "
				         "Chromium accepts only one URL, and cdpilot passes it)",
				         tok);
			} else if ((rc = sv_push(&user, tok)) != 0) {
				goto out;
			}
		}
	}

	snprintf(num, sizeof num, "%ld", (long)getpid());
	if ((rc = sv_push(sv, program_invocation_name)) || (rc = sv_push(sv, EXEC_MODE_ARG)) ||
	    (rc = sv_push(sv, num)) || (rc = sv_push(sv, b->exe)))
		goto out;
	for (size_t i = 0; i < sizeof base_flags / sizeof *base_flags; i++)
		if ((rc = sv_push(sv, base_flags[i])))
			goto out;
	snprintf(buf, sizeof buf, "--user-data-dir=%s", b->udd);
	if ((rc = sv_push(sv, buf)))
		goto out;
	if (geteuid() == 0 && (rc = sv_push(sv, "--no-sandbox")))
		goto out;
	/* No popups at all: with Chromium 156.0.8078.114 a popup paused at its start lives
	 * 300-500 ms after Target.closeTarget answers, so five popups 200 ms apart kept up to
	 * three alive beside their opener however the pool closed them (closeTarget, resumed
	 * first, or Page.close). The headless shell refuses the new web contents outright; the
	 * pool's closing path stays for the full chromium and attached browsers. */
	if (!b->allow_new_windows && (rc = sv_push(sv, "--block-new-web-contents")))
		goto out;
	{
		char flag[sizeof feats + 32];
		snprintf(flag, sizeof flag, "--disable-features=%s", feats);
		if ((rc = sv_push(sv, flag)))
			goto out;
	}
	for (size_t i = 0; i < user.n; i++)
		if ((rc = sv_push(sv, user.v[i])))
			goto out;
out:
	if (rc == -ENOMEM)
		snprintf(why, whylen, "out of memory building the Chromium command line");
	sv_free(&user);
	free(copy);
	return rc;
}

/* ---- connection ---- */

static void on_conn_closed(cdp_conn_t *conn, void *ud)
{
	browser_t *b = ud;

	b->conn = NULL;
	b->conn_closed = 1;
	if (b->state == BS_CLOSING)
		close_progress(b);
}

static void check_lost(browser_t *b)
{
	char why[768];

	if (b->state != BS_READY)
		return;
	if (!b->conn_lost || b->proc_running)
		return;
	if (b->attached)
		snprintf(why, sizeof why, "connection to %.200s lost: %.500s", b->ws_url,
		         b->lost_why);
	else if (b->term_signal)
		snprintf(why, sizeof why, "Chromium (pid %d) was killed by signal %d (%s); %s",
		         (int)b->pid, b->term_signal, strsignal(b->term_signal), b->lost_why);
	else
		snprintf(why, sizeof why, "Chromium (pid %d) exited with status %lld; %s",
		         (int)b->pid, (long long)b->exit_status, b->lost_why);
	browser_set_state(b, BS_LOST);
	log_warn(LOG_COMP, "browser lost: %s", why);
	if (b->lost_cb)
		b->lost_cb(b, CDP_ECONNLOST, why, b->ud);
}

/*
 * The socket closed but the process did not exit within the grace: a browser we cannot
 * talk to is of no use, so end it and let the two-event rendezvous complete.
 */
static void on_unreachable_timer(uv_timer_t *t)
{
	browser_t *b = t->data;

	if (b->state != BS_READY || !b->proc_running)
		return;
	log_warn(LOG_COMP,
	         "websocket to Chromium pid %d closed (%s) but the process still runs "
	         "after %u ms; killing it",
	         (int)b->pid, b->lost_why, b->grace_ms);
	kill_tree(b, SIGKILL);
}

static void on_conn_lost(cdp_conn_t *conn, int err, const char *why, void *ud)
{
	browser_t *b = ud;

	b->conn_lost = 1;
	snprintf(b->lost_why, sizeof b->lost_why, "websocket: %s", why ? why : cdp_strerror(err));
	if (b->state == BS_READY) {
		if (b->proc_running) {
			/* Usually the exit is on its way; if not, on_unreachable_timer ends it. */
			log_debug(LOG_COMP,
			          "websocket closed; waiting up to %u ms for Chromium pid %d "
			          "to exit",
			          b->grace_ms, (int)b->pid);
			uv_timer_start(&b->t_kill, on_unreachable_timer, b->grace_ms, 0);
		}
		check_lost(b);
	} else if (b->state == BS_CLOSING) {
		close_progress(b);
	}
}

static void on_connect(cdp_conn_t *conn, int status, const char *why, void *ud)
{
	browser_t *b = ud;
	char msg[1536];

	b->connect_pending = 0;
	if (conn) {
		b->conn = conn;
		if (b->state != BS_CONNECTING) { /* failed or closing meanwhile */
			conn_close(b);
			return;
		}
	}
	if (b->state != BS_CONNECTING) {
		if (b->state == BS_CLOSING)
			close_progress(b);
		return;
	}
	if (status != 0) {
		snprintf(msg, sizeof msg, "%s", why && *why ? why : cdp_strerror(status));
		launch_fail(b, status, msg);
		return;
	}
	uv_timer_stop(&b->t_launch);
	if (!b->attached)
		b->launch_ms = (uv_hrtime() - b->spawn_ns) / 1000000u;
	browser_set_state(b, BS_READY);
	if (b->attached)
		log_info(LOG_COMP, "attached to %s", b->ws_url);
	else
		log_info(LOG_COMP, "Chromium pid %d ready in %llu ms at %s", (int)b->pid,
		         (unsigned long long)b->launch_ms, b->ws_url);
	fire_ready(b, 0, "");
}

static void start_connect(browser_t *b)
{
	char msg[1536];
	int rc;

	browser_set_state(b, BS_CONNECTING);
	b->connect_pending = 1;
	rc = cdp_conn_new_ws(b->ws, b->ws_url, &b->conn_opts, b->launch_timeout_ms, on_connect,
	                     on_conn_lost, b);
	if (rc != 0) {
		b->connect_pending = 0;
		snprintf(msg, sizeof msg, "cannot connect to %s: %s", b->ws_url, cdp_strerror(rc));
		launch_fail(b, rc, msg);
	}
}

/* ---- launch ---- */

static void on_proc_closed(uv_handle_t *h)
{
	browser_t *b = h->data;

	b->proc_closed = 1;
	if (b->state == BS_CLOSING)
		close_progress(b);
}

static void on_proc_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
	browser_t *b = p->data;
	char msg[1536];
	int quiet;

	b->proc_running = 0;
	b->exit_status = exit_status;
	b->term_signal = term_signal;
	b->exit_ms = uv_now(b->loop);
	if (b->pidfd >= 0) {
		close(b->pidfd);
		b->pidfd = -1;
	}
	uv_close((uv_handle_t *)&b->proc, on_proc_closed);
	quiet = b->state == BS_CLOSING || b->state == BS_FAILED;
	if (term_signal)
		log_msg(quiet ? LOG_DEBUG : LOG_WARN, LOG_COMP,
		        "Chromium pid %d killed by signal %d (%s)", (int)b->pid, term_signal,
		        strsignal(term_signal));
	else
		log_msg(quiet ? LOG_DEBUG : LOG_WARN, LOG_COMP,
		        "Chromium pid %d exited with status %lld", (int)b->pid,
		        (long long)exit_status);

	switch (b->state) {
	case BS_LAUNCHING:
	case BS_CONNECTING:
		if (term_signal)
			snprintf(msg, sizeof msg,
			         "Chromium %s (pid %d) was killed by signal %d (%s) "
			         "before DevTools was ready",
			         b->exe, (int)b->pid, term_signal, strsignal(term_signal));
		else
			snprintf(msg, sizeof msg,
			         "Chromium %s (pid %d) exited with status %lld before "
			         "DevTools was ready%s",
			         b->exe, (int)b->pid, (long long)exit_status,
			         log_get_level() == LOG_DEBUG
			                 ? ""
			                 : " (LOG_LEVEL=debug shows its output)");
		launch_fail(b, CDP_ENOBROWSER, msg);
		break;
	case BS_READY: check_lost(b); break;
	case BS_CLOSING: close_progress(b); break;
	default: break;
	}
}

/*
 * Reads DevToolsActivePort: "PORT\n/devtools/browser/UUID", no final newline, perhaps
 * still being written. Returns 1 and fills ws_url when both lines are complete.
 */
static int read_port_file(browser_t *b)
{
	char path[PATH_MAX], buf[512];
	ssize_t r;
	int fd;
	char *nl, *end;
	long port;
	size_t idlen;
	const char *prefix = "/devtools/browser/";

	snprintf(path, sizeof path, "%s/%s", b->udd, PORT_FILE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = '\0';
	while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == '\r'))
		buf[--r] = '\0';
	nl = strchr(buf, '\n');
	if (!nl)
		goto partial;
	*nl = '\0';
	errno = 0;
	port = strtol(buf, &end, 10);
	if (errno || *end || port <= 0 || port > 65535)
		goto partial;
	if (strncmp(nl + 1, prefix, strlen(prefix)) != 0)
		goto partial;
	idlen = strlen(nl + 1 + strlen(prefix));
	/*
	 * A UUID is 36 characters. Anything shorter may still be growing: accept it only if
	 * it reads the same twice in a row (one poll apart).
	 */
	*nl = '\n';
	if (idlen < 36 && strcmp(buf, b->port_prev) != 0) {
		snprintf(b->port_prev, sizeof b->port_prev, "%s", buf);
		return 0;
	}
	if (idlen == 0)
		goto partial;
	*nl = '\0';
	snprintf(b->ws_url, sizeof b->ws_url, "ws://127.0.0.1:%ld%s", port, nl + 1);
	return 1;
partial:
	snprintf(b->port_prev, sizeof b->port_prev, "%s", buf);
	return 0;
}

static void on_port_poll(uv_timer_t *t)
{
	browser_t *b = t->data;

	if (b->state != BS_LAUNCHING || !read_port_file(b))
		return;
	uv_timer_stop(&b->t_poll);
	log_debug(LOG_COMP, "DevToolsActivePort after %llu ms: %s",
	          (unsigned long long)((uv_hrtime() - b->spawn_ns) / 1000000u), b->ws_url);
	start_connect(b);
}

static void on_launch_timer(uv_timer_t *t)
{
	browser_t *b = t->data;
	char msg[1536];

	if (b->deferred_status) {
		int st = b->deferred_status;
		b->deferred_status = 0;
		if (b->state == BS_FAILED)
			fire_ready(b, st, b->deferred_why);
		return;
	}
	switch (b->state) {
	case BS_RESOLVING:
		snprintf(msg, sizeof msg, "CDP_URL %s: no answer from /json/version within %u ms",
		         b->attach_url, b->launch_timeout_ms);
		break;
	case BS_LAUNCHING:
		snprintf(msg, sizeof msg, "Chromium pid %d did not write %s/%s within %u ms",
		         (int)b->pid, b->udd, PORT_FILE, b->launch_timeout_ms);
		break;
	case BS_CONNECTING:
		snprintf(msg, sizeof msg, "websocket to %s did not open within %u ms of the %s",
		         b->ws_url, b->launch_timeout_ms, b->attached ? "attach" : "launch");
		break;
	default: return;
	}
	launch_fail(b, -ETIMEDOUT, msg);
}

/* Takes OWNER_LOCK in the new user-data-dir; held (close-on-exec, so by this process
 * alone) until the handle is freed. Without it the sweep falls back on Chromium's own
 * SingletonLock, which the headless shell does not make. The file is locked under another
 * name and renamed into place, so a sweep never finds it unlocked. */
static void lock_profile(browser_t *b)
{
	char tmp[PATH_MAX], path[PATH_MAX];

	if (snprintf(path, sizeof path, "%s/" OWNER_LOCK, b->udd) >= (int)sizeof path ||
	    snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp)
		return;
	b->lock_fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (b->lock_fd < 0 || flock(b->lock_fd, LOCK_EX | LOCK_NB) != 0 || rename(tmp, path) != 0) {
		log_warn(LOG_COMP, "cannot lock %s: %s; a sweep by another cdpilot may take it for "
		         "a leftover once it is 10 minutes old", path, strerror(errno));
		if (b->lock_fd >= 0) {
			close(b->lock_fd);
			unlink(tmp);
		}
		b->lock_fd = -1;
	}
}

static int launch(browser_t *b)
{
	char exe[PATH_MAX], err[1536], tmpl[PATH_MAX];
	const char *tmp = env_nonempty("TMPDIR");
	uv_process_options_t po;
	uv_stdio_container_t stdio[3];
	strvec_t args = { 0 };
	int rc, inherit = log_get_level() == LOG_DEBUG;

	rc = browser_find_executable(b->opt_chromium_path, exe, sizeof exe, err, sizeof err);
	if (rc != 0) {
		launch_fail(b, rc, err);
		return 0;
	}
	if (!(b->exe = strdup(exe)))
		return -ENOMEM;
	snprintf(tmpl, sizeof tmpl, "%s/cdpilot-chromium-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpl)) {
		snprintf(err, sizeof err, "cannot create a user-data-dir %.1200s: %s", tmpl,
		         strerror(errno));
		launch_fail(b, -errno, err);
		return 0;
	}
	if (!(b->udd = strdup(tmpl))) {
		rmdir(tmpl);
		return -ENOMEM;
	}
	lock_profile(b);
	rc = build_args(b, &args, err, sizeof err);
	if (rc != 0) {
		sv_free(&args);
		if (rc == -ENOMEM)
			return rc;
		launch_fail(b, rc, err);
		return 0;
	}
	if (log_get_level() == LOG_DEBUG) {
		char line[8192];
		size_t l = 0;
		for (size_t i = 3; i < args.n && l < sizeof line; i++)
			l += (size_t)snprintf(line + l, sizeof line - l, "%s%s", i > 3 ? " " : "",
			                      args.v[i]);
		log_debug(LOG_COMP, "command line: %s", line);
	}

	memset(&po, 0, sizeof po);
	memset(stdio, 0, sizeof stdio);
	stdio[0].flags = UV_IGNORE; /* /dev/null */
	stdio[1].flags = inherit ? UV_INHERIT_FD : UV_IGNORE;
	stdio[1].data.fd = 1;
	stdio[2].flags = inherit ? UV_INHERIT_FD : UV_IGNORE;
	stdio[2].data.fd = 2;
	po.file = "/proc/self/exe";
	po.args = args.v;
	po.exit_cb = on_proc_exit;
	po.flags = UV_PROCESS_DETACHED; /* setsid(): its own session and process group */
	po.stdio = stdio;
	po.stdio_count = 3;
	b->proc.data = b;
	b->proc_inited = 1;
	b->spawn_ns = uv_hrtime();
	rc = uv_spawn(b->loop, &b->proc, &po);
	sv_free(&args);
	if (rc != 0) {
		uv_close((uv_handle_t *)&b->proc, on_proc_closed);
		snprintf(err, sizeof err, "cannot spawn %s through /proc/self/exe: %s", b->exe,
		         uv_strerror(rc));
		launch_fail(b, CDP_ENOBROWSER, err);
		return 0;
	}
	b->proc_running = 1;
	b->pid = b->proc.pid;
	/* Not reaped before we return to the loop, so the pidfd names our child. */
	b->pidfd = pidfd_open(b->pid, 0);
	if (b->pidfd < 0)
		log_debug(LOG_COMP, "pidfd_open(%d): %s; signalling by pid", (int)b->pid,
		          strerror(errno));
	log_info(LOG_COMP, "launched %s as pid %d, user-data-dir %s", b->exe, (int)b->pid, b->udd);
	browser_set_state(b, BS_LAUNCHING);
	uv_timer_start(&b->t_launch, on_launch_timer, b->launch_timeout_ms, 0);
	uv_timer_start(&b->t_poll, on_port_poll, PORT_POLL_MS, PORT_POLL_MS);
	return 0;
}

/* ---- attach ---- */

static void on_fetch_closed(void *ud)
{
	browser_t *b = ud;

	b->fetch = NULL;
	if (b->state == BS_CLOSING)
		close_progress(b);
}

static void on_version(const fetch_result_t *res, void *ud)
{
	browser_t *b = ud;
	char msg[1536];
	json_t *root = NULL;
	json_error_t jerr;
	const char *ws = NULL;

	if (b->state != BS_RESOLVING)
		return; /* cancelled by close or a timeout */
	b->fetch_closing = 1;
	fetch_ctx_close(b->fetch, on_fetch_closed, b);
	if (res->status != 0) {
		snprintf(msg, sizeof msg, "CDP_URL %s: GET /json/version failed: %s", b->attach_url,
		         res->error);
		launch_fail(b, res->status, msg);
		goto out;
	}
	if (res->http_code != 200) {
		snprintf(msg, sizeof msg, "CDP_URL %s: GET /json/version answered HTTP %ld",
		         b->attach_url, res->http_code);
		launch_fail(b, CDP_EBADREPLY, msg);
		goto out;
	}
	root = json_loadb(res->body, res->body_len, 0, &jerr);
	if (!root) {
		snprintf(msg, sizeof msg, "CDP_URL %s: /json/version is not JSON: %s",
		         b->attach_url, jerr.text);
		launch_fail(b, CDP_EBADREPLY, msg);
		goto out;
	}
	if (json_unpack_ex(root, &jerr, 0, "{s:s}", "webSocketDebuggerUrl", &ws) != 0) {
		snprintf(msg, sizeof msg,
		         "CDP_URL %s: /json/version has no string "
		         "webSocketDebuggerUrl (%s)",
		         b->attach_url, jerr.text);
		launch_fail(b, CDP_EBADREPLY, msg);
		goto out;
	}
	if (strncmp(ws, "ws://", 5) != 0 ||
	    snprintf(b->ws_url, sizeof b->ws_url, "%s", ws) >= (int)sizeof b->ws_url) {
		snprintf(msg, sizeof msg,
		         "CDP_URL %s: webSocketDebuggerUrl '%.512s' is not a "
		         "ws:// URL",
		         b->attach_url, ws);
		launch_fail(b, CDP_EBADREPLY, msg);
		goto out;
	}
	log_debug(LOG_COMP, "CDP_URL %s resolved to %s", b->attach_url, b->ws_url);
	start_connect(b);
out:
	json_decref(root);
}

static int attach(browser_t *b, const char *url)
{
	char msg[1536], vurl[1200];
	size_t l;
	int rc;

	b->attached = 1;
	if (!(b->attach_url = strdup(url)))
		return -ENOMEM;
	if (strncmp(url, "ws://", 5) == 0) {
		if (snprintf(b->ws_url, sizeof b->ws_url, "%s", url) >= (int)sizeof b->ws_url) {
			launch_fail(b, -EINVAL, "CDP_URL is too long");
			return 0;
		}
		uv_timer_start(&b->t_launch, on_launch_timer, b->launch_timeout_ms, 0);
		start_connect(b);
		return 0;
	}
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(msg, sizeof msg,
		         "CDP_URL '%s': expected ws://host:port/path or "
		         "http://host:port",
		         url);
		launch_fail(b, -EINVAL, msg);
		return 0;
	}
	l = strlen(url);
	while (l > 7 && url[l - 1] == '/')
		l--;
	if (l >= 13 && memcmp(url + l - 13, "/json/version", 13) == 0)
		snprintf(vurl, sizeof vurl, "%.*s", (int)l, url);
	else
		snprintf(vurl, sizeof vurl, "%.*s/json/version", (int)l, url);
	if (!(b->fetch = fetch_ctx_new(b->loop)))
		return -ENOMEM;
	rc = fetch_get(b->fetch, vurl, b->launch_timeout_ms, VERSION_MAX_BYTES, on_version, b);
	if (rc != 0) {
		b->fetch_closing = 1;
		fetch_ctx_close(b->fetch, on_fetch_closed, b);
		snprintf(msg, sizeof msg, "CDP_URL '%s': cannot GET %s: %s", url, vurl,
		         cdp_strerror(rc));
		launch_fail(b, rc == -ENOMEM ? rc : -EINVAL, msg);
		return 0;
	}
	browser_set_state(b, BS_RESOLVING);
	uv_timer_start(&b->t_launch, on_launch_timer, b->launch_timeout_ms, 0);
	return 0;
}

/* ---- public: lifecycle ---- */

void browser_opts_init(browser_opts_t *o)
{
	memset(o, 0, sizeof *o);
	o->launch_timeout_ms = 30000;
	o->close_grace_ms = 2000;
	cdp_conn_opts_init(&o->conn);
}

static int sweep_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) != 0 && errno != ENOENT ? errno : 0;
}

/* Whether a browser still answers on the profile's SingletonSocket (a unix socket Chromium
 * listens on while it runs). Unlike the pid in SingletonLock, this holds across PID
 * namespaces: cdpilot as PID 1 of its own namespace sees no other process, and must not
 * take another namespace's live profile for a leftover. Connecting to a local unix socket
 * does not block. */
static int profile_in_use(const char *dir)
{
	struct sockaddr_un sa;
	int fd, rc;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s/SingletonSocket", dir) >=
	    (int)sizeof sa.sun_path)
		return 1; /* cannot tell: leave it */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 1;
	rc = connect(fd, (const struct sockaddr *)&sa, sizeof sa);
	close(fd);
	return rc == 0;
}

int browser_sweep_stale_dirs(void)
{
	const char *tmp = getenv("TMPDIR");
	DIR *d;
	struct dirent *e;
	int removed = 0;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	d = opendir(tmp);
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char dir[PATH_MAX], lock[PATH_MAX], olock[PATH_MAX], target[256];
		struct stat st;
		ssize_t n;
		int stale = 0, owner;

		if (strncmp(e->d_name, "cdpilot-chromium-", 17) != 0)
			continue;
		if (snprintf(dir, sizeof dir, "%s/%s", tmp, e->d_name) >= (int)sizeof dir ||
		    snprintf(lock, sizeof lock, "%s/SingletonLock", dir) >= (int)sizeof lock)
			continue;
		if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
			continue;
		owner = -1;
		if (snprintf(olock, sizeof olock, "%s/" OWNER_LOCK, dir) < (int)sizeof olock)
			owner = open(olock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (owner >= 0) {
			/* ours: stale exactly when no cdpilot holds the lock (any PID namespace) */
			if (flock(owner, LOCK_EX | LOCK_NB) != 0) {
				close(owner);
				continue;
			}
			stale = 1;
		} else if ((n = readlink(lock, target, sizeof target - 1)) > 0) {
			/* a profile from before OWNER_LOCK: Chromium's lock, "hostname-PID" */
			const char *dash;
			char *end;
			long pid;
			target[n] = '\0';
			dash = strrchr(target, '-');
			pid = dash ? strtol(dash + 1, &end, 10) : 0;
			if (dash && *end == '\0' && pid > 0 && kill((pid_t)pid, 0) != 0 &&
			    errno == ESRCH)
				stale = 1;
		} else if (time(NULL) - st.st_mtime > 600) {
			stale = 1; /* never got as far as its lock */
		}
		if (stale && (owner >= 0 || !profile_in_use(dir))) {
			if (nftw(dir, sweep_entry, 16, FTW_DEPTH | FTW_PHYS) == 0) {
				removed++;
				log_info(LOG_COMP, "removed %s, left behind by a browser that is gone",
				         dir);
			} else {
				log_warn(LOG_COMP, "cannot remove stale %s: %s", dir, strerror(errno));
			}
		}
		if (owner >= 0)
			close(owner);
	}
	closedir(d);
	return removed;
}

int browser_opts_from_env(browser_opts_t *o, char *err, size_t errlen)
{
	const char *v = getenv("CDP_MAX_MESSAGE_MB");
	char *end = NULL;
	long mb;
	size_t used;

	if (!v)
		return 0;
	errno = 0;
	mb = strtol(v, &end, 10);
	if (*v && isdigit((unsigned char)*v) && !errno && !*end && mb >= 1 && mb <= 1024) {
		o->conn.max_message = (size_t)mb * 1024 * 1024;
		return 0;
	}
	used = errlen ? strlen(err) : 0;
	if (used < errlen)
		snprintf(err + used, errlen - used,
		         "%sCDP_MAX_MESSAGE_MB='%s': expected a whole number of MiB from 1 to 1024",
		         used ? "\n" : "", v);
	return -EINVAL;
}

browser_t *browser_new(uv_loop_t *loop, cdp_wsctx_t *ws, const browser_opts_t *opts)
{
	browser_opts_t defaults;
	browser_t *b = calloc(1, sizeof *b);

	if (!b)
		return NULL;
	if (!opts) {
		browser_opts_init(&defaults);
		opts = &defaults;
	}
	b->loop = loop;
	b->ws = ws;
	b->state = BS_NEW;
	b->pidfd = -1;
	b->lock_fd = -1;
	b->opt_chromium_path = xstrdup(opts->chromium_path);
	b->opt_extra_flags = xstrdup(opts->extra_flags);
	b->opt_cdp_url = xstrdup(opts->cdp_url);
	b->allow_new_windows = opts->allow_new_windows;
	if ((opts->chromium_path && !b->opt_chromium_path) ||
	    (opts->extra_flags && !b->opt_extra_flags) || (opts->cdp_url && !b->opt_cdp_url)) {
		free(b->opt_chromium_path);
		free(b->opt_extra_flags);
		free(b->opt_cdp_url);
		free(b);
		return NULL;
	}
	b->launch_timeout_ms = opts->launch_timeout_ms ? opts->launch_timeout_ms : 30000;
	b->grace_ms = opts->close_grace_ms ? opts->close_grace_ms : 2000;
	cdp_conn_opts_init(&b->conn_opts);
	if (opts->conn.default_timeout_ms)
		b->conn_opts.default_timeout_ms = opts->conn.default_timeout_ms;
	if (opts->conn.max_message)
		b->conn_opts.max_message = opts->conn.max_message;
	uv_timer_init(loop, &b->t_launch);
	uv_timer_init(loop, &b->t_poll);
	uv_timer_init(loop, &b->t_kill);
	b->t_launch.data = b->t_poll.data = b->t_kill.data = b;
	b->timers_open = 3;
	return b;
}

int browser_start(browser_t *b, browser_ready_cb ready_cb, browser_lost_cb on_lost, void *ud)
{
	const char *url;
	int rc;

	if (!b || !ready_cb || b->state != BS_NEW)
		return -EINVAL;
	b->ready_cb = ready_cb;
	b->lost_cb = on_lost;
	b->ud = ud;
	url = b->opt_cdp_url && *b->opt_cdp_url ? b->opt_cdp_url : env_nonempty("CDP_URL");
	b->in_start = 1;
	rc = url ? attach(b, url) : launch(b);
	b->in_start = 0;
	return rc;
}

cdp_conn_t *browser_conn(browser_t *b)
{
	return b->state == BS_READY ? b->conn : NULL;
}

pid_t browser_pid(const browser_t *b)
{
	return b->proc_running ? b->pid : 0;
}

uint64_t browser_launch_ms(const browser_t *b)
{
	return b->launch_ms;
}

const char *browser_executable(const browser_t *b)
{
	return b->attached ? NULL : b->exe;
}

const char *browser_user_data_dir(const browser_t *b)
{
	return b->attached ? NULL : b->udd;
}

/* ---- close ---- */

static void on_kill_timer(uv_timer_t *t)
{
	browser_t *b = t->data;

	if (!b->proc_running)
		return;
	if (b->kill_step == 0) {
		log_info(LOG_COMP,
		         "Chromium pid %d still running %u ms after Browser.close; "
		         "sending SIGTERM",
		         (int)b->pid, b->grace_ms);
		kill_tree(b, SIGTERM);
	} else {
		log_warn(LOG_COMP,
		         "Chromium pid %d still running %u ms after SIGTERM; sending "
		         "SIGKILL",
		         (int)b->pid, b->grace_ms);
		kill_tree(b, SIGKILL);
	}
	b->kill_step++;
	uv_timer_start(&b->t_kill, on_kill_timer, b->grace_ms, 0);
}

static void on_session_poll(uv_timer_t *t)
{
	browser_t *b = t->data;
	pid_t pids[MAX_STRAGGLERS];
	uint64_t since = uv_now(b->loop) - b->exit_ms;
	int n = browser_session_members("/proc", b->pid, pids, MAX_STRAGGLERS);

	if (n < 0) {
		log_warn(LOG_COMP, "cannot scan /proc: %s; not waiting for the session",
		         strerror(-n));
		n = 0;
	}
	if (n > 0 && since >= (uint64_t)b->grace_ms * 10 + 10000) {
		log_error(LOG_COMP,
		          "%d process(es) of Chromium session %d survive SIGKILL after "
		          "%llu ms; giving up on them",
		          n, (int)b->pid, (unsigned long long)since);
		n = 0;
	}
	if (n == 0) {
		uv_timer_stop(&b->t_poll);
		b->session_empty = 1;
		log_debug(LOG_COMP, "session %d empty %llu ms after the main process exited",
		          (int)b->pid, (unsigned long long)since);
		close_progress(b);
		return;
	}
	if (since >= b->grace_ms) {
		/*
		 * Stragglers. While a process is in session sid, the number sid cannot be
		 * reused, so every pid listed here is ours (modulo one exiting just now).
		 */
		for (int i = 0; i < n && i < MAX_STRAGGLERS; i++) {
			log_debug(LOG_COMP, "SIGKILL straggler pid %d of session %d", (int)pids[i],
			          (int)b->pid);
			kill(pids[i], SIGKILL);
		}
		b->straggler_kills++;
	}
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (remove(path) != 0 && errno != ENOENT)
		return errno;
	return 0;
}

static void rm_work(uv_work_t *w)
{
	browser_t *b = w->data;
	b->rm_rc = nftw(b->udd, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (b->rm_rc == -1)
		b->rm_rc = errno == ENOENT ? 0 : errno;
}

static void on_timer_closed(uv_handle_t *h)
{
	browser_t *b = h->data;

	if (--b->timers_open > 0)
		return;
	browser_set_state(b, BS_CLOSED);
	log_debug(LOG_COMP, "closed");
	if (b->closed_cb)
		b->closed_cb(b, b->closed_ud);
	free(b->opt_chromium_path);
	free(b->opt_extra_flags);
	free(b->opt_cdp_url);
	free(b->exe);
	if (b->lock_fd >= 0)
		close(b->lock_fd); /* after the removal: the sweep never takes a live profile */
	free(b->udd);
	free(b->attach_url);
	free(b);
}

static void finish(browser_t *b)
{
	uv_timer_stop(&b->t_launch);
	uv_timer_stop(&b->t_poll);
	uv_timer_stop(&b->t_kill);
	uv_close((uv_handle_t *)&b->t_launch, on_timer_closed);
	uv_close((uv_handle_t *)&b->t_poll, on_timer_closed);
	uv_close((uv_handle_t *)&b->t_kill, on_timer_closed);
}

static void after_rm_work(uv_work_t *w, int status)
{
	browser_t *b = w->data;

	if (b->rm_rc != 0)
		log_warn(LOG_COMP, "cannot remove user-data-dir %s: %s", b->udd,
		         strerror(b->rm_rc));
	else
		log_debug(LOG_COMP, "removed user-data-dir %s", b->udd);
	finish(b);
}

/* Moves the close along once each thing it waits for is done; called after every event. */
static void close_progress(browser_t *b)
{
	int rc;

	if (b->state != BS_CLOSING || b->rm_started)
		return;
	/* The socket: closed once Browser.close is answered or the process is gone. */
	if (b->conn && !b->conn_closing && (!b->proc_running || b->conn_lost))
		conn_close(b);
	if (b->connect_pending || (b->conn && !b->conn_closed))
		return;
	if (b->fetch)
		return;
	if (b->proc_inited && !b->proc_closed)
		return;
	if (b->pid && !b->session_empty) {
		if (!uv_is_active((uv_handle_t *)&b->t_poll))
			uv_timer_start(&b->t_poll, on_session_poll, 0, SESSION_POLL_MS);
		return;
	}
	b->rm_started = 1;
	log_debug(LOG_COMP, "process tree and connection gone after %llu ms",
	          (unsigned long long)(uv_now(b->loop) - b->close_start_ms));
	if (b->udd) {
		b->rm_work.data = b;
		rc = uv_queue_work(b->loop, &b->rm_work, rm_work, after_rm_work);
		if (rc == 0)
			return;
		log_warn(LOG_COMP, "cannot queue the removal of %s: %s", b->udd, uv_strerror(rc));
	}
	finish(b);
}

static void on_browser_close_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	browser_t *b = ud;

	log_debug(LOG_COMP, "Browser.close: %s", r->status ? r->error_message : "ok");
	if (b->state == BS_CLOSING && b->conn == conn && r->status != -ECANCELED)
		close_progress(b);
	/* The process's exit closes the socket; if it does not exit, the kill timer acts. */
}

void browser_close(browser_t *b, browser_closed_cb cb, void *ud)
{
	enum browser_state prev;
	int sent_close = 0;

	if (!b)
		return;
	if (b->state == BS_CLOSING || b->state == BS_CLOSED) {
		log_warn(LOG_COMP, "browser_close() called twice; ignored");
		return;
	}
	prev = b->state;
	browser_set_state(b, BS_CLOSING);
	b->closed_cb = cb;
	b->closed_ud = ud;
	b->close_start_ms = uv_now(b->loop);
	uv_timer_stop(&b->t_launch);
	uv_timer_stop(&b->t_poll);

	if (!b->ready_fired && b->ready_cb)
		fire_ready(b, b->deferred_status ? b->deferred_status : -ECANCELED,
		           b->deferred_status
		                   ? b->deferred_why
		                   : "browser_close() was called before the browser was ready");
	if (b->fetch && !b->fetch_closing) {
		b->fetch_closing = 1;
		fetch_ctx_close(b->fetch, on_fetch_closed, b);
	}
	if (b->conn && !b->conn_closing) {
		if (prev == BS_READY && !b->attached && b->proc_running && !b->conn_lost) {
			json_t *params = json_object();
			if (cdp_conn_send(b->conn, NULL, "Browser.close", params, b->grace_ms,
			                  on_browser_close_reply, b, NULL) == 0)
				sent_close = 1;
		}
		if (!sent_close)
			conn_close(b);
	}
	if (b->proc_running) {
		if (sent_close) {
			b->kill_step = 0;
		} else {
			kill_tree(b, SIGTERM);
			b->kill_step = 1;
		}
		uv_timer_start(&b->t_kill, on_kill_timer, b->grace_ms, 0);
	}
	close_progress(b);
}
