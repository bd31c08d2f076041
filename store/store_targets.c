/*
 * store_targets.c: reading the targets hash (P:targets). While a watcher is set and the
 * store is READY, HGETALL runs every targets_poll_ms; each valid field becomes a target
 * object, each refused one an error line, and the watcher is called only when the valid
 * entries or the errors changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_priv.h"
#include "util/log.h"

#define TARGETS_FIELDS_MAX 100000
#define TARGETS_VALUE_MAX (1024 * 1024)

static char *xstrdup(const char *str)
{
	size_t n = strlen(str) + 1;
	char *p = store__xmalloc(n);
	memcpy(p, str, n);
	return p;
}

/* ---- targets hash ---- */

/* One field of the hash: a valid target goes into obj (with "id" set to the field name), a
 * refused one becomes a line in errs. Fields that are not strings are skipped. */
static void read_field(const store_t *s, const redisReply *f, const redisReply *v, json_t *obj,
                       errlist_t *errs)
{
	json_t *t, *tid;
	json_error_t jerr;

	if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
		return;
	if (strlen(f->str) != f->len || !store_id_valid(f->str)) {
		errlist_add(errs,
		            "%s:targets field \"%.80s\": not a valid target id (1 to 64 of "
		            "[A-Za-z0-9_.-], not starting with '.' or '-')",
		            s->o.prefix, f->str);
		return;
	}
	if (v->len > TARGETS_VALUE_MAX) {
		errlist_add(errs, "%s:targets field \"%s\": value of %zu bytes, over %d",
		            s->o.prefix, f->str, v->len, TARGETS_VALUE_MAX);
		return;
	}
	t = json_loadb(v->str, v->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!t) {
		errlist_add(errs, "%s:targets field \"%s\": not JSON (%s at column %d)",
		            s->o.prefix, f->str, jerr.text, jerr.column);
		return;
	}
	tid = json_object_get(t, "id");
	if (!json_is_object(t)) {
		errlist_add(errs, "%s:targets field \"%s\": expected a target object", s->o.prefix,
		            f->str);
	} else if (tid && (!json_is_string(tid) || strcmp(json_string_value(tid), f->str))) {
		errlist_add(errs, "%s:targets field \"%s\": its \"id\" differs from the field name",
		            s->o.prefix, f->str);
	} else {
		json_object_set_new(t, "id", json_string(f->str));
		json_object_set(obj, f->str, t);
	}
	json_decref(t);
}

static void on_targets(redisAsyncContext *ac, void *reply, void *privdata)
{
	store_t *s = privdata;
	redisReply *rep = reply;
	json_t *obj = NULL;
	errlist_t errs;
	const char *etext;
	char d[300];
	size_t n;

	s->tpoll_inflight = 0;
	if (!rep || s->closing || !s->tcb)
		return;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
		store__describe(rep, d, sizeof d);
		if (!s->tlast_err || strncmp(s->tlast_err, "HGETALL", 7)) {
			store__set_error(s, "HGETALL %s:targets: %s (expected a hash)", s->o.prefix,
			                 d);
			free(s->tlast_err);
			s->tlast_err = xstrdup("HGETALL");
		}
		return;
	}
	errlist_init(&errs);
	obj = json_object();
	if (!obj) {
		log_error(COMP, "out of memory reading targets");
		abort();
	}
	n = rep->elements / 2;
	if (n > TARGETS_FIELDS_MAX) {
		errlist_add(&errs, "%s:targets: %zu fields, only the first %d are read",
		            s->o.prefix, n, TARGETS_FIELDS_MAX);
		n = TARGETS_FIELDS_MAX;
	}
	for (size_t i = 0; i < n; i++)
		read_field(s, rep->element[2 * i], rep->element[2 * i + 1], obj, &errs);
	etext = errs.count ? errlist_text(&errs) : NULL;
	if (!s->tpolled || !json_equal(obj, s->tlast) ||
	    (etext == NULL) != (s->tlast_err == NULL) ||
	    (etext && s->tlast_err && strcmp(etext, s->tlast_err))) {
		s->tpolled = 1;
		json_decref(s->tlast);
		s->tlast = obj;
		free(s->tlast_err);
		s->tlast_err = etext ? xstrdup(etext) : NULL;
		if (etext)
			log_warn(COMP, "targets hash: %s", etext);
		s->tcb(s->tud, obj, etext);
	} else {
		json_decref(obj);
	}
	errlist_release(&errs);
}

void store__on_targets_timer(uv_timer_t *t)
{
	store_t *s = t->data;
	char k[KEY_MAX];

	if (s->state != C_READY || !s->ac || !s->tcb || s->tpoll_inflight || s->closing)
		return;
	store__key(s, k, "targets", NULL);
	if (store__cmdf(s, on_targets, s, "HGETALL %s", k) == 0)
		s->tpoll_inflight = 1;
}

void store_watch_targets(store_t *s, store_targets_cb cb, void *ud)
{
	s->tcb = cb;
	s->tud = ud;
	s->tpolled = 0;
	json_decref(s->tlast);
	s->tlast = NULL;
	free(s->tlast_err);
	s->tlast_err = NULL;
	if (cb && !s->closing)
		uv_timer_start(&s->targets_t, store__on_targets_timer, 0, s->o.targets_poll_ms);
	else
		uv_timer_stop(&s->targets_t);
}
