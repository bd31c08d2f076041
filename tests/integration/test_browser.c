/*
 * test_browser: pool/browser against the real Chromium: launch and close leave no process,
 * profile dir or fd behind; the command line (one merged --disable-features); loss when
 * the main process is SIGKILLed; attach through http://host:port/json/version; close in
 * every state; launch failures (not found, early exit, timeout) with their messages; the
 * exec wrapper's parent-death signal; and the /proc parsing the tree wait relies on.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cdp/cdp_err.h"
#include "pool/browser.h"
#include "tests/support/testutil.h"
#include "util/log.h"

#define READY_MS 60000
#define CLOSE_MS 30000

/* ---- harness ---- */

typedef struct env {
	uv_loop_t loop;
	cdp_wsctx_t *ws;
	int fds_before;
	int chromium_before;
} env_t;

/*
 * Every callback calls uv_stop(): tu_run_until() runs UV_RUN_ONCE, which would otherwise
 * go on to block in poll (up to the next timer, e.g. 30 s of lws) after a timer callback
 * already set the flag.
 */
typedef struct bh {
	uv_loop_t *loop;
	browser_t *b;
	int ready_calls, ready_status;
	char ready_why[2048];
	int lost_calls, lost_err;
	char lost_why[1024];
	int closed_calls;
	/* copied at ready, for checks after the browser is freed */
	pid_t pid;
	char udd[PATH_MAX];
} bh_t;

static void env_init(env_t *e)
{
	memset(e, 0, sizeof *e);
	e->fds_before = tu_fd_count();
	e->chromium_before = tu_chromium_count();
	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->ws = cdp_wsctx_new(&e->loop);
	assert_non_null(e->ws);
}

/* Tears the lws context down as cdp_ws.h says and audits fds. */
static void env_finish(env_t *e)
{
	cdp_wsctx_close(e->ws);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(e->ws);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	assert_int_equal(tu_fd_count(), e->fds_before);
}

static void on_ready(browser_t *b, int status, const char *why, void *ud)
{
	bh_t *h = ud;

	assert_ptr_equal(b, h->b);
	assert_non_null(why);
	uv_stop(h->loop);
	h->ready_calls++;
	h->ready_status = status;
	snprintf(h->ready_why, sizeof h->ready_why, "%s", why);
	if (status == 0) {
		h->pid = browser_pid(b);
		if (browser_user_data_dir(b))
			snprintf(h->udd, sizeof h->udd, "%s", browser_user_data_dir(b));
	}
}

static void on_lost(browser_t *b, int err, const char *why, void *ud)
{
	bh_t *h = ud;

	assert_non_null(why);
	uv_stop(h->loop);
	h->lost_calls++;
	h->lost_err = err;
	snprintf(h->lost_why, sizeof h->lost_why, "%s", why);
}

static void on_closed(browser_t *b, void *ud)
{
	bh_t *h = ud;
	uv_stop(h->loop);
	h->closed_calls++;
}

/* The start of a case that launches Chromium: its env and default options. */
static void env_begin(env_t *e, browser_opts_t *o)
{
	tu_require_chromium();
	env_init(e);
	browser_opts_init(o);
}

/* A browser made (not started) on the env's loop, h zeroed to watch it. */
static void bh_new(env_t *e, bh_t *h, const browser_opts_t *opts)
{
	memset(h, 0, sizeof *h);
	h->loop = &e->loop;
	h->b = browser_new(&e->loop, e->ws, opts);
	assert_non_null(h->b);
}

/* Copies the profile and pid of a browser not yet ready (on_ready copies them at ready). */
static void bh_note_session(bh_t *h)
{
	snprintf(h->udd, sizeof h->udd, "%s", browser_user_data_dir(h->b));
	h->pid = browser_pid(h->b);
}

static void bh_start(env_t *e, bh_t *h, const browser_opts_t *opts)
{
	bh_new(e, h, opts);
	assert_int_equal(browser_start(h->b, on_ready, on_lost, h), 0);
	assert_int_equal(h->ready_calls, 0); /* never from inside browser_start() */
}

static void bh_wait_ready(env_t *e, bh_t *h)
{
	tu_run_until(&e->loop, &h->ready_calls, READY_MS);
	assert_int_equal(h->ready_calls, 1);
}

static void bh_launch(env_t *e, bh_t *h, const browser_opts_t *opts)
{
	bh_start(e, h, opts);
	bh_wait_ready(e, h);
	if (h->ready_status != 0)
		fail_msg("launch failed: %d %s", h->ready_status, h->ready_why);
	assert_non_null(browser_conn(h->b));
}

