/*
 * jsonapi: an adapter for JSON endpoints, fetched without a browser (libcurl, by the
 * daemon). Fields are picked from the parsed body by JSON pointer (RFC 6901):
 *
 *   "fields": {"home": {"pointer": "/match/score/0", "type": "int"}, ...}
 *   "classify": {"field": "status", "live": ["in_play"], "completed": ["finished"]}
 *
 * Types: "any" (default: the value as is), "string", "int" (an integer, an integral real,
 * or a numeric string such as "1,234"), "float" (a number or numeric string), "bool"
 * (true/false only). A field whose pointer finds nothing is an error when "required"
 * (default true), else null in the data.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/adapter_util.h"

#define FIELDS_MAX 256
#define POINTER_MAX 1024

enum jtype { JT_ANY = 0, JT_STRING, JT_INT, JT_FLOAT, JT_BOOL };
static const char *const jtype_names[] = { "any", "string", "int", "float", "bool", NULL };

typedef struct jfield {
	const char *name; /* borrowed from jstate_t.names */
	char *pointer;
	enum jtype type;
	int required;
} jfield_t;

typedef struct jstate {
	jfield_t *f;
	size_t n;
	char **names; /* NULL-terminated field names (owned), for classify */
	adapter_util_classify_t cls;
} jstate_t;

static const char *const param_keys[] = { "fields", "classify", NULL };
static const char *const field_keys[] = { "pointer", "type", "required", NULL };
/* one field's spec, as the errors show it */
static const char field_hint[] = "{\"pointer\": \"/a/b\", ...}";

static void j_free(void *p)
{
	jstate_t *s = p;

	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->names[i]);
		free(s->f[i].pointer);
	}
	free(s->f);
	free(s->names);
	adapter_util_classify_release(&s->cls);
	free(s);
}

/* An adapter_util_field_fn: item is a jfield_t. */
static int parse_field(void *item, const char *name, const json_t *spec, const char *where,
                       errlist_t *errs)
{
	jfield_t *f = item;
	int type = 0; /* the default: the first of the type names */
	const json_t *v;
	char q[96];
	int rc = 0;

	f->name = name;
	f->required = 1;
	v = json_object_get(spec, "pointer");
	if (!v) {
		errlist_add(errs,
		            "%s: \"fields.%s.pointer\": required (a JSON pointer such as "
		            "\"/data/0/score\")",
		            where, name);
		rc = -EINVAL;
	} else if (!json_is_string(v) || json_string_length(v) > POINTER_MAX ||
	           strlen(json_string_value(v)) != json_string_length(v) ||
	           !adapter_util_pointer_valid(json_string_value(v))) {
		errlist_add(errs,
		            "%s: \"fields.%s.pointer\": expected a JSON pointer (RFC 6901: \"\" "
		            "or \"/a/0/b\", '~' written ~0 and '/' in a key ~1), got %s",
		            where, name, adapter_util_quote(v, q, sizeof q));
		rc = -EINVAL;
	} else if (!(f->pointer = strdup(json_string_value(v)))) {
		return -ENOMEM;
	}
	if (adapter_util_field_type_required(spec, name, jtype_names, where, &type, &f->required,
	                                     errs) != 0)
		rc = -EINVAL;
	f->type = (enum jtype)type;
	return rc;
}

