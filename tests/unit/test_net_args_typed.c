/* test_net_args_typed.c - the one-pass scan of reserve, avail.get and order.create reads what the
 * key check and the getters read, and declines whatever they refuse (net/args_typed.h): generated
 * params, valid and with every kind of fault, every MessagePack width, limits and one past. */
#include <criterion/criterion.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "core/errors.h"
#include "core/limits.h"
#include "net/args_typed.h"
#include "tests/args_differential.h"

#define GEN_BYTES_MAX (256u * 1024)

/* ---- a MessagePack writer that picks the width (msgpack-c's packer picks the smallest) ------- */

typedef struct gen {
    uint8_t bytes[GEN_BYTES_MAX];
    size_t len;
    uint64_t seed;
    uint32_t fault_percent; /* how many values of this request are faults */
} gen_t;

static uint64_t gen_next(gen_t *g)
{
    g->seed ^= g->seed << 13;
    g->seed ^= g->seed >> 7;
    g->seed ^= g->seed << 17;
    return g->seed;
}

static uint32_t gen_below(gen_t *g, uint32_t n)
{
    return (uint32_t)(gen_next(g) % n);
}

static void gen_put(gen_t *g, const void *data, size_t len)
{
    cr_assert_leq(g->len + len, GEN_BYTES_MAX);
    memcpy(g->bytes + g->len, data, len);
    g->len += len;
}

static void gen_byte(gen_t *g, uint8_t b)
{
    gen_put(g, &b, 1);
}

/* value big-endian in width bytes */
static void gen_be(gen_t *g, uint64_t value, int width)
{
    for (int i = width - 1; i >= 0; i--)
        gen_byte(g, (uint8_t)(value >> (8 * i)));
}

/* An unsigned integer in any width that holds it (0: the smallest). */
static void gen_uint(gen_t *g, uint64_t value)
{
    int choice = (int)gen_below(g, 5);
    if (choice == 0 && value < 128) {
        gen_byte(g, (uint8_t)value);
        return;
    }
    if (choice <= 1 && value <= UINT8_MAX) {
        gen_byte(g, 0xcc);
        gen_be(g, value, 1);
        return;
    }
    if (choice <= 2 && value <= UINT16_MAX) {
        gen_byte(g, 0xcd);
        gen_be(g, value, 2);
        return;
    }
    if (choice <= 3 && value <= UINT32_MAX) {
        gen_byte(g, 0xce);
        gen_be(g, value, 4);
        return;
    }
    gen_byte(g, 0xcf);
    gen_be(g, value, 8);
}

/* A signed integer in any width that holds it: a non-negative one also as int8..int64. */
static void gen_int(gen_t *g, int64_t value)
{
    int choice = (int)gen_below(g, 5);
    if (value >= 0 && gen_below(g, 2) == 0) {
        gen_uint(g, (uint64_t)value);
        return;
    }
    if (choice == 0 && value >= -32 && value < 128) {
        gen_byte(g, (uint8_t)value);
        return;
    }
    if (choice <= 1 && value >= INT8_MIN && value <= INT8_MAX) {
        gen_byte(g, 0xd0);
        gen_be(g, (uint64_t)value, 1);
        return;
    }
    if (choice <= 2 && value >= INT16_MIN && value <= INT16_MAX) {
        gen_byte(g, 0xd1);
        gen_be(g, (uint64_t)value, 2);
        return;
    }
    if (choice <= 3 && value >= INT32_MIN && value <= INT32_MAX) {
        gen_byte(g, 0xd2);
        gen_be(g, (uint64_t)value, 4);
        return;
    }
    gen_byte(g, 0xd3);
    gen_be(g, (uint64_t)value, 8);
}

static void gen_double(gen_t *g, double value)
{
    if (gen_below(g, 3) == 0 && (double)(float)value == value) {
        float f = (float)value;
        uint32_t bits;
        memcpy(&bits, &f, sizeof(bits));
        {
            gen_byte(g, 0xca);
            gen_be(g, bits, 4);
            return;
        }
    }
    uint64_t bits;
    memcpy(&bits, &value, sizeof(bits));
    gen_byte(g, 0xcb);
    gen_be(g, bits, 8);
}