static void bh_close(env_t *e, bh_t *h)
{
	browser_close(h->b, on_closed, h);
	assert_int_equal(h->closed_calls, 0);
	tu_run_until(&e->loop, &h->closed_calls, CLOSE_MS);
	assert_int_equal(h->closed_calls, 1);
	assert_true(h->ready_calls <= 1);
	h->b = NULL;
}

/* Processes carrying this profile on their command line (every Chromium process does). */
static int procs_of_profile(const char *udd)
{
	char needle[PATH_MAX + 32];
	snprintf(needle, sizeof needle, "--user-data-dir=%s", udd);
	return tu_count_procs_with_arg(needle);
}

/*
 * Nothing of a launched browser is left: no process of its session or with its profile
 * on the command line, and no profile dir.
 */
static void assert_browser_gone(const bh_t *h)
{
	if (h->pid > 0)
		assert_int_equal(browser_session_members("/proc", h->pid, NULL, 0), 0);
	if (h->udd[0]) {
		assert_int_equal(procs_of_profile(h->udd), 0);
		assert_false(tu_path_exists(h->udd));
	}
}

/*
 * The machine-wide count of chromium processes is back to what it was. Other people's
 * Chromium may come and go on a shared machine, so this waits and then only reports;
 * assert_browser_gone() is the strict check.
 */
static void note_chromium_count(int before)
{
	int n = tu_wait_chromium_count(before, 5000);
	if (n > before)
		fprintf(stderr,
		        "note: %d chromium processes on the machine, %d before the test "
		        "(none of them ours)\n",
		        n, before);
}

typedef struct cmd_wait {
	uv_loop_t *loop;
	int done, status;
	char product[256];
} cmd_wait_t;

static void on_version_reply(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	cmd_wait_t *w = ud;
	const char *product = "";

	uv_stop(w->loop);
	w->done = 1;
	w->status = r->status;
	if (r->status == 0 && json_unpack(r->result, "{s:s}", "product", &product) == 0)
		snprintf(w->product, sizeof w->product, "%s", product);
}

/* Browser.getVersion on b's connection; returns the status, product in w. */
static int get_version(env_t *e, browser_t *b, cmd_wait_t *w)
{
	cdp_conn_t *c = browser_conn(b);

	memset(w, 0, sizeof *w);
	w->loop = &e->loop;
	assert_non_null(c);
	assert_int_equal(cdp_conn_send(c, NULL, "Browser.getVersion", NULL, 10000, on_version_reply,
	                               w, NULL),
	                 0);
	tu_run_until(&e->loop, &w->done, 15000);
	assert_int_equal(w->done, 1);
	return w->status;
}

/* Reads the port from a launched browser's DevToolsActivePort. */
static int read_devtools_port(const char *udd)
{
	char path[PATH_MAX + 32], buf[256] = "";
	FILE *f;

	snprintf(path, sizeof path, "%s/DevToolsActivePort", udd);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	return (int)strtol(buf, NULL, 10);
}

