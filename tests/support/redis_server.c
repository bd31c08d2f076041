/* redis_server: a private redis-server per test (see redis_server.h). */
#include "tests/support/redis_server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/testutil.h"

#define MAX_SERVERS 8
static tu_redis_t *running[MAX_SERVERS];
static int atexit_set;

static void kill_all(void)
{
	for (int i = 0; i < MAX_SERVERS; i++)
		if (running[i])
			tu_redis_stop(running[i]);
}

static void track(tu_redis_t *r, int on)
{
	for (int i = 0; i < MAX_SERVERS; i++) {
		if (on && !running[i]) {
			running[i] = r;
			return;
		}
		if (!on && running[i] == r)
			running[i] = NULL;
	}
}

static int spawn(tu_redis_t *r)
{
	char port[16];
	pid_t pid;

	snprintf(port, sizeof port, "%d", r->port);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
		       "-::1", "--unixsocket", r->sock, "--unixsocketperm", "700", "--dir", r->dir,
		       "--save", "", "--appendonly", r->no_aof ? "no" : "yes", "--appendfsync", "always",
		       "--daemonize", "no", "--loglevel", "warning", "--logfile", "redis.log",
		       (char *)NULL);
		_exit(127);
	}
	r->pid = pid;
	for (int i = 0; i < 1000; i++) {
		redisContext *c;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr,
			        "redis-server exited at start (status %d); see %s/redis.log\n", st,
			        r->dir);
			r->pid = 0;
			return -1;
		}
		c = redisConnectUnix(r->sock);
		if (c && !c->err) {
			redisReply *rep = redisCommand(c, "PING");
			int ok = rep && rep->type == REDIS_REPLY_STATUS;
			freeReplyObject(rep);
			redisFree(c);
			if (ok)
				return 0;
		} else if (c) {
			redisFree(c);
		}
		usleep(10000);
	}
	fprintf(stderr, "redis-server did not answer PING within 10 s\n");
	return -1;
}

int tu_redis_start(tu_redis_t *r)
{
	const char *tmp = getenv("TMPDIR");

	memset(r, 0, sizeof *r);
	if (!atexit_set) {
		atexit(kill_all);
		atexit_set = 1;
	}
	snprintf(r->dir, sizeof r->dir, "%s/cdpilot-redis-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(r->dir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
	snprintf(r->url, sizeof r->url, "unix://%s", r->sock);
	r->port = tu_unused_port();
	track(r, 1);
	return spawn(r);
}

int tu_redis_restart(tu_redis_t *r)
{
	if (r->pid)
		tu_redis_kill(r);
	return spawn(r);
}

int tu_redis_restart_from_rdb(tu_redis_t *r)
{
	char aof[300];

	if (r->pid)
		tu_redis_kill(r);
	snprintf(aof, sizeof aof, "%s/appendonlydir", r->dir);
	tu_rm_rf(aof);
	r->no_aof = 1;
	return spawn(r);
}

void tu_redis_kill(tu_redis_t *r)
{
	if (!r->pid)
		return;
	kill(r->pid, SIGKILL);
	waitpid(r->pid, NULL, 0);
	r->pid = 0;
}

void tu_redis_signal(tu_redis_t *r, int sig)
{
	if (r->pid)
		kill(r->pid, sig);
}

void tu_redis_stop(tu_redis_t *r)
{
	tu_redis_kill(r);
	if (r->dir[0])
		tu_rm_rf(r->dir);
	r->dir[0] = '\0';
	track(r, 0);
}

redisContext *tu_redis_client(const tu_redis_t *r)
{
	redisContext *c = redisConnectUnix(r->sock);

	if (c && c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}
