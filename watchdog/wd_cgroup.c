/*
 * wd_cgroup: the cgroup half of wd_proc.h (wd_cgroup_read): which cgroup this process is
 * in (v2, or v1's pids and memory controllers) and its limits and use, read from files
 * below a root directory. Pure functions; split from wd_proc.c, which reads /proc.
 */
#include "watchdog/wd_proc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "watchdog/wd_priv.h"

/* ---- cgroups ---- */

/* v1 reports "no limit" as a page-rounded LONG_MAX. */
#define V1_NO_LIMIT (1ull << 62)

/* "max" or a number (a trailing newline allowed). */
static int read_value(const char *dir, const char *file, uint64_t *out)
{
	char path[PATH_MAX], buf[64];
	size_t len = 0;
	int rc;

	if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
		return -ENAMETOOLONG;
	rc = wd__read_small(path, buf, sizeof buf - 1, &len);
	if (rc)
		return rc;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	if (len == 3 && memcmp(buf, "max", 3) == 0) {
		*out = WD_UNLIMITED;
		return 0;
	}
	if (wd__parse_u64(buf, len, out))
		return -EINVAL;
	if (*out >= V1_NO_LIMIT)
		*out = WD_UNLIMITED;
	return 0;
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * Reads max_file/cur_file at base+rel and each ancestor up to base; keeps the level with
 * the least headroom (the leaf's current if no level has a limit). 1 if any level had a
 * current value.
 */
static int read_levels(const char *base, const char *rel_in, const char *max_file,
                       const char *cur_file, uint64_t *max_out, uint64_t *cur_out)
{
	char rel[PATH_MAX], dir[PATH_MAX];
	uint64_t best = UINT64_MAX;
	int found = 0;

	snprintf(rel, sizeof rel, "%s", rel_in);
	if (snprintf(dir, sizeof dir, "%s%s", base, rel) >= (int)sizeof dir || !is_dir(dir))
		snprintf(rel, sizeof rel, "/");
	*max_out = WD_UNLIMITED;
	*cur_out = 0;
	for (;;) {
		uint64_t mx = WD_UNLIMITED, cur = 0;
		char *slash;

		if (snprintf(dir, sizeof dir, "%s%s", base, strcmp(rel, "/") ? rel : "") <
		            (int)sizeof dir &&
		    read_value(dir, cur_file, &cur) == 0) {
			if (read_value(dir, max_file, &mx) != 0)
				mx = WD_UNLIMITED;
			if (!found) {
				*cur_out = cur;
				found = 1;
			}
			if (mx != WD_UNLIMITED) {
				uint64_t room = mx > cur ? mx - cur : 0;
				if (room < best) {
					best = room;
					*max_out = mx;
					*cur_out = cur;
				}
			}
		}
		if (strcmp(rel, "/") == 0 || rel[0] == '\0')
			break;
		slash = strrchr(rel, '/');
		if (!slash || slash == rel)
			snprintf(rel, sizeof rel, "/");
		else
			*slash = '\0';
	}
	return found;
}

/* What /proc/self/cgroup says: the v2 path, and the v1 mount and path of pids and memory. */
typedef struct cg_paths {
	int have_v2, v1;
	char v2path[PATH_MAX];
	char pids_base[PATH_MAX], pids_rel[PATH_MAX];
	char mem_base[PATH_MAX], mem_rel[PATH_MAX];
} cg_paths_t;

/* A v1 line's controllers ("cpu,cpuacct", mounted as root/cpu,cpuacct) at path: notes
 * where pids and memory are. */
static void note_v1(const char *root, const char *ctrls, const char *path, cg_paths_t *cp)
{
	for (const char *s = ctrls; *s;) {
		size_t n = strcspn(s, ",");
		char *base = NULL, *rel = NULL;
		if (n == 4 && memcmp(s, "pids", 4) == 0)
			base = cp->pids_base, rel = cp->pids_rel;
		else if (n == 6 && memcmp(s, "memory", 6) == 0)
			base = cp->mem_base, rel = cp->mem_rel;
		if (base) {
			snprintf(base, PATH_MAX, "%s/%s", root, ctrls);
			snprintf(rel, PATH_MAX, "%s", path);
			cp->v1 = 1;
		}
		s += n;
		if (*s == ',')
			s++;
	}
}

/* One line "ID:CONTROLLERS:PATH" of [line, le); others are ignored. */
static void parse_cgroup_line(const char *root, const char *line, const char *le, cg_paths_t *cp)
{
	const char *c1, *c2;
	char ctrls[256], path[PATH_MAX];
	size_t cn, pn;

	c1 = memchr(line, ':', (size_t)(le - line));
	c2 = c1 ? memchr(c1 + 1, ':', (size_t)(le - c1 - 1)) : NULL;
	if (!c2)
		return;
	cn = (size_t)(c2 - c1 - 1);
	pn = (size_t)(le - c2 - 1);
	if (!(cn < sizeof ctrls && pn < sizeof path && pn > 0 && c2[1] == '/'))
		return;
	memcpy(ctrls, c1 + 1, cn);
	ctrls[cn] = '\0';
	memcpy(path, c2 + 1, pn);
	path[pn] = '\0';
	if (cn == 0 && c1 - line == 1 && line[0] == '0') {
		cp->have_v2 = 1;
		snprintf(cp->v2path, sizeof cp->v2path, "%s", path);
	} else {
		note_v1(root, ctrls, path, cp);
	}
}

int wd_cgroup_read(const char *root, const char *self_cgroup_file, wd_cgroup_t *out)
{
	char buf[8192];
	cg_paths_t cp;
	size_t len = 0;
	int rc;
	const char *line, *end, *path;

	memset(out, 0, sizeof *out);
	memset(&cp, 0, sizeof cp);
	out->pids_max = out->memory_max = WD_UNLIMITED;
	rc = wd__read_small(self_cgroup_file, buf, sizeof buf - 1, &len);
	if (rc)
		return rc;
	buf[len] = '\0';
	end = buf + len;
	for (line = buf; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl ? nl : end;
		parse_cgroup_line(root, line, le, &cp);
		line = le + 1;
	}
	if (!cp.v1 && !cp.have_v2)
		return 0;
	out->version = cp.v1 ? 1 : 2;
	/* cut to fit, as snprintf would: out->path is a copy to show */
	path = cp.v1 ? (cp.mem_rel[0] ? cp.mem_rel : cp.pids_rel) : cp.v2path;
	len = strnlen(path, sizeof out->path - 1);
	memcpy(out->path, path, len);
	out->path[len] = '\0';
	if (cp.pids_base[0])
		out->has_pids = read_levels(cp.pids_base, cp.pids_rel, "pids.max", "pids.current",
		                            &out->pids_max, &out->pids_current);
	else if (cp.have_v2)
		out->has_pids = read_levels(root, cp.v2path, "pids.max", "pids.current",
		                            &out->pids_max, &out->pids_current);
	if (cp.mem_base[0])
		out->has_memory = read_levels(cp.mem_base, cp.mem_rel, "memory.limit_in_bytes",
		                              "memory.usage_in_bytes", &out->memory_max,
		                              &out->memory_current);
	else if (cp.have_v2)
		out->has_memory = read_levels(root, cp.v2path, "memory.max", "memory.current",
		                              &out->memory_max, &out->memory_current);
	if (!out->has_pids)
		out->pids_max = WD_UNLIMITED;
	if (!out->has_memory)
		out->memory_max = WD_UNLIMITED;
	return 0;
}
