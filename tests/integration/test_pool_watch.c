/*
 * test_pool_watch: watch leases open their pages a few at a time, against the real Chromium
 * and the fixture. Sixteen watch leases asked for at once with watch_open_cap 2: never more
 * than two pages opening at any turn of the loop, two at some turn, and every lease granted,
 * although the wait of the last ones is longer than the lease timeout (a watch lease waits
 * for its turn to open without one). And a recycle with many watch leases and one page
 * opening at a time: every holder moves (asks for a lease on the new browser, 100 ms after
 * the previous holder, and releases the old one once granted), and no old lease is revoked
 * although the last moves end long after the move grace: the grace runs from the last page
 * opened while the opening goes on. And moves wait ahead of new watch leases: two moves
 * asked for after three new leases are granted before them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pool/pool.h"
#include "tests/fixture/fixture.h"
#include "tests/support/testutil.h"

#define NLEASES 16

typedef struct h {
	uv_loop_t loop;
	cdp_wsctx_t *ws;
	fixture_t *fx;
	pool_t *pool;
	uv_check_t check;
	int pool_closed, fx_closed;
	int granted, failed, done;
	unsigned max_opening;
	pool_lease_t *leases[NLEASES];
	int chrom_before;
} h_t;

static void on_pool_closed(pool_t *p, void *ud) { ((h_t *)ud)->pool_closed = 1; }
static void on_any_closed(pool_t *p, void *ud) { *(int *)ud = 1; }
static void on_fx_closed(void *ud) { ((h_t *)ud)->fx_closed = 1; }

static void on_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	h_t *h = ud;

	if (status != 0) {
		h->failed++;
		print_error("watch lease failed: %s\n", why);
	} else {
		h->granted++;
	}
	h->done = h->granted + h->failed == NLEASES;
}

/* Every turn of the loop, after the pool's pump: how many watch pages are opening. */
static void on_check(uv_check_t *c)
{
	h_t *h = c->data;
	pool_stats_t st;

	pool_get_stats(h->pool, &st);
	if (st.watch_opening > h->max_opening)
		h->max_opening = st.watch_opening;
}

static void test_pool_watch__opens_a_few_at_a_time(void **state)
{
	h_t h;
	pool_opts_t o;
	pool_stats_t st;

	memset(&h, 0, sizeof h);
	h.chrom_before = tu_tagged_count();
	assert_int_equal(uv_loop_init(&h.loop), 0);
	h.ws = cdp_wsctx_new(&h.loop);
	h.fx = fixture_new(&h.loop, NULL, 0);
	assert_non_null(h.ws);
	assert_non_null(h.fx);
	pool_opts_init(&o);
	o.watch_open_cap = 2;
	o.lease_timeout_ms = 1000; /* shorter than the wait of the last leases */
	h.pool = pool_new(&h.loop, h.ws, &o);
	assert_non_null(h.pool);
	uv_check_init(&h.loop, &h.check);
	h.check.data = &h;
	uv_check_start(&h.check, on_check);

	for (int i = 0; i < NLEASES; i++) {
		h.leases[i] = pool_acquire_watch(h.pool, on_granted, NULL, NULL, &h);
		assert_non_null(h.leases[i]);
	}
	assert_true(tu_run_until(&h.loop, &h.done, 120000));
	assert_int_equal(h.failed, 0);
	assert_int_equal(h.granted, NLEASES);
	assert_int_equal(h.max_opening, 2);
	pool_get_stats(h.pool, &st);
	assert_int_equal(st.watch_leases, NLEASES);
	assert_int_equal(st.watch_opening, 0);
	assert_int_equal(st.lease_timeouts, 0);

	for (int i = 0; i < NLEASES; i++)
		pool_release(h.leases[i], POOL_OK);
	uv_check_stop(&h.check);
	uv_close((uv_handle_t *)&h.check, NULL);
	pool_close(h.pool, on_pool_closed, &h);
	assert_true(tu_run_until(&h.loop, &h.pool_closed, 60000));
	fixture_close(h.fx, on_fx_closed, &h);
	assert_true(tu_run_until(&h.loop, &h.fx_closed, 5000));
	cdp_wsctx_close(h.ws);
	uv_run(&h.loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(h.ws);
	assert_int_equal(uv_loop_close(&h.loop), 0);
	assert_int_equal(tu_wait_tagged_count(h.chrom_before, 10000), h.chrom_before);
}

/* Closes the pool, then the CDP context, runs the loop out and audits it: nothing left
 * open, no Chromium process left. */
static void close_all(uv_loop_t *loop, pool_t *pool, cdp_wsctx_t *ws, int chrom_before)
{
	int closed = 0;

	pool_close(pool, on_any_closed, &closed);
	assert_true(tu_run_until(loop, &closed, 60000));
	cdp_wsctx_close(ws);
	uv_run(loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(ws);
	assert_int_equal(uv_loop_close(loop), 0);
	assert_int_equal(tu_wait_tagged_count(chrom_before, 10000), chrom_before);
}

#define NMOVES 32

typedef struct mv {
	uv_loop_t loop;
	cdp_wsctx_t *ws;
	pool_t *pool;
	int granted, failed, revoked, moved, move_failed;
	pool_lease_t *old[NMOVES], *repl[NMOVES];
	uint64_t asked_ms, last_ms;
} mv_t;

typedef struct slot {
	mv_t *m;
	int i;
	uv_timer_t timer; /* the holder's turn to ask for its new lease */
} slot_t;

static slot_t slots[NMOVES];

static void mv_on_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	slot_t *s = ud;

	if (status != 0)
		print_error("watch lease failed: %s\n", why);
	s->m->failed += status != 0;
	s->m->granted += status == 0;
}

static void mv_on_revoked(pool_lease_t *l, enum pool_outcome reason, const char *why, void *ud)
{
	slot_t *s = ud;

	print_error("old lease %d revoked: %s\n", s->i, why);
	s->m->revoked++;
	s->m->old[s->i] = NULL;
	pool_release(l, reason);
}

/* The replacement is open: the move is done, the old lease goes. */
static void mv_on_repl_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	slot_t *s = ud;
	mv_t *m = s->m;

	if (status != 0) {
		print_error("replacement %d failed: %s\n", s->i, why);
		m->move_failed++;
		return;
	}
	m->moved++;
	m->last_ms = tu_now_ms();
	if (m->old[s->i]) {
		pool_release(m->old[s->i], POOL_OK);
		m->old[s->i] = NULL;
	}
}