/* A str header for len bytes in any width that holds it. */
static void gen_str_header(gen_t *g, uint32_t len)
{
    int choice = (int)gen_below(g, 4);
    if (choice == 0 && len < 32) {
        gen_byte(g, (uint8_t)(0xa0 | len));
        return;
    }
    if (choice <= 1 && len <= UINT8_MAX) {
        gen_byte(g, 0xd9);
        gen_be(g, len, 1);
        return;
    }
    if (choice <= 2 && len <= UINT16_MAX) {
        gen_byte(g, 0xda);
        gen_be(g, len, 2);
        return;
    }
    gen_byte(g, 0xdb);
    gen_be(g, len, 4);
}

static void gen_str(gen_t *g, const char *s, uint32_t len)
{
    gen_str_header(g, len);
    gen_put(g, s, len);
}

static void gen_cstr(gen_t *g, const char *s)
{
    gen_str(g, s, (uint32_t)strlen(s));
}

static void gen_array_header(gen_t *g, uint32_t count)
{
    int choice = (int)gen_below(g, 3);
    if (choice == 0 && count < 16) {
        gen_byte(g, (uint8_t)(0x90 | count));
        return;
    }
    if (choice <= 1 && count <= UINT16_MAX) {
        gen_byte(g, 0xdc);
        gen_be(g, count, 2);
        return;
    }
    gen_byte(g, 0xdd);
    gen_be(g, count, 4);
}

static void gen_map_header(gen_t *g, uint32_t count)
{
    int choice = (int)gen_below(g, 3);
    if (choice == 0 && count < 16) {
        gen_byte(g, (uint8_t)(0x80 | count));
        return;
    }
    if (choice <= 1 && count <= UINT16_MAX) {
        gen_byte(g, 0xde);
        gen_be(g, count, 2);
        return;
    }
    gen_byte(g, 0xdf);
    gen_be(g, count, 4);
}

/* ---- values: valid ones, their limits and one past, and every kind of fault ------------------ */

/* Whether this value is a fault: g->fault_percent of them (0 for an all-valid request). */
static bool gen_fault(gen_t *g)
{
    return gen_below(g, 100) < g->fault_percent;
}

/* A string of len bytes of UTF-8 (ASCII and a euro sign), or (bad) with a broken byte. */
static void gen_text(gen_t *g, uint32_t len, bool bad)
{
    static char text[8192];
    cr_assert_leq(len, sizeof(text));
    for (uint32_t i = 0; i < len; i++)
        text[i] = (char)('a' + gen_below(g, 26));
    if (len >= 3 && gen_below(g, 4) == 0)
        memcpy(text + gen_below(g, len - 2), "\xe2\x82\xac", 3);
    if (bad && len > 0) {
        static const char broken[] = {'\xff', '\xc0', '\x80', '\xed', '\xe2'};
        text[gen_below(g, len)] = broken[gen_below(g, sizeof(broken))];
    }
    gen_str(g, text, len);
}

/* A value of a type no argument takes here, or one of another argument's type. */
static void gen_other(gen_t *g)
{
    static const uint8_t others[][3] = {
        {1, 0xc0},       /* nil */
        {1, 0xc2},       /* false */
        {1, 0xc3},       /* true */
        {1, 0x07},       /* 7 */
        {1, 0x90},       /* [] */
        {1, 0x80},       /* {} */
        {1, 0xa0},       /* "" */
        {2, 0xa1, 'x'},  /* "x" */
        {2, 0xc4, 0x00}, /* bin 0 */
        {2, 0xd4, 0x01}, /* fixext 1 (needs a data byte: below) */
    };
    uint32_t which = gen_below(g, sizeof(others) / sizeof(others[0]) + 1);
    if (which == sizeof(others) / sizeof(others[0])) {
        gen_double(g, 1.5);
        return;
    }
    gen_put(g, others[which] + 1, others[which][0]);
    if (others[which][1] == 0xd4)
        gen_byte(g, 0x00);
}

