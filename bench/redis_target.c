/* redis_target.c - the Redis baseline: the same sessions as Allot, the way shops build them on
 * Redis (hashes for stock, Lua via EVALSHA for check-and-decrement), RESP packed by hand onto the
 * bench's own non-blocking sockets and parsed with hiredis's reader so pipelining is identical.
 *
 * Data model (one logical database):
 *   avail            hash  sku -> units available over all locations (what product pages read)
 *   avail:<sku>      string the same total, with --redis-get only (a plain GET per product page;
 *                    reserve's script does not keep it up to date: a read-cost baseline)
 *   stock:<sku>      hash  location -> units available there
 *   res:<id>         hash  "<sku>@<location>" -> units held by reservation <id> (EXPIRE ttl)
 *   order:<id>       hash  the hold fields of the reservation it consumed, plus state/payment
 * Browse: HGET avail sku (1 SKU; GET avail:<sku> with --redis-get), HMGET avail s1..sN (N SKUs),
 * HGETALL stock:<sku> per SKU with --detail. Reserve / release / order.create are Lua scripts
 * (atomic check-then-decrement).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#ifdef BENCH_HAVE_HIREDIS
#include <hiredis/hiredis.h>

/* KEYS: avail, res:<id>, stock:<sku>...; ARGV: ttl_s, then sku, qty per line. Takes each line
 * from the hash's locations in order (splitting when needed); all lines or nothing. */
static const char reserve_lua[] =
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
    "local n = #KEYS - 2\n"
    "local plan = {}\n"
    "for i = 1, n do\n"
    "  local need = tonumber(ARGV[2 * i + 1])\n"
    "  local st = redis.call('HGETALL', KEYS[2 + i])\n"
    "  local takes = {}\n"
    "  for j = 1, #st, 2 do\n"
    "    if need == 0 then break end\n"
    "    local have = tonumber(st[j + 1])\n"
    "    if have > 0 then\n"
    "      local t = math.min(have, need)\n"
    "      takes[#takes + 1] = st[j]; takes[#takes + 1] = t\n"
    "      need = need - t\n"
    "    end\n"
    "  end\n"
    "  if need > 0 then return redis.error_reply('INSUFFICIENT_STOCK not enough units') end\n"
    "  plan[i] = takes\n"
    "end\n"
    "for i = 1, n do\n"
    "  local takes = plan[i]\n"
    "  local total = 0\n"
    "  for j = 1, #takes, 2 do\n"
    "    redis.call('HINCRBY', KEYS[2 + i], takes[j], -takes[j + 1])\n"
    "    redis.call('HSET', KEYS[2], ARGV[2 * i] .. '@' .. takes[j], takes[j + 1])\n"
    "    total = total + takes[j + 1]\n"
    "  end\n"
    "  redis.call('HINCRBY', KEYS[1], ARGV[2 * i], -total)\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[1])\n"
    "return 1\n";

/* KEYS: avail, res:<id>. Gives every held unit back. */
static const char release_lua[] = "local h = redis.call('HGETALL', KEYS[2])\n"
                                  "for j = 1, #h, 2 do\n"
                                  "  local sku, loc = string.match(h[j], '^(.*)@(.*)$')\n"
                                  "  if sku then\n"
                                  "    redis.call('HINCRBY', 'stock:' .. sku, loc, h[j + 1])\n"
                                  "    redis.call('HINCRBY', KEYS[1], sku, h[j + 1])\n"
                                  "  end\n"
                                  "end\n"
                                  "redis.call('DEL', KEYS[2])\n"
                                  "return 1\n";

/* KEYS: res:<id>, order:<id>. The hold becomes the order's allocation. */
static const char order_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "  return redis.error_reply('NOT_FOUND no such reservation') end\n"
    "redis.call('RENAME', KEYS[1], KEYS[2])\n"
    "redis.call('PERSIST', KEYS[2])\n"
    "redis.call('HSET', KEYS[2], 'state', 'created', 'payment', 'none')\n"
    "return 1\n";

