/* test_net_args.c - the shared argument layer: allowed keys, keys given twice, and client bytes
 * echoed in its errors (net/args.c, net/dispatch.c). */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <string.h>

#include "core/errors.h"
#include "net/args.h"
#include "net/dispatch.h"
#include "tests/utf8_strict.h"

typedef struct key_value {
    const char *key;
    size_t key_len; /* 0: strlen(key) */
    const char *value;
} key_value_t;

/* A map of str keys and str values, unpacked into zone. */
static msgpack_object map_make(msgpack_zone *zone, const key_value_t *pairs, size_t count)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
        size_t key_len = pairs[i].key_len != 0 ? pairs[i].key_len : strlen(pairs[i].key);
        msgpack_pack_str_with_body(&pk, pairs[i].key, key_len);
        msgpack_pack_str_with_body(&pk, pairs[i].value, strlen(pairs[i].value));
    }
    /* the unpacked strings point into the bytes: keep them in the zone */
    char *bytes = msgpack_zone_malloc(zone, sbuf.size);
    memcpy(bytes, sbuf.data, sbuf.size);
    msgpack_object object;
    size_t offset = 0;
    cr_assert_eq(msgpack_unpack(bytes, sbuf.size, &offset, zone, &object), MSGPACK_UNPACK_SUCCESS);
    msgpack_sbuffer_destroy(&sbuf);
    return object;
}

static const char *const reserve_keys[] = {"id",       "lines",  "ttl_s",   "method",  "ship_to",
                                           "location", "policy", "partial", "replace", NULL};

Test(args, a_key_given_twice_is_refused_naming_it_at_every_position)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 65536);
    /* "id" twice, with 0..4 other keys before, between and after the two */
    static const char *const others[] = {"ttl_s", "method", "policy", "partial"};
    for (size_t before = 0; before <= 4; before++) {
        for (size_t between = 0; before + between <= 4; between++) {
            key_value_t pairs[6];
            size_t n = 0;
            size_t other = 0;
            for (size_t i = 0; i < before; i++)
                pairs[n++] = (key_value_t){others[other++], 0, "v"};
            pairs[n++] = (key_value_t){"id", 0, "dupA"};
            for (size_t i = 0; i < between; i++)
                pairs[n++] = (key_value_t){others[other++], 0, "v"};
            pairs[n++] = (key_value_t){"id", 0, "dupB"};
            msgpack_object map = map_make(&zone, pairs, n);
            allot_error_detail_t error;
            allot_error_detail_clear(&error);
            cr_assert_eq(args_check_keys(&map, reserve_keys, "params", &error),
                         ALLOT_EINVALID_ARGUMENT, "%zu before, %zu between", before, between);
            cr_assert_str_eq(error.field, "id");
            cr_assert_str_eq(error.message, "duplicate key 'id' in 'params'");
        }
    }
    msgpack_zone_destroy(&zone);
}

Test(args, each_allowed_key_once_passes_and_any_one_repeated_fails)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 65536);
    key_value_t pairs[10];
    size_t n = 0;
    for (; reserve_keys[n] != NULL; n++)
        pairs[n] = (key_value_t){reserve_keys[n], 0, "v"};
    msgpack_object map = map_make(&zone, pairs, n);
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    cr_assert_eq(args_check_keys(&map, reserve_keys, "params", &error), 0, "%s", error.message);
    for (size_t repeated = 0; repeated < n; repeated++) {
        pairs[n] = (key_value_t){reserve_keys[repeated], 0, "again"};
        map = map_make(&zone, pairs, n + 1);
        allot_error_detail_clear(&error);
        cr_assert_eq(args_check_keys(&map, reserve_keys, "params", &error),
                     ALLOT_EINVALID_ARGUMENT);
        cr_assert_str_eq(error.field, reserve_keys[repeated], "%s", error.message);
        char expected[96];
        snprintf(expected, sizeof(expected), "duplicate key '%s' in 'params'",
                 reserve_keys[repeated]);
        cr_assert_str_eq(error.message, expected);
    }
    msgpack_zone_destroy(&zone);
}

