/* testutil: audits (fds, Chromium processes) and loop helpers for the tests. */
#include "tests/support/testutil.h"

#include <ctype.h>
#include <signal.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>


int tu_fd_count(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own fd */
}

int tu_chromium_count(void)
{
	int n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char path[300], comm[64] = "";
		FILE *f;
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof comm, f) && strncmp(comm, "chrom", 5) == 0)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

uint64_t tu_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void tu_wake(uv_timer_t *t) { (void)t; }

int tu_run_until(uv_loop_t *loop, const volatile int *flag, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;
	uv_timer_t wake;

	/* A 10 ms heartbeat: a callback that sets the flag from a timer must not leave the
	 * loop blocked in poll until some unrelated I/O arrives. */
	uv_timer_init(loop, &wake);
	uv_timer_start(&wake, tu_wake, 10, 10);
	while (!*flag && tu_now_ms() < end)
		uv_run(loop, UV_RUN_ONCE);
	uv_timer_stop(&wake);
	uv_close((uv_handle_t *)&wake, NULL);
	uv_run(loop, UV_RUN_NOWAIT); /* let the close finish */
	return *flag != 0;
}

void tu_loop_finish(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

void tu_warm_up_libuv(void)
{
	uv_loop_t loop;
	uv_signal_t sig;

	assert_int_equal(uv_loop_init(&loop), 0);
	uv_signal_init(&loop, &sig);
	uv_close((uv_handle_t *)&sig, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
}

int tu_state_alloc(void **state, size_t size)
{
	*state = calloc(1, size);
	return *state ? 0 : -1;
}

int tu_state_release(void **state, int finished)
{
	if (finished)
		free(*state);
	return 0;
}

int tu_wait_chromium_count(int expected, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;
	int n;

	while ((n = tu_chromium_count()) > expected && tu_now_ms() < end)
		usleep(50 * 1000);
	return n;
}

/* ---- tu_httpd: a tiny HTTP server for the fetch tests ---- */

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>

typedef struct tu_httpd_conn {
	uv_tcp_t tcp;
	uv_write_t wr;
	struct tu_httpd *h;
	struct tu_httpd_conn *next, *prev;
	char head[16384];
	size_t len;
	int answered, closing;
} tu_httpd_conn_t;

struct tu_httpd {
	uv_loop_t *loop;
	uv_tcp_t listener;
	tu_httpd_conn_t *conns;
	char *response;
	size_t response_len;
	int hang, port, open_handles, closing;
	unsigned requests;
};

static void httpd_maybe_free(struct tu_httpd *h)
{
	if (h->closing && h->open_handles == 0) {
		free(h->response);
		free(h);
	}
}

static void httpd_listener_closed(uv_handle_t *hd)
{
	struct tu_httpd *h = hd->data;
	h->open_handles--;
	httpd_maybe_free(h);
}

static void httpd_conn_closed(uv_handle_t *hd)
{
	tu_httpd_conn_t *c = hd->data;
	struct tu_httpd *h = c->h;
	free(c);
	h->open_handles--;
	httpd_maybe_free(h);
}

static void httpd_conn_close(tu_httpd_conn_t *c)
{
	struct tu_httpd *h = c->h;

	if (c->closing)
		return;
	c->closing = 1;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->tcp, httpd_conn_closed);
}

static void httpd_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
	tu_httpd_conn_t *c = hd->data;
	size_t room = sizeof c->head - 1 - c->len;

	if (room == 0) { /* request heads beyond our buffer: keep reading, forget the bytes */
		c->len = 0;
		room = sizeof c->head - 1;
	}
	*buf = uv_buf_init(c->head + c->len, (unsigned)room);
}

static void httpd_written(uv_write_t *wr, int status)
{
	tu_httpd_conn_t *c = wr->data;
	httpd_conn_close(c);
}

static void httpd_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	tu_httpd_conn_t *c = s->data;
	struct tu_httpd *h = c->h;

	if (n < 0) {
		httpd_conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->head[c->len] = '\0';
	if (c->answered || !strstr(c->head, "\r\n\r\n"))
		return;
	c->answered = 1;
	h->requests++;
	if (!h->hang) {
		uv_buf_t b = uv_buf_init(h->response, (unsigned)h->response_len);
		c->wr.data = c;
		if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, httpd_written) != 0)
			httpd_conn_close(c);
	}
}