/* KEYS: order:<id>. Release needs an authorized payment. */
static const char order_release_lua[] =
    "if redis.call('HGET', KEYS[1], 'payment') ~= 'authorized' then\n"
    "  return redis.error_reply('INVALID_TRANSITION payment not authorized') end\n"
    "redis.call('HSET', KEYS[1], 'state', 'released')\n"
    "return 1\n";

static char reserve_sha[48], release_sha[48], order_sha[48], order_release_sha[48];

bool bench_redis_available(void)
{
    return true;
}

/* ---- RESP packing ------------------------------------------------------------------------ */

static int resp_count(byte_buffer_t *b, char kind, size_t n)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof(tmp), "%c%zu\r\n", kind, n);
    return byte_buffer_append(b, tmp, (size_t)len);
}

static int resp_bulk(byte_buffer_t *b, const char *s, size_t n)
{
    if (resp_count(b, '$', n) != 0 || byte_buffer_append(b, s, n) != 0)
        return -1;
    return byte_buffer_append(b, "\r\n", 2);
}

static int resp_str(byte_buffer_t *b, const char *s)
{
    return resp_bulk(b, s, strlen(s));
}

static int resp_key(byte_buffer_t *b, const char *prefix, const char *id)
{
    char key[160];
    int n = snprintf(key, sizeof(key), "%s%s", prefix, id);
    return resp_bulk(b, key, (size_t)n);
}

static int resp_int(byte_buffer_t *b, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    return resp_bulk(b, tmp, (size_t)n);
}

static int pack_avail(worker_t *w, conn_t *c, session_t *s)
{
    const bench_config_t *config = w->run->config;
    uint32_t skus[BENCH_SKUS_PER_REQUEST_MAX];
    uint32_t n = config->skus_per_request;
    bench_random_skus(w, skus, n);
    char name[32];
    int rc = 0;
    if (config->detail) {
        for (uint32_t i = 0; i < n && rc == 0; i++) {
            bench_sku_name(skus[i], name, sizeof(name));
            rc = resp_count(&c->out, '*', 2) | resp_str(&c->out, "HGETALL") |
                 resp_key(&c->out, "stock:", name);
        }
        s->replies_left = (uint16_t)n;
        return rc;
    }
    if (n == 1 && config->redis_get) {
        bench_sku_name(skus[0], name, sizeof(name));
        s->replies_left = 1;
        return resp_count(&c->out, '*', 2) | resp_str(&c->out, "GET") |
               resp_key(&c->out, "avail:", name);
    }
    rc = resp_count(&c->out, '*', 2 + n) | resp_str(&c->out, n == 1 ? "HGET" : "HMGET") |
         resp_str(&c->out, "avail");
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        bench_sku_name(skus[i], name, sizeof(name));
        rc = resp_str(&c->out, name);
    }
    s->replies_left = 1;
    return rc;
}

static int pack_reserve(worker_t *w, conn_t *c, session_t *s)
{
    char id[64], name[64];
    uint32_t skus[BENCH_LINES_MAX];
    bench_cart_name(w->run, w->index, s->cart, id, sizeof(id));
    if (s->kind != SCENARIO_FLASHSALE)
        bench_random_skus(w, skus, s->lines);
    int rc = resp_count(&c->out, '*', 3u + 2u + s->lines + 1u + 2u * s->lines) |
             resp_str(&c->out, "EVALSHA") | resp_str(&c->out, reserve_sha) |
             resp_int(&c->out, 2 + s->lines) | resp_str(&c->out, "avail") |
             resp_key(&c->out, "res:", id);
    for (uint32_t i = 0; i < s->lines; i++) {
        if (s->kind == SCENARIO_FLASHSALE)
            snprintf(name, sizeof(name), "%s", w->run->hot_sku);
        else
            bench_sku_name(skus[i], name, sizeof(name));
        rc |= resp_key(&c->out, "stock:", name);
    }
    rc |= resp_int(&c->out, 900);
    for (uint32_t i = 0; i < s->lines; i++) {
        if (s->kind == SCENARIO_FLASHSALE)
            snprintf(name, sizeof(name), "%s", w->run->hot_sku);
        else
            bench_sku_name(skus[i], name, sizeof(name));
        rc |= resp_str(&c->out, name) | resp_int(&c->out, 1);
    }
    s->replies_left = 1;
    return rc;
}

