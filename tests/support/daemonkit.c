#include "tests/support/daemonkit.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/testutil.h"

void dk_sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int dk_spawn(dk_proc_t *p, const char *const argv[], const char *const env_extra[])
{
	char tmpl[] = "/tmp/cdpilot-dk-XXXXXX";
	int fd;
	pid_t pid;

	memset(p, 0, sizeof *p);
	fd = mkstemp(tmpl);
	if (fd < 0)
		return -errno;
	close(fd);
	snprintf(p->out_path, sizeof p->out_path, "%s.out", tmpl);
	snprintf(p->err_path, sizeof p->err_path, "%s.err", tmpl);
	unlink(tmpl);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int o = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(p->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		for (size_t i = 0; env_extra && env_extra[i]; i++) {
			const char *eq = strchr(env_extra[i], '=');
			char name[256];
			if (!eq || (size_t)(eq - env_extra[i]) >= sizeof name)
				continue;
			memcpy(name, env_extra[i], (size_t)(eq - env_extra[i]));
			name[eq - env_extra[i]] = '\0';
			if (eq[1])
				setenv(name, eq + 1, 1);
			else
				unsetenv(name);
		}
		signal(SIGPIPE, SIG_DFL);
		/* a test killed by ctest's timeout must not leave a daemon running */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	p->pid = pid;
	return 0;
}

int dk_wait(dk_proc_t *p, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;

	if (!p->pid)
		return 1;
	for (;;) {
		pid_t r = waitpid(p->pid, &p->status, WNOHANG);
		if (r == p->pid) {
			p->pid = 0;
			return 1;
		}
		if (tu_now_ms() >= end)
			return 0;
		dk_sleep_ms(20);
	}
}

int dk_stop(dk_proc_t *p, uint64_t timeout_ms)
{
	if (p->pid) {
		kill(p->pid, SIGTERM);
		if (!dk_wait(p, timeout_ms)) {
			kill(p->pid, SIGKILL);
			dk_wait(p, 5000);
			return -1;
		}
	}
	if (WIFEXITED(p->status))
		return WEXITSTATUS(p->status);
	if (WIFSIGNALED(p->status))
		return 128 + WTERMSIG(p->status);
	return -1;
}

void dk_proc_release(dk_proc_t *p)
{
	if (p->pid) {
		kill(p->pid, SIGKILL);
		dk_wait(p, 5000);
	}
	if (p->out_path[0])
		unlink(p->out_path);
	if (p->err_path[0])
		unlink(p->err_path);
	memset(p, 0, sizeof *p);
}

char *dk_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f)
		return strdup("");
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	if (!buf)
		return strdup("");
	buf[len] = '\0';
	return buf;
}

int dk_fixture_start(dk_proc_t *p, char *base, size_t baselen)
{
	return dk_fixture_start_env(p, base, baselen, NULL);
}

int dk_fixture_start_env(dk_proc_t *p, char *base, size_t baselen,
                         const char *const env_extra[])
{
	const char *bin = getenv("CDPILOT_FIXTURE_BIN");
	uint64_t end;
	int rc;

	if (!bin)
		fail_msg("CDPILOT_FIXTURE_BIN is not set (run the tests through ctest)");
	rc = dk_spawn(p, (const char *const[]){ bin, "--port", "0", NULL }, env_extra);
	if (rc != 0)
		return rc;
	end = tu_now_ms() + 10000;
	while (tu_now_ms() < end) {
		char *out = dk_read_file(p->out_path);
		char *at = strstr(out, "listening on ");
		if (at) {
			char *nl = strchr(at, '\n');
			if (nl) {
				*nl = '\0';
				snprintf(base, baselen, "%s", at + strlen("listening on "));
				free(out);
				return 0;
			}
		}
		free(out);
		dk_sleep_ms(20);
	}
	return -ETIMEDOUT;
}