static void httpd_on_connection(uv_stream_t *server, int status)
{
	struct tu_httpd *h = server->data;
	tu_httpd_conn_t *c;

	if (status < 0 || h->closing)
		return;
	c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->h = h;
	uv_tcp_init(h->loop, &c->tcp);
	c->tcp.data = c;
	h->open_handles++;
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, httpd_alloc, httpd_read) != 0)
		httpd_conn_close(c);
}

tu_httpd_t *tu_httpd_new(uv_loop_t *loop, int status, const char *content_type,
                         const char *body, size_t body_len, int hang)
{
	struct tu_httpd *h = calloc(1, sizeof *h);
	struct sockaddr_in addr;
	struct sockaddr_storage bound;
	int namelen = sizeof bound;
	char head[512];
	int hl;

	if (!h)
		return NULL;
	h->loop = loop;
	h->hang = hang;
	hl = snprintf(head, sizeof head,
	              "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	              "Connection: close\r\n\r\n",
	              status, content_type ? content_type : "text/plain", body_len);
	h->response = malloc((size_t)hl + body_len);
	if (!h->response) {
		free(h);
		return NULL;
	}
	memcpy(h->response, head, (size_t)hl);
	if (body_len)
		memcpy(h->response + hl, body, body_len);
	h->response_len = (size_t)hl + body_len;

	uv_tcp_init(loop, &h->listener);
	h->listener.data = h;
	h->open_handles = 1;
	uv_ip4_addr("127.0.0.1", 0, &addr);
	if (uv_tcp_bind(&h->listener, (const struct sockaddr *)&addr, 0) != 0 ||
	    uv_listen((uv_stream_t *)&h->listener, 64, httpd_on_connection) != 0 ||
	    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &namelen) != 0) {
		tu_httpd_close(h);
		return NULL;
	}
	h->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	return h;
}

int tu_httpd_port(const tu_httpd_t *h) { return h->port; }

unsigned tu_httpd_requests(const tu_httpd_t *h) { return h->requests; }

void tu_httpd_close(tu_httpd_t *h)
{
	if (h->closing)
		return;
	h->closing = 1;
	while (h->conns)
		httpd_conn_close(h->conns);
	uv_close((uv_handle_t *)&h->listener, httpd_listener_closed);
}

int tu_unused_port(void)
{
	struct sockaddr_in a;
	socklen_t l = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int tu_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path) != 0 && errno != ENOENT ? errno : 0;
}

int tu_rm_rf(const char *path)
{
	int rc = nftw(path, tu_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (rc == -1)
		return errno == ENOENT ? 0 : -errno;
	return -rc;
}

int tu_path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* Reads /proc/<pid>/<file> into buf (NUL-terminated); returns the bytes read, 0 if it cannot
 * be read. */
static size_t read_proc(const char *pid, const char *file, char *buf, size_t size)
{
	char path[300];
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%s/%s", pid, file);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

/* 1 if /proc/<pid>/cmdline has an argument containing needle. */
static int cmdline_contains(const char *pid, const char *needle)
{
	char buf[16384];
	size_t n = read_proc(pid, "cmdline", buf, sizeof buf);

	for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
		if (strstr(buf + i, needle))
			return 1;
	return 0;
}

int tu_count_procs_with_arg(const char *needle)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char stat[512], *close_paren;

		if (!isdigit((unsigned char)e->d_name[0]) ||
		    !read_proc(e->d_name, "stat", stat, sizeof stat))
			continue;
		close_paren = strrchr(stat, ')');
		if (!close_paren || close_paren[1] != ' ' || close_paren[2] == 'Z' ||
		    close_paren[2] == 'X')
			continue;
		n += cmdline_contains(e->d_name, needle);
	}
	closedir(d);
	return n;
}

#define TU_TAG_VAR "CDPILOT_TEST_TAG"

void tu_tag_processes(void)
{
	char tag[64];

	if (getenv(TU_TAG_VAR))
		return;
	snprintf(tag, sizeof tag, "%d-%llu", (int)getpid(), (unsigned long long)tu_now_ms());
	setenv(TU_TAG_VAR, tag, 1);
}

/* 1 if /proc/<pid>/environ holds exactly TU_TAG_VAR=tag. */
static int environ_has(const char *pid, const char *needle, size_t nlen)
{
	char buf[8192];
	size_t n = read_proc(pid, "environ", buf, sizeof buf), start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || buf[i] == '\0') {
			if (i - start == nlen && memcmp(buf + start, needle, nlen) == 0)
				return 1;
			start = i + 1;
		}
	}
	return 0;
}