/* An id: 1..128 bytes of UTF-8; faults: empty, 129 bytes, invalid UTF-8, a NUL inside is fine
 * but a wrong type is not. */
static void gen_id(gen_t *g)
{
    static const uint32_t lengths[] = {1, 2, 5, 31, 32, 127, ALLOT_ID_BYTES_MAX};
    if (!gen_fault(g)) {
        if (gen_below(g, 20) == 0)
            gen_str(g, "a\0b", 3);
        else
            gen_text(g, lengths[gen_below(g, 7)], false);
        return;
    }
    switch (gen_below(g, 4)) {
    case 0:
        gen_text(g, 0, false);
        break;
    case 1:
        gen_text(g, ALLOT_ID_BYTES_MAX + 1, false);
        break;
    case 2:
        gen_text(g, 1 + gen_below(g, 8), true);
        break;
    default:
        gen_other(g);
        break;
    }
}

/* An integer in [min, max] (the ends, or inside); faults: one past each end, the extremes of
 * both int64 and uint64, a float, a wrong type. Any width. */
static void gen_int_in(gen_t *g, int64_t min, int64_t max)
{
    if (!gen_fault(g)) {
        uint32_t which = gen_below(g, 4);
        gen_int(g, which == 0   ? min
                   : which == 1 ? max
                                : min + (int64_t)(gen_next(g) % (uint64_t)(max - min + 1)));
        return;
    }
    switch (gen_below(g, 7)) {
    case 0:
        gen_int(g, min == INT64_MIN ? min : min - 1);
        break;
    case 1:
        gen_int(g, max == INT64_MAX ? max : max + 1);
        break;
    case 2:
        gen_uint(g, UINT64_MAX - gen_below(g, 2));
        break;
    case 3:
        gen_uint(g, (uint64_t)INT64_MAX + gen_below(g, 2));
        break;
    case 4:
        gen_int(g, INT64_MIN);
        break;
    case 5:
        gen_double(g, (double)max);
        break;
    default:
        gen_other(g);
        break;
    }
}

/* A number in [min, max], as float32, float64 or an integer; faults: the next double past each
 * end, NaN, the infinities, a wrong type. */
static void gen_double_in(gen_t *g, double min, double max)
{
    if (!gen_fault(g)) {
        switch (gen_below(g, 4)) {
        case 0:
            gen_double(g, min);
            break;
        case 1:
            gen_double(g, max);
            break;
        case 2:
            gen_int(g, (int64_t)ceil(min) + (int64_t)gen_below(g, 3));
            break;
        default:
            gen_double(g, min + (max - min) * (double)gen_below(g, 1000) / 999.0);
            break;
        }
        return;
    }
    switch (gen_below(g, 6)) {
    case 0:
        gen_double(g, nextafter(min, -INFINITY));
        break;
    case 1:
        gen_double(g, nextafter(max, INFINITY));
        break;
    case 2:
        gen_double(g, NAN);
        break;
    case 3:
        gen_double(g, gen_below(g, 2) ? INFINITY : -INFINITY);
        break;
    case 4:
        gen_int(g, (int64_t)max + 1);
        break;
    default:
        gen_other(g);
        break;
    }
}

static void gen_bool(gen_t *g)
{
    if (gen_fault(g))
        gen_other(g);
    else
        gen_byte(g, gen_below(g, 2) ? 0xc3 : 0xc2);
}

/* One of names (NULL-terminated); faults: another case, the name with its NUL, empty, a wrong
 * type. */
