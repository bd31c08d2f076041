/*
 * fetch: HTTP GET on libcurl's multi socket interface, driven by the caller's libuv loop.
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one uv_poll per socket,
 * in a small per-socket context assigned with curl_multi_assign) and when to wake it up
 * (CURLMOPT_TIMERFUNCTION: one uv_timer); we hand readiness back with
 * curl_multi_socket_action() and collect finished transfers with curl_multi_info_read().
 *
 * A poll handle closes asynchronously, while curl may already have closed its fd and
 * opened a new socket with the same number: each socket therefore gets its own context
 * that is freed only in the poll's close callback, and a new socket always gets a new
 * context and a new poll. Nothing here is global except curl_global_init(), done once.
 */
#include "util/fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "util/growbuf.h"
#include "util/log.h"
#include "util/list.h"
#include "util/netpolicy.h"

#define FETCH_DEFAULT_MAX ((size_t)16 * 1024 * 1024)
#define SOCK_OF(h) ((fetch_sock_t *)((char *)(h)-offsetof(fetch_sock_t, poll)))

typedef struct fetch_sock {
	uv_poll_t poll;
	fetch_ctx_t *ctx;
	curl_socket_t fd;
	int closed;
	struct fetch_sock *next, *prev; /* in ctx->socks while the poll is open */
} fetch_sock_t;

typedef struct fetch_req {
	struct fetch_req *next, *prev;
	fetch_ctx_t *ctx;
	CURL *easy;
	fetch_cb cb;
	void *ud;
	growbuf_t body;      /* cap: max_bytes */
	int overflow;        /* the body went over its cap */
	char errbuf[CURL_ERROR_SIZE];
	char denied[300];    /* why the policy refused an address, or "" */
} fetch_req_t;

struct fetch_ctx {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	fetch_req_t *reqs;   /* pending transfers */
	fetch_sock_t *socks; /* sockets with an open poll */
	int handles;         /* uv handles not yet closed (timer + polls) */
	int closing;
	const netpolicy_t *policy; /* borrowed, or NULL */
	fetch_close_cb close_cb;
	void *close_ud;
};

static int g_curl_ready; /* curl_global_init() done (cdpilot is single-threaded) */

/* ---- uv handle bookkeeping ---- */

static void ctx_maybe_free(fetch_ctx_t *ctx)
{
	if (!ctx->closing || ctx->handles > 0)
		return;
	if (ctx->close_cb)
		ctx->close_cb(ctx->close_ud);
	free(ctx);
}

static void on_handle_closed(uv_handle_t *h)
{
	fetch_ctx_t *ctx = h->data;

	if (h->type == UV_POLL)
		free(SOCK_OF(h));
	ctx->handles--;
	ctx_maybe_free(ctx);
}

static void sock_close(fetch_sock_t *s)
{
	fetch_ctx_t *ctx = s->ctx;

	if (s->closed)
		return;
	s->closed = 1;
	DLIST_UNLINK(&ctx->socks, s, prev, next);
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

/* ---- completion ---- */

static void req_unlink(fetch_req_t *r)
{
	fetch_ctx_t *ctx = r->ctx;

	DLIST_UNLINK(&ctx->reqs, r, prev, next);
}

static int map_curl_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK: return 0;
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST: return -EHOSTUNREACH;
	case CURLE_FILESIZE_EXCEEDED: return -EMSGSIZE;
	default: return -EIO;
	}
}

/*
 * Finishes r (already removed from the multi handle and from ctx->reqs): calls its
 * callback once, then frees it.
 */
static void req_finish(fetch_req_t *r, int status, const char *error)
{
	fetch_result_t res;
	long code = 0;

	if (r->easy)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	memset(&res, 0, sizeof res);
	res.status = status;
	res.http_code = code;
	res.body = (status == 0 && r->body.data) ? r->body.data : "";
	res.body_len = status == 0 ? r->body.len : 0;
	res.error = error ? error : "";
	r->cb(&res, r->ud);
	if (r->easy)
		curl_easy_cleanup(r->easy);
	growbuf_release(&r->body);
	free(r);
}