int dk_bed_setup(void **state, size_t env_size, const char *name)
{
	dk_bed_t *b = calloc(1, env_size);
	char env[160];

	if (!b)
		return -1;
	*state = b;
	tu_tag_processes();
	snprintf(b->dir, sizeof b->dir, "/tmp/cdpilot-test-%s-XXXXXX", name);
	if (!mkdtemp(b->dir))
		return -1;
	snprintf(b->targets, sizeof b->targets, "%s/targets.json", b->dir);
	snprintf(b->out, sizeof b->out, "%s/out.jsonl", b->dir);
	snprintf(b->reqlog, sizeof b->reqlog, "%s/requests.log", b->dir);
	snprintf(env, sizeof env, "FIXTURE_REQUEST_LOG=%s", b->reqlog);
	return dk_fixture_start_env(&b->fx, b->base, sizeof b->base,
	                            (const char *const[]){ env, NULL }) == 0
	               ? 0
	               : -1;
}

void dk_bed_release(dk_bed_t *b)
{
	dk_proc_release(&b->d);
	dk_proc_release(&b->fx);
	if (b->dir[0])
		tu_rm_rf(b->dir);
}

int dk_bed_teardown(void **state)
{
	dk_bed_release(*state);
	free(*state);
	return 0;
}

int dk_run_start(dk_proc_t *p, const char *targets, const char *out, char *metrics,
                 size_t metricslen, const char *const prefix[], const char *const env_extra[])
{
	const char *bin = getenv("CDPILOT_BIN");
	char addr[80];
	const char *envs[32], *argv[32];
	size_t n = 0, a = 0;
	int port = tu_unused_port();

	if (!bin)
		fail_msg("CDPILOT_BIN is not set (run the tests through ctest)");
	snprintf(metrics, metricslen, "127.0.0.1:%d", port);
	snprintf(addr, sizeof addr, "METRICS_ADDR=%s", metrics);
	envs[n++] = addr;
	for (size_t i = 0; env_extra && env_extra[i] && n < 31; i++)
		envs[n++] = env_extra[i];
	envs[n] = NULL;
	for (size_t i = 0; prefix && prefix[i] && a < 24; i++)
		argv[a++] = prefix[i];
	argv[a++] = bin;
	argv[a++] = "run";
	argv[a++] = "--targets";
	argv[a++] = targets;
	argv[a++] = "--output";
	argv[a++] = out;
	argv[a++] = "--no-status";
	argv[a] = NULL;
	assert_int_equal(dk_spawn(p, argv, envs), 0);
	return port;
}

void dk_bed_run(dk_bed_t *b, const char *const env_extra[])
{
	const char *envs[32] = { "LOG_LEVEL=info" };
	size_t n = 1;

	for (size_t i = 0; env_extra && env_extra[i] && n < 31; i++)
		envs[n++] = env_extra[i];
	envs[n] = NULL;
	dk_run_start(&b->d, b->targets, b->out, b->metrics, sizeof b->metrics, NULL, envs);
}

struct body {
	char *buf;
	size_t len;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct body *b = ud;
	size_t add = size * n;
	char *nb = realloc(b->buf, b->len + add + 1);

	if (!nb)
		return 0;
	b->buf = nb;
	memcpy(b->buf + b->len, data, add);
	b->len += add;
	b->buf[b->len] = '\0';
	return add;
}

char *dk_http_get(const char *url, long *code)
{
	CURL *c = curl_easy_init();
	struct body b = { NULL, 0 };
	CURLcode rc;

	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(c);
	if (code)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		free(b.buf);
		return NULL;
	}
	return b.buf ? b.buf : strdup("");
}

double dk_metric(const char *metrics, const char *series)
{
	char url[160], *text, *p;
	long code = 0;
	double v = -1;
	size_t n = strlen(series);

	snprintf(url, sizeof url, "http://%s/metrics", metrics);
	text = dk_http_get(url, &code);
	assert_non_null(text);
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			v = strtod(p + n + 1, NULL);
	free(text);
	return v;
}

json_t *dk_http_get_json(const char *url)
{
	long code = 0;
	char *body = dk_http_get(url, &code);
	json_t *j;

	if (!body)
		return NULL;
	j = json_loads(body, JSON_DECODE_ANY, NULL);
	free(body);
	return j;
}