static void gen_enum(gen_t *g, const char *const *names)
{
    uint32_t count = 0;
    while (names[count] != NULL)
        count++;
    if (!gen_fault(g)) {
        gen_cstr(g, names[gen_below(g, count)]);
        return;
    }
    switch (gen_below(g, 4)) {
    case 0:
        gen_cstr(g, "SHIP");
        break;
    case 1:
        gen_str(g, names[0], (uint32_t)strlen(names[0]) + 1);
        break;
    case 2:
        gen_cstr(g, "");
        break;
    default:
        gen_other(g);
        break;
    }
}

/* A map of the given keys (bit i of required: key i is there but for a fault), in any order,
 * some nil (as if absent); faults: a required key missing, a key twice, an unknown key, an empty
 * key, a key that is no string. gen_value_fn writes key i's value. */
typedef void (*gen_value_fn)(gen_t *g, uint32_t key);

static void gen_map_of(gen_t *g, const char *const *keys, uint32_t key_count, uint32_t required,
                       gen_value_fn value)
{
    uint32_t order[32], count = 0;
    for (uint32_t i = 0; i < key_count; i++)
        if ((required & (1u << i)) ? !gen_fault(g) || gen_below(g, 4) != 0 : gen_below(g, 3) == 0)
            order[count++] = i;
    for (uint32_t i = count; i > 1; i--) { /* shuffle */
        uint32_t j = gen_below(g, i), t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    uint32_t fault = gen_fault(g) ? gen_below(g, 4) : 4; /* 0 twice, 1 unknown, 2 "", 3 no str */
    if (fault == 0 && count == 0)
        fault = 4;
    gen_map_header(g, count + (fault < 4 ? 1 : 0));
    uint32_t at = fault < 4 ? gen_below(g, count + 1) : UINT32_MAX;
    for (uint32_t i = 0; i <= count; i++) {
        if (i == at) {
            if (fault == 0)
                gen_cstr(g, keys[order[gen_below(g, count)]]);
            else if (fault == 3)
                gen_int(g, 7);
            else
                gen_cstr(g, fault == 1 ? "bogus" : "");
            gen_bool(g);
        }
        if (i == count)
            break;
        gen_cstr(g, keys[order[i]]);
        if (gen_below(g, 25) == 0)
            gen_byte(g, 0xc0);
        else
            value(g, order[i]);
    }
}

static void gen_ship_to_value(gen_t *g, uint32_t key)
{
    if (key == 0)
        gen_double_in(g, -90.0, 90.0);
    else
        gen_double_in(g, -180.0, 180.0);
}

static void gen_ship_to(gen_t *g)
{
    static const char *const keys[] = {"lat", "lon"};
    if (gen_fault(g) && gen_below(g, 3) == 0)
        gen_other(g);
    else
        gen_map_of(g, keys, 2, 3, gen_ship_to_value);
}

static void gen_line_value(gen_t *g, uint32_t key)
{
    if (key == 0)
        gen_id(g);
    else if (key == 1)
        gen_int_in(g, 1, ALLOT_QUANTITY_MAX);
    else
        gen_bool(g);
}

/* An array of 1..count_max elements (mostly a few, sometimes count_max); faults: empty, one past
 * count_max, a wrong type. */
static void gen_array_of(gen_t *g, uint32_t count_max, void (*element)(gen_t *g, bool backorder),
                         bool backorder)
{
    uint32_t count = gen_below(g, 10) == 0 ? count_max : 1 + gen_below(g, 3);
    if (gen_fault(g)) {
        uint32_t which = gen_below(g, 3);
        if (which == 2) {
            gen_other(g);
            return;
        }
        count = which == 0 ? 0 : count_max + 1;
    }
    gen_array_header(g, count);
    for (uint32_t i = 0; i < count; i++)
        element(g, backorder);
}

static void gen_line(gen_t *g, bool backorder)
{
    static const char *const keys[] = {"sku", "qty", "backorder"};
    if (gen_fault(g) && gen_below(g, 10) == 0)
        gen_other(g);
    else
        gen_map_of(g, keys, backorder ? 3 : 2, 3, gen_line_value);
}

/* One of a thousand SKUs is a fault at the same rate as any other value. */
static void gen_sku(gen_t *g, bool unused)
{
    (void)unused;
    if (gen_below(g, 100) == 0)
        gen_id(g);
    else
        gen_text(g, 1 + gen_below(g, 12), false);
}

/* address: any map, packed within ALLOT_ORDER_ADDRESS_BYTES_MAX; it is repacked as a fixmap of
 * one "line1" and a str16, 10 bytes plus the text, so texts of 4083..4090 bytes straddle the
 * limit. Faults: a wrong type. */
static void gen_address(gen_t *g)
{
    if (gen_fault(g) && gen_below(g, 2) == 0) {
        gen_other(g);
        return;
    }
    if (gen_below(g, 3) == 0) {
        gen_map_header(g, 1);
        gen_cstr(g, "line1");
        gen_text(g, ALLOT_ORDER_ADDRESS_BYTES_MAX - 13 + gen_below(g, 8), false);
        return;
    }
    gen_map_header(g, 2);
    gen_cstr(g, "city");
    gen_text(g, gen_below(g, 20), gen_below(g, 10) == 0);
    gen_cstr(g, "zip");
    gen_int(g, 10115);
}

static const char *const reserve_keys[] = {"id",      "lines",    "ttl_s",  "method",
                                           "ship_to", "location", "policy", "partial",
                                           "replace", "customer", "token",  "min_index"};

static void gen_reserve_value(gen_t *g, uint32_t key)
{
    switch (key) {
    case 0:
        gen_id(g);
        break;
    case 1:
        gen_array_of(g, ALLOT_LINES_MAX, gen_line, true);
        break;
    case 2:
        gen_int_in(g, ALLOT_RESERVATION_TTL_S_MIN, ALLOT_RESERVATION_TTL_S_MAX);
        break;
    case 3:
        gen_enum(g, allot_method_names);
        break;
    case 4:
        gen_ship_to(g);
        break;
    case 6:
        gen_enum(g, allot_policy_names);
        break;
    case 7:
    case 8:
        gen_bool(g);
        break;
    case 10: /* token: any UTF-8 of 0..128 bytes */
        if (gen_below(g, 4) == 0)
            gen_text(g, gen_fault(g) ? ALLOT_ID_BYTES_MAX + 1 : 0, false);
        else
            gen_id(g);
        break;
    case 11:
        gen_int(g, 1);
        break; /* min_index: a read key, not reserve's */
    default:
        gen_id(g);
        break; /* location, customer */
    }
}

static const char *const avail_keys[] = {"skus",   "method",  "ship_to",   "radius_km", "location",
                                         "detail", "promise", "min_index", "wait_ms"};

static void gen_avail_value(gen_t *g, uint32_t key)
{
    switch (key) {
    case 0:
        gen_array_of(g, ALLOT_AVAIL_SKUS_MAX, gen_sku, false);
        break;
    case 1:
        gen_enum(g, allot_method_names);
        break;
    case 2:
        gen_ship_to(g);
        break;
    case 3:
        gen_double_in(g, 0.001, ALLOT_RADIUS_KM_MAX);
        break;
    case 4:
        gen_id(g);
        break;
    case 5:
    case 6:
        gen_bool(g);
        break;
    default:
        gen_int_in(g, 0, 10);
        break; /* min_index, wait_ms: the scan declines them */
    }
}

static const char *const order_keys[] = {"id",      "customer",     "reservation", "lines",
                                         "method",  "ship_to",      "location",    "policy",
                                         "address", "instructions", "wait_ms"};

static void gen_order_value(gen_t *g, uint32_t key)
{
    static const uint32_t lengths[] = {0, 1, 40, ALLOT_TEXT_BYTES_MAX};
    switch (key) {
    case 3:
        gen_array_of(g, ALLOT_LINES_MAX, gen_line, false);
        break;
    case 4:
        gen_enum(g, allot_method_names);
        break;
    case 5:
        gen_ship_to(g);
        break;
    case 7:
        gen_enum(g, allot_policy_names);
        break;
    case 8:
        gen_address(g);
        break;
    case 9:
        if (gen_fault(g))
            gen_text(g, gen_below(g, 2) ? ALLOT_TEXT_BYTES_MAX + 1 : 5, true);
        else
            gen_text(g, lengths[gen_below(g, 4)], false);
        break;
    case 10:
        gen_int(g, 1);
        break; /* wait_ms: a read key, not order.create's */
    default:
        gen_id(g);
        break; /* id, customer, reservation, location */
    }
}

/* ---- the differential runs ------------------------------------------------------------------- */

typedef struct tally {
    uint32_t scanned, declined;
    uint32_t codes[4]; /* INVALID_ARGUMENT, TOO_LARGE, others, waits (declined, generic 0) */
} tally_t;

/* Generate `runs` params maps of the method's keys and hold the scan to the generic path. */
static void differential_run(const char *method, const char *const *keys, uint32_t key_count,
                             uint32_t required, gen_value_fn value, uint32_t runs, tally_t *t)
{
    static gen_t g;
    g.seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)strlen(method);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 65536);
    for (uint32_t run = 0; run < runs; run++) {
        static const uint32_t fault_percents[] = {0, 0, 1, 3, 10, 30};
        g.len = 0;
        g.fault_percent = fault_percents[run % 6];
        gen_map_of(&g, keys, key_count, required, value);
        msgpack_object params;
        size_t offset = 0;
        cr_assert_eq(msgpack_unpack((const char *)g.bytes, g.len, &offset, &zone, &params),
                     MSGPACK_UNPACK_SUCCESS);
        args_differential_outcome_t outcome;
        const char *differs = args_differential(method, &params, &outcome);
        cr_assert_null(differs, "%s run %u: %s (generic: %d %s: %s)", method, run, differs,
                       outcome.generic, outcome.error.field ? outcome.error.field : "-",
                       outcome.error.message);
        t->scanned += outcome.scanned;
        t->declined += !outcome.scanned;
        int code = outcome.generic;
        t->codes[code == ALLOT_EINVALID_ARGUMENT ? 0
                 : code == ALLOT_ETOO_LARGE      ? 1
                 : code == 0                     ? 3
                                                 : 2]++;
        msgpack_zone_clear(&zone);
    }
    msgpack_zone_destroy(&zone);
}