/* One catalogue SKU: HSET stock:<sku> loc qty ...; HSET avail sku total (and, with --redis-get,
 * SET avail:<sku> total). */
static int pack_load(worker_t *w, conn_t *c, session_t *s)
{
    const bench_config_t *config = w->run->config;
    uint32_t k = config->sku_locations, sku = (uint32_t)s->index, location;
    char name[32], location_name[32];
    bench_sku_name(sku, name, sizeof(name));
    int rc = resp_count(&c->out, '*', 2 + 2 * k) | resp_str(&c->out, "HSET") |
             resp_key(&c->out, "stock:", name);
    for (uint32_t j = 0; j < k; j++) {
        bench_position(config, (uint64_t)sku * k + j, &sku, &location);
        bench_location_name(location, location_name, sizeof(location_name));
        rc |= resp_str(&c->out, location_name) | resp_int(&c->out, config->on_hand);
    }
    rc |= resp_count(&c->out, '*', 4) | resp_str(&c->out, "HSET") | resp_str(&c->out, "avail") |
          resp_str(&c->out, name) | resp_int(&c->out, config->on_hand * k);
    s->replies_left = 2;
    if (config->redis_get) {
        rc |= resp_count(&c->out, '*', 3) | resp_str(&c->out, "SET") |
              resp_key(&c->out, "avail:", name) | resp_int(&c->out, config->on_hand * k);
        s->replies_left = 3;
    }
    return rc;
}

static int redis_pack(worker_t *w, conn_t *c, uint32_t slot, session_t *s)
{
    char id[64];
    int rc;
    s->failed = false;
    s->code[0] = '\0';
    switch ((bench_op_t)s->op) {
    case OP_AVAIL:
        rc = pack_avail(w, c, s);
        break;
    case OP_RESERVE:
        rc = pack_reserve(w, c, s);
        break;
    case OP_STOCK_SET:
        rc = pack_load(w, c, s);
        break;
    case OP_PING:
        rc = resp_count(&c->out, '*', 1) | resp_str(&c->out, "PING");
        s->replies_left = 1;
        break;
    case OP_RELEASE:
        bench_cart_name(w->run, w->index, s->cart, id, sizeof(id));
        rc = resp_count(&c->out, '*', 5) | resp_str(&c->out, "EVALSHA") |
             resp_str(&c->out, release_sha) | resp_str(&c->out, "2") | resp_str(&c->out, "avail") |
             resp_key(&c->out, "res:", id);
        s->replies_left = 1;
        break;
    case OP_ORDER_CREATE:
        bench_cart_name(w->run, w->index, s->cart, id, sizeof(id));
        rc = resp_count(&c->out, '*', 5) | resp_str(&c->out, "EVALSHA") |
             resp_str(&c->out, order_sha) | resp_str(&c->out, "2") | resp_key(&c->out, "res:", id) |
             resp_key(&c->out, "order:", id);
        s->replies_left = 1;
        break;
    case OP_ORDER_PAY:
        bench_cart_name(w->run, w->index, s->cart, id, sizeof(id));
        rc = resp_count(&c->out, '*', 4) | resp_str(&c->out, "HSET") |
             resp_key(&c->out, "order:", id) | resp_str(&c->out, "payment") |
             resp_str(&c->out, "authorized");
        s->replies_left = 1;
        break;
    case OP_ORDER_RELEASE:
        bench_cart_name(w->run, w->index, s->cart, id, sizeof(id));
        rc = resp_count(&c->out, '*', 4) | resp_str(&c->out, "EVALSHA") |
             resp_str(&c->out, order_release_sha) | resp_str(&c->out, "1") |
             resp_key(&c->out, "order:", id);
        s->replies_left = 1;
        break;
    default:
        return -1;
    }
    if (rc != 0)
        return -1;
    uint32_t pipeline = w->run->config->pipeline;
    c->fifo[(c->fifo_head + c->fifo_count) % pipeline] = slot;
    c->fifo_count++;
    return 0;
}

