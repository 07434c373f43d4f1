/* target_allot.c - the Allot target: MessagePack-RPC requests (ping, avail.get and reserve written
 * byte by byte, the others packed with msgpack-c), replies scanned by wire.c; setup and checks
 * through liballot. */
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "client/client.h"
#include "wire.h"

#define SLOT_BITS 12
_Static_assert((1u << SLOT_BITS) >= BENCH_PIPELINE_MAX, "slot must fit in the msgid's low bits");

static int out_write_cb(void *data, const char *buf, size_t len)
{
    return byte_buffer_append(data, buf, len);
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_key_cstr(msgpack_packer *pk, const char *key, const char *value)
{
    pack_cstr(pk, key);
    pack_cstr(pk, value);
}

/* [0, msgid, method, [ <map of `fields` follows> ]] */
static void pack_header(msgpack_packer *pk, session_t *s, uint32_t slot, const char *method,
                        uint32_t fields)
{
    s->msgid = (((s->msgid >> SLOT_BITS) + 1) << SLOT_BITS) | slot;
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint8(pk, 0);
    msgpack_pack_uint32(pk, s->msgid);
    pack_cstr(pk, method);
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, fields);
}

static void pack_stock_set(worker_t *w, msgpack_packer *pk, session_t *s, uint32_t slot)
{
    uint32_t sku, location;
    char sku_name[32], location_name[32];
    bench_position(w->run->config, s->index, &sku, &location);
    bench_sku_name(sku, sku_name, sizeof(sku_name));
    bench_location_name(location, location_name, sizeof(location_name));
    pack_header(pk, s, slot, "stock.set", 3);
    pack_key_cstr(pk, "sku", sku_name);
    pack_key_cstr(pk, "location", location_name);
    pack_cstr(pk, "on_hand");
    msgpack_pack_int64(pk, w->run->config->on_hand);
}

/* ---- the hot requests, written byte by byte ------------------------------------------------
 * ping, avail.get and reserve are written straight into the output buffer from pre-encoded pieces:
 * the same bytes msgpack-c packs (the msgid in its shortest form, fixstr SKU names), without a call
 * per item. */

/* Append the envelope's head, [0, msgid, then the method's pre-encoded name. */
static inline uint8_t *put_head(uint8_t *p, session_t *s, uint32_t slot, const uint8_t *method,
                                size_t method_bytes)
{
    s->msgid = (((s->msgid >> SLOT_BITS) + 1) << SLOT_BITS) | slot;
    uint32_t id = s->msgid;
    *p++ = 0x94;
    *p++ = 0x00;
    if (id <= 0x7f)
        *p++ = (uint8_t)id;
    else if (id <= 0xff) {
        *p++ = 0xcc;
        *p++ = (uint8_t)id;
    } else if (id <= 0xffff) {
        *p++ = 0xcd;
        *p++ = (uint8_t)(id >> 8);
        *p++ = (uint8_t)id;
    } else {
        *p++ = 0xce;
        *p++ = (uint8_t)(id >> 24);
        *p++ = (uint8_t)(id >> 16);
        *p++ = (uint8_t)(id >> 8);
        *p++ = (uint8_t)id;
    }
    memcpy(p, method, method_bytes);
    return p + method_bytes;
}

/* bench_sku_name's name as a fixstr: "S" and 8 digits. */
#define SKU_NAME_BYTES 10
static uint8_t *put_sku(uint8_t *p, uint32_t index)
{
    static const char digit_pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930"
        "31323334353637383940414243444546474849505152535455565758596061"
        "62636465666768697071727374757677787980818283848586878889909192"
        "93949596979899";
    uint32_t high = index / 10000 % 10000, low = index % 10000; /* two independent halves */
    p[0] = 0xa9;
    p[1] = 'S';
    memcpy(p + 2, digit_pairs + 2 * (high / 100), 2);
    memcpy(p + 4, digit_pairs + 2 * (high % 100), 2);
    memcpy(p + 6, digit_pairs + 2 * (low / 100), 2);
    memcpy(p + 8, digit_pairs + 2 * (low % 100), 2);
    return p + SKU_NAME_BYTES;
}

