/*
 * browser_launch: starts a Chromium of our own. Finds the executable (an explicit path, else
 * a PATH search that resolves Debian's wrapper scripts to the binary), makes a fresh
 * user-data-dir, builds the command line, and spawns Chromium through this same executable in
 * exec-wrapper mode (parent-death signal, own session); then polls the profile for
 * DevToolsActivePort and hands the websocket URL to the core to connect. The exit callback
 * reports an early death as a launch failure and a later one to the core's rendezvous.
 */
#include "pool/browser.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdp/cdp_err.h"
#include "pool/browser_priv.h"
#include "util/log.h"

#define EXEC_MODE_ARG "__cdpilot-exec"
#define DEBIAN_CHROMIUM_DIR "/usr/lib/chromium"
#define PORT_POLL_MS 25
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
	const char *path_env = browser__env_nonempty("PATH");
	const char *dirs = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
	char tried[1024] = "";
	size_t tl = 0;

	if (errlen)
		err[0] = '\0';
	if (!given && (given = browser__env_nonempty("CHROMIUM_PATH")) != NULL)
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
	        b->opt_extra_flags ? b->opt_extra_flags : browser__env_nonempty("CHROMIUM_FLAGS");
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

/* ---- launch ---- */

static void on_proc_closed(uv_handle_t *h)
{
	browser_t *b = h->data;

	b->proc_closed = 1;
	if (b->state == BS_CLOSING)
		browser__close_progress(b);
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
		browser__launch_fail(b, CDP_ENOBROWSER, msg);
		break;
	case BS_READY: browser__check_lost(b); break;
	case BS_CLOSING: browser__close_progress(b); break;
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
	browser__start_connect(b);
}

/* At debug level, logs the Chromium command line: args less "<argv0> __cdpilot-exec <pid>". */
static void log_command_line(const strvec_t *args)
{
	char line[8192];
	size_t l = 0;

	if (log_get_level() != LOG_DEBUG)
		return;
	for (size_t i = 3; i < args->n && l < sizeof line; i++)
		l += (size_t)snprintf(line + l, sizeof line - l, "%s%s", i > 3 ? " " : "",
		                      args->v[i]);
	log_debug(LOG_COMP, "command line: %s", line);
}

/*
 * The file to exec for the wrapper: this executable's path as /proc/self/exe names it, or
 * /proc/self/exe itself when that is not a usable path (unreadable, or the file was
 * replaced: " (deleted)"). The path matters under valgrind, which runs the program as its
 * client: exec of /proc/self/exe would start valgrind's own tool binary, which exits 1,
 * while readlink() reports the client (bench/run-callgrind.sh runs the controller so).
 */
static const char *self_exe(char *buf, size_t len)
{
	static const char deleted[] = " (deleted)";
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);

	if (n <= 0 || (size_t)n >= len - 1 || buf[0] != '/')
		return "/proc/self/exe";
	buf[n] = '\0';
	if ((size_t)n >= sizeof deleted - 1 &&
	    strcmp(buf + n - (sizeof deleted - 1), deleted) == 0)
		return "/proc/self/exe";
	return buf;
}

int browser__launch(browser_t *b)
{
	char exe[PATH_MAX], err[1536], tmpl[PATH_MAX], self[PATH_MAX];
	const char *tmp = browser__env_nonempty("TMPDIR");
	uv_process_options_t po;
	uv_stdio_container_t stdio[3];
	strvec_t args = { 0 };
	int rc, inherit = log_get_level() == LOG_DEBUG;

	rc = browser_find_executable(b->opt_chromium_path, exe, sizeof exe, err, sizeof err);
	if (rc != 0) {
		browser__launch_fail(b, rc, err);
		return 0;
	}
	if (!(b->exe = strdup(exe)))
		return -ENOMEM;
	snprintf(tmpl, sizeof tmpl, "%s/cdpilot-chromium-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpl)) {
		snprintf(err, sizeof err, "cannot create a user-data-dir %.1200s: %s", tmpl,
		         strerror(errno));
		browser__launch_fail(b, -errno, err);
		return 0;
	}
	if (!(b->udd = strdup(tmpl))) {
		rmdir(tmpl);
		return -ENOMEM;
	}
	browser__lock_profile(b);
	rc = build_args(b, &args, err, sizeof err);
	if (rc != 0) {
		sv_free(&args);
		if (rc == -ENOMEM)
			return rc;
		browser__launch_fail(b, rc, err);
		return 0;
	}
	log_command_line(&args);

	memset(&po, 0, sizeof po);
	memset(stdio, 0, sizeof stdio);
	stdio[0].flags = UV_IGNORE; /* /dev/null */
	stdio[1].flags = inherit ? UV_INHERIT_FD : UV_IGNORE;
	stdio[1].data.fd = 1;
	stdio[2].flags = inherit ? UV_INHERIT_FD : UV_IGNORE;
	stdio[2].data.fd = 2;
	po.file = self_exe(self, sizeof self);
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
		snprintf(err, sizeof err, "cannot spawn %s through %s: %s", b->exe, po.file,
		         uv_strerror(rc));
		browser__launch_fail(b, CDP_ENOBROWSER, err);
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
	browser__set_state(b, BS_LAUNCHING);
	uv_timer_start(&b->t_launch, browser__on_launch_timer, b->launch_timeout_ms, 0);
	uv_timer_start(&b->t_poll, on_port_poll, PORT_POLL_MS, PORT_POLL_MS);
	return 0;
}