static int redis_parse(worker_t *w, conn_t *c)
{
    redisReader *reader = c->reader;
    if (redisReaderFeed(reader, c->in.data + c->in.pos, c->in.len - c->in.pos) != REDIS_OK) {
        snprintf(w->error, sizeof(w->error), "redis reader: %s", reader->errstr);
        return -1;
    }
    c->in.pos = c->in.len;
    uint32_t pipeline = w->run->config->pipeline;
    for (;;) {
        void *object = NULL;
        if (redisReaderGetReply(reader, &object) != REDIS_OK) {
            snprintf(w->error, sizeof(w->error), "redis protocol error: %s", reader->errstr);
            return -1;
        }
        if (object == NULL)
            return 0;
        redisReply *reply = object;
        if (c->fifo_count == 0) {
            freeReplyObject(reply);
            snprintf(w->error, sizeof(w->error), "redis sent a reply nobody asked for");
            return -1;
        }
        uint32_t slot = c->fifo[c->fifo_head];
        session_t *s = &c->slots[slot];
        if (reply->type == REDIS_REPLY_ERROR && !s->failed) {
            s->failed = true;
            size_t n = strcspn(reply->str, " ");
            if (n >= sizeof(s->code))
                n = sizeof(s->code) - 1;
            memcpy(s->code, reply->str, n);
            s->code[n] = '\0';
        }
        freeReplyObject(reply);
        if (--s->replies_left > 0)
            continue;
        c->fifo_head = (c->fifo_head + 1) % pipeline;
        c->fifo_count--;
        engine_reply(w, c, slot, s->failed, s->code);
    }
}

static int redis_conn_init(conn_t *c)
{
    c->reader = redisReaderCreate();
    return c->reader == NULL ? -1 : 0;
}

static void redis_conn_free(conn_t *c)
{
    if (c->reader != NULL)
        redisReaderFree(c->reader);
    c->reader = NULL;
}

const bench_target_t bench_target_redis = {
    .name = "redis",
    .pack = redis_pack,
    .parse = redis_parse,
    .conn_init = redis_conn_init,
    .conn_free = redis_conn_free,
};

/* ---- setup and checks (hiredis, blocking) ------------------------------------------------ */

static redisContext *redis_open(const bench_config_t *config, char *error, size_t bytes)
{
    struct timeval tv = {10, 0};
    redisContext *r = redisConnectWithTimeout(config->host, config->port, tv);
    if (r == NULL || r->err) {
        snprintf(error, bytes, "connect redis://%s:%u: %s", config->host, config->port,
                 r ? r->errstr : "out of memory");
        if (r)
            redisFree(r);
        return NULL;
    }
    return r;
}

static int script_load(redisContext *r, const char *lua, char *sha, char *error, size_t bytes)
{
    redisReply *reply = redisCommand(r, "SCRIPT LOAD %s", lua);
    int rc = -1;
    if (reply == NULL)
        snprintf(error, bytes, "SCRIPT LOAD: %s", r->errstr);
    else if (reply->type != REDIS_REPLY_STRING)
        snprintf(error, bytes, "SCRIPT LOAD: %s", reply->str ? reply->str : "unexpected reply");
    else {
        snprintf(sha, 48, "%s", reply->str);
        rc = 0;
    }
    if (reply)
        freeReplyObject(reply);
    return rc;
}

