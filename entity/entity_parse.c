/*
 * entity_parse: validates entity objects (entity.h, docs/entities.md) as the targets file
 * parser validates targets: every check adds one line to the error list and parsing goes
 * on, so a user sees every mistake at once; all or nothing.
 */
#include "entity/entity.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter_util.h"
#include "util/ident.h"

static const char *const entity_keys[] = { "id",    "sources",          "max_age_seconds",
	                                   "class", "conflict_seconds", "fields",
	                                   NULL };
static const char *const field_keys[] = { "prefer", "rule", "with", "from", NULL };

static void oom(void)
{
	fprintf(stderr, "entity: out of memory\n");
	abort();
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		oom();
	return d;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		oom();
	return p;
}

/* The id rule (util/ident.h), for a JSON string without a NUL inside. */
static int id_valid(const json_t *v)
{
	const char *id = json_string_value(v);

	return id && strlen(id) == json_string_length(v) && ident_valid(id);
}

/* Unknown keys of obj, each named with the allowed ones. */
static int check_keys(const json_t *obj, const char *const *allowed, const char *where,
                      errlist_t *errs)
{
	char list[256] = "";
	size_t len = 0;
	const char *key;
	const json_t *v;
	int rc = 0;

	for (size_t i = 0; allowed[i]; i++) {
		int w = snprintf(list + len, sizeof list - len, "%s\"%s\"", i ? ", " : "",
		                 allowed[i]);
		if (w > 0 && (size_t)w < sizeof list - len)
			len += (size_t)w;
	}
	json_object_foreach((json_t *)obj, key, v)
	{
		int found = 0;
		const char *sug;
		for (size_t i = 0; allowed[i] && !found; i++)
			found = strcmp(key, allowed[i]) == 0;
		if (found)
			continue;
		sug = adapter_util_closest(key, allowed);
		errlist_add(errs, "%s: unknown key \"%s\"%s%s%s (allowed: %s)", where, key,
		            sug ? " (did you mean \"" : "", sug ? sug : "", sug ? "\"?)" : "",
		            list);
		rc = -EINVAL;
	}
	return rc;
}

static int check_number(const json_t *v, const char *where, const char *key, double lo, double hi,
                        uint32_t *out_ms, errlist_t *errs)
{
	double d;

	if (adapter_util_number(v, where, key, lo, hi, &d, errs) != 0)
		return -EINVAL;
	*out_ms = (uint32_t)(d * 1000.0 + 0.5);
	return 0;
}