Test(args, nested_maps_refuse_a_key_given_twice)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 65536);
    /* {"lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 1, "qty": 5}]} */
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "lines", 5);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "sku", 3);
    msgpack_pack_str_with_body(&pk, "A", 1);
    msgpack_pack_str_with_body(&pk, "qty", 3);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "sku", 3);
    msgpack_pack_str_with_body(&pk, "B", 1);
    msgpack_pack_str_with_body(&pk, "qty", 3);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "qty", 3);
    msgpack_pack_int(&pk, 5);
    /* "ship_to": {"lat": 1, "lon": 2, "lat": 3} */
    msgpack_pack_str_with_body(&pk, "ship_to", 7);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "lat", 3);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "lon", 3);
    msgpack_pack_int(&pk, 2);
    msgpack_pack_str_with_body(&pk, "lat", 3);
    msgpack_pack_int(&pk, 3);
    msgpack_object params;
    size_t offset = 0;
    cr_assert_eq(msgpack_unpack(sbuf.data, sbuf.size, &offset, &zone, &params),
                 MSGPACK_UNPACK_SUCCESS);

    allot_line_input_t lines[ALLOT_LINES_MAX];
    uint32_t count = 0;
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    cr_assert_eq(args_lines(&params, lines, &count, NULL, &error), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(error.field, "qty");
    cr_assert_str_eq(error.message, "duplicate key 'qty' in 'lines'");
    cr_assert_eq(count, 0, "no line count is reported for refused lines");

    bool present = false;
    double lat = 0, lon = 0;
    allot_error_detail_clear(&error);
    cr_assert_eq(args_ship_to(&params, &present, &lat, &lon, &error), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(error.field, "lat");
    cr_assert_str_eq(error.message, "duplicate key 'lat' in 'ship_to'");
    msgpack_sbuffer_destroy(&sbuf);
    msgpack_zone_destroy(&zone);
}

Test(args, an_unknown_key_is_echoed_as_valid_utf8)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 65536);
    static const struct {
        const char *key;
        size_t key_len;
        const char *message;
    } cases[] = {
        {"\xff\xfe", 2, "unknown key '\\xff\\xfe' in 'params'"},
        {"colour\0x", 8, "unknown key 'colour\\x00x' in 'params'"},
        {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "\xc3\xa9\xc3\xa9\xc3\xa9",
         66,
         "unknown key '\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "\xc3\xa9...' in 'params'"},
        {"a\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2\x82\xac",
         67,
         "unknown key 'a\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2\x82\xac...' in 'params'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        key_value_t pair = {cases[i].key, cases[i].key_len, "v"};
        msgpack_object map = map_make(&zone, &pair, 1);
        allot_error_detail_t error;
        allot_error_detail_clear(&error);
        cr_assert_eq(args_check_keys(&map, reserve_keys, "params", &error),
                     ALLOT_EINVALID_ARGUMENT);
        cr_assert(utf8_strict_valid(error.message, strlen(error.message)), "case %zu", i);
        cr_assert_str_eq(error.message, cases[i].message, "case %zu", i);
        cr_assert_str_eq(error.field, "params");
    }
    msgpack_zone_destroy(&zone);
}

/* A packed request dispatched with no state (only checks that come before any handler run). */
static void dispatch_bytes(const msgpack_sbuffer *request, msgpack_sbuffer *out,
                           dispatch_outcome_t *outcome, msgpack_zone *zone)
{
    msgpack_object object;
    size_t offset = 0;
    cr_assert_eq(msgpack_unpack(request->data, request->size, &offset, zone, &object),
                 MSGPACK_UNPACK_SUCCESS);
    dispatch_env_t env = {.writes_allowed = true};
    out->size = 0;
    dispatch_object(&env, &object, out, outcome);
}

/* The error map of a packed response, after checking that each of its strings is valid UTF-8. */
static msgpack_object reply_error(const msgpack_sbuffer *out, msgpack_zone *zone)
{
    msgpack_object reply;
    size_t offset = 0;
    cr_assert_eq(msgpack_unpack(out->data, out->size, &offset, zone, &reply),
                 MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq(reply.type, MSGPACK_OBJECT_ARRAY);
    msgpack_object error = reply.via.array.ptr[2];
    cr_assert_eq(error.type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < error.via.map.size; i++) {
        const msgpack_object *v = &error.via.map.ptr[i].val;
        if (v->type == MSGPACK_OBJECT_STR)
            cr_assert(utf8_strict_valid(v->via.str.ptr, v->via.str.size), "value %u", i);
    }
    return error;
}

static bool map_str_equals(const msgpack_object *map, const char *key, const char *expected)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        const msgpack_object *v = &map->via.map.ptr[i].val;
        if (k->via.str.size == strlen(key) && memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return v->type == MSGPACK_OBJECT_STR && v->via.str.size == strlen(expected) &&
                   memcmp(v->via.str.ptr, expected, v->via.str.size) == 0;
    }
    return false;
}

Test(dispatch, a_params_key_given_twice_is_refused_before_the_handler_runs)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 65536);
    msgpack_sbuffer request, out;
    msgpack_sbuffer_init(&request);
    msgpack_sbuffer_init(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &request, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, 0);
    msgpack_pack_int(&pk, 9);
    msgpack_pack_str_with_body(&pk, "reserve", 7);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str_with_body(&pk, "dupA", 4);
    msgpack_pack_str_with_body(&pk, "lines", 5);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str_with_body(&pk, "dupB", 4);
    dispatch_outcome_t outcome;
    dispatch_bytes(&request, &out, &outcome, &zone);
    cr_assert_eq(outcome.error, ALLOT_EINVALID_ARGUMENT);
    cr_assert(outcome.replied);
    cr_assert_not(outcome.close);
    cr_assert_not(outcome.write, "the write never started");
    msgpack_object error = reply_error(&out, &zone);
    cr_assert(map_str_equals(&error, "message", "duplicate key 'id' in 'params'"));
    cr_assert(map_str_equals(&error, "field", "id"));
    msgpack_sbuffer_destroy(&request);
    msgpack_sbuffer_destroy(&out);
    msgpack_zone_destroy(&zone);
}