static void mv_on_turn(uv_timer_t *t)
{
	slot_t *s = t->data;

	s->m->repl[s->i] = pool_acquire_watch(s->m->pool, mv_on_repl_granted, NULL, NULL, s);
	assert_non_null(s->m->repl[s->i]);
}

/* The holders move one after the other, 100 ms apart, whatever the machine's speed: the
 * moves end NMOVES x 100 ms after the ask, more than twice the grace and a tick. */
static void mv_on_moved(pool_lease_t *l, void *ud)
{
	slot_t *s = ud;

	if (!s->m->asked_ms)
		s->m->asked_ms = tu_now_ms();
	uv_timer_start(&s->timer, mv_on_turn, 100u * (unsigned)s->i, 0);
}

static void test_pool_watch__moves_wait_their_turn(void **state)
{
	static mv_t m;
	pool_opts_t o;
	pool_stats_t st;
	int chrom_before = tu_tagged_count(), all = 0;

	memset(&m, 0, sizeof m);
	assert_int_equal(uv_loop_init(&m.loop), 0);
	m.ws = cdp_wsctx_new(&m.loop);
	assert_non_null(m.ws);
	pool_opts_init(&o);
	o.watch_open_cap = 1;    /* the moves open one after the other */
	o.move_grace_ms = 1000;  /* shorter than NMOVES page opens */
	m.pool = pool_new(&m.loop, m.ws, &o);
	assert_non_null(m.pool);
	for (int i = 0; i < NMOVES; i++) {
		slots[i].m = &m;
		slots[i].i = i;
		uv_timer_init(&m.loop, &slots[i].timer);
		slots[i].timer.data = &slots[i];
		m.old[i] = pool_acquire_watch(m.pool, mv_on_granted, mv_on_revoked, mv_on_moved,
		                              &slots[i]);
		assert_non_null(m.old[i]);
	}
	for (uint64_t until = tu_now_ms() + 120000; m.granted + m.failed < NMOVES && tu_now_ms() < until;)
		uv_run(&m.loop, UV_RUN_ONCE);
	assert_int_equal(m.granted, NMOVES);
	pool_request_recycle(m.pool, POOL_RECYCLE_REQUESTED);
	for (uint64_t until = tu_now_ms() + 120000; !all && tu_now_ms() < until;) {
		uv_run(&m.loop, UV_RUN_ONCE);
		all = m.moved + m.move_failed + m.revoked >= NMOVES;
	}
	pool_get_stats(m.pool, &st);
	print_message("%d moved in %llu ms (move grace %u ms), %d revoked, %d failed; launches %llu\n",
	              m.moved, (unsigned long long)(m.last_ms - m.asked_ms), o.move_grace_ms,
	              m.revoked, m.move_failed, (unsigned long long)st.browser_launches);
	assert_true(all);
	assert_int_equal(st.browser_launches, 2);
	assert_int_equal(m.revoked, 0);
	assert_int_equal(m.move_failed, 0);
	assert_int_equal(m.moved, NMOVES);
	assert_int_equal(st.tasks[POOL_TIMEOUT], 0);
	/* the moves took longer than the grace and a tick: the old rule (from the ask) revoked */
	assert_true(m.last_ms - m.asked_ms > o.move_grace_ms + 1000);

	for (int i = 0; i < NMOVES; i++) {
		pool_release(m.repl[i], POOL_OK);
		uv_close((uv_handle_t *)&slots[i].timer, NULL);
	}
	close_all(&m.loop, m.pool, m.ws, chrom_before);
}