static int check_id(const json_t *v, const char *where, char *out, errlist_t *errs)
{
	char q[96];

	if (!v) {
		errlist_add(errs, "%s: \"id\": required (1 to %d characters of A-Z a-z 0-9 _ . -)",
		            where, ENTITY_ID_MAX);
		return -EINVAL;
	}
	if (!id_valid(v)) {
		errlist_add(errs,
		            "%s: \"id\": expected 1 to %d characters of A-Z a-z 0-9 _ . - not "
		            "starting with '.' or '-', got %s",
		            where, ENTITY_ID_MAX, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* "sources": fills out->sources with the valid ids (even unknown targets, so that the
 * fields' prefer lists are checked against them). *whole: every element was a target id
 * (else membership in the list is not checked: the list's own errors say why). */
static int check_sources(const json_t *v, const char *where, int (*known)(void *ud, const char *id),
                         void *ud, entity_spec_t *out, int *whole, errlist_t *errs)
{
	const json_t *s;
	char q[96];
	size_t i;
	int rc = 0;

	*whole = 0;
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > ENTITY_SOURCES_MAX) {
		errlist_add(errs,
		            "%s: \"sources\": %s (a non-empty array of at most %d target ids), "
		            "got %s",
		            where, v ? "expected an array of target ids" : "required",
		            ENTITY_SOURCES_MAX, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	out->sources = xcalloc(json_array_size(v), sizeof *out->sources);
	*whole = 1;
	json_array_foreach((json_t *)v, i, s)
	{
		const char *id = json_string_value(s);
		int dup = 0;
		if (!id_valid(s)) {
			errlist_add(
			        errs,
			        "%s: \"sources\"[%zu]: expected a target id (1 to %d characters "
			        "of A-Z a-z 0-9 _ . -), got %s",
			        where, i, ENTITY_ID_MAX, adapter_util_quote(s, q, sizeof q));
			*whole = 0;
			rc = -EINVAL;
			continue;
		}
		for (size_t k = 0; k < out->nsources && !dup; k++)
			dup = strcmp(out->sources[k], id) == 0;
		if (dup) {
			errlist_add(errs, "%s: \"sources\"[%zu]: \"%s\" is listed twice", where, i,
			            id);
			rc = -EINVAL;
			continue;
		}
		if (known && !known(ud, id)) {
			errlist_add(errs, "%s: \"sources\"[%zu]: \"%s\" is not a known target",
			            where, i, id);
			rc = -EINVAL;
		}
		out->sources[out->nsources++] = xstrdup(id);
	}
	return rc;
}

static int source_index(const entity_spec_t *e, const char *id)
{
	for (size_t i = 0; id && i < e->nsources; i++)
		if (strcmp(e->sources[i], id) == 0)
			return (int)i;
	return -1;
}

/* "prefer": a non-empty array of the entity's sources, no duplicates. srcs_ok: the
 * sources list was valid (else membership is not checked: its errors are listed). */
static int check_prefer(const json_t *v, const char *where, entity_spec_t *e, int srcs_ok,
                        entity_field_t *f, errlist_t *errs)
{
	const json_t *s;
	char q[96];
	size_t i;
	int rc = 0;

	if (!json_is_array(v) || json_array_size(v) == 0) {
		errlist_add(errs,
		            "%s: \"prefer\": expected a non-empty array of the entity's sources, "
		            "got %s",
		            where, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	f->prefer = xcalloc(json_array_size(v), sizeof *f->prefer);
	json_array_foreach((json_t *)v, i, s)
	{
		int k = source_index(e, json_string_value(s)), dup = 0;
		if (!json_is_string(s) || (k < 0 && srcs_ok)) {
			errlist_add(
			        errs,
			        "%s: \"prefer\"[%zu]: expected one of the entity's \"sources\", "
			        "got %s",
			        where, i, adapter_util_quote(s, q, sizeof q));
			rc = -EINVAL;
			continue;
		}
		if (k < 0)
			continue;
		for (size_t j = 0; j < f->nprefer && !dup; j++)
			dup = f->prefer[j] == (unsigned)k;
		if (dup) {
			errlist_add(errs, "%s: \"prefer\"[%zu]: \"%s\" is listed twice", where, i,
			            e->sources[k]);
			rc = -EINVAL;
			continue;
		}
		f->prefer[f->nprefer++] = (unsigned)k;
	}
	return rc;
}

/* One field object, except the target of "with" (resolved once every name is known). */
static int check_field(const char *name, const json_t *fo, const char *where_in, entity_spec_t *e,
                       int srcs_ok, entity_field_t *f, errlist_t *errs)
{
	const json_t *prefer = json_object_get(fo, "prefer");
	const json_t *rule = json_object_get(fo, "rule");
	const json_t *with = json_object_get(fo, "with");
	const json_t *from = json_object_get(fo, "from");
	char where[512], q[96];
	int rc = 0;

	snprintf(where, sizeof where, "%s: \"fields\": \"%s\"", where_in, name);
	f->name = xstrdup(name);
	if (!*name) {
		errlist_add(errs, "%s: expected a non-empty field name", where);
		rc = -EINVAL;
	}
	if (!json_is_object(fo)) {
		errlist_add(errs,
		            "%s: expected a field object with one of \"prefer\", \"rule\" or "
		            "\"with\", got %s",
		            where, adapter_util_quote(fo, q, sizeof q));
		return -EINVAL;
	}
	if (check_keys(fo, field_keys, where, errs) != 0)
		rc = -EINVAL;
	if (!!prefer + !!rule + !!with != 1) {
		errlist_add(errs,
		            "%s: expected exactly one of \"prefer\", \"rule\" or \"with\", %s",
		            where, prefer || rule || with ? "got more than one" : "got none");
		rc = -EINVAL;
	}
	if (prefer) {
		f->rule = ENTITY_PREFER;
		if (check_prefer(prefer, where, e, srcs_ok, f, errs) != 0)
			rc = -EINVAL;
	} else if (rule) {
		f->rule = ENTITY_NEWEST;
		if (!json_is_string(rule) || strcmp(json_string_value(rule), "newest") != 0) {
			errlist_add(errs, "%s: \"rule\": expected \"newest\", got %s", where,
			            adapter_util_quote(rule, q, sizeof q));
			rc = -EINVAL;
		}
	} else if (with) {
		f->rule = ENTITY_WITH;
	}
	if (from && with) {
		errlist_add(errs,
		            "%s: \"from\": only with \"prefer\" or \"rule\" (a \"with\" field is "
		            "read by its own name from the source that won the field it follows)",
		            where);
		rc = -EINVAL;
	} else if (from && (!json_is_string(from) || json_string_length(from) == 0 ||
	                    strlen(json_string_value(from)) != json_string_length(from))) {
		errlist_add(errs,
		            "%s: \"from\": expected the name of a field of the sources' data, "
		            "got %s",
		            where, adapter_util_quote(from, q, sizeof q));
		rc = -EINVAL;
	}
	f->from = xstrdup(json_is_string(from) && rc == 0 ? json_string_value(from) : name);
	return rc;
}

static int field_index(const entity_spec_t *e, const char *name)
{
	for (size_t i = 0; name && i < e->nfields; i++)
		if (strcmp(e->fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* "with" targets: another field of the entity, and no cycle. A cycle is reported once,
 * from its first field in the object's order, naming the chain. */
static int check_withs(const json_t *fields, const char *where, entity_spec_t *e, errlist_t *errs)
{
	char q[96], chain[1024];
	int rc = 0;

	for (size_t i = 0; i < e->nfields; i++) {
		entity_field_t *f = &e->fields[i];
		const json_t *w;
		int k;
		if (f->rule != ENTITY_WITH)
			continue;
		w = json_object_get(json_object_get(fields, f->name), "with");
		k = field_index(e, json_string_value(w));
		if (k < 0 || (size_t)k == i) {
			errlist_add(
			        errs,
			        "%s: \"fields\": \"%s\": \"with\": expected the name of another "
			        "field of this entity, got %s",
			        where, f->name, adapter_util_quote(w, q, sizeof q));
			f->with = i; /* marks it unresolved for the cycle walk */
			rc = -EINVAL;
			continue;
		}
		f->with = (size_t)k;
	}
	for (size_t i = 0; i < e->nfields; i++) {
		size_t cur = i, steps = 0, len = 0, last = i, min = i;
		int cycle = 0;
		if (e->fields[i].rule != ENTITY_WITH || e->fields[i].with == i)
			continue;
		/* walk at most nfields steps: back at i is a cycle through i */
		while (e->fields[cur].rule == ENTITY_WITH && e->fields[cur].with != cur &&
		       steps++ <= e->nfields) {
			last = cur;
			cur = e->fields[cur].with;
			min = cur < min ? cur : min;
			if (cur == i) {
				cycle = 1;
				break;
			}
		}
		if (!cycle || min != i)
			continue;
		cur = i;
		do {
			int w = snprintf(chain + len, sizeof chain - len, "\"%s\" -> ",
			                 e->fields[cur].name);
			if (w > 0 && (size_t)w < sizeof chain - len)
				len += (size_t)w;
			cur = e->fields[cur].with;
		} while (cur != i);
		snprintf(chain + len, sizeof chain - len, "\"%s\"", e->fields[i].name);
		errlist_add(errs,
		            "%s: \"fields\": \"%s\": \"with\": \"%s\" follows \"%s\" back: a "
		            "cycle (%s)",
		            where, e->fields[i].name, e->fields[last].name, e->fields[i].name,
		            chain);
		rc = -EINVAL;
	}
	return rc;
}

static int check_fields(const json_t *v, const char *where, entity_spec_t *e, int srcs_ok,
                        errlist_t *errs)
{
	const json_t *fo;
	const char *name;
	char q[96];
	int rc = 0;

	if (!json_is_object(v) || json_object_size(v) == 0 ||
	    json_object_size(v) > ENTITY_FIELDS_MAX) {
		errlist_add(errs,
		            "%s: \"fields\": %s (an object of 1 to %d field objects, "
		            "{\"score\": {\"prefer\": [...]}, ...}), got %s",
		            where, v ? "expected an object of fields" : "required",
		            ENTITY_FIELDS_MAX, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	e->fields = xcalloc(json_object_size(v), sizeof *e->fields);
	json_object_foreach((json_t *)v, name, fo)
	{
		if (check_field(name, fo, where, e, srcs_ok, &e->fields[e->nfields++], errs) != 0)
			rc = -EINVAL;
	}
	if (check_withs(v, where, e, errs) != 0)
		rc = -EINVAL;
	return rc;
}

void entity_spec_release(entity_spec_t *e)
{
	if (!e)
		return;
	for (size_t i = 0; e->sources && i < e->nsources; i++)
		free(e->sources[i]);
	free(e->sources);
	for (size_t i = 0; e->fields && i < e->nfields; i++) {
		free(e->fields[i].name);
		free(e->fields[i].from);
		free(e->fields[i].prefer);
	}
	free(e->fields);
	json_decref(e->json);
	memset(e, 0, sizeof *e);
}

int entities_parse_one(const json_t *obj, const char *where_in,
                       int (*known)(void *ud, const char *id), void *ud, entity_spec_t *out,
                       errlist_t *errs)
{
	const json_t *v;
	char where[256], q[96];
	int rc = 0, srcs_ok;

	memset(out, 0, sizeof *out);
	out->klass = SCHED_IMMINENT;
	if (!json_is_object(obj)) {
		errlist_add(errs,
		            "%s: expected an entity object {\"id\", \"sources\", "
		            "\"max_age_seconds\", \"fields\", ...}, got %s",
		            where_in, adapter_util_quote(obj, q, sizeof q));
		return -EINVAL;
	}
	v = json_object_get(obj, "id");
	if (json_is_string(v))
		snprintf(where, sizeof where, "%s %s", where_in,
		         adapter_util_quote(v, q, sizeof q));
	else
		snprintf(where, sizeof where, "%s", where_in);

	/* Every check runs so that every mistake is reported at once. */
	if (check_keys(obj, entity_keys, where, errs) != 0)
		rc = -EINVAL;
	if (check_id(v, where, out->id, errs) != 0)
		rc = -EINVAL;
	if (check_sources(json_object_get(obj, "sources"), where, known, ud, out, &srcs_ok, errs) !=
	    0)
		rc = -EINVAL;
	if (!(v = json_object_get(obj, "max_age_seconds"))) {
		errlist_add(errs, "%s: \"max_age_seconds\": required (a number from 0.1 to 86400)",
		            where);
		rc = -EINVAL;
	} else if (check_number(v, where, "max_age_seconds", 0.1, 86400, &out->max_age_ms, errs) !=
	           0) {
		rc = -EINVAL;
	}
	out->conflict_ms = out->max_age_ms;
	if ((v = json_object_get(obj, "conflict_seconds")) &&
	    check_number(v, where, "conflict_seconds", 0, 86400, &out->conflict_ms, errs) != 0)
		rc = -EINVAL;
	if ((v = json_object_get(obj, "class")) &&
	    adapter_util_class(v, where, &out->klass, errs) != 0)
		rc = -EINVAL;
	if (check_fields(json_object_get(obj, "fields"), where, out, srcs_ok, errs) != 0)
		rc = -EINVAL;
	if (rc != 0) {
		entity_spec_release(out);
		return rc;
	}
	out->json = json_deep_copy(obj);
	if (!out->json)
		oom();
	return 0;
}

int entities_parse_json(const json_t *arr, const char *where,
                        int (*known)(void *ud, const char *id), void *ud, entity_set_t *out,
                        errlist_t *errs)
{
	const json_t *t;
	json_t *seen = NULL;
	char q[96];
	size_t i;
	int rc = 0;

	out->v = NULL;
	out->n = 0;
	if (!json_is_array(arr)) {
		errlist_add(errs, "%s: expected an array of entity objects, got %s", where,
		            adapter_util_quote(arr, q, sizeof q));
		return -EINVAL;
	}
	out->v = xcalloc(json_array_size(arr), sizeof *out->v);
	seen = json_object();
	if (!seen)
		oom();
	json_array_foreach((json_t *)arr, i, t)
	{
		char w[256];
		const json_t *idv = json_object_get(t, "id"), *first;
		snprintf(w, sizeof w, "%s[%zu]", where, i);
		if (entities_parse_one(t, w, known, ud, &out->v[out->n], errs) == 0)
			out->n++;
		else
			rc = -EINVAL;
		if (!json_is_string(idv))
			continue;
		first = json_object_get(seen, json_string_value(idv));
		if (first) {
			errlist_add(errs, "%s %s: duplicate id (also %s[%lld])", w,
			            adapter_util_quote(idv, q, sizeof q), where,
			            (long long)json_integer_value(first));
			rc = -EINVAL;
		} else if (json_object_set_new(seen, json_string_value(idv),
		                               json_integer((json_int_t)i)) != 0) {
			oom();
		}
	}
	json_decref(seen);
	if (rc != 0)
		entities_release(out);
	return rc;
}

void entities_release(entity_set_t *set)
{
	if (!set)
		return;
	for (size_t i = 0; set->v && i < set->n; i++)
		entity_spec_release(&set->v[i]);
	free(set->v);
	set->v = NULL;
	set->n = 0;
}
