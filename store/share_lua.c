/*
 * share_lua.c: the scripts of the shared schedule (share.h has the keys and the rules).
 *
 * P:sched holds every target with the time (Redis ms) from which another instance may take
 * it: a free target's due time, or a held target's announced next due plus lease and run
 * time (its holder renews that at every run). Taking is popping by score: the instances that
 * do not hold a target never ask about it, so a scrape costs one script (done) whatever the
 * number of instances, and each instance's tick takes what is free, due and within its share.
 */
#include "store/share_priv.h"

#include "store/store.h"

#define NOW_LUA STORE_NOW_LUA

/* The share of one instance: targets per live instance, rounded up. */
#define SHARE_LUA(instances, sched, ttl)                                                      \
	"local live = redis.call('ZCOUNT', " instances ", now - " ttl ", '+inf')\n"          \
	"if live < 1 then live = 1 end\n"                                                     \
	"local share = math.ceil(redis.call('ZCARD', " sched ") / live)\n"

/* A new fence for target id (the next epoch: never lower than any before, also after Redis
 * restarted empty), in f. */
#define NEW_FENCE_LUA(epoch, fencekey)                                                        \
	"do\n" STORE_EPOCH_LUA(epoch) "  f = e\n"                                              \
	"  redis.call('SET', " fencekey ", string.format('%.0f', f))\n"                          \
	"end\n"

/* KEYS: sched, instances, owned:I, epoch, cluster, hold.
 * ARGV: I, "P:lease:", "P:owned:", "P:fence:", lease ms, run ms, most to take, prune (0/1),
 * this instance's line for the cluster view (JSON).
 * Heartbeat; instances silent for a lease lose their targets (due at once); then takes up to
 * min(most, share - held) targets whose score has passed and that no live lease holds.
 * Silent for a lease is judged only when Redis itself has been there: a tick that finds no
 * heartbeat younger than a lease, its own or another's (Redis was away, restarted empty, or
 * restarted from an RDB file whose heartbeats are all old), holds every judgement for a
 * lease (the key hold), so that the instances get back before anyone is found dead; while
 * it holds, nobody gives targets away to even the shares either (done), as the schedule may
 * be half rebuilt.
 * Returns {live instances, held, targets on the schedule, targets overdue by a lease
 * (nobody runs them), share, id1, fence1, id2, fence2, ...}. */
static const char tick_lua[] =
        NOW_LUA
        "local me, lp, op, fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
        "local lease, run, most = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])\n"
        "local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')\n"
        "redis.call('ZADD', KEYS[2], now, me)\n"
        "if #top < 2 or now - tonumber(top[2]) > lease then\n"
        "  redis.call('SET', KEYS[6], '1', 'PX', lease)\n"
        "end\n"
        "local dead_ones = {}\n"
        "if redis.call('EXISTS', KEYS[6]) == 0 then\n"
        "  dead_ones = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - lease, 'LIMIT', 0, 16)\n"
        "end\n"
        "for _, dead in ipairs(dead_ones) do\n"
        "  for _, id in ipairs(redis.call('SMEMBERS', op .. dead)) do\n"
        "    if redis.call('GET', lp .. id) == dead then\n"
        "      redis.call('DEL', lp .. id)\n"
        "      redis.call('ZADD', KEYS[1], 'XX', now, id)\n"
        "    end\n"
        "  end\n"
        "  redis.call('DEL', op .. dead)\n"
        "  redis.call('ZREM', KEYS[2], dead)\n"
        "  redis.call('HDEL', KEYS[5], dead)\n"
        "end\n"
        "if ARGV[8] == '1' then\n"
        "  for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do\n"
        "    if redis.call('GET', lp .. id) ~= me then redis.call('SREM', KEYS[3], id) end\n"
        "  end\n"
        "end\n"
        "local live = redis.call('ZCOUNT', KEYS[2], now - lease, '+inf')\n"
        "if live < 1 then live = 1 end\n"
        "local size = redis.call('ZCARD', KEYS[1])\n"
        "local share = math.ceil(size / live)\n"
        "local held = redis.call('SCARD', KEYS[3])\n"
        "local room = share - held\n"
        "if room > most then room = most end\n"
        "local out = {live, 0, size, redis.call('ZCOUNT', KEYS[1], '-inf', now - lease), share}\n"
        "if room > 0 then\n"
        "  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, "
        "room + 16)) do\n"
        "    if room <= 0 then break end\n"
        "    local h = redis.call('GET', lp .. id)\n"
        "    local f = 0\n"
        "    if not h then\n"
        NEW_FENCE_LUA("KEYS[4]", "fp .. id")
        "      redis.call('SET', lp .. id, me, 'PX', lease + run)\n"
        "      redis.call('SADD', KEYS[3], id)\n"
        "      redis.call('ZADD', KEYS[1], now + lease + run, id)\n"
        "      room = room - 1\n"
        "      held = held + 1\n"
        "    elseif h == me then\n"
        "      f = tonumber(redis.call('GET', fp .. id) or '0')\n"
        "      redis.call('SET', lp .. id, me, 'PX', lease + run)\n"
        "      redis.call('SADD', KEYS[3], id)\n"
        "      redis.call('ZADD', KEYS[1], now + lease + run, id)\n"
        "    else\n" /* held by a lease that outlived its announced horizon */
        "      local ttl = redis.call('PTTL', lp .. id)\n"
        "      if ttl < 1000 then ttl = 1000 end\n"
        "      redis.call('ZADD', KEYS[1], now + ttl, id)\n"
        "    end\n"
        "    if f > 0 then\n"
        "      out[#out + 1] = id\n"
        "      out[#out + 1] = f\n"
        "    end\n"
        "  end\n"
        "end\n"
        "out[2] = held\n"
        "redis.call('HSET', KEYS[5], me, ARGV[9])\n"
        "return out\n";

