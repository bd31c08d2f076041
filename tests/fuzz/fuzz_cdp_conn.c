/*
 * libFuzzer target for the CDP router: the input is split on newlines into messages fed to a
 * conn that has three commands pending and listeners on every event. Whatever arrives, the
 * conn must not crash, leak, or call a command back more than once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_conn.h"
#include "util/log.h"

static int fz_send(void *tud, const char *d, size_t n) { return 0; }
static void fz_close(void *tud) { cdp_conn_transport_closed(*(cdp_conn_t **)tud); }
static const cdp_transport_t fz_tp = { fz_send, fz_close };

static void on_reply(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	int *calls = ud;
	if (++*calls > 1)
		abort(); /* a command called back twice */
}

static void on_event(cdp_conn_t *c, const char *sid, const char *m, json_t *p, void *ud)
{
	if (!m || !json_is_object(p))
		abort();
}

static void on_closed(cdp_conn_t *c, void *ud) { *(int *)ud = 1; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uv_loop_t loop;
	cdp_conn_t *conn = NULL;
	int calls[3] = { 0 }, closed = 0;
	size_t start = 0;

	log_set_level(LOG_OFF);
	uv_loop_init(&loop);
	conn = cdp_conn_new(&loop, NULL, &fz_tp, &conn, NULL, NULL);
	for (int i = 0; i < 3; i++)
		cdp_conn_send(conn, i == 1 ? "S" : NULL, "M.x", NULL, 0, on_reply, &calls[i], NULL);
	cdp_conn_on(conn, NULL, NULL, on_event, NULL);
	cdp_conn_on(conn, "Page.loadEventFired", "S", on_event, NULL);
	for (size_t i = 0; i <= size; i++) {
		if (i == size || data[i] == '\n') {
			if (i - start > 0 && i - start < 64)
				cdp_conn_feed_oversized(conn, (const char *)data + start, i - start,
				                        1u << 30);
			cdp_conn_feed(conn, (const char *)data + start, i - start);
			start = i + 1;
		}
	}
	cdp_conn_close(conn, on_closed, &closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (!closed || uv_loop_close(&loop) != 0)
		abort();
	for (int i = 0; i < 3; i++)
		if (calls[i] != 1)
			abort();
	return 0;
}
