/*
 * run_reload.c: SIGHUP's re-read of the targets file, off the loop (uv_queue_work), and
 * the reconcile of the new list on the loop. See run_priv.h.
 */
#include <inttypes.h>
#include <string.h>

#include "daemon/run_priv.h"
#include "daemon/targets.h"
#include "util/log.h"

/* Worker thread: reads and validates the targets file. Only this reload's own memory is
 * touched (targets_load_file() is pure apart from reading the file and the script_files
 * beside it; jansson is thread-safe for separate objects; the adapters' parse functions
 * and the tables they read are const). Nothing here logs. */
static void reload_work(uv_work_t *req)
{
	run_t *r = req->data;

	r->reload_rc = targets_load_file(r->o->targets_path, &r->reload_set, &r->reload_errs);
}

/* Loop: the read is over; the new list is reconciled (on the loop, where the runner
 * lives: linear, about 0.2 s for 100,000 unchanged targets, 1 s for 100,000 new ones). */
static void reload_done(uv_work_t *req, int status)
{
	run_t *r = req->data;

	r->reloading = 0;
	if (status != 0 || r->stopping) {
		/* cancelled (stopping): nothing to apply */
	} else if (r->reload_rc != 0) {
		log_error("run", "SIGHUP: %s has %u error(s); keeping the current targets:\n%s",
		          r->o->targets_path, r->reload_errs.count, errlist_text(&r->reload_errs));
	} else {
		log_info("run",
		         "SIGHUP: re-read %s (%zu targets, read and checked in %" PRIu64
		         " ms off the loop)",
		         r->o->targets_path, r->reload_set.n, uv_now(r->loop) - r->reload_began_ms);
		runner_reconcile(r->runner, &r->reload_set, "");
	}
	targets_release(&r->reload_set);
	errlist_release(&r->reload_errs);
	if (r->reload_again && !r->stopping) {
		r->reload_again = 0;
		run__start_reload(r);
	}
}

/* SIGHUP: the file is read off the loop, so that a big list (100,000 targets take seconds
 * to validate) never stalls the loop; one reload at a time, a SIGHUP during one asks for
 * another after it (the file may have changed since it was opened). */
void run__start_reload(run_t *r)
{
	if (r->reloading) {
		r->reload_again = 1;
		return;
	}
	r->reload_req.data = r;
	r->reload_began_ms = uv_now(r->loop);
	memset(&r->reload_set, 0, sizeof r->reload_set);
	errlist_init(&r->reload_errs);
	if (uv_queue_work(r->loop, &r->reload_req, reload_work, reload_done) != 0) {
		log_error("run", "SIGHUP: could not start reading %s", r->o->targets_path);
		errlist_release(&r->reload_errs);
		return;
	}
	r->reloading = 1;
}