static int j_parse(const json_t *target, const char *where, void **state, errlist_t *errs)
{
	const json_t *fields = json_object_get(target, "fields"), *v;
	jstate_t *s = NULL;
	void *items = NULL;
	int rc = 0, r;

	*state = NULL;
	if (adapter_util_fields_check(fields, FIELDS_MAX, field_hint, where, errs) != 0)
		return -EINVAL;
	s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	rc = adapter_util_fields_walk(fields, field_hint, field_keys, sizeof *s->f, &items,
	                              parse_field, where, &s->names, &s->n, errs);
	s->f = items;
	if (rc == -ENOMEM)
		goto out;
	if ((v = json_object_get(target, "classify"))) {
		r = adapter_util_classify_parse(v, where, (const char *const *)s->names, &s->cls,
		                                errs);
		if (r)
			rc = r;
	}
out:
	if (rc != 0) {
		j_free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static json_t *convert(const jfield_t *f, const json_t *v, char *why, size_t whylen)
{
	char q[96];
	json_int_t i;
	double d;

	switch (f->type) {
	case JT_ANY: return json_deep_copy(v);
	case JT_STRING:
		if (json_is_string(v))
			return json_deep_copy(v);
		break;
	case JT_INT:
		if (json_is_integer(v))
			return json_integer(json_integer_value(v));
		if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v) &&
		    fabs(json_real_value(v)) < 9.0e15)
			return json_integer((json_int_t)json_real_value(v));
		if (json_is_string(v) && adapter_util_parse_int(json_string_value(v), &i) == 0)
			return json_integer(i);
		break;
	case JT_FLOAT:
		if (json_is_number(v))
			return json_real(json_number_value(v));
		if (json_is_string(v) && adapter_util_parse_float(json_string_value(v), &d) == 0)
			return json_real(d);
		break;
	case JT_BOOL:
		if (json_is_boolean(v))
			return json_boolean(json_is_true(v));
		break;
	}
	snprintf(why, whylen, "field \"%s\": pointer \"%s\": expected %s, got %s", f->name,
	         f->pointer, jtype_names[f->type], adapter_util_quote(v, q, sizeof q));
	return NULL;
}

static json_t *j_normalise(const void *state, const json_t *raw, char *why, size_t whylen)
{
	const jstate_t *s = state;
	json_t *data;

	if (!s) {
		snprintf(why, whylen, "the jsonapi adapter has no parameters");
		return NULL;
	}
	if (!raw) {
		snprintf(why, whylen, "no JSON body");
		return NULL;
	}
	data = json_object();
	if (!data)
		goto nomem;
	for (size_t i = 0; i < s->n; i++) {
		const jfield_t *f = &s->f[i];
		const json_t *v = NULL;
		json_t *nv;
		char step[256] = "";
		int rc = adapter_util_pointer_get(raw, f->pointer, &v, step, sizeof step);

		if (rc == -ENOMEM)
			goto nomem;
		if (rc != 0 || (json_is_null(v) && f->type != JT_ANY)) {
			if (f->required) {
				if (rc != 0)
					snprintf(why, whylen,
					         "field \"%s\": pointer \"%s\" found nothing: %s",
					         f->name, f->pointer, step);
				else
					snprintf(why, whylen,
					         "field \"%s\": pointer \"%s\": expected %s, got "
					         "null",
					         f->name, f->pointer, jtype_names[f->type]);
				json_decref(data);
				return NULL;
			}
			nv = json_null();
		} else {
			nv = convert(f, v, why, whylen);
			if (!nv) {
				json_decref(data);
				return NULL;
			}
		}
		if (json_object_set_new(data, f->name, nv) != 0)
			goto nomem;
	}
	return data;
nomem:
	json_decref(data);
	snprintf(why, whylen, "out of memory");
	return NULL;
}

static int j_classify(const void *state, const json_t *data)
{
	const jstate_t *s = state;
	return s ? adapter_util_classify_eval(&s->cls, data) : -1;
}

const adapter_t adapter_jsonapi = {
	.name = "jsonapi",
	.summary = "a JSON URL fetched without a browser: fields picked by JSON pointer",
	.needs_browser = 0,
	.param_keys = param_keys,
	.parse = j_parse,
	.free_state = j_free,
	.build_url = NULL,
	.wait_for = NULL,
	.extract_js = NULL,
	.normalise = j_normalise,
	.classify = j_classify,
	.discover_js = NULL,
	.discover = NULL,
	.watch_root = NULL,
};
