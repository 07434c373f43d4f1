/* test_net_events_pack.c - an event's stored bytes, written in one piece, against msgpack-c's
 * packer writing the same event piece by piece (the previous way, kept here as the reference). */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "core/order.h"
#include "core/stream.h"
#include "net/events_private.h"

/* ---- the reference: the fields as msgpack-c's packer writes them --------------------------- */

static void ref_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static void ref_key_str(msgpack_packer *pk, const char *key, allot_str_t s)
{
    ref_str(pk, key, strlen(key));
    ref_str(pk, s.ptr, s.len);
}

static void ref_key_cstr(msgpack_packer *pk, const char *key, const char *s)
{
    ref_str(pk, key, strlen(key));
    if (s != NULL)
        ref_str(pk, s, strlen(s));
    else
        msgpack_pack_nil(pk);
}

static void ref_key_opt_str(msgpack_packer *pk, const char *key, allot_str_t s)
{
    ref_str(pk, key, strlen(key));
    if (s.len > 0)
        ref_str(pk, s.ptr, s.len);
    else
        msgpack_pack_nil(pk);
}

static void ref_key_int(msgpack_packer *pk, const char *key, int64_t v)
{
    ref_str(pk, key, strlen(key));
    msgpack_pack_int64(pk, v);
}

static void ref_stock(msgpack_packer *pk, const allot_change_t *c)
{
    msgpack_pack_map(pk, 3 + 10);
    ref_key_str(pk, "sku", c->sku);
    ref_key_str(pk, "location", c->location);
    ref_key_int(pk, "on_hand", c->on_hand);
    ref_key_int(pk, "reserved", c->reserved);
    ref_key_int(pk, "allocated", c->allocated);
    ref_key_int(pk, "safety_stock", c->safety_stock);
    ref_key_int(pk, "available", c->available);
    ref_key_int(pk, "delta", c->on_hand_delta);
    ref_key_cstr(pk, "reason", c->reason);
    ref_key_opt_str(pk, "ref", c->ref);
}

static void ref_hold(msgpack_packer *pk, const allot_change_t *c)
{
    msgpack_pack_map(pk, 3 + 3);
    ref_key_str(pk, "id", c->id);
    ref_str(pk, "lines", 5);
    msgpack_pack_array(pk, c->line_count);
    for (uint32_t i = 0; i < c->line_count; i++) {
        msgpack_pack_map(pk, 2);
        ref_key_str(pk, "sku", c->lines[i].sku);
        ref_key_int(pk, "qty", c->lines[i].qty);
    }
    ref_key_opt_str(pk, "order", c->order);
}

static void ref_shipment(msgpack_packer *pk, const allot_change_t *c)
{
    msgpack_pack_map(pk, 3 + 7);
    ref_key_str(pk, "order", c->order);
    char id[16];
    uint32_t len = allot_shipment_id_format(c->shipment, id);
    ref_key_str(pk, "shipment", (allot_str_t){id, len});
    ref_key_str(pk, "location", c->location);
    ref_key_cstr(pk, "from", c->from);
    ref_key_cstr(pk, "to", c->to);
    ref_key_opt_str(pk, "tracking", c->tracking);
    ref_key_opt_str(pk, "customer", c->customer);
}

static void ref_supply(msgpack_packer *pk, const allot_change_t *c)
{
    msgpack_pack_map(pk, 3 + 9);
    ref_key_str(pk, "id", c->id);
    ref_key_str(pk, "sku", c->sku);
    ref_key_str(pk, "location", c->location);
    ref_key_int(pk, "qty", c->qty);
    ref_key_int(pk, "received", c->received);
    ref_key_int(pk, "held", c->held);
    ref_key_int(pk, "eta_ms", c->eta_ms);
    ref_key_cstr(pk, "state", c->state);
    ref_key_cstr(pk, "cause", c->cause);
}