json_t *dk_read_jsonl(const char *path)
{
	char *text = dk_read_file(path);
	json_t *arr = json_array();
	char *line = text, *nl;

	while (*line && (nl = strchr(line, '\n')) != NULL) {
		json_error_t err;
		json_t *j;
		*nl = '\0';
		j = json_loads(line, 0, &err);
		if (!j)
			fail_msg("%s: unparsable line: %s (%s)", path, line, err.text);
		json_array_append_new(arr, j);
		line = nl + 1;
	}
	free(text);
	return arr;
}

/* N if query ("a=1&t=12") has key=N (decimal), else -1. */
static long dk_query_num(const char *query, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			char *end;
			long v = strtol(p + klen + 1, &end, 10);
			return end > p + klen + 1 && (*end == '\0' || *end == '&') ? v : -1;
		}
	}
	return -1;
}

static int dk_cmp_req(const void *a, const void *b)
{
	const dk_req_t *x = a, *y = b;

	if (x->target != y->target)
		return x->target < y->target ? -1 : 1;
	return x->at_ms < y->at_ms ? -1 : x->at_ms > y->at_ms;
}

size_t dk_reqlog_read(const char *path, const char *key, int ntargets, dk_req_t **out)
{
	char *text = dk_read_file(path), *line = text, *nl;
	size_t n = 0, cap = 0;
	dk_req_t *reqs = NULL;

	for (; *line && (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		char *sp, *q, *end;
		long long at;
		long t;
		*nl = '\0';
		at = strtoll(line, &end, 10);
		sp = end;
		if (end == line || *sp != ' ')
			fail_msg("%s: not a request log line: %s", path, line);
		q = strchr(sp + 1, '?');
		t = q ? dk_query_num(q + 1, key) : -1;
		if (t < 0 || t >= ntargets)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			reqs = realloc(reqs, cap * sizeof *reqs);
			assert_non_null(reqs);
		}
		reqs[n].at_ms = at;
		reqs[n].target = (int)t;
		n++;
	}
	free(text);
	if (n)
		qsort(reqs, n, sizeof *reqs, dk_cmp_req);
	*out = reqs;
	return n;
}

size_t dk_reqlog_count(const dk_req_t *reqs, size_t n, int64_t from_ms, int64_t to_ms)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += reqs[i].at_ms >= from_ms && reqs[i].at_ms < to_ms;
	return c;
}

int dk_reqlog_doubles(const dk_req_t *reqs, size_t n, int64_t from_ms, int64_t to_ms,
                      int64_t gap_ms, const char *label)
{
	int doubles = 0;

	for (size_t i = 1; i < n; i++) {
		const dk_req_t *a = &reqs[i - 1], *b = &reqs[i];
		if (a->target != b->target || a->at_ms < from_ms || b->at_ms >= to_ms ||
		    b->at_ms - a->at_ms >= gap_ms)
			continue;
		if (doubles++ < 5)
			print_message("%s: target %d requested at %lld and again %lld ms later\n",
			              label, a->target, (long long)a->at_ms,
			              (long long)(b->at_ms - a->at_ms));
	}
	return doubles;
}

const dk_req_t *dk_reqlog_last(const dk_req_t *reqs, size_t n, int t, int64_t before_ms)
{
	const dk_req_t *last = NULL;

	for (size_t i = 0; i < n; i++)
		if (reqs[i].target == t && reqs[i].at_ms < before_ms)
			last = &reqs[i];
	return last;
}

void dk_write_jsonapi_targets(const char *path, const char *base, const char *key, int n,
                              const char *fields)
{
	size_t cap = 64 + (size_t)n * (160 + strlen(base) + 2 * strlen(key) + strlen(fields));
	size_t len = 0;
	char *text = malloc(cap);

	assert_non_null(text);
	len += (size_t)snprintf(text + len, cap - len, "{\"targets\": [");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len,
		                        "%s{\"id\": \"%s%03d\", \"adapter\": \"jsonapi\", \"url\": "
		                        "\"%s/live/api/matches?%s=%d\", \"class\": \"live\", "
		                        "\"fields\": %s}",
		                        i ? "," : "", key, i, base, key, i, fields);
	snprintf(text + len, cap - len, "]}");
	dk_write_file(path, text);
	free(text);
}

