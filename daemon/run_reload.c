/*
 * run_reload.c: re-reading the targets file, on SIGHUP and when it changes. The file is
 * read and validated off the loop (uv_queue_work), the new list reconciled on the loop.
 *
 * The file is always opened afresh by its path, so a file replaced by a rename over it (an
 * editor's save, `git checkout`) is read as it now is. Its directory is watched (inotify
 * through uv_fs_event) for renames over the file and writes to it, and the file itself
 * for writes that reach it through another mount (a single-file bind mount's host side)
 * and for its last link going. A container that bind-mounts the single file keeps the
 * old inode once the host replaces the file: nothing inside can see the new one. stat()
 * of the path then says st_nlink == 0, which is reported with the fix (mount the
 * directory). See run_priv.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/run_priv.h"
#include "daemon/targets.h"
#include "util/log.h"

/* The same file, as it was: same inode, size, modification and change times. */
static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Unchanged since the last read: the same file, or the same stat() error. */
static int unchanged(const run_t *r)
{
	if (r->reload_st_errno || r->seen_errno)
		return r->reload_st_errno == r->seen_errno;
	return same_file(&r->reload_st, &r->seen);
}

void run__note_targets_file(run_t *r)
{
	r->seen_errno = stat(r->o->targets_path, &r->seen) == 0 ? 0 : errno;
}

/* Worker thread: reads and validates the targets file. Only this reload's own memory is
 * touched (targets_load_file() is pure apart from reading the file and the script_files
 * beside it; jansson is thread-safe for separate objects; the adapters' parse functions
 * and the tables they read are const; r->seen is not written while a reload runs).
 * Nothing here logs. The stat comes first: a file replaced between it and the read is
 * seen as changed at the next event, never the other way round. */
static void reload_work(uv_work_t *req)
{
	run_t *r = req->data;

	r->reload_st_errno = stat(r->o->targets_path, &r->reload_st) == 0 ? 0 : errno;
	r->reload_skipped = r->reload_why == RUN_RELOAD_WATCH && unchanged(r);
	if (!r->reload_skipped)
		r->reload_rc =
		        targets_load_file(r->o->targets_path, &r->reload_set, &r->reload_errs);
}

/* A path whose file has no link left: it was deleted, or replaced by a rename over it,
 * after this mount of it was made. Said at each SIGHUP, and once per inode on a change. */
static void warn_if_unlinked(run_t *r, const char *what)
{
	if (r->reload_st_errno || r->reload_st.st_nlink != 0 ||
	    (r->reload_why == RUN_RELOAD_WATCH &&
	     r->warned_unlinked_ino == (uint64_t)r->reload_st.st_ino))
		return;
	r->warned_unlinked_ino = (uint64_t)r->reload_st.st_ino;
	log_warn("run",
	         "%s: %s is a file that has been deleted or replaced (no directory links to it "
	         "any more), yet the path still opens it: it is a single-file bind mount (docker "
	         "-v FILE:PATH, a compose volume of one file) whose source was replaced, by an "
	         "editor's save or a git checkout. cdpilot cannot see the new file. Mount the "
	         "directory that holds it instead (./targets:/etc/cdpilot/targets, see "
	         "docker/README.md) and restart the container",
	         what, r->o->targets_path);
}

/* After a reload that read a new inode, the file watch follows it. */
static void rewatch_file(run_t *r);

/* Loop: the read is over; the new list is reconciled (on the loop, where the runner
 * lives: linear, about 0.2 s for 100,000 unchanged targets, 1 s for 100,000 new ones). */
static void reload_done(uv_work_t *req, int status)
{
	run_t *r = req->data;
	const char *what = r->reload_why == RUN_RELOAD_SIGHUP ? "SIGHUP" : "targets file changed";

	r->reloading = 0;
	if (status != 0 || r->stopping) {
		/* cancelled (stopping): nothing to apply */
	} else if (r->reload_skipped) {
		log_debug("run", "%s is as it was at the last read: not read again",
		          r->o->targets_path);
		warn_if_unlinked(r, what);
	} else {
		if (r->reload_why == RUN_RELOAD_SIGHUP && !r->reload_st_errno && unchanged(r))
			log_warn("run",
			         "SIGHUP: %s is unchanged since it was last read (same inode %" PRIu64
			         ", size and modification time): if you changed or replaced it, "
			         "cdpilot does not see the new file",
			         r->o->targets_path, (uint64_t)r->reload_st.st_ino);
		warn_if_unlinked(r, what);
		if (r->reload_rc != 0) {
			log_error("run", "%s: %s has %u error(s); keeping the current targets:\n%s",
			          what, r->o->targets_path, r->reload_errs.count,
			          errlist_text(&r->reload_errs));
		} else {
			log_info("run",
			         "%s: re-read %s (%zu targets, read and checked in %" PRIu64
			         " ms off the loop)",
			         what, r->o->targets_path, r->reload_set.n,
			         uv_now(r->loop) - r->reload_began_ms);
			runner_reconcile(r->runner, &r->reload_set, "");
			run__entities_reconcile(r, &r->reload_set.entities, "");
		}
	}
	if (status == 0) {
		int new_inode = r->reload_st_errno == 0 &&
		                (r->seen_errno || r->seen.st_ino != r->reload_st.st_ino ||
		                 r->seen.st_dev != r->reload_st.st_dev);
		r->seen = r->reload_st;
		r->seen_errno = r->reload_st_errno;
		if (new_inode && !r->stopping)
			rewatch_file(r);
	}
	targets_release(&r->reload_set);
	errlist_release(&r->reload_errs);
	if (r->reload_again && !r->stopping) {
		unsigned why = r->reload_again & RUN_RELOAD_SIGHUP ? RUN_RELOAD_SIGHUP
		                                                   : RUN_RELOAD_WATCH;
		r->reload_again = 0;
		run__start_reload(r, why);
	}
}

