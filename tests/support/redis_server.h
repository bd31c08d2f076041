/*
 * redis_server: a private redis-server for a test, on a unix socket (and a loopback TCP
 * port) in its own temporary directory, with an append-only file so that its data survive
 * a SIGKILL and a restart on the same socket.
 *
 * The server is started with fork/exec and PR_SET_PDEATHSIG(SIGKILL): it never outlives
 * the test binary. tu_redis_stop() (call it from the cmocka teardown, which runs after a
 * failed assertion too) kills it and removes the directory; an atexit handler does the
 * same for any server still running. Blocking calls: test code only.
 */
#ifndef CDPILOT_TESTS_REDIS_SERVER_H
#define CDPILOT_TESTS_REDIS_SERVER_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

typedef struct tu_redis {
	char dir[256];
	char sock[300];
	char url[400]; /* unix://<sock> */
	int port;
	pid_t pid; /* 0 when not running */
	int no_aof; /* started with --appendonly no (tu_redis_restart_from_rdb) */
} tu_redis_t;

/* Creates the directory and starts the server; waits (up to 10 s) until it answers PING.
 * Returns 0 or -1 (after printing why). */
int tu_redis_start(tu_redis_t *r);
/* Starts it again on the same socket, port and directory (after tu_redis_kill). */
int tu_redis_restart(tu_redis_t *r);
/* Starts it again (after tu_redis_kill, and a SAVE before it) on the same socket, port
 * and directory from dir/dump.rdb alone (the
 * append-only file removed and AOF off from now on, as Redis prefers the AOF when both
 * exist): the data as of the SAVE, keys whose expiry passed meanwhile gone. 0 or -1. */
int tu_redis_restart_from_rdb(tu_redis_t *r);
/* SIGKILL and reap; the directory stays. */
void tu_redis_kill(tu_redis_t *r);
/* Sends sig (e.g. SIGSTOP, SIGCONT) to the server. */
void tu_redis_signal(tu_redis_t *r, int sig);
/* Kills the server if running and removes the directory. Safe to call twice. */
void tu_redis_stop(tu_redis_t *r);
/* A blocking client on the unix socket (NULL on failure); redisFree() it. */
redisContext *tu_redis_client(const tu_redis_t *r);

#endif
