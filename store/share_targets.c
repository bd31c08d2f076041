/*
 * share_targets.c: the targets of the shared schedule (share.h: register). This instance
 * keeps its targets' ids (sorted) and puts them on the schedule: the new ones due at once,
 * all of them again, due after a lease and a run, when a tick finds the schedule shorter
 * than them (Redis lost it).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/share_priv.h"

#define REGISTER_CHUNK 500 /* ids per register script */

/* One register script per chunk of ids (ZADD NX: those already there keep their score). */
static void register_ids(share_t *sh, char *const *ids, size_t n, uint32_t delay_ms)
{
	char sched[KEY_MAX], delay[16];

	share__key(sh, sched, "sched", NULL);
	snprintf(delay, sizeof delay, "%" PRIu32, delay_ms);
	for (size_t at = 0; at < n; at += REGISTER_CHUNK) {
		size_t m = n - at < REGISTER_CHUNK ? n - at : REGISTER_CHUNK;
		sreq_t *q = share__new_req(sh, R_REGISTER);
		const char **argv;
		size_t *lens;
		char nk[4] = "1";
		int argc = 0;

		if (!q)
			return;
		/* more words than a request keeps: sent once, never again in full (a lost
		 * registration is made again by the next tick that sees the schedule short) */
		argv = calloc(m + 5, sizeof *argv);
		lens = calloc(m + 5, sizeof *lens);
		if (!argv || !lens)
			abort();
		argv[argc++] = sh->sha[SS_REGISTER][0] ? "EVALSHA" : "EVAL";
		argv[argc++] = sh->sha[SS_REGISTER][0] ? sh->sha[SS_REGISTER] : share__lua[SS_REGISTER];
		argv[argc++] = nk;
		argv[argc++] = sched;
		argv[argc++] = delay;
		for (size_t i = 0; i < m; i++)
			argv[argc++] = ids[at + i];
		for (int i = 0; i < argc; i++)
			lens[i] = strlen(argv[i]);
		q->sh = sh;
		q->script = SS_REGISTER;
		q->retried = 1; /* NOSCRIPT: not resent (see above) */
		if (!sh->sha[SS_REGISTER][0])
			share__load_script(sh, SS_REGISTER);
		if (store_command(sh->store, share__on_reply, q, argc, argv, lens) == 0)
			share__link_req(sh, q);
		else
			share__free_req(q);
		free(argv);
		free(lens);
	}
}

void share__register_all(share_t *sh, uint32_t delay_ms)
{
	register_ids(sh, sh->ids, sh->nids, delay_ms);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void share_set_targets(share_t *sh, const char *const *ids, size_t n)
{
	char **next = n ? calloc(n, sizeof *next) : NULL, **fresh = NULL;
	size_t nfresh = 0;

	if (n && !next)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!(next[i] = strdup(ids[i])))
			abort();
	qsort(next, n, sizeof *next, cmp_str);
	/* the ids we did not have: new targets, due at once (NX: a target another instance
	 * put there first keeps its time) */
	if (n && !(fresh = calloc(n, sizeof *fresh)))
		abort();
	for (size_t i = 0; i < n; i++)
		if (!sh->ids || !bsearch(&next[i], sh->ids, sh->nids, sizeof *sh->ids, cmp_str))
			fresh[nfresh++] = next[i];
	for (size_t i = 0; i < sh->nids; i++)
		free(sh->ids[i]);
	free(sh->ids);
	sh->ids = next;
	sh->nids = n;
	if (store_ready(sh->store) && nfresh) {
		register_ids(sh, fresh, nfresh, 0);
		sh->registered_once = 1;
	}
	free(fresh);
}