static int command_ok(redisContext *r, char *error, size_t bytes, const char *what,
                      redisReply *reply)
{
    int rc = reply != NULL && reply->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (rc != 0)
        snprintf(error, bytes, "%s: %s", what, reply ? reply->str : r->errstr);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int redis_setup(bench_run_t *run, char *error, size_t bytes)
{
    const bench_config_t *config = run->config;
    redisContext *r = redis_open(config, error, bytes);
    if (r == NULL)
        return -1;
    int rc = script_load(r, reserve_lua, reserve_sha, error, bytes);
    if (rc == 0)
        rc = script_load(r, release_lua, release_sha, error, bytes);
    if (rc == 0)
        rc = script_load(r, order_lua, order_sha, error, bytes);
    if (rc == 0)
        rc = script_load(r, order_release_lua, order_release_sha, error, bytes);
    if (rc == 0 && config->scenario == SCENARIO_FLASHSALE) {
        snprintf(run->flash_location, sizeof(run->flash_location), "FLASH-LOC");
        snprintf(run->hot_sku, sizeof(run->hot_sku), "FLASH-%" PRIx64, config->run_nonce);
        char key[96], units[32];
        snprintf(key, sizeof(key), "stock:%s", run->hot_sku);
        snprintf(units, sizeof(units), "%" PRId64, config->flash_units);
        rc = command_ok(r, error, bytes, "HSET",
                        redisCommand(r, "HSET %s %s %s", key, run->flash_location, units));
        if (rc == 0)
            rc = command_ok(r, error, bytes, "HSET",
                            redisCommand(r, "HSET avail %s %s", run->hot_sku, units));
    } else if (rc == 0 && config->scenario != SCENARIO_LOAD) {
        char name[32];
        bench_sku_name(config->skus - 1, name, sizeof(name));
        redisReply *reply = redisCommand(r, "HEXISTS avail %s", name);
        if (reply == NULL || reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
            snprintf(
                error, bytes,
                "SKU %s is not in Redis: load it first (allot-bench load --target redis://...)",
                name);
            rc = -1;
        }
        if (reply)
            freeReplyObject(reply);
    }
    redisFree(r);
    return rc;
}

static int64_t reply_int(redisReply *reply)
{
    if (reply == NULL)
        return INT64_MIN;
    int64_t v = INT64_MIN;
    if (reply->type == REDIS_REPLY_INTEGER)
        v = reply->integer;
    else if (reply->type == REDIS_REPLY_STRING)
        v = strtoll(reply->str, NULL, 10);
    freeReplyObject(reply);
    return v;
}

int redis_check_flash(bench_run_t *run, char *error, size_t bytes)
{
    redisContext *r = redis_open(run->config, error, bytes);
    if (r == NULL)
        return -1;
    char key[96];
    snprintf(key, sizeof(key), "stock:%s", run->hot_sku);
    int64_t total = reply_int(redisCommand(r, "HGET avail %s", run->hot_sku));
    int64_t at_location = reply_int(redisCommand(r, "HGET %s %s", key, run->flash_location));
    redisFree(r);
    int64_t units = run->config->flash_units;
    bool ok = (int64_t)run->flash_ok == units && total == 0 && at_location == 0;
    snprintf(error, bytes,
             "%s: %" PRIu64 " reserve calls succeeded for %" PRId64 " units; avail %" PRId64
             ", stock at %s %" PRId64,
             ok ? "exactly N held, nothing oversold" : "MISMATCH", run->flash_ok, units, total,
             run->flash_location, at_location);
    return ok ? 0 : -1;
}

#else /* no hiredis */

bool bench_redis_available(void)
{
    return false;
}

static int redis_missing_pack(worker_t *w, conn_t *c, uint32_t slot, session_t *s)
{
    (void)w, (void)c, (void)slot, (void)s;
    return -1;
}

static int redis_missing_parse(worker_t *w, conn_t *c)
{
    (void)c;
    snprintf(w->error, sizeof(w->error), "allot-bench was built without hiredis");
    return -1;
}

const bench_target_t bench_target_redis = {
    .name = "redis",
    .pack = redis_missing_pack,
    .parse = redis_missing_parse,
};

int redis_setup(bench_run_t *run, char *error, size_t bytes)
{
    (void)run;
    snprintf(error, bytes, "allot-bench was built without hiredis: no redis:// target");
    return -1;
}

int redis_check_flash(bench_run_t *run, char *error, size_t bytes)
{
    return redis_setup(run, error, bytes);
}

#endif