/*
 * The live processes other than this one that carry this process's tag: all of them
 * counted or, with needle, those with an argument containing needle sent sig and counted.
 * -1 without a tag.
 */
static int tagged_scan(const char *needle, int sig)
{
	const char *tag = getenv(TU_TAG_VAR);
	char tagged[128];
	size_t nlen;
	int n = 0;
	DIR *d;
	struct dirent *e;

	if (!tag)
		return -1;
	nlen = (size_t)snprintf(tagged, sizeof tagged, "%s=%s", TU_TAG_VAR, tag);
	d = opendir("/proc");
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		long pid = strtol(e->d_name, NULL, 10);
		if (!isdigit((unsigned char)e->d_name[0]) || pid == (long)getpid() ||
		    !environ_has(e->d_name, tagged, nlen))
			continue;
		if (!needle || (cmdline_contains(e->d_name, needle) && kill((pid_t)pid, sig) == 0))
			n++;
	}
	closedir(d);
	return n;
}

int tu_tagged_count(void)
{
	return tagged_scan(NULL, 0);
}

int tu_kill_tagged_with_arg(const char *needle, int sig)
{
	return tagged_scan(needle, sig);
}

int tu_wait_tagged_count(int expected, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;
	int n;

	while ((n = tu_tagged_count()) > expected && tu_now_ms() < end)
		usleep(50 * 1000);
	return n;
}

int tu_wait_procs_with_arg(const char *needle, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;
	int n;

	while ((n = tu_count_procs_with_arg(needle)) > 0 && tu_now_ms() < end)
		usleep(50 * 1000);
	return n;
}

void tu_report_chromium_count(int before)
{
	int n = tu_wait_chromium_count(before, 5000);

	if (n > before)
		print_message("note: %d Chromium processes on the machine, %d at the start of the "
		              "test (other runs?)\n",
		              n, before);
}

/* ---- descendants ---- */

static int read_stat(long pid, long *ppid, unsigned long long *start)
{
	char name[32], buf[1024], *p;

	snprintf(name, sizeof name, "%ld", pid);
	if (!read_proc(name, "stat", buf, sizeof buf))
		return -1;
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
	 * cutime cstime priority nice threads itrealvalue starttime */
	if (sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
	                  "%*d %*d %llu",
	           ppid, start) != 2)
		return -1;
	return 0;
}

size_t tu_descendants(pid_t root, tu_proc_id_t *out, size_t max)
{
	enum { MAXP = 32768 };
	static long pids[MAXP], ppids[MAXP];
	static unsigned long long starts[MAXP];
	size_t n = 0, found = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL && n < MAXP) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		if (read_stat(pid, &ppids[n], &starts[n]) == 0)
			pids[n++] = pid;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		long p = ppids[i];
		for (int hops = 0; p > 1 && p != (long)root && hops < 64; hops++) {
			size_t j;
			for (j = 0; j < n && pids[j] != p; j++)
				;
			if (j == n)
				break;
			p = ppids[j];
		}
		if (p == (long)root) {
			if (found < max) {
				out[found].pid = (pid_t)pids[i];
				out[found].start = starts[i];
			}
			found++;
		}
	}
	return found;
}

int tu_alive_count(const tu_proc_id_t *procs, size_t n)
{
	int alive = 0;

	for (size_t i = 0; i < n; i++) {
		long ppid;
		unsigned long long start;
		if (read_stat((long)procs[i].pid, &ppid, &start) == 0 && start == procs[i].start)
			alive++;
	}
	return alive;
}

int tu_wait_alive_count(const tu_proc_id_t *procs, size_t n, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;
	int a;

	while ((a = tu_alive_count(procs, n)) > 0 && tu_now_ms() < end)
		usleep(50 * 1000);
	return a;
}

int tu_kill_descendants_with_arg(pid_t root, const char *needle, int sig)
{
	static tu_proc_id_t below[4096];
	size_t n = tu_descendants(root, below, 4096);
	int killed = 0;

	for (size_t i = 0; i < n && i < 4096; i++) {
		char pid[32];
		snprintf(pid, sizeof pid, "%d", (int)below[i].pid);
		if (cmdline_contains(pid, needle) && kill(below[i].pid, sig) == 0)
			killed++;
	}
	return killed;
}