void dk_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

void dk_dump_log(const dk_proc_t *p)
{
	char *err = dk_read_file(p->err_path);
	size_t len = strlen(err);
	print_message("daemon log (last 4000 bytes):\n%s\n", err + (len > 4000 ? len - 4000 : 0));
	free(err);
}

void dk_stop_clean(dk_proc_t *p)
{
	static tu_proc_id_t below[4096];
	size_t n = tu_descendants(p->pid, below, 4096);
	int code = dk_stop(p, 40000);

	if (code != 0)
		dk_dump_log(p);
	assert_int_equal(code, 0);
	/* n may be 0: a daemon whose targets need no browser runs none (pool_set_wanted) */
	assert_int_equal(tu_wait_alive_count(below, n < 4096 ? n : 4096, 10000), 0);
}

int64_t dk_wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t dk_parse_time(const char *s)
{
	struct tm tm;
	int ms = 0;
	char *end;

	memset(&tm, 0, sizeof tm);
	end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!end)
		fail_msg("expected an RFC 3339 time (2026-11-23T14:17:32.123Z), got \"%s\"",
		         s ? s : "(null)");
	if (*end == '.')
		ms = (int)strtol(end + 1, NULL, 10);
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Is word (wlen bytes, not NUL-terminated) one of the space-separated words of list? */
static int dk_has_word(const char *list, const char *word, size_t wlen)
{
	for (const char *p = list; *p; p += strspn(p, " ")) {
		size_t n = strcspn(p, " ");
		if (n == wlen && strncmp(p, word, wlen) == 0)
			return 1;
		p += n;
	}
	return 0;
}

/* Is family (len bytes) a "# TYPE" line of text? */
static int dk_scraped(const char *text, const char *family, size_t len)
{
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, "# TYPE ", 7) == 0 && strncmp(l + 7, family, len) == 0 &&
		    l[7 + len] == ' ')
			return 1;
	return 0;
}

void dk_check_metric_names(const char *metrics_text, const char *conds)
{
	char *list = dk_read_file(CDPILOT_SOURCE_DIR "/docker/metric-names.txt");
	unsigned bad = 0, listed = 0;

	assert_non_null(list);
	/* the list's names: each scraped unless its condition does not hold */
	for (char *l = list, *next; l && *l; l = next) {
		size_t n = strcspn(l, " \t#\n");
		const char *when = NULL, *c;
		next = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL;
		if (n == 0)
			continue;
		listed++;
		c = strstr(l, "# when ");
		if (c && (!next || c < next))
			when = c + 7;
		int want = !when || dk_has_word(conds, when, strcspn(when, " \n"));
		if (dk_scraped(metrics_text, l, n) != want) {
			print_message("metric-names.txt: %.*s is %s /metrics (conditions \"%s\")\n",
			              (int)n, l, want ? "missing from" : "unexpected in", conds);
			bad++;
		}
	}
	/* the scraped families: each listed */
	for (const char *l = metrics_text; l && *l;
	     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		size_t n;
		int found = 0;
		if (strncmp(l, "# TYPE ", 7) != 0)
			continue;
		n = strcspn(l + 7, " \n");
		for (const char *m = list; m && *m && !found;
		     m = strchr(m, '\n') ? strchr(m, '\n') + 1 : NULL)
			found = strncmp(m, l + 7, n) == 0 && strcspn(m, " \t#\n") == n;
		if (!found) {
			print_message("/metrics family %.*s is not in docker/metric-names.txt\n",
			              (int)n, l + 7);
			bad++;
		}
	}
	free(list);
	if (bad)
		fail_msg("/metrics and docker/metric-names.txt differ (%u listed names, %u "
		         "differences, above)",
		         listed, bad);
}