static void req_done(fetch_req_t *r, CURLcode rc)
{
	char msg[CURL_ERROR_SIZE + 64];
	int status = map_curl_error(rc);

	if (r->denied[0] && rc != CURLE_OK) {
		status = -EACCES;
		snprintf(msg, sizeof msg, "%s", r->denied);
	} else if (r->overflow || rc == CURLE_FILESIZE_EXCEEDED) {
		status = -EMSGSIZE;
		snprintf(msg, sizeof msg, "response body over the %zu-byte cap", r->body.cap);
	} else if (rc != CURLE_OK) {
		snprintf(msg, sizeof msg, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
	} else {
		msg[0] = '\0';
	}
	req_finish(r, status, msg);
}

/* Delivers every finished transfer; stops if a callback closes the context. */
static void check_done(fetch_ctx_t *ctx)
{
	CURLMsg *m;
	int left;

	while (!ctx->closing && (m = curl_multi_info_read(ctx->multi, &left)) != NULL) {
		fetch_req_t *r = NULL;
		CURLcode rc;

		if (m->msg != CURLMSG_DONE)
			continue;
		rc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curl_multi_remove_handle(ctx->multi, m->easy_handle);
		if (!r)
			continue;
		req_unlink(r);
		req_done(r, rc);
	}
}

/* ---- curl -> libuv ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
	fetch_sock_t *s = SOCK_OF(h);
	fetch_ctx_t *ctx = s->ctx;
	int flags = 0, running = 0;

	if (ctx->closing)
		return;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	/* s may be closed (and later freed) from inside this call: use the fd we saved. */
	curl_multi_socket_action(ctx->multi, s->fd, flags, &running);
	check_done(ctx);
}