/* The longest head: 0x94 0x00, a 5-byte msgid, then the method. */
#define HEAD_BYTES_MAX 7

static int pack_ping_fast(conn_t *c, session_t *s, uint32_t slot)
{
    static const uint8_t method[] = {0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80}; /* "ping", [{}] */
    if (byte_buffer_reserve(&c->out, HEAD_BYTES_MAX + sizeof(method)) != 0)
        return -1;
    uint8_t *start = (uint8_t *)c->out.data + c->out.len;
    uint8_t *p = put_head(start, s, slot, method, sizeof(method));
    c->out.len += (size_t)(p - start);
    return 0;
}

static int pack_avail_fast(worker_t *w, conn_t *c, session_t *s, uint32_t slot)
{
    static const uint8_t method[] = {0xa9, 'a', 'v', 'a', 'i', 'l', '.', 'g', 'e', 't', 0x91};
    static const uint8_t skus[] = {0xa4, 's', 'k', 'u', 's'};
    static const uint8_t detail[] = {0xa6, 'd', 'e', 't', 'a', 'i', 'l', 0xc3};
    static const uint8_t promise[] = {0xa7, 'p', 'r', 'o', 'm', 'i', 's', 'e', 0xc3};
    const bench_config_t *config = w->run->config;
    uint32_t n = config->skus_per_request;
    uint32_t indices[BENCH_SKUS_PER_REQUEST_MAX];
    size_t most = HEAD_BYTES_MAX + sizeof(method) + 1 + sizeof(skus) + 3 +
                  (size_t)n * SKU_NAME_BYTES + sizeof(detail) + sizeof(promise);
    if (byte_buffer_reserve(&c->out, most) != 0)
        return -1;
    bench_random_skus(w, indices, n);
    uint8_t *start = (uint8_t *)c->out.data + c->out.len;
    uint8_t *p = put_head(start, s, slot, method, sizeof(method));
    *p++ = (uint8_t)(0x81 + (config->detail ? 1 : 0) + (config->promise ? 1 : 0));
    memcpy(p, skus, sizeof(skus));
    p += sizeof(skus);
    if (n <= 15)
        *p++ = (uint8_t)(0x90 | n);
    else {
        *p++ = 0xdc;
        *p++ = (uint8_t)(n >> 8);
        *p++ = (uint8_t)n;
    }
    for (uint32_t i = 0; i < n; i++)
        p = put_sku(p, indices[i]);
    if (config->detail) {
        memcpy(p, detail, sizeof(detail));
        p += sizeof(detail);
    }
    if (config->promise) {
        memcpy(p, promise, sizeof(promise));
        p += sizeof(promise);
    }
    c->out.len += (size_t)(p - start);
    return 0;
}

/* A string's header and bytes as msgpack-c packs them (fixstr, str8, str16; every string here
 * is shorter than 64 KiB). */
static uint8_t *put_str(uint8_t *p, const char *str, size_t n)
{
    if (n < 32)
        *p++ = (uint8_t)(0xa0 | n);
    else if (n < 256) {
        *p++ = 0xd9;
        *p++ = (uint8_t)n;
    } else {
        *p++ = 0xda;
        *p++ = (uint8_t)(n >> 8);
        *p++ = (uint8_t)n;
    }
    memcpy(p, str, n);
    return p + n;
}

/* reserve {"id": cart, "lines": [{"sku": name, "qty": 1}, ...]}: random distinct SKUs, or the
 * flash sale's hot SKU on every line. */