static void ref_fields(msgpack_packer *pk, const allot_change_t *c)
{
    switch (c->type) {
    case ALLOT_CHANGE_STOCK_CHANGED:
        ref_stock(pk, c);
        return;
    case ALLOT_CHANGE_AVAIL_CHANGED:
        msgpack_pack_map(pk, 3 + 2);
        ref_key_str(pk, "sku", c->sku);
        ref_key_int(pk, "available", c->available);
        return;
    case ALLOT_CHANGE_STOCK_LOW:
    case ALLOT_CHANGE_STOCK_RESTORED:
        msgpack_pack_map(pk, 3 + 5);
        ref_key_str(pk, "sku", c->sku);
        ref_key_int(pk, "available", c->available);
        ref_key_int(pk, "low_stock", c->low_stock);
        ref_key_int(pk, "threshold", c->low_stock);
        ref_key_cstr(pk, "reason", c->reason);
        return;
    case ALLOT_CHANGE_RESERVATION_CREATED:
    case ALLOT_CHANGE_RESERVATION_RELEASED:
    case ALLOT_CHANGE_RESERVATION_EXPIRED:
        ref_hold(pk, c);
        return;
    case ALLOT_CHANGE_ORDER_CREATED:
        msgpack_pack_map(pk, 3 + 2);
        ref_key_str(pk, "id", c->id);
        ref_key_opt_str(pk, "customer", c->customer);
        return;
    case ALLOT_CHANGE_ORDER_CHANGED:
        msgpack_pack_map(pk, 3 + 5);
        ref_key_str(pk, "id", c->id);
        ref_key_opt_str(pk, "customer", c->customer);
        ref_key_cstr(pk, "from", c->from);
        ref_key_cstr(pk, "to", c->to);
        ref_key_cstr(pk, "cause", c->cause);
        return;
    case ALLOT_CHANGE_SHIPMENT_CHANGED:
        ref_shipment(pk, c);
        return;
    case ALLOT_CHANGE_SUPPLY_CHANGED:
        ref_supply(pk, c);
        return;
    case ALLOT_CHANGE_RETURN_CHANGED:
        msgpack_pack_map(pk, 3 + 4);
        ref_key_str(pk, "id", c->id);
        ref_key_str(pk, "order", c->order);
        ref_key_cstr(pk, "state", c->state);
        ref_key_opt_str(pk, "customer", c->customer);
        return;
    default:
        msgpack_pack_map(pk, 3);
        return;
    }
}