/* Writes an executable shell script into a fresh temp dir; returns its path in out. */
static void write_script(char *dir, size_t dirlen, char *out, size_t outlen, const char *body)
{
	FILE *f;

	snprintf(dir, dirlen, "/tmp/cdpilot-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(out, outlen, "%s/fake-chromium", dir);
	f = fopen(out, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	assert_int_equal(chmod(out, 0755), 0);
}

/* ---- /proc parsing (no browser) ---- */

static void test_browser__parse_proc_stat(void **state)
{
	const char ok[] = "4242 (we ird) (name)) S 1 4242 4240 0 -1 4194560 100 0 0 0";
	const char neg[] = "7 (x) R -1 7 7 0";
	char st = 0;
	pid_t sid = 0;

	assert_int_equal(browser_parse_proc_stat(ok, strlen(ok), &st, &sid), 0);
	assert_int_equal(st, 'S');
	assert_int_equal(sid, 4240);
	assert_int_equal(browser_parse_proc_stat(neg, strlen(neg), &st, &sid), 0);
	assert_int_equal(st, 'R');
	assert_int_equal(sid, 7);
	/* Truncated or malformed input. */
	assert_int_equal(browser_parse_proc_stat(ok, 20, &st, &sid), -EINVAL);
	assert_int_equal(browser_parse_proc_stat("", 0, &st, &sid), -EINVAL);
	assert_int_equal(browser_parse_proc_stat("1 (a) S 1 2", 11, &st, &sid), -EINVAL);
	assert_int_equal(browser_parse_proc_stat("1 (a) S 1 2 x", 13, &st, &sid), -EINVAL);
	assert_int_equal(browser_parse_proc_stat("1 (a)S 1 2 3", 12, &st, &sid), -EINVAL);
	assert_int_equal(browser_parse_proc_stat("1 (a) S 1 2 99999999999999999999", 32, &st, &sid),
	                 -EINVAL);
	/* Not NUL-terminated: only len bytes are read. */
	assert_int_equal(browser_parse_proc_stat("9 (a) Z 1 2 3 junk", 13, &st, &sid), 0);
	assert_int_equal(st, 'Z');
	assert_int_equal(sid, 3);
}

static void put_stat(const char *root, const char *pid, const char *content)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", root, pid);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/%s/stat", root, pid);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void test_browser__session_members_fake_proc(void **state)
{
	char root[] = "/tmp/cdpilot-test-proc-XXXXXX";
	pid_t pids[8];
	char path[PATH_MAX];

	assert_non_null(mkdtemp(root));
	put_stat(root, "100", "100 (chromium) S 1 100 100 0 -1 0");
	put_stat(root, "101", "101 (chromium ) (zygote)) S 100 100 100 0 -1 0");
	put_stat(root, "102", "102 (chromium) Z 100 100 100 0 -1 0"); /* zombie: ignored */
	put_stat(root, "103", "103 (other) S 1 103 103 0 -1 0");
	put_stat(root, "104", "104 (own group) S 100 104 100 0 -1 0"); /* other group, same sid */
	put_stat(root, "105", "garbage");
	snprintf(path, sizeof path, "%s/self", root); /* non-numeric entries are skipped */
	assert_int_equal(mkdir(path, 0755), 0);

	assert_int_equal(browser_session_members(root, 100, pids, 8), 3);
	{
		int seen = 0;
		for (int i = 0; i < 3; i++)
			seen |= pids[i] == 100 ? 1 : pids[i] == 101 ? 2 : pids[i] == 104 ? 4 : 8;
		assert_int_equal(seen, 7);
	}
	assert_int_equal(browser_session_members(root, 100, pids, 1), 3); /* count beyond max */
	assert_int_equal(browser_session_members(root, 103, NULL, 0), 1);
	assert_int_equal(browser_session_members(root, 555, NULL, 0), 0);
	assert_true(browser_session_members("/nonexistent-proc-root", 1, NULL, 0) < 0);
	assert_int_equal(tu_rm_rf(root), 0);
}

/* ---- finding the executable ---- */

static void test_browser__find_executable(void **state)
{
	char out[PATH_MAX], err[2048];
	char *old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	char *old_cp = getenv("CHROMIUM_PATH") ? strdup(getenv("CHROMIUM_PATH")) : NULL;

	tu_require_chromium();
	unsetenv("CHROMIUM_PATH");
	assert_int_equal(browser_find_executable(NULL, out, sizeof out, err, sizeof err), 0);
	assert_int_equal(access(out, X_OK), 0);
	/* The headless shell comes first; Debian's /usr/bin/chromium-headless-shell and
	 * /usr/bin/chromium are scripts: the real binaries are used instead. */
	if (access("/usr/bin/chromium-headless-shell", X_OK) == 0 &&
	    access("/usr/lib/chromium/chromium-headless-shell", X_OK) == 0)
		assert_string_equal(out, "/usr/lib/chromium/chromium-headless-shell");
	else if (access("/usr/lib/chromium/chromium", X_OK) == 0 &&
	         strstr(out, "/usr/lib/chromium"))
		assert_string_equal(out, "/usr/lib/chromium/chromium");

	/* An explicit path that is not there is an error naming it: no fallback. */
	assert_int_equal(
	        browser_find_executable("/nonexistent/chromium", out, sizeof out, err, sizeof err),
	        CDP_ENOBROWSER);
	assert_non_null(strstr(err, "/nonexistent/chromium"));

	/* The same from the environment, and the message says where it came from. */
	setenv("CHROMIUM_PATH", "/nonexistent/from-env", 1);
	assert_int_equal(browser_find_executable(NULL, out, sizeof out, err, sizeof err),
	                 CDP_ENOBROWSER);
	assert_non_null(strstr(err, "/nonexistent/from-env"));
	assert_non_null(strstr(err, "CHROMIUM_PATH"));
	/* The explicit argument wins over the environment. */
	assert_int_equal(browser_find_executable("/bin/sh", out, sizeof out, err, sizeof err), 0);
	assert_string_equal(out, "/bin/sh");
	unsetenv("CHROMIUM_PATH");

	/* A directory is not an executable file. */
	assert_int_equal(browser_find_executable("/tmp", out, sizeof out, err, sizeof err),
	                 CDP_ENOBROWSER);

	/* Nothing on PATH: the message names every candidate and every directory. */
	setenv("PATH", "/nonexistent-a:/nonexistent-b", 1);
	assert_int_equal(browser_find_executable(NULL, out, sizeof out, err, sizeof err),
	                 CDP_ENOBROWSER);
	assert_non_null(strstr(err, "chromium,"));
	assert_non_null(strstr(err, "chromium-browser"));
	assert_non_null(strstr(err, "google-chrome-stable"));
	assert_non_null(strstr(err, "google-chrome"));
	assert_non_null(strstr(err, "/nonexistent-a"));
	assert_non_null(strstr(err, "/nonexistent-b"));
	assert_non_null(strstr(err, "CHROMIUM_PATH"));

	if (old_path)
		setenv("PATH", old_path, 1);
	if (old_cp)
		setenv("CHROMIUM_PATH", old_cp, 1);
	free(old_path);
	free(old_cp);
}

/* ---- launch and close ---- */

static void test_browser__launch_and_close_leaves_nothing(void **state)
{
	env_t e;
	bh_t h;
	cmd_wait_t w;
	browser_opts_t o;

	env_begin(&e, &o);
	bh_launch(&e, &h, &o);
	assert_true(h.pid > 0);
	assert_int_equal(kill(h.pid, 0), 0);
	assert_true(browser_launch_ms(h.b) > 0);
	assert_non_null(browser_executable(h.b));
	assert_non_null(strstr(h.udd, "cdpilot-chromium-"));
	assert_true(tu_path_exists(h.udd));
	assert_true(browser_session_members("/proc", h.pid, NULL, 0) >= 1);
	assert_true(procs_of_profile(h.udd) >= 1);
	assert_int_equal(get_version(&e, h.b, &w), 0);
	assert_non_null(strstr(w.product, "Chrome"));

	bh_close(&e, &h);
	assert_int_equal(h.lost_calls, 0);
	assert_browser_gone(&h);
	env_finish(&e);
	note_chromium_count(e.chromium_before);
}

typedef struct target_wait {
	uv_loop_t *loop;
	int done, status;
} target_wait_t;

static void on_target_created(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	target_wait_t *w = ud;
	uv_stop(w->loop);
	w->done = 1;
	w->status = r->status;
}

/*
 * The launched browser really loads pages: a new tab fetches from a local server. (With
 * --disable-crashpad-for-testing, Chromium 156's network service crashes at start, and
 * this is the test that notices; DevTools alone keeps working.)
 */
static void test_browser__loads_a_page(void **state)
{
	env_t e;
	bh_t h;
	browser_opts_t o;
	target_wait_t w = { 0 };
	tu_httpd_t *srv;
	char url[128];
	const char page[] = "<html><body>hello</body></html>";
	uint64_t end;

	tu_require_chromium();
	env_init(&e);
	srv = tu_httpd_new(&e.loop, 200, "text/html", page, sizeof page - 1, 0);
	assert_non_null(srv);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/page", tu_httpd_port(srv));
	browser_opts_init(&o);
	bh_launch(&e, &h, &o);
	w.loop = &e.loop;
	assert_int_equal(cdp_conn_send(browser_conn(h.b), NULL, "Target.createTarget",
	                               json_pack("{s:s}", "url", url), 15000, on_target_created, &w,
	                               NULL),
	                 0);
	tu_run_until(&e.loop, &w.done, 20000);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.status, 0);
	end = tu_now_ms() + 15000;
	while (tu_httpd_requests(srv) == 0 && tu_now_ms() < end)
		uv_run(&e.loop, UV_RUN_NOWAIT), usleep(5000);
	assert_true(tu_httpd_requests(srv) >= 1);

	bh_close(&e, &h);
	assert_browser_gone(&h);
	tu_httpd_close(srv);
	env_finish(&e);
	note_chromium_count(e.chromium_before);
}

