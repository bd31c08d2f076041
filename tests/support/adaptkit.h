/*
 * adaptkit: the helpers of the adapter and snapshot unit tests: JSON text parsed or
 * compared (failing the test on a mismatch), an adapter found, a target parsed into its
 * state, and normalise() checked against the data or the error it must give. Written once
 * here for test_adapter_generic, test_adapter_jsonapi, test_adapter_livescore and
 * test_snapshot (issue 14).
 */
#ifndef CDPILOT_TESTS_ADAPTKIT_H
#define CDPILOT_TESTS_ADAPTKIT_H

#include <jansson.h>

#include "adapters/adapter.h"

/* JSON text (any value) parsed; fails the test on bad JSON. New reference. */
json_t *ak_parse(const char *text);
/* Fails the test unless needle is in text. */
void ak_assert_has(const char *text, const char *needle);
/* Fails the test unless a equals the JSON in text (compared as values). */
void ak_assert_json(const json_t *a, const char *text);

/* The registered adapter of that name (fails the test if there is none). */
const adapter_t *ak_adapter(const char *name);
/* a->parse() of the target text, as the target called where; fails the test unless it
 * succeeds with no error listed. Returns the state (a->free_state() it). */
void *ak_good(const adapter_t *a, const char *target, const char *where);
/* a->normalise() of the raw JSON text with the state st (ak_good(); freed here): expects
 * data (JSON text), or, with data NULL, a failure whose reason contains why_part. */
void ak_norm(const adapter_t *a, void *st, const char *raw, const char *data, const char *why_part);

#endif