/* The whole stored value: version, type, the filter keys, then the map. */
static void ref_pack(msgpack_sbuffer *out, uint64_t seq, const allot_change_t *c)
{
    allot_str_t order = c->order;
    if (order.len == 0 &&
        (c->type == ALLOT_CHANGE_ORDER_CREATED || c->type == ALLOT_CHANGE_ORDER_CHANGED))
        order = c->id;
    uint8_t head[2] = {1, c->type};
    msgpack_sbuffer_write(out, (const char *)head, 2);
    const allot_str_t keys[3] = {c->sku, order, c->customer};
    for (int i = 0; i < 3; i++) {
        uint8_t len = (uint8_t)keys[i].len;
        msgpack_sbuffer_write(out, (const char *)&len, 1);
        msgpack_sbuffer_write(out, keys[i].ptr, keys[i].len);
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    ref_fields(&pk, c);
    ref_key_int(&pk, "seq", (int64_t)seq);
    ref_key_int(&pk, "at_ms", c->at_ms);
    ref_key_cstr(&pk, "type", allot_change_type_name(c->type));
}

/* ---- a generated workload ------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Integers around every boundary of MessagePack's integer forms, and some anywhere. */
static int64_t some_int(void)
{
    static const int64_t edges[] = {0,
                                    1,
                                    31,
                                    32,
                                    127,
                                    128,
                                    255,
                                    256,
                                    65535,
                                    65536,
                                    4294967295,
                                    4294967296,
                                    INT64_MAX,
                                    -1,
                                    -31,
                                    -32,
                                    -33,
                                    -127,
                                    -128,
                                    -129,
                                    -32767,
                                    -32768,
                                    -32769,
                                    INT32_MIN,
                                    -2147483649,
                                    INT64_MIN,
                                    1000000000000,
                                    -1000000000000,
                                    1765000000000};
    uint64_t r = rng();
    if (r % 3 == 0)
        return (int64_t)rng();
    int64_t v = edges[(r >> 8) % (sizeof(edges) / sizeof(edges[0]))];
    return (r >> 40) % 4 == 0 && v != INT64_MAX ? v + 1 : v;
}

static char text[8][1100];

/* A string of a length around the fixstr/str8 edges up to max bytes (len 0 sometimes). */
static allot_str_t some_str(int slot, uint32_t max)
{
    static const uint32_t lens[] = {0, 1, 5, 30, 31, 32, 33, 100, 127, 128, 255, 256, 1024};
    uint32_t len = lens[rng() % (sizeof(lens) / sizeof(lens[0]))];
    if (len > max)
        len = max;
    for (uint32_t i = 0; i < len; i++)
        text[slot][i] = (char)('a' + rng() % 26);
    return (allot_str_t){text[slot], len};
}

static const char *some_name(void)
{
    static const char *const names[] = {NULL,          "",
                                        "reservation", "reservation.expired",
                                        "stock.set",   "a name of forty bytes, longer than fixstr",
                                        "created",     "supply.delayed"};
    return names[rng() % (sizeof(names) / sizeof(names[0]))];
}

static allot_change_line_t lines[ALLOT_LINES_MAX];
static char line_skus[ALLOT_LINES_MAX][ALLOT_ID_BYTES_MAX];

static void some_change(allot_change_t *c)
{
    memset(c, 0, sizeof(*c));
    c->type = (uint8_t)(rng() % (ALLOT_CHANGE_SUPPLY_CHANGED + 2)); /* 0 and 13: no type */
    c->at_ms = some_int();
    c->sku = some_str(0, ALLOT_ID_BYTES_MAX);
    c->location = some_str(1, ALLOT_ID_BYTES_MAX);
    c->ref = some_str(2, ALLOT_ID_BYTES_MAX);
    c->id = some_str(3, ALLOT_ID_BYTES_MAX);
    c->order = some_str(4, ALLOT_ID_BYTES_MAX);
    c->customer = some_str(5, ALLOT_ID_BYTES_MAX);
    c->tracking = some_str(6, ALLOT_TEXT_BYTES_MAX);
    c->on_hand = some_int(), c->reserved = some_int(), c->allocated = some_int();
    c->safety_stock = some_int(), c->available = some_int(), c->on_hand_delta = some_int();
    c->low_stock = some_int(), c->qty = some_int(), c->received = some_int();
    c->held = some_int(), c->eta_ms = some_int();
    c->shipment = (uint32_t)(rng() % 100000);
    bool required = c->type != ALLOT_CHANGE_SHIPMENT_CHANGED || rng() % 2;
    c->reason = required ? "stock.adjust" : NULL;
    c->from = some_name();
    c->to = some_name() ? some_name() : "shipped";
    c->state = "open", c->cause = "supply.receive";
    if (c->from != NULL && rng() % 2)
        c->reason = c->state = c->cause = c->to = c->from;
    uint32_t n = (uint32_t)(rng() % 4 == 0 ? rng() % (ALLOT_LINES_MAX + 1) : rng() % 4);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)(rng() % (ALLOT_ID_BYTES_MAX + 1));
        memset(line_skus[i], 'A' + (int)(i % 26), len);
        lines[i] = (allot_change_line_t){{line_skus[i], len}, some_int()};
    }
    c->lines = lines;
    c->line_count = n;
}

/* The whole map a stored value gives readers; the filter keys and type in *head. */
static void map_of(const char *value, size_t len, uint64_t seq, int64_t at_ms, msgpack_sbuffer *map,
                   uint8_t *type, allot_str_t *sku)
{
    static const events_filter_t everything = {0};
    const uint8_t *m;
    size_t m_len;
    cr_assert(events_value_match((const uint8_t *)value, len, &everything, type, sku, &m, &m_len));
    map->size = 0;
    cr_assert(events_map_append((const uint8_t *)value, m, m_len, seq, at_ms, map));
}

/* The value written now against the previous version's: the same filter keys and, as readers
 * see it, the same map byte for byte; and the previous version's value still reads the same. */
