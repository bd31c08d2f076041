/*
 * cdp_conn_listen.c: the event listeners of a cdp_conn (cdp_conn_on, cdp_conn_on_where,
 * cdp_conn_off), their dispatch, and the check that drops events nobody wants before they
 * are parsed. Split from cdp_conn.c; the shared state is in cdp_conn_priv.h.
 */
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_conn_priv.h"
#include "cdp/cdp_json.h"

void cdp_conn__listener_free(cdp_listener_t *l)
{
	free(l->method);
	free(l->session_id);
	free(l->where_key);
	free(l->where_value);
	free(l);
}

/* A heap copy of s, or NULL for NULL; *failed is set when the copy fails. */
static char *dup_or_null(const char *s, int *failed)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*failed = 1;
	return d;
}

cdp_listener_t *cdp_conn_on_where(cdp_conn_t *c, const char *method, const char *session_id,
                                  const char *key, const char *value, cdp_event_cb cb,
                                  void *ud)
{
	cdp_listener_t *l = calloc(1, sizeof *l);
	int failed = 0;

	if (!l)
		return NULL;
	l->method = dup_or_null(method, &failed);
	l->session_id = dup_or_null(session_id, &failed);
	if (key) {
		l->where_key = dup_or_null(key, &failed);
		l->where_value = dup_or_null(value ? value : "", &failed);
	}
	if (failed) {
		cdp_conn__listener_free(l);
		return NULL;
	}
	l->cb = cb;
	l->ud = ud;
	l->next = c->listeners;
	c->listeners = l;
	return l;
}

cdp_listener_t *cdp_conn_on(cdp_conn_t *c, const char *method, const char *session_id,
                            cdp_event_cb cb, void *ud)
{
	return cdp_conn_on_where(c, method, session_id, NULL, NULL, cb, ud);
}

static void sweep_listeners(cdp_conn_t *c)
{
	cdp_listener_t **pp = &c->listeners;

	if (c->dispatch_depth > 0 || !c->listeners_dirty)
		return;
	while (*pp) {
		cdp_listener_t *l = *pp;
		if (l->removed) {
			*pp = l->next;
			cdp_conn__listener_free(l);
		} else {
			pp = &l->next;
		}
	}
	c->listeners_dirty = 0;
}

void cdp_conn_off(cdp_conn_t *c, cdp_listener_t *l)
{
	if (!l)
		return;
	l->removed = 1;
	c->listeners_dirty = 1;
	sweep_listeners(c);
}

/* Whether a (NULL: never equal) equals b. */
static int str_eq(const char *a, const char *b) { return a && strcmp(a, b) == 0; }

void cdp_conn__dispatch_event(cdp_conn_t *c, const char *session_id, const char *method,
                              json_t *params)
{
	c->stats.events++;
	c->dispatch_depth++;
	/* Listeners added during dispatch go to the head and are not seen by this event. */
	for (cdp_listener_t *l = c->listeners; l; l = l->next) {
		if (l->removed)
			continue;
		if (l->method && strcmp(l->method, method) != 0)
			continue;
		if (l->session_id && (!session_id || strcmp(l->session_id, session_id) != 0))
			continue;
		if (l->where_key &&
		    !str_eq(json_string_value(json_object_get(params, l->where_key)),
		                 l->where_value))
			continue;
		l->cb(c, session_id, method, params, l->ud);
		if (c->state == CONN_CLOSING || c->state == CONN_CLOSED)
			break;
	}
	c->dispatch_depth--;
	sweep_listeners(c);
}

/*
 * Whether an incoming message is an event no listener wants. Only the prefix Chromium
 * writes for events, {"method":"NAME" with no escape in NAME, is trusted; anything else is
 * parsed (and checked) in full. A listener with a parameter filter (cdp_conn_on_where)
 * wants the event only if cdp_json_peek_param() finds the value or cannot tell. Most events of a page's load (requests, frames, execution
 * contexts, targets) are wanted by nobody, and parsing them was most of a task's JSON work.
 */
int cdp_conn__unwanted_event(const cdp_conn_t *c, const char *data, size_t len)
{
	static const char prefix[] = "{\"method\":\"";
	const size_t pl = sizeof prefix - 1;
	const char *name, *end;
	size_t n;

	if (len < pl || memcmp(data, prefix, pl) != 0)
		return 0;
	name = data + pl;
	end = memchr(name, '"', len - pl);
	if (!end || memchr(name, '\\', (size_t)(end - name)))
		return 0;
	n = (size_t)(end - name);
	for (const cdp_listener_t *l = c->listeners; l; l = l->next) {
		const char *v;
		size_t vn;
		int rc;

		if (l->removed ||
		    (l->method && (strlen(l->method) != n || memcmp(l->method, name, n) != 0)))
			continue;
		if (!l->where_key)
			return 0;
		rc = cdp_json_peek_param(data, len, l->where_key, &v, &vn);
		if (rc < 0 ||
		    (rc == 1 && strlen(l->where_value) == vn && memcmp(l->where_value, v, vn) == 0))
			return 0;
	}
	return 1;
}