/* Reads /proc/PID/cmdline into argv-like pieces; returns the count. */
static int read_cmdline(pid_t pid, char *buf, size_t len, char **args, int max)
{
	char path[64];
	int fd, n = 0;
	ssize_t r;

	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	r = read(fd, buf, len - 1);
	close(fd);
	assert_true(r > 0);
	buf[r] = '\0';
	for (char *p = buf; p < buf + r && n < max; p += strlen(p) + 1)
		args[n++] = p;
	return n;
}

static void test_browser__command_line(void **state)
{
	env_t e;
	bh_t h;
	browser_opts_t o;
	static char buf[65536];
	char *args[256] = { NULL };
	int n, features = 0, sandbox = 0, udd = 0, size = 0, urls = 0;

	env_begin(&e, &o);
	o.extra_flags = "--disable-features=Foo,WebUIOmniboxPopup  --window-size=800,600\t"
	                "--disable-features=Bar https://example.invalid/";
	bh_launch(&e, &h, &o);
	n = read_cmdline(h.pid, buf, sizeof buf, args, 256);
	assert_true(n > 5);
	/* The wrapper exec'd Chromium itself: argv[0] is the executable. */
	assert_string_equal(args[0], browser_executable(h.b));
	for (int i = 0; i < n; i++) {
		if (strncmp(args[i], "--disable-features=", 19) == 0) {
			features++;
			assert_string_equal(args[i], "--disable-features=WebUIOmniboxPopup,"
			                             "WebUIOmniboxAimPopup,Foo,Bar");
		}
		sandbox += strcmp(args[i], "--no-sandbox") == 0;
		size += strcmp(args[i], "--window-size=800,600") == 0;
		udd += strncmp(args[i], "--user-data-dir=", 16) == 0;
		urls += args[i][0] != '-';
	}
	assert_int_equal(features, 1);
	assert_int_equal(size, 1);
	assert_int_equal(udd, 1);
	assert_int_equal(urls, 1); /* argv[0] only: no startup page, the stray URL dropped */
	assert_int_equal(sandbox, geteuid() == 0 ? 1 : 0);
	/* Its own session and process group (UV_PROCESS_DETACHED). */
	assert_int_equal(getsid(h.pid), h.pid);
	assert_int_equal(getpgid(h.pid), h.pid);

	bh_close(&e, &h);
	assert_browser_gone(&h);
	env_finish(&e);
}