Test(events_pack, readers_get_the_bytes_the_previous_format_gave_for_every_type_over_a_workload)
{
    msgpack_sbuffer ours, theirs, map, their_map;
    msgpack_sbuffer_init(&ours);
    msgpack_sbuffer_init(&theirs);
    msgpack_sbuffer_init(&map);
    msgpack_sbuffer_init(&their_map);
    uint32_t types_seen = 0;
    for (uint32_t i = 0; i < 200000; i++) {
        allot_change_t c;
        some_change(&c);
        uint64_t seq = rng() % 3 == 0 ? (uint64_t)some_int() : rng() >> (rng() % 64);
        size_t before = ours.size; /* appended after what is there, as pending events are */
        cr_assert(events_change_pack(&ours, &c));
        theirs.size = 0;
        ref_pack(&theirs, seq, &c);
        uint8_t type, their_type;
        allot_str_t sku, their_sku;
        map_of(ours.data + before, ours.size - before, seq, c.at_ms, &map, &type, &sku);
        map_of(theirs.data, theirs.size, seq, c.at_ms, &their_map, &their_type, &their_sku);
        cr_assert_eq(ours.data[before], 2);
        cr_assert_eq(theirs.data[0], 1);
        size_t head = theirs.size - their_map.size; /* version, type, the filter keys */
        cr_assert(memcmp(ours.data + before + 1, theirs.data + 1, head - 1) == 0,
                  "change %u type %u: other filter keys", i, c.type);
        cr_assert_eq(type, their_type);
        cr_assert_eq(map.size, their_map.size, "change %u type %u: a map of %zu bytes, not %zu", i,
                     c.type, map.size, their_map.size);
        cr_assert(memcmp(map.data, their_map.data, map.size) == 0, "change %u type %u: other bytes",
                  i, c.type);
        cr_assert(memcmp(their_map.data, theirs.data + head, their_map.size) == 0,
                  "a version 1 value is read as it is");
        cr_assert_lt(ours.size - before, theirs.size, "the value written now is smaller");
        types_seen |= 1u << c.type;
        if (ours.size > (1u << 20))
            ours.size = 0;
    }
    cr_assert_eq(types_seen, (1u << (ALLOT_CHANGE_SUPPLY_CHANGED + 2)) - 1);
    msgpack_sbuffer_destroy(&ours);
    msgpack_sbuffer_destroy(&theirs);
    msgpack_sbuffer_destroy(&map);
    msgpack_sbuffer_destroy(&their_map);
}

Test(events_pack, grows_an_empty_buffer_and_appends_after_what_it_holds)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    allot_change_t c = {.type = ALLOT_CHANGE_AVAIL_CHANGED, .at_ms = 5, .available = 3};
    c.sku = (allot_str_t){"SKU-1", 5};
    cr_assert(events_change_pack(&out, &c));
    size_t one = out.size;
    for (int i = 0; i < 10000; i++) /* past the first allocation several times */
        cr_assert(events_change_pack(&out, &c));
    cr_assert_eq(out.size, 10001 * one);
    for (int i = 1; i <= 10000; i++)
        cr_assert(memcmp(out.data + i * one, out.data, one) == 0);
    msgpack_sbuffer_destroy(&out);
}

Test(events_pack, skips_a_value_of_an_unknown_version)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    allot_change_t c = {.type = ALLOT_CHANGE_AVAIL_CHANGED, .at_ms = 5, .available = 3};
    c.sku = (allot_str_t){"SKU-1", 5};
    cr_assert(events_change_pack(&out, &c));
    static const events_filter_t everything = {0};
    uint8_t type;
    allot_str_t sku;
    const uint8_t *m;
    size_t m_len;
    cr_assert(events_value_match((const uint8_t *)out.data, out.size, &everything, &type, &sku, &m,
                                 &m_len));
    out.data[0] = 3;
    cr_assert_not(events_value_match((const uint8_t *)out.data, out.size, &everything, &type, &sku,
                                     &m, &m_len));
    msgpack_sbuffer_destroy(&out);
}