static int pack_reserve_fast(worker_t *w, conn_t *c, session_t *s, uint32_t slot)
{
    static const uint8_t method[] = {0xa7, 'r',  'e',  's',  'e', 'r', 'v',
                                     'e',  0x91, 0x82, 0xa2, 'i', 'd'};
    static const uint8_t lines_key[] = {0xa5, 'l', 'i', 'n', 'e', 's'};
    static const uint8_t sku_key[] = {0x82, 0xa3, 's', 'k', 'u'};
    static const uint8_t qty_one[] = {0xa3, 'q', 't', 'y', 0x01};
    char id[BENCH_CART_NAME_BYTES];
    bench_cart_name(w->run, w->index, s->cart, id, sizeof(id));
    size_t id_bytes = strlen(id);
    bool flash = s->kind == SCENARIO_FLASHSALE;
    const char *hot = w->run->hot_sku;
    size_t hot_bytes = flash ? strlen(hot) : 0;
    size_t line_most = sizeof(sku_key) + 3 + (flash ? hot_bytes : SKU_NAME_BYTES) + sizeof(qty_one);
    size_t most = HEAD_BYTES_MAX + sizeof(method) + 3 + id_bytes + sizeof(lines_key) + 3 +
                  (size_t)s->lines * line_most;
    if (byte_buffer_reserve(&c->out, most) != 0)
        return -1;
    uint32_t skus[BENCH_LINES_MAX];
    if (!flash)
        bench_random_skus(w, skus, s->lines);
    uint8_t *start = (uint8_t *)c->out.data + c->out.len;
    uint8_t *p = put_head(start, s, slot, method, sizeof(method));
    p = put_str(p, id, id_bytes);
    memcpy(p, lines_key, sizeof(lines_key));
    p += sizeof(lines_key);
    if (s->lines <= 15)
        *p++ = (uint8_t)(0x90 | s->lines);
    else {
        *p++ = 0xdc;
        *p++ = 0;
        *p++ = s->lines; /* at most BENCH_LINES_MAX */
    }
    for (uint32_t i = 0; i < s->lines; i++) {
        memcpy(p, sku_key, sizeof(sku_key));
        p += sizeof(sku_key);
        p = flash ? put_str(p, hot, hot_bytes) : put_sku(p, skus[i]);
        memcpy(p, qty_one, sizeof(qty_one));
        p += sizeof(qty_one);
    }
    c->out.len += (size_t)(p - start);
    return 0;
}

/* The other requests, through msgpack-c. Out of line: its id buffers and packer would make
 * allot_pack's frame (and every ping's) larger. */
__attribute__((noinline)) static int pack_msgpack(worker_t *w, conn_t *c, uint32_t slot,
                                                  session_t *s)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &c->out, out_write_cb);
    size_t before = c->out.len;
    char id[BENCH_CART_NAME_BYTES];
    switch ((bench_op_t)s->op) {
    case OP_STOCK_SET:
        pack_stock_set(w, &pk, s, slot);
        break;
    case OP_ORDER_CREATE:
        bench_cart_name(w->run, w->index, s->cart, id, sizeof(id));
        pack_header(&pk, s, slot, "order.create", 2);
        pack_key_cstr(&pk, "id", id);
        pack_key_cstr(&pk, "reservation", id);
        break;
    case OP_ORDER_PAY:
        bench_cart_name(w->run, w->index, s->cart, id, sizeof(id));
        pack_header(&pk, s, slot, "order.pay", 2);
        pack_key_cstr(&pk, "id", id);
        pack_key_cstr(&pk, "status", "authorized");
        break;
    case OP_ORDER_RELEASE:
    case OP_RELEASE:
        bench_cart_name(w->run, w->index, s->cart, id, sizeof(id));
        pack_header(&pk, s, slot, s->op == OP_RELEASE ? "reservation.release" : "order.release", 1);
        pack_key_cstr(&pk, "id", id);
        break;
    default:
        return -1;
    }
    /* msgpack-c ignores write errors: a short buffer shows as no growth. */
    return c->out.len > before ? 0 : -1;
}

static int allot_pack(worker_t *w, conn_t *c, uint32_t slot, session_t *s)
{
    if (s->op == OP_PING)
        return pack_ping_fast(c, s, slot);
    if (s->op == OP_AVAIL)
        return pack_avail_fast(w, c, s, slot);
    if (s->op == OP_RESERVE)
        return pack_reserve_fast(w, c, s, slot);
    return pack_msgpack(w, c, slot, s);
}