Test(dispatch, an_unknown_method_of_invalid_bytes_is_echoed_as_valid_utf8)
{
    static const struct {
        const char *method;
        size_t len;
        const char *message;
    } cases[] = {
        {"\xff\xfe", 2, "unknown method '\\xff\\xfe'"},
        {"ping\n", 5, "unknown method 'ping\\x0a'"},
        {"no.such\\method", 14, "unknown method 'no.such\\\\method'"},
        /* 64 bytes: 21 euro signs and one more byte of a 22nd, which cannot be shown whole */
        {"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2",
         64,
         "unknown method '\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
         "\xe2\x82\xac...'"},
    };
    msgpack_zone zone;
    msgpack_zone_init(&zone, 65536);
    msgpack_sbuffer request, out;
    msgpack_sbuffer_init(&request);
    msgpack_sbuffer_init(&out);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        request.size = 0;
        msgpack_packer pk;
        msgpack_packer_init(&pk, &request, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 4);
        msgpack_pack_int(&pk, 0);
        msgpack_pack_int(&pk, 9);
        msgpack_pack_str_with_body(&pk, cases[i].method, cases[i].len);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 0);
        dispatch_outcome_t outcome;
        dispatch_bytes(&request, &out, &outcome, &zone);
        cr_assert_eq(outcome.error, ALLOT_EUNKNOWN_METHOD, "case %zu", i);
        msgpack_object error = reply_error(&out, &zone);
        cr_assert(map_str_equals(&error, "message", cases[i].message), "case %zu", i);
    }
    msgpack_sbuffer_destroy(&request);
    msgpack_sbuffer_destroy(&out);
    msgpack_zone_destroy(&zone);
}

Test(args, a_key_matches_only_the_whole_name_not_a_prefix_an_extension_or_a_nul_tail)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 65536);
    static const struct {
        const char *key;
        size_t key_len;
        bool allowed;
    } cases[] = {
        {"id", 2, true},      {"i", 1, false},  {"idx", 3, false},  {"id\0", 3, false},
        {"\0id", 3, false},   {"", 0, false},   {"lines", 5, true}, {"line", 4, false},
        {"linesx", 6, false}, {"Id", 2, false}, {"ttl_s", 5, true}, {"ttl_s\0", 6, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        key_value_t pair = {cases[i].key, cases[i].key_len, "v"};
        msgpack_object map = map_make(&zone, &pair, 1);
        allot_error_detail_t error;
        allot_error_detail_clear(&error);
        int rc = args_check_keys(&map, reserve_keys, "params", &error);
        cr_assert_eq(rc, cases[i].allowed ? 0 : ALLOT_EINVALID_ARGUMENT, "case %zu", i);
        const msgpack_object *found = args_find(&map, cases[i].allowed ? cases[i].key : "id");
        cr_assert_eq(found != NULL, cases[i].allowed, "args_find, case %zu", i);
    }
    /* methods: the table's lengths, not a prefix or a NUL tail */
    cr_assert_not_null(command_lookup("ping", 4));
    cr_assert_null(command_lookup("pin", 3));
    cr_assert_null(command_lookup("ping\0", 5));
    cr_assert_null(command_lookup("pingx", 5));
    cr_assert_not_null(command_lookup("avail.get", 9));
    msgpack_zone_destroy(&zone);
}
