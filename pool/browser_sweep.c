/*
 * browser_sweep: the user-data-dirs we leave behind. Each profile we make carries a lock
 * file that this process holds for the browser's life; at startup the sweep removes every
 * cdpilot-chromium-* dir in $TMPDIR whose lock nobody holds (or, for a profile from before
 * that lock, whose Chromium is gone), and never a dir of a live browser.
 */
#include "pool/browser.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pool/browser_priv.h"
#include "util/log.h"

/* In every user-data-dir we make, locked by us while the browser lives: the sweep takes a
 * directory whose lock nobody holds for a leftover. */
#define OWNER_LOCK "cdpilot.lock"

/* Takes OWNER_LOCK in the new user-data-dir; held (close-on-exec, so by this process
 * alone) until the handle is freed. Without it the sweep falls back on Chromium's own
 * SingletonLock, which the headless shell does not make. The file is locked under another
 * name and renamed into place, so a sweep never finds it unlocked. */
void browser__lock_profile(browser_t *b)
{
	char tmp[PATH_MAX], path[PATH_MAX];

	if (snprintf(path, sizeof path, "%s/" OWNER_LOCK, b->udd) >= (int)sizeof path ||
	    snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp)
		return;
	b->lock_fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (b->lock_fd < 0 || flock(b->lock_fd, LOCK_EX | LOCK_NB) != 0 || rename(tmp, path) != 0) {
		log_warn(LOG_COMP, "cannot lock %s: %s; a sweep by another cdpilot may take it for "
		         "a leftover once it is 10 minutes old", path, strerror(errno));
		if (b->lock_fd >= 0) {
			close(b->lock_fd);
			unlink(tmp);
		}
		b->lock_fd = -1;
	}
}

static int sweep_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) != 0 && errno != ENOENT ? errno : 0;
}

/* Whether a browser still answers on the profile's SingletonSocket (a unix socket Chromium
 * listens on while it runs). Unlike the pid in SingletonLock, this holds across PID
 * namespaces: cdpilot as PID 1 of its own namespace sees no other process, and must not
 * take another namespace's live profile for a leftover. Connecting to a local unix socket
 * does not block. */
static int profile_in_use(const char *dir)
{
	struct sockaddr_un sa;
	int fd, rc;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s/SingletonSocket", dir) >=
	    (int)sizeof sa.sun_path)
		return 1; /* cannot tell: leave it */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 1;
	rc = connect(fd, (const struct sockaddr *)&sa, sizeof sa);
	close(fd);
	return rc == 0;
}

int browser_sweep_stale_dirs(void)
{
	const char *tmp = getenv("TMPDIR");
	DIR *d;
	struct dirent *e;
	int removed = 0;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	d = opendir(tmp);
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char dir[PATH_MAX], lock[PATH_MAX], olock[PATH_MAX], target[256];
		struct stat st;
		ssize_t n;
		int stale = 0, owner;

		if (strncmp(e->d_name, "cdpilot-chromium-", 17) != 0)
			continue;
		if (snprintf(dir, sizeof dir, "%s/%s", tmp, e->d_name) >= (int)sizeof dir ||
		    snprintf(lock, sizeof lock, "%s/SingletonLock", dir) >= (int)sizeof lock)
			continue;
		if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
			continue;
		owner = -1;
		if (snprintf(olock, sizeof olock, "%s/" OWNER_LOCK, dir) < (int)sizeof olock)
			owner = open(olock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (owner >= 0) {
			/* ours: stale exactly when no cdpilot holds the lock (any PID namespace) */
			if (flock(owner, LOCK_EX | LOCK_NB) != 0) {
				close(owner);
				continue;
			}
			stale = 1;
		} else if ((n = readlink(lock, target, sizeof target - 1)) > 0) {
			/* a profile from before OWNER_LOCK: Chromium's lock, "hostname-PID" */
			const char *dash;
			char *end;
			long pid;
			target[n] = '\0';
			dash = strrchr(target, '-');
			pid = dash ? strtol(dash + 1, &end, 10) : 0;
			if (dash && *end == '\0' && pid > 0 && kill((pid_t)pid, 0) != 0 &&
			    errno == ESRCH)
				stale = 1;
		} else if (time(NULL) - st.st_mtime > 600) {
			stale = 1; /* never got as far as its lock */
		}
		if (stale && (owner >= 0 || !profile_in_use(dir))) {
			if (nftw(dir, sweep_entry, 16, FTW_DEPTH | FTW_PHYS) == 0) {
				removed++;
				log_info(LOG_COMP, "removed %s, left behind by a browser that is gone",
				         dir);
			} else {
				log_warn(LOG_COMP, "cannot remove stale %s: %s", dir, strerror(errno));
			}
		}
		if (owner >= 0)
			close(owner);
	}
	closedir(d);
	return removed;
}