/* ---- moves ahead of new watch leases ---- */

typedef struct ahead {
	uv_loop_t loop;
	cdp_wsctx_t *ws;
	pool_t *pool;
	int granted, asked;
	pool_lease_t *old[2], *repl[2], *fresh[3];
	char order[8]; /* the grants after the recycle: 'm' a move, 'n' a new lease */
	int norder;
} ahead_t;

static ahead_t *A;

static void ah_on_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	assert_int_equal(status, 0);
	A->granted++;
}

static void ah_on_later(pool_lease_t *l, int status, const char *why, void *ud)
{
	assert_int_equal(status, 0);
	if (A->norder < (int)sizeof A->order - 1)
		A->order[A->norder++] = *(const char *)ud;
}

static void ah_on_moved(pool_lease_t *l, void *ud)
{
	static const char m = 'm', n = 'n';
	pool_page_settings_t ps = { .moving = 1 };
	int i = (int)(intptr_t)ud;

	if (A->asked++ == 0) /* new watch leases asked for first: they wait in front */
		for (int k = 0; k < 3; k++)
			A->fresh[k] = pool_acquire_watch(A->pool, ah_on_later, NULL, NULL, (void *)&n);
	A->repl[i] = pool_acquire_watch_ex(A->pool, &ps, ah_on_later, NULL, NULL, (void *)&m);
	assert_non_null(A->repl[i]);
}

static void test_pool_watch__moves_go_first(void **state)
{
	static ahead_t a;
	pool_opts_t o;
	int chrom_before = tu_tagged_count();

	memset(&a, 0, sizeof a);
	A = &a;
	assert_int_equal(uv_loop_init(&a.loop), 0);
	a.ws = cdp_wsctx_new(&a.loop);
	assert_non_null(a.ws);
	pool_opts_init(&o);
	o.watch_open_cap = 1;
	a.pool = pool_new(&a.loop, a.ws, &o);
	assert_non_null(a.pool);
	for (int i = 0; i < 2; i++)
		a.old[i] = pool_acquire_watch(a.pool, ah_on_granted, NULL, ah_on_moved,
		                              (void *)(intptr_t)i);
	for (uint64_t until = tu_now_ms() + 60000; a.granted < 2 && tu_now_ms() < until;)
		uv_run(&a.loop, UV_RUN_ONCE);
	assert_int_equal(a.granted, 2);
	pool_request_recycle(a.pool, POOL_RECYCLE_REQUESTED);
	for (uint64_t until = tu_now_ms() + 60000; a.norder < 5 && tu_now_ms() < until;)
		uv_run(&a.loop, UV_RUN_ONCE);
	print_message("grants after the recycle: %s (m: a move, n: a new lease)\n", a.order);
	assert_string_equal(a.order, "mmnnn");

	for (int i = 0; i < 2; i++) {
		pool_release(a.old[i], POOL_OK);
		pool_release(a.repl[i], POOL_OK);
	}
	for (int k = 0; k < 3; k++)
		pool_release(a.fresh[k], POOL_OK);
	close_all(&a.loop, a.pool, a.ws, chrom_before);
}