static int allot_parse(worker_t *w, conn_t *c)
{
    uint32_t pipeline = w->run->config->pipeline;
    while (c->in.pos < c->in.len) {
        wire_reply_t reply;
        const char *why = "";
        long n = wire_reply_scan((const uint8_t *)c->in.data + c->in.pos, c->in.len - c->in.pos,
                                 &reply, &why);
        if (n == 0)
            return 0;
        if (n < 0) {
            snprintf(w->error, sizeof(w->error), "bad reply from the server: %s", why);
            return -1;
        }
        c->in.pos += (size_t)n;
        uint32_t slot = reply.msgid & ((1u << SLOT_BITS) - 1);
        if (slot >= pipeline || !c->slots[slot].busy || c->slots[slot].msgid != reply.msgid) {
            snprintf(w->error, sizeof(w->error), "reply to unknown msgid %u", reply.msgid);
            return -1;
        }
        engine_reply(w, c, slot, reply.is_error, reply.code);
    }
    return 0;
}

const bench_target_t bench_target_allot = {
    .name = "allot",
    .pack = allot_pack,
    .parse = allot_parse,
};

/* ---- setup and checks (blocking, liballot) ---------------------------------------------- */

static allot_client_t *client_open(const bench_config_t *config, char *error, size_t bytes)
{
    allot_client_t *c = allot_client_create();
    if (c == NULL) {
        snprintf(error, bytes, "out of memory");
        return NULL;
    }
    if (allot_client_connect(c, config->host, config->port, 30000) != 0) {
        snprintf(error, bytes, "%s", allot_client_last_error(c));
        allot_client_close(c);
        return NULL;
    }
    return c;
}

/* Call and require success; the reply stays in *reply. */
static int call_ok(allot_client_t *c, const char *method, const char *json, allot_reply_t *reply,
                   char *error, size_t bytes)
{
    if (allot_client_call_json(c, method, json, reply) != 0) {
        snprintf(error, bytes, "%s: %s", method, allot_client_last_error(c));
        return -1;
    }
    if (reply->is_error) {
        snprintf(error, bytes, "%s: %s %s", method, reply->code, reply->message);
        return -1;
    }
    return 0;
}

int allot_setup_locations(const bench_config_t *config, char *error, size_t bytes)
{
    allot_client_t *c = client_open(config, error, bytes);
    if (c == NULL)
        return -1;
    allot_reply_t reply = {0};
    int rc = 0;
    uint32_t pending = 0;
    for (uint32_t i = 0; i < config->locations && rc == 0; i++) {
        char name[32], json[256];
        bench_location_name(i, name, sizeof(name));
        /* spread over Europe, priorities 1..10 */
        snprintf(json, sizeof(json),
                 "{\"id\":\"%s\",\"type\":\"%s\",\"lat\":%.3f,\"lon\":%.3f,\"priority\":%u}", name,
                 i % 4 == 3 ? "store" : "warehouse", 40.0 + (i * 7919 % 2000) / 100.0,
                 -5.0 + (i * 104729 % 3000) / 100.0, 1 + i % 10);
        uint32_t msgid;
        if (allot_client_send_json(c, "location.put", json, &msgid) != 0)
            rc = -1;
        else
            pending++;
        while (rc == 0 && (pending >= 256 || (i + 1 == config->locations && pending > 0))) {
            if (allot_client_recv(c, &reply) != 0)
                rc = -1;
            else if (reply.is_error) {
                snprintf(error, bytes, "location.put: %s %s", reply.code, reply.message);
                rc = -2;
            }
            pending--;
        }
    }
    if (rc == -1)
        snprintf(error, bytes, "location.put: %s", allot_client_last_error(c));
    allot_reply_free(&reply);
    allot_client_close(c);
    return rc == 0 ? 0 : -1;
}