/* The file is read off the loop, so that a big list (100,000 targets take seconds to
 * validate) never stalls the loop; one reload at a time, one asked for during another
 * runs after it (the file may have changed since it was opened). */
void run__start_reload(run_t *r, unsigned why)
{
	if (r->reloading) {
		r->reload_again |= why;
		return;
	}
	r->reload_req.data = r;
	r->reload_why = why;
	r->reload_began_ms = uv_now(r->loop);
	memset(&r->reload_set, 0, sizeof r->reload_set);
	errlist_init(&r->reload_errs);
	if (uv_queue_work(r->loop, &r->reload_req, reload_work, reload_done) != 0) {
		log_error("run", "%s: could not start reading %s",
		          why == RUN_RELOAD_SIGHUP ? "SIGHUP" : "targets file changed",
		          r->o->targets_path);
		errlist_release(&r->reload_errs);
		return;
	}
	r->reloading = 1;
}

/* ---- the watch ---- */

static void on_watch_quiet(uv_timer_t *t)
{
	run_t *r = t->data;

	r->watch_first_ms = 0;
	if (!r->stopping)
		run__start_reload(r, RUN_RELOAD_WATCH);
}

/* An event: the reload waits until events have stopped for TARGETS_WATCH_MS (an editor's
 * save is several), but a burst that never ends is read after 10 times that at most. */
static void watch_event(run_t *r)
{
	uint64_t now = uv_now(r->loop);

	if (r->stopping)
		return;
	if (!r->watch_first_ms)
		r->watch_first_ms = now;
	else if (now - r->watch_first_ms >= 10ull * r->o->targets_watch_ms)
		return; /* let the pending timer fire */
	uv_timer_start(&r->watch_quiet, on_watch_quiet, r->o->targets_watch_ms, 0);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* Events of the directory: about the file's name (written, renamed over, created,
 * deleted), or about a name starting with ".." (Kubernetes mounts a ConfigMap as
 * symlinks through "..data", swapped by a rename), or with no name (the queue overflowed). */
static void on_dir_event(uv_fs_event_t *h, const char *name, int events, int status)
{
	run_t *r = h->data;

	(void)events;
	if (status < 0) {
		log_warn("run", "watching the directory of %s: %s", r->o->targets_path,
		         uv_strerror(status));
		return;
	}
	if (!name || strcmp(name, base_name(r->o->targets_path)) == 0 ||
	    strncmp(name, "..", 2) == 0)
		watch_event(r);
}

static void on_file_event(uv_fs_event_t *h, const char *name, int events, int status)
{
	run_t *r = h->data;

	(void)name, (void)events;
	if (status == 0)
		watch_event(r);
}

static void rewatch_file(run_t *r)
{
	int rc;

	if (!r->watch_inited)
		return;
	if (r->watch_file_on)
		uv_fs_event_stop(&r->watch_file);
	rc = uv_fs_event_start(&r->watch_file, on_file_event, r->o->targets_path, 0);
	r->watch_file_on = rc == 0;
	if (rc != 0)
		log_debug("run", "cannot watch %s itself: %s", r->o->targets_path, uv_strerror(rc));
}

void run__watch_start(run_t *r)
{
	char *copy, *dir;
	int rc;

	if (!r->o->targets_watch_ms)
		return;
	uv_timer_init(r->loop, &r->watch_quiet);
	uv_fs_event_init(r->loop, &r->watch_dir);
	uv_fs_event_init(r->loop, &r->watch_file);
	r->watch_quiet.data = r->watch_dir.data = r->watch_file.data = r;
	r->watch_inited = 1;
	copy = strdup(r->o->targets_path);
	if (!copy)
		abort();
	dir = dirname(copy);
	rc = uv_fs_event_start(&r->watch_dir, on_dir_event, dir, 0);
	r->watch_dir_on = rc == 0;
	if (rc != 0)
		log_warn("run",
		         "cannot watch the directory %s for changes of %s (%s): the file is re-read "
		         "on SIGHUP only",
		         dir, r->o->targets_path, uv_strerror(rc));
	else
		log_info("run", "watching %s (in %s): it is re-read %u ms after it changes",
		         r->o->targets_path, dir, r->o->targets_watch_ms);
	free(copy);
	rewatch_file(r);
}

void run__watch_close(run_t *r)
{
	if (!r->watch_inited)
		return;
	r->watch_inited = 0;
	uv_close((uv_handle_t *)&r->watch_quiet, NULL);
	uv_close((uv_handle_t *)&r->watch_dir, NULL);
	uv_close((uv_handle_t *)&r->watch_file, NULL);
}