/* ---- loss ---- */

static void test_browser__kill9_fires_on_lost(void **state)
{
	env_t e;
	bh_t h;
	browser_opts_t o;

	env_begin(&e, &o);
	bh_launch(&e, &h, &o);
	assert_int_equal(kill(h.pid, SIGKILL), 0);
	tu_run_until(&e.loop, &h.lost_calls, 15000);
	assert_int_equal(h.lost_calls, 1);
	assert_int_equal(h.lost_err, CDP_ECONNLOST);
	assert_non_null(strstr(h.lost_why, "signal 9"));
	assert_null(browser_conn(h.b));
	assert_int_equal(browser_pid(h.b), 0);
	/* The rest of the tree goes by itself; close waits for it and removes the profile. */
	bh_close(&e, &h);
	assert_int_equal(h.lost_calls, 1);
	assert_browser_gone(&h);
	env_finish(&e);
	note_chromium_count(e.chromium_before);
}

/* ---- attach ---- */

static void test_browser__attach_http(void **state)
{
	env_t e;
	bh_t a, b;
	browser_opts_t o;
	cmd_wait_t w;
	char url[128];

	env_begin(&e, &o);
	bh_launch(&e, &a, &o);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", read_devtools_port(a.udd));

	browser_opts_init(&o);
	o.cdp_url = url;
	bh_launch(&e, &b, &o);
	assert_null(browser_executable(b.b));
	assert_null(browser_user_data_dir(b.b));
	assert_int_equal(browser_pid(b.b), 0);
	assert_int_equal(get_version(&e, b.b, &w), 0);
	assert_non_null(strstr(w.product, "Chrome"));

	/* Closing the attached one only closes its connection: A lives on. */
	bh_close(&e, &b);
	assert_int_equal(b.lost_calls, 0);
	assert_int_equal(get_version(&e, a.b, &w), 0);
	assert_int_equal(kill(a.pid, 0), 0);
	assert_int_equal(a.lost_calls, 0);

	/* A ws:// URL is used as is. */
	{
		char wsurl[512];
		char path[PATH_MAX + 32], content[256] = "";
		FILE *f;
		snprintf(path, sizeof path, "%s/DevToolsActivePort", a.udd);
		f = fopen(path, "r");
		assert_non_null(f);
		assert_int_equal(fread(content, 1, sizeof content - 1, f) > 0, 1);
		fclose(f);
		*strchr(content, '\n') = '\0';
		snprintf(wsurl, sizeof wsurl, "ws://127.0.0.1:%s%s", content,
		         content + strlen(content) + 1);
		browser_opts_init(&o);
		o.cdp_url = wsurl;
		bh_launch(&e, &b, &o);
		assert_int_equal(get_version(&e, b.b, &w), 0);
		bh_close(&e, &b);
	}

	/* Attached, then the browser dies: the attached handle is lost too. */
	browser_opts_init(&o);
	o.cdp_url = url;
	bh_launch(&e, &b, &o);
	bh_close(&e, &a);
	assert_browser_gone(&a);
	tu_run_until(&e.loop, &b.lost_calls, 10000);
	assert_int_equal(b.lost_calls, 1);
	bh_close(&e, &b);
	env_finish(&e);
}