int allot_check_catalogue(const bench_config_t *config, char *error, size_t bytes)
{
    allot_client_t *c = client_open(config, error, bytes);
    if (c == NULL)
        return -1;
    allot_reply_t reply = {0};
    char name[32], json[128];
    bench_sku_name(config->skus - 1, name, sizeof(name));
    snprintf(json, sizeof(json), "{\"sku\":\"%s\"}", name);
    int rc = call_ok(c, "stock.get", json, &reply, error, bytes);
    if (rc != 0 && strcmp(reply.code, "NOT_FOUND") == 0)
        snprintf(error, bytes,
                 "SKU %s is not in the catalogue: load it first (allot-bench load, or --load) "
                 "with the same --skus/--locations",
                 name);
    if (rc == 0 && config->promise) {
        snprintf(json, sizeof(json), "{\"skus\":[\"%s\"],\"promise\":true}", name);
        if (call_ok(c, "avail.get", json, &reply, error, bytes) != 0)
            rc = reply.is_error ? BENCH_EXIT_UNSUPPORTED : -1;
        if (rc == BENCH_EXIT_UNSUPPORTED) /* error: "avail.get: CODE message" */
            snprintf(error + strlen(error), bytes - strlen(error),
                     " (the server does not accept promise: true on avail.get)");
    }
    allot_reply_free(&reply);
    allot_client_close(c);
    return rc;
}

int allot_setup_flash(bench_run_t *run, char *error, size_t bytes)
{
    const bench_config_t *config = run->config;
    snprintf(run->flash_location, sizeof(run->flash_location), "FLASH-LOC");
    snprintf(run->hot_sku, sizeof(run->hot_sku), "FLASH-%" PRIx64, config->run_nonce);
    allot_client_t *c = client_open(config, error, bytes);
    if (c == NULL)
        return -1;
    allot_reply_t reply = {0};
    char json[256];
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"type\":\"warehouse\",\"lat\":50.1,\"lon\":8.7,\"priority\":1}",
             run->flash_location);
    int rc = call_ok(c, "location.put", json, &reply, error, bytes);
    snprintf(json, sizeof(json), "{\"sku\":\"%s\",\"location\":\"%s\",\"on_hand\":%" PRId64 "}",
             run->hot_sku, run->flash_location, config->flash_units);
    if (rc == 0)
        rc = call_ok(c, "stock.set", json, &reply, error, bytes);
    allot_reply_free(&reply);
    allot_client_close(c);
    return rc;
}

static int64_t map_int(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = allot_object_map_get(map, key);
    if (v == NULL)
        return INT64_MIN;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)v->via.u64;
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return v->via.i64;
    return INT64_MIN;
}

int allot_check_flash(bench_run_t *run, char *error, size_t bytes)
{
    allot_client_t *c = client_open(run->config, error, bytes);
    if (c == NULL)
        return -1;
    allot_reply_t reply = {0};
    char json[128];
    snprintf(json, sizeof(json), "{\"sku\":\"%s\"}", run->hot_sku);
    int rc = call_ok(c, "stock.get", json, &reply, error, bytes);
    if (rc == 0) {
        int64_t on_hand = map_int(&reply.result, "on_hand");
        int64_t reserved = map_int(&reply.result, "reserved");
        int64_t allocated = map_int(&reply.result, "allocated");
        int64_t available = map_int(&reply.result, "available");
        int64_t units = run->config->flash_units;
        bool ok = (int64_t)run->flash_ok == units && reserved == units && available == 0 &&
                  on_hand == units && allocated == 0 && reserved + allocated <= on_hand;
        snprintf(error, bytes,
                 "%s: %" PRIu64 " reserve calls succeeded for %" PRId64 " units; stock.get: "
                 "on_hand %" PRId64 ", reserved %" PRId64 ", allocated %" PRId64
                 ", available %" PRId64,
                 ok ? "exactly N held, nothing oversold" : "MISMATCH", run->flash_ok, units,
                 on_hand, reserved, allocated, available);
        rc = ok ? 0 : -1;
    }
    allot_reply_free(&reply);
    allot_client_close(c);
    return rc;
}