/* The rule of ownership shared by done and claim: I holds T if the lease names I, or if no
 * lease is left and the fence is I's or gone (Redis restarted empty, or the lease ran out
 * with nobody taking T): then I holds it again (a new fence if the old one is gone). */
#define OURS_LUA                                                                              \
	"local h = redis.call('GET', KEYS[2])\n"                                              \
	"local f = tonumber(redis.call('GET', KEYS[3]) or '0')\n"                             \
	"local ours = h == me or (not h and (f == 0 or f == mine))\n"                          \
	"if ours and f == 0 then\n" NEW_FENCE_LUA("KEYS[6]", "KEYS[3]") "end\n"

/* KEYS: sched, lease:T, fence:T, instances, owned:I, epoch, hold.
 * ARGV: T, I, next ms, lease ms, run ms, I's fence, release (0/1).
 * Returns {1, fence} kept (the lease runs nxt + lease + run from now), {2, 0} released (to
 * even the shares, or asked), {0, 0} not ours any more. */
static const char done_lua[] =
        NOW_LUA
        "local id, me, nxt = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
        "local lease, run, mine = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
        OURS_LUA
        "if not ours then\n"
        "  redis.call('SREM', KEYS[5], id)\n"
        "  return {0, 0}\n"
        "end\n"
        "redis.call('SADD', KEYS[5], id)\n"
        SHARE_LUA("KEYS[4]", "KEYS[1]", "lease")
        "local held = redis.call('SCARD', KEYS[5])\n"
        "if redis.call('ZCARD', KEYS[1]) < held then\n" /* the schedule is half rebuilt */
        "  redis.call('SET', KEYS[7], '1', 'PX', lease)\n"
        "end\n"
        "if ARGV[7] == '1' or (held > share and redis.call('EXISTS', KEYS[7]) == 0) then\n"
        "  redis.call('DEL', KEYS[2])\n"
        "  redis.call('SREM', KEYS[5], id)\n"
        "  redis.call('ZADD', KEYS[1], now + nxt, id)\n"
        "  return {2, 0}\n"
        "end\n"
        "redis.call('SET', KEYS[2], me, 'PX', nxt + lease + run)\n"
        "redis.call('ZADD', KEYS[1], now + nxt + lease + run, id)\n"
        "return {1, f}\n";