/* ---- ten graces at most ---- */

typedef struct cap {
	uv_loop_t loop;
	cdp_wsctx_t *ws;
	pool_t *pool;
	int granted, opens, revoked, churning;
	uint64_t asked_ms, revoked_ms;
} cap_t;

static cap_t *C;

static void cap_on_churn(pool_lease_t *l, int status, const char *why, void *ud);

/* Another watch page opens, and goes at once: the opening never stops. */
static void cap_churn(void)
{
	if (C->churning)
		assert_non_null(pool_acquire_watch(C->pool, cap_on_churn, NULL, NULL, NULL));
}

static void cap_on_churn(pool_lease_t *l, int status, const char *why, void *ud)
{
	if (status == 0) {
		C->opens++;
		pool_release(l, POOL_OK);
	}
	cap_churn();
}

static void cap_on_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	assert_int_equal(status, 0);
	C->granted++;
}

static void cap_on_revoked(pool_lease_t *l, enum pool_outcome reason, const char *why, void *ud)
{
	C->revoked++;
	C->revoked_ms = tu_now_ms();
	pool_release(l, reason);
}

/* The holder never moves: it is asked, and says nothing. */
static void cap_on_moved(pool_lease_t *l, void *ud)
{
	C->asked_ms = tu_now_ms();
	C->churning = 1;
	for (int i = 0; i < 2; i++)
		cap_churn();
}

/* A watched page asked to move whose holder never does goes ten move graces after the ask
 * at the latest, even while other watch pages keep opening (each of which restarts the
 * grace counted from the last page opened): replacements that keep failing and reopening
 * must not keep a draining browser for ever. While the opening goes on the old page stays
 * past one grace. */
static void test_pool_watch__ten_graces_at_most(void **state)
{
	static cap_t c;
	pool_opts_t o;
	pool_lease_t *old;
	int chrom_before = tu_tagged_count();

	memset(&c, 0, sizeof c);
	C = &c;
	assert_int_equal(uv_loop_init(&c.loop), 0);
	c.ws = cdp_wsctx_new(&c.loop);
	assert_non_null(c.ws);
	pool_opts_init(&o);
	o.move_grace_ms = 1000; /* ten graces: 10 s */
	c.pool = pool_new(&c.loop, c.ws, &o);
	assert_non_null(c.pool);
	old = pool_acquire_watch(c.pool, cap_on_granted, cap_on_revoked, cap_on_moved, NULL);
	assert_non_null(old);
	for (uint64_t until = tu_now_ms() + 60000; !c.granted && tu_now_ms() < until;)
		uv_run(&c.loop, UV_RUN_ONCE);
	assert_int_equal(c.granted, 1);
	pool_request_recycle(c.pool, POOL_RECYCLE_REQUESTED);
	for (uint64_t until = tu_now_ms() + 60000; !c.revoked && tu_now_ms() < until;)
		uv_run(&c.loop, UV_RUN_ONCE);
	c.churning = 0;
	print_message("revoked %llu ms after the ask (move grace %u ms); %d watch pages opened "
	              "meanwhile\n",
	              (unsigned long long)(c.revoked_ms - c.asked_ms), o.move_grace_ms, c.opens);
	assert_int_equal(c.revoked, 1);
	assert_true(c.asked_ms > 0);
	/* ten graces and the pool's one-second tick, at most (sooner if the opening stalled
	 * for a grace: a loaded machine) */
	assert_true(c.revoked_ms - c.asked_ms <= 10ull * o.move_grace_ms + 1500);
	assert_true(c.opens > 0);
	for (uint64_t until = tu_now_ms() + 30000; tu_now_ms() < until;) {
		pool_stats_t st;
		pool_get_stats(c.pool, &st);
		if (st.watch_leases == 0)
			break;
		uv_run(&c.loop, UV_RUN_ONCE);
	}
	close_all(&c.loop, c.pool, c.ws, chrom_before);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_watch__opens_a_few_at_a_time),
		cmocka_unit_test(test_pool_watch__moves_wait_their_turn),
		cmocka_unit_test(test_pool_watch__moves_go_first),
		cmocka_unit_test(test_pool_watch__ten_graces_at_most),
	};

	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