static void expect_attach_error(env_t *e, const char *url, int status, const char *needle1,
                                const char *needle2)
{
	bh_t h;
	browser_opts_t o;

	browser_opts_init(&o);
	o.cdp_url = url;
	o.launch_timeout_ms = 5000;
	bh_start(e, &h, &o);
	bh_wait_ready(e, &h);
	if (status)
		assert_int_equal(h.ready_status, status);
	else
		assert_true(h.ready_status != 0);
	assert_null(browser_conn(h.b));
	if (!strstr(h.ready_why, needle1) || (needle2 && !strstr(h.ready_why, needle2)))
		fail_msg("message '%s' lacks '%s' / '%s'", h.ready_why, needle1,
		         needle2 ? needle2 : "");
	bh_close(e, &h);
	assert_int_equal(h.lost_calls, 0);
}

static void test_browser__attach_errors(void **state)
{
	env_t e;
	char url[128];
	tu_httpd_t *no_field, *wrong_type, *not_json, *not_found;
	int port = tu_unused_port();

	env_init(&e);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	expect_attach_error(&e, url, -ECONNREFUSED, url, NULL);

	no_field = tu_httpd_new(&e.loop, 200, "application/json", "{\"Browser\":\"x\"}", 15, 0);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", tu_httpd_port(no_field));
	expect_attach_error(&e, url, CDP_EBADREPLY, url, "webSocketDebuggerUrl");

	wrong_type = tu_httpd_new(&e.loop, 200, "application/json", "{\"webSocketDebuggerUrl\":5}",
	                          26, 0);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", tu_httpd_port(wrong_type));
	expect_attach_error(&e, url, CDP_EBADREPLY, url, "webSocketDebuggerUrl");

	not_json = tu_httpd_new(&e.loop, 200, "text/html", "<html>", 6, 0);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", tu_httpd_port(not_json));
	expect_attach_error(&e, url, CDP_EBADREPLY, url, "JSON");

	not_found = tu_httpd_new(&e.loop, 404, "text/plain", "no", 2, 0);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", tu_httpd_port(not_found));
	expect_attach_error(&e, url, CDP_EBADREPLY, url, "404");

	expect_attach_error(&e, "ftp://127.0.0.1/", -EINVAL, "ftp://127.0.0.1/", NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/devtools/browser/x", port);
	expect_attach_error(&e, url, 0, "127.0.0.1", NULL);

	tu_httpd_close(no_field);
	tu_httpd_close(wrong_type);
	tu_httpd_close(not_json);
	tu_httpd_close(not_found);
	env_finish(&e);
}

/* ---- close in every state ---- */

static void test_browser__close_before_start_and_before_ready(void **state)
{
	env_t e;
	bh_t h;
	browser_opts_t o;

	env_begin(&e, &o);

	/* Never started. */
	bh_new(&e, &h, &o);
	bh_close(&e, &h);
	assert_int_equal(h.ready_calls, 0);

	/* Right after spawn: ready fires once with -ECANCELED, then closed. */
	bh_start(&e, &h, &o);
	bh_note_session(&h);
	assert_true(h.pid > 0);
	bh_close(&e, &h);
	assert_int_equal(h.ready_calls, 1);
	assert_int_equal(h.ready_status, -ECANCELED);
	assert_browser_gone(&h);

	/* Once DevToolsActivePort exists (connecting, or just connected). */
	bh_start(&e, &h, &o);
	bh_note_session(&h);
	{
		char path[PATH_MAX + 32];
		uint64_t end = tu_now_ms() + READY_MS;
		snprintf(path, sizeof path, "%s/DevToolsActivePort", h.udd);
		while (!tu_path_exists(path) && !h.ready_calls && tu_now_ms() < end)
			uv_run(&e.loop, UV_RUN_NOWAIT), usleep(2000);
		uv_run(&e.loop, UV_RUN_NOWAIT);
	}
	bh_close(&e, &h);
	assert_int_equal(h.ready_calls, 1);
	assert_browser_gone(&h);

	/* Close from inside ready_cb is fine too (tested via lost below for on_lost). */
	env_finish(&e);
	note_chromium_count(e.chromium_before);
}

static void close_in_lost(browser_t *b, int err, const char *why, void *ud)
{
	bh_t *h = ud;
	on_lost(b, err, why, ud);
	browser_close(b, on_closed, h);
	browser_close(b, on_closed, h); /* a second call is ignored */
}

static void test_browser__close_from_lost_callback(void **state)
{
	env_t e;
	bh_t h;
	browser_opts_t o;

	env_begin(&e, &o);
	bh_new(&e, &h, &o);
	assert_int_equal(browser_start(h.b, on_ready, close_in_lost, &h), 0);
	bh_wait_ready(&e, &h);
	assert_int_equal(h.ready_status, 0);
	kill(h.pid, SIGKILL);
	tu_run_until(&e.loop, &h.closed_calls, CLOSE_MS);
	assert_int_equal(h.lost_calls, 1);
	assert_int_equal(h.closed_calls, 1);
	assert_browser_gone(&h);
	env_finish(&e);
}

/* ---- launch failures ---- */

static void test_browser__launch_failures(void **state)
{
	env_t e;
	bh_t h;
	browser_opts_t o;
	char dir[64], script[128];

	env_init(&e);

	/* Not found: reported through ready_cb, from the loop. */
	browser_opts_init(&o);
	o.chromium_path = "/nonexistent/chromium";
	bh_start(&e, &h, &o);
	bh_wait_ready(&e, &h);
	assert_int_equal(h.ready_status, CDP_ENOBROWSER);
	assert_non_null(strstr(h.ready_why, "/nonexistent/chromium"));
	bh_close(&e, &h);

	/* Exits at once: the exit status is reported. */
	write_script(dir, sizeof dir, script, sizeof script, "exit 3");
	o.chromium_path = script;
	bh_start(&e, &h, &o);
	h.pid = browser_pid(h.b);
	snprintf(h.udd, sizeof h.udd, "%s", browser_user_data_dir(h.b));
	bh_wait_ready(&e, &h);
	assert_int_equal(h.ready_status, CDP_ENOBROWSER);
	if (!strstr(h.ready_why, "status 3"))
		fail_msg("unexpected message: %s", h.ready_why);
	bh_close(&e, &h);
	assert_browser_gone(&h);
	assert_int_equal(tu_rm_rf(dir), 0);

	/*
	 * Never writes DevToolsActivePort: -ETIMEDOUT. Its child moves to its own process
	 * group (so a group kill misses it) and ignores SIGTERM: close must find it by
	 * session and SIGKILL it.
	 */
	write_script(dir, sizeof dir, script, sizeof script,
	             "perl -e 'setpgrp(0,0); $SIG{TERM}=\"IGNORE\"; sleep 60' &\nexec sleep 60");
	o.chromium_path = script;
	o.launch_timeout_ms = 700;
	o.close_grace_ms = 300;
	bh_start(&e, &h, &o);
	h.pid = browser_pid(h.b);
	snprintf(h.udd, sizeof h.udd, "%s", browser_user_data_dir(h.b));
	bh_wait_ready(&e, &h);
	assert_int_equal(h.ready_status, -ETIMEDOUT);
	assert_non_null(strstr(h.ready_why, "DevToolsActivePort"));
	assert_true(browser_session_members("/proc", h.pid, NULL, 0) >= 1);
	bh_close(&e, &h);
	assert_browser_gone(&h);
	assert_int_equal(tu_rm_rf(dir), 0);

	env_finish(&e);
}

/* ---- exec wrapper: the tree dies with its parent ---- */

typedef struct child_ctx {
	int fd;
	bh_t h;
} child_ctx_t;

static void child_ready(browser_t *b, int status, const char *why, void *ud)
{
	child_ctx_t *c = ud;
	char line[PATH_MAX + 64];
	int n;

	if (status != 0) {
		n = snprintf(line, sizeof line, "0 %s\n", why);
	} else {
		n = snprintf(line, sizeof line, "%d %s\n", (int)browser_pid(b),
		             browser_user_data_dir(b));
	}
	if (write(c->fd, line, (size_t)n) != n)
		_exit(3);
}

static void test_browser__exec_wrapper_kills_tree_with_parent(void **state)
{
	int pfd[2];
	pid_t child;
	char line[PATH_MAX + 64] = "", udd[PATH_MAX] = "";
	int chromium_before = tu_chromium_count(), bpid = 0, alive_before, profile_before;
	size_t got = 0;
	uint64_t end, t_killed;

	tu_require_chromium();
	assert_int_equal(pipe(pfd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* The child: its own loop, one browser, then runs until killed. */
		uv_loop_t loop;
		cdp_wsctx_t *ws;
		browser_opts_t o;
		child_ctx_t c;

		close(pfd[0]);
		memset(&c, 0, sizeof c);
		c.fd = pfd[1];
		if (uv_loop_init(&loop) != 0 || !(ws = cdp_wsctx_new(&loop)))
			_exit(2);
		browser_opts_init(&o);
		c.h.b = browser_new(&loop, ws, &o);
		if (!c.h.b || browser_start(c.h.b, child_ready, NULL, &c) != 0)
			_exit(2);
		for (;;)
			uv_run(&loop, UV_RUN_DEFAULT), usleep(100000);
	}
	close(pfd[1]);
	end = tu_now_ms() + READY_MS;
	while (!strchr(line, '\n') && tu_now_ms() < end) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		ssize_t r;
		if (poll(&p, 1, 200) <= 0)
			continue;
		r = read(pfd[0], line + got, sizeof line - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		line[got] = '\0';
	}
	close(pfd[0]);
	if (sscanf(line, "%d %4095s", &bpid, udd) != 2 || bpid <= 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		fail_msg("the child could not launch Chromium: %s", line);
	}
	alive_before = browser_session_members("/proc", bpid, NULL, 0);
	profile_before = procs_of_profile(udd);

	/* The controller dies without any cleanup. */
	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	t_killed = tu_now_ms();
	assert_true(alive_before >= 1);
	assert_true(profile_before >= 1);

	end = tu_now_ms() + 5000;
	while ((browser_session_members("/proc", bpid, NULL, 0) > 0 || procs_of_profile(udd) > 0) &&
	       tu_now_ms() < end)
		usleep(50000);
	assert_int_equal(browser_session_members("/proc", bpid, NULL, 0), 0);
	assert_int_equal(procs_of_profile(udd), 0);
	fprintf(stderr, "note: the Chromium tree was gone %llu ms after its controller died\n",
	        (unsigned long long)(tu_now_ms() - t_killed));
	note_chromium_count(chromium_before);
	/* Nobody was left to remove the profile: the test does. */
	assert_non_null(strstr(udd, "cdpilot-chromium-"));
	assert_int_equal(tu_rm_rf(udd), 0);
}

/*
 * Process-wide state made once (libuv's signal lock pipe, the lws event-library plugin,
 * curl's global init) before any case takes its fd baseline.
 */
static int group_setup(void **state)
{
	uv_loop_t loop;
	cdp_wsctx_t *ws;

	if (uv_loop_init(&loop) != 0 || !(ws = cdp_wsctx_new(&loop)))
		return -1;
	cdp_wsctx_close(ws);
	uv_run(&loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(ws);
	return uv_loop_close(&loop) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_browser__parse_proc_stat),
		cmocka_unit_test(test_browser__session_members_fake_proc),
		cmocka_unit_test(test_browser__find_executable),
		cmocka_unit_test(test_browser__launch_and_close_leaves_nothing),
		cmocka_unit_test(test_browser__command_line),
		cmocka_unit_test(test_browser__loads_a_page),
		cmocka_unit_test(test_browser__kill9_fires_on_lost),
		cmocka_unit_test(test_browser__attach_http),
		cmocka_unit_test(test_browser__attach_errors),
		cmocka_unit_test(test_browser__close_before_start_and_before_ready),
		cmocka_unit_test(test_browser__close_from_lost_callback),
		cmocka_unit_test(test_browser__launch_failures),
		cmocka_unit_test(test_browser__exec_wrapper_kills_tree_with_parent),
	};

	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