/* KEYS: sched, lease:T, fence:T, instances, owned:I, epoch.
 * ARGV: T, I, lease ms, run ms, I's fence, deadline (Redis Unix ms, store_deadline; 0 none).
 * Returns {1, fence, 0} (ours: run it), {0, 0, retry ms}, or {2, 0, 0} when run past the
 * deadline: the claimer has given up on it (a stopped server runs it on resuming), so
 * nothing is done. */
static const char claim_lua[] =
        NOW_LUA
        "local dl = tonumber(ARGV[6])\n"
        "if dl > 0 and now > dl then return {2, 0, 0} end\n"
        "local id, me, lease, run = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])\n"
        "local mine = tonumber(ARGV[5])\n"
        "redis.call('ZADD', KEYS[4], now, me)\n"
        OURS_LUA
        "if not ours then\n"
        "  if h then\n"
        "    local ttl = redis.call('PTTL', KEYS[2])\n"
        "    return {0, 0, ttl > 1000 and ttl or 1000}\n"
        "  end\n"
        "  local due = tonumber(redis.call('ZSCORE', KEYS[1], id) or now)\n"
        "  if due > now + 50 then return {0, 0, due - now} end\n"
        SHARE_LUA("KEYS[4]", "KEYS[1]", "lease")
        "  if redis.call('SCARD', KEYS[5]) >= share then return {0, 0, 1000} end\n"
        NEW_FENCE_LUA("KEYS[6]", "KEYS[3]")
        "end\n"
        "redis.call('SET', KEYS[2], me, 'PX', lease + run)\n"
        "redis.call('SADD', KEYS[5], id)\n"
        "redis.call('ZADD', KEYS[1], now + lease + run, id)\n"
        "return {1, f, 0}\n";

/* KEYS: sched. ARGV: delay ms, T1, T2, ... Targets not on the schedule yet are due after
 * delay ms (0 for new targets; a lease and a run after Redis lost the schedule, so that
 * their holders take them back first, at their next run). Returns the schedule's size. */
static const char register_lua[] =
        NOW_LUA
        "local at, args = now + tonumber(ARGV[1]), {}\n"
        "for i = 2, #ARGV do\n"
        "  args[#args + 1] = at\n"
        "  args[#args + 1] = ARGV[i]\n"
        "end\n"
        "if #args > 0 then redis.call('ZADD', KEYS[1], 'NX', unpack(args)) end\n"
        "return redis.call('ZCARD', KEYS[1])\n";

/* KEYS: sched, lease:T, owned:I, fence:T. ARGV: T, I. The fence goes with the target (a
 * target added again later gets a new one, from the epoch counter, greater still). */
static const char forget_lua[] =
        "redis.call('ZREM', KEYS[1], ARGV[1])\n"
        "redis.call('DEL', KEYS[4])\n"
        "if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end\n"
        "redis.call('SREM', KEYS[3], ARGV[1])\n"
        "return 1\n";

/* KEYS: instances, owned:I, sched, cluster. ARGV: I, "P:lease:". Releases every lease of
 * I; its targets are due at once for the others. */
static const char close_lua[] =
        NOW_LUA
        "for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
        "  if redis.call('GET', ARGV[2] .. id) == ARGV[1] then\n"
        "    redis.call('DEL', ARGV[2] .. id)\n"
        "    redis.call('ZADD', KEYS[3], 'XX', now, id)\n"
        "  end\n"
        "end\n"
        "redis.call('DEL', KEYS[2])\n"
        "redis.call('ZREM', KEYS[1], ARGV[1])\n"
        "redis.call('HDEL', KEYS[4], ARGV[1])\n"
        "return 1\n";

const char *const share__lua[SS_N] = {
	[SS_TICK] = tick_lua,         [SS_DONE] = done_lua,       [SS_CLAIM] = claim_lua,
	[SS_REGISTER] = register_lua, [SS_FORGET] = forget_lua,   [SS_CLOSE] = close_lua,
};

const char *const share__lua_name[SS_N] = {
	[SS_TICK] = "tick",         [SS_DONE] = "done",     [SS_CLAIM] = "claim",
	[SS_REGISTER] = "register", [SS_FORGET] = "forget", [SS_CLOSE] = "close",
};