/* Every outcome showed up: requests read, refused as invalid, refused as too large. */
static void tally_check(const char *method, const tally_t *t, uint32_t runs)
{
    cr_assert_gt(t->scanned, runs / 20, "%s: only %u of %u read", method, t->scanned, runs);
    cr_assert_gt(t->codes[0], runs / 20, "%s: only %u invalid", method, t->codes[0]);
    cr_assert_gt(t->codes[1], 0, "%s: nothing too large", method);
}

#define DIFFERENTIAL_RUNS 40000

Test(args_typed, reserve_scan_reads_what_the_getters_read_and_declines_what_they_refuse)
{
    tally_t t = {0};
    differential_run("reserve", reserve_keys, 12, 3, gen_reserve_value, DIFFERENTIAL_RUNS, &t);
    tally_check("reserve", &t, DIFFERENTIAL_RUNS);
}

Test(args_typed, avail_scan_reads_what_the_getters_read_and_declines_what_they_refuse)
{
    tally_t t = {0};
    differential_run("avail.get", avail_keys, 9, 1, gen_avail_value, DIFFERENTIAL_RUNS, &t);
    tally_check("avail.get", &t, DIFFERENTIAL_RUNS);
}

Test(args_typed, order_create_scan_reads_what_the_getters_read_and_declines_what_they_refuse)
{
    tally_t t = {0};
    differential_run("order.create", order_keys, 11, 1, gen_order_value, DIFFERENTIAL_RUNS, &t);
    tally_check("order.create", &t, DIFFERENTIAL_RUNS);
}