static void on_timer(uv_timer_t *t)
{
	fetch_ctx_t *ctx = t->data;
	int running = 0;

	if (ctx->closing)
		return;
	curl_multi_socket_action(ctx->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(ctx);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	fetch_ctx_t *ctx = userp;
	fetch_sock_t *s = socketp;
	int events = 0, rc;

	if (what == CURL_POLL_REMOVE) {
		if (s) {
			if (!ctx->closing) /* inside curl_multi_cleanup() the hash is going away */
				curl_multi_assign(ctx->multi, fd, NULL);
			sock_close(s);
		}
		return 0;
	}
	if (ctx->closing)
		return 0;
	if (!s) {
		s = calloc(1, sizeof *s);
		if (!s) {
			log_error("fetch", "out of memory for a socket context");
			return -1;
		}
		rc = uv_poll_init_socket(ctx->loop, &s->poll, fd);
		if (rc < 0) {
			log_warn("fetch", "cannot watch socket %d: %s", (int)fd, uv_strerror(rc));
			free(s);
			return -1;
		}
		s->poll.data = ctx;
		s->ctx = ctx;
		s->fd = fd;
		s->next = ctx->socks;
		if (ctx->socks)
			ctx->socks->prev = s;
		ctx->socks = s;
		ctx->handles++;
		curl_multi_assign(ctx->multi, fd, s);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	rc = uv_poll_start(&s->poll, events, on_poll);
	if (rc < 0) {
		log_warn("fetch", "cannot poll socket %d: %s", (int)fd, uv_strerror(rc));
		return -1;
	}
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	fetch_ctx_t *ctx = userp;

	if (ctx->closing || timeout_ms < 0) {
		uv_timer_stop(&ctx->timer);
		return 0;
	}
	/* 0 means "now": the timer fires on the next loop iteration, outside curl. */
	uv_timer_start(&ctx->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	fetch_req_t *r = ud;
	size_t n = size * nmemb;
	int rc = growbuf_append(&r->body, data, n);

	if (rc == -EMSGSIZE)
		r->overflow = 1;
	return rc ? 0 : n; /* 0: curl aborts the transfer with CURLE_WRITE_ERROR */
}

/* Every socket curl opens for a request, after DNS and before connect: an address the
 * policy denies gets no socket (curl then tries the next address, or fails). */
static curl_socket_t open_socket_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	fetch_req_t *r = ud;
	char why[256], ip[INET6_ADDRSTRLEN] = "?";
	int fd;

	if (purpose == CURLSOCKTYPE_IPCXN && r->ctx->policy &&
	    netpolicy_check_addr(r->ctx->policy, &a->addr, why, sizeof why) != 0) {
		if (a->family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&a->addr)->sin_addr, ip, sizeof ip);
		else if (a->family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->addr)->sin6_addr, ip,
			          sizeof ip);
		snprintf(r->denied, sizeof r->denied,
		         "refused by the target policy: the host's address %s is %.200s", ip, why);
		return CURL_SOCKET_BAD;
	}
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* ---- public API ---- */

void fetch_ctx_set_policy(fetch_ctx_t *ctx, const netpolicy_t *policy)
{
	ctx->policy = policy;
}

fetch_ctx_t *fetch_ctx_new(uv_loop_t *loop)
{
	fetch_ctx_t *ctx = NULL;

	if (!g_curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			log_error("fetch", "curl_global_init failed");
			return NULL;
		}
		g_curl_ready = 1;
	}
	ctx = calloc(1, sizeof *ctx);
	if (!ctx)
		return NULL;
	ctx->loop = loop;
	ctx->multi = curl_multi_init();
	if (!ctx->multi) {
		free(ctx);
		return NULL;
	}
	curl_multi_setopt(ctx->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(ctx->multi, CURLMOPT_SOCKETDATA, ctx);
	curl_multi_setopt(ctx->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(ctx->multi, CURLMOPT_TIMERDATA, ctx);
	uv_timer_init(loop, &ctx->timer);
	ctx->timer.data = ctx;
	ctx->handles = 1;
	return ctx;
}

int fetch_get(fetch_ctx_t *ctx, const char *url, unsigned timeout_ms, size_t max_bytes, fetch_cb cb,
              void *ud)
{
	fetch_req_t *r = NULL;
	CURLMcode mrc;
	int rc = 0;

	if (!ctx || !url || !cb)
		return -EINVAL;
	if (ctx->closing)
		return -ECANCELED;
	r = calloc(1, sizeof *r);
	if (!r) {
		rc = -ENOMEM;
		goto out;
	}
	r->ctx = ctx;
	r->cb = cb;
	r->ud = ud;
	growbuf_init(&r->body, max_bytes ? max_bytes : FETCH_DEFAULT_MAX);
	r->easy = curl_easy_init();
	if (!r->easy) {
		rc = -ENOMEM;
		goto out;
	}
	if (curl_easy_setopt(r->easy, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
		rc = -EINVAL;
		goto out;
	}
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->body.cap);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "cdpilot/" CDPILOT_VERSION);
	curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
	curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETDATA, r);
	mrc = curl_multi_add_handle(ctx->multi, r->easy);
	if (mrc != CURLM_OK) {
		log_warn("fetch", "curl_multi_add_handle: %s", curl_multi_strerror(mrc));
		rc = mrc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
		goto out;
	}
	r->next = ctx->reqs;
	if (ctx->reqs)
		ctx->reqs->prev = r;
	ctx->reqs = r;
	r = NULL;
out:
	if (r) {
		if (r->easy)
			curl_easy_cleanup(r->easy);
		free(r);
	}
	return rc;
}

void fetch_ctx_close(fetch_ctx_t *ctx, fetch_close_cb cb, void *ud)
{
	if (!ctx || ctx->closing)
		return;
	ctx->closing = 1;
	ctx->close_cb = cb;
	ctx->close_ud = ud;

	/* Cancel every pending transfer; callbacks may not start new ones (-ECANCELED). */
	while (ctx->reqs) {
		fetch_req_t *r = ctx->reqs;
		req_unlink(r);
		curl_multi_remove_handle(ctx->multi, r->easy);
		req_finish(r, -ECANCELED, "cancelled: the fetch context was closed");
	}
	/* Closes curl's cached connections (CURL_POLL_REMOVE for each watched socket). */
	curl_multi_cleanup(ctx->multi);
	ctx->multi = NULL;
	while (ctx->socks)
		sock_close(ctx->socks);
	uv_timer_stop(&ctx->timer);
	uv_close((uv_handle_t *)&ctx->timer, on_handle_closed);
}
