#include "daemon/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

struct line {
	struct line *next;
	size_t len;
	char data[];
};

struct sink {
	uv_loop_t *loop;
	uv_file fd;
	int own_fd;
	struct line *head, *tail;
	struct line *writing;
	size_t written;        /* bytes of `writing` already written */
	uv_fs_t req;
	uv_timer_t handle;     /* gives sink_close() its asynchronous end */
	int busy;
	int closing;
	int failed;
	void (*close_cb)(void *ud);
	void *close_ud;
	sink_stats_t st;
};

static void kick(sink_t *s);

sink_t *sink_open(uv_loop_t *loop, const char *path, int *err)
{
	sink_t *s = calloc(1, sizeof *s);

	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	s->loop = loop;
	if (strcmp(path, "-") == 0) {
		s->fd = STDOUT_FILENO;
	} else {
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0) {
			*err = -errno;
			free(s);
			return NULL;
		}
		s->fd = fd;
		s->own_fd = 1;
	}
	uv_timer_init(loop, &s->handle);
	s->handle.data = s;
	return s;
}

static void on_handle_closed(uv_handle_t *h)
{
	sink_t *s = h->data;
	void (*cb)(void *ud) = s->close_cb;
	void *ud = s->close_ud;

	free(s);
	if (cb)
		cb(ud);
}

static void finish_close(sink_t *s)
{
	while (s->head) {
		struct line *l = s->head;
		s->head = l->next;
		free(l);
	}
	if (s->writing) {
		free(s->writing);
		s->writing = NULL;
	}
	if (s->own_fd)
		close(s->fd);
	uv_close((uv_handle_t *)&s->handle, on_handle_closed);
}

static void on_write(uv_fs_t *req)
{
	sink_t *s = req->data;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	s->busy = 0;
	if (n < 0) {
		if (!s->failed)
			log_error("sink", "writing results failed: %s (lines are dropped until "
			                  "writes succeed again)",
			          uv_strerror((int)n));
		s->failed = 1;
		s->st.write_errors++;
		s->st.dropped++;
		s->st.queued_bytes -= s->writing->len;
		free(s->writing);
		s->writing = NULL;
	} else {
		s->failed = 0;
		s->written += (size_t)n;
		if (s->written >= s->writing->len) {
			s->st.lines++;
			s->st.bytes += s->writing->len;
			s->st.queued_bytes -= s->writing->len;
			free(s->writing);
			s->writing = NULL;
		}
	}
	if (s->closing && (!s->head && !s->writing)) {
		finish_close(s);
		return;
	}
	if (s->closing && s->failed) { /* give up on the rest */
		finish_close(s);
		return;
	}
	kick(s);
}

static void kick(sink_t *s)
{
	uv_buf_t buf;
	int rc;

	if (s->busy)
		return;
	if (!s->writing) {
		if (!s->head)
			return;
		s->writing = s->head;
		s->head = s->head->next;
		if (!s->head)
			s->tail = NULL;
		s->written = 0;
	}
	buf = uv_buf_init(s->writing->data + s->written,
	                  (unsigned)(s->writing->len - s->written));
	s->req.data = s;
	rc = uv_fs_write(s->loop, &s->req, s->fd, &buf, 1, -1, on_write);
	if (rc != 0) {
		log_error("sink", "cannot queue a write: %s", uv_strerror(rc));
		s->st.write_errors++;
		return;
	}
	s->busy = 1;
}

void sink_put(sink_t *s, const char *type, const json_t *doc)
{
	json_t *copy;
	char *text;
	size_t len;
	struct line *l;

	if (s->closing)
		return;
	copy = json_object();
	json_object_set_new(copy, "type", json_string(type));
	json_object_update(copy, (json_t *)doc);
	text = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	if (!text) {
		log_error("sink", "cannot serialise a %s", type);
		return;
	}
	len = strlen(text);
	l = malloc(sizeof *l + len + 1);
	if (!l) {
		free(text);
		s->st.dropped++;
		return;
	}
	memcpy(l->data, text, len);
	l->data[len] = '\n';
	l->len = len + 1;
	l->next = NULL;
	free(text);
	/* over the cap: drop the oldest queued lines (not the one being written) */
	while (s->head && s->st.queued_bytes + l->len > SINK_QUEUE_MAX) {
		struct line *old = s->head;
		s->head = old->next;
		if (!s->head)
			s->tail = NULL;
		s->st.queued_bytes -= old->len;
		s->st.dropped++;
		free(old);
	}
	if (s->tail)
		s->tail->next = l;
	else
		s->head = l;
	s->tail = l;
	s->st.queued_bytes += l->len;
	kick(s);
}

void sink_get_stats(const sink_t *s, sink_stats_t *out)
{
	*out = s->st;
}

void sink_close(sink_t *s, void (*cb)(void *ud), void *ud)
{
	if (s->closing)
		return;
	s->closing = 1;
	s->close_cb = cb;
	s->close_ud = ud;
	if (!s->busy && !s->head && !s->writing)
		finish_close(s);
}
