/*
 * pool_keep.c: kept pages (PAGE_REUSE). Most of what a small page costs Chromium is the
 * browser context and the renderer process the pool opens for it, not the page itself: a
 * page whose task ended well is kept, and the next lease for the same site with the same
 * page settings navigates it instead (no new context, no new renderer; V8's caches warm).
 * A kept page is its old lease in L_KEPT, still on pool.active (so crashes, a lost
 * browser and the shutdown find it) and still holding its slot (so kept pages never make
 * more contexts than CONCURRENCY_CAP). It goes after PAGE_REUSE tasks, after
 * PAGE_IDLE_SECONDS unused, when a lease of another site finds no slot free (the least
 * recently kept first), when its browser is no longer the current one, or on pool_close.
 * The tasks of its site share its cookies and storage, as a tab's loads would; none reads
 * the HTTP cache or a service worker (the page is opened with cdp_page_opts_t.no_cache).
 * Leases that must share nothing (a verification) ask for a fresh page.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pool/pool_priv.h"
#include "util/log.h"

/* The length of "scheme://host[:port]" of an http(s) URL without a fragment; 0 otherwise
 * (such a page is never kept: a navigation that only changes the fragment loads nothing). */
static size_t site_len(const char *url)
{
	size_t n;

	if (!url || strchr(url, '#'))
		return 0;
	if (strncasecmp(url, "http://", 7) == 0)
		n = 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		n = 8;
	else
		return 0;
	n += strcspn(url + n, "/?");
	return n;
}

int pool__keep_key(pool_lease_t *l, const pool_opts_t *o, int fresh)
{
	size_t site = site_len(l->url);
	int n;

	l->key = NULL;
	if (o->page_reuse <= 1 || fresh || !site)
		return 0;
	/* every setting a page is opened with: a page is kept only for leases that would open
	 * the same one (NULL and 0 are the pool's, the same for every lease) */
	n = asprintf(&l->key, "%.*s\n%s\n%dx%d\n%s\n%s\n%s\n%d", (int)site, l->url,
	             l->user_agent ? l->user_agent : "", l->viewport_w, l->viewport_h,
	             l->block ? l->block : "", l->headers_json ? l->headers_json : "",
	             l->cookies_json ? l->cookies_json : "", l->no_frames);
	if (n < 0) {
		l->key = NULL;
		return -ENOMEM;
	}
	return 0;
}

int pool__keep(pool_lease_t *l)
{
	pool_t *p = l->pool;

	if (!l->key || l->watch || l->revoked || l->uses >= p->opts.page_reuse || p->closing ||
	    l->pb != p->current || !l->page || !cdp_page_is_idle(l->page))
		return 0;
	l->state = L_KEPT;
	l->kept_at = uv_now(p->loop);
	l->granted_cb = NULL;
	l->revoked_cb = NULL;
	l->ud = NULL;
	p->nkept++;
	pool__pump_soon(p); /* a lease of its site may be waiting */
	return 1;
}

pool_lease_t *pool__keep_find(pool_t *p, const char *key)
{
	pool_lease_t *best = NULL;

	if (!p->nkept)
		return NULL;
	for (pool_lease_t *l = p->active; l; l = l->next)
		if (l->state == L_KEPT && l->pb == p->current && !l->pb->lost &&
		    strcmp(l->key, key) == 0 && (!best || l->kept_at > best->kept_at))
			best = l;
	if (best && !cdp_page_is_idle(best->page)) { /* crashed or cut off since */
		pool__keep_close(best);
		return NULL;
	}
	return best;
}

void pool__keep_close(pool_lease_t *l)
{
	if (l->state != L_KEPT)
		return;
	l->pool->nkept--;
	pool__lease_close_page(l, 0);
}

void pool__keep_evict(pool_t *p)
{
	pool_lease_t *oldest = NULL;

	for (pool_lease_t *l = p->active; l; l = l->next)
		if (l->state == L_KEPT && (!oldest || l->kept_at < oldest->kept_at))
			oldest = l;
	if (!oldest)
		return;
	oldest->evicted = 1;
	p->evicting++;
	log_debug("pool", "a kept page of %.80s is closed for a lease of another site",
	          oldest->url ? oldest->url : "?");
	pool__keep_close(oldest);
}

void pool__keep_sweep(pool_t *p, uint64_t now, int all)
{
	uint64_t idle = p->opts.page_idle_ms;

	if (!p->nkept)
		return;
	/* a kept page counts as a lease in use: on a browser nobody wants, it goes as soon as
	 * the browser would, so that the browser's idle time can begin */
	if (!p->wanted && p->opts.idle_close_ms && p->opts.idle_close_ms < idle)
		idle = p->opts.idle_close_ms;
	for (pool_lease_t *l = p->active, *next; l; l = next) {
		next = l->next;
		if (l->state == L_KEPT &&
		    (all || l->pb != p->current || l->pb->lost || now - l->kept_at >= idle))
			pool__keep_close(l);
	}
}
