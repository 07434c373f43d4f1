/* test_client_json_msgpack.c - JSON <-> MessagePack conversion: round trips, limits, hostile input.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "client/json_msgpack.h"

/* JSON text -> msgpack -> compact JSON text. Returns the error code; *out is malloc'ed. */
static int round_trip(const char *json, unsigned flags, char **out, char *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    *out = NULL;
    int rc = json_msgpack_from_text(json, strlen(json), &sb, err, JSON_MSGPACK_ERROR_BYTES);
    if (rc == 0) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        cr_assert_eq(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
        cr_assert_eq(off, sb.size);
        rc = json_msgpack_to_text(&u.data, flags, out, NULL, err, JSON_MSGPACK_ERROR_BYTES);
        msgpack_unpacked_destroy(&u);
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void assert_round_trip(const char *json, const char *expected)
{
    char *out;
    char err[JSON_MSGPACK_ERROR_BYTES] = "";
    cr_assert_eq(round_trip(json, JSON_MSGPACK_COMPACT, &out, err), 0, "%s: %s", json, err);
    cr_assert_str_eq(out, expected);
    free(out);
}

/* Render the single object packed in sb. */
static char *packed_to_text(msgpack_sbuffer *sb, unsigned flags)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&u, sb->data, sb->size, &off), MSGPACK_UNPACK_SUCCESS);
    char *out = NULL;
    char err[JSON_MSGPACK_ERROR_BYTES];
    cr_assert_eq(json_msgpack_to_text(&u.data, flags, &out, NULL, err, sizeof err), 0, "%s", err);
    msgpack_unpacked_destroy(&u);
    return out;
}

Test(json_msgpack, scalars_arrays_and_objects_survive_a_round_trip)
{
    assert_round_trip("{\"a\": 1, \"b\": [1, 2.5, \"x\", true, false, null], \"c\": {}, \"d\": []}",
                      "{\"a\":1,\"b\":[1,2.5,\"x\",true,false,null],\"c\":{},\"d\":[]}");
    assert_round_trip("\"pong\"", "\"pong\"");
    assert_round_trip("[]", "[]");
    assert_round_trip("0", "0");
    assert_round_trip("-1", "-1");
}

Test(json_msgpack, object_keys_keep_their_order)
{
    assert_round_trip("{\"z\": 1, \"a\": 2, \"m\": 3}", "{\"z\":1,\"a\":2,\"m\":3}");
}

Test(json_msgpack, integers_at_the_int64_limits_stay_exact)
{
    assert_round_trip("[-9223372036854775808, 9223372036854775807, 4294967296, -2147483649]",
                      "[-9223372036854775808,9223372036854775807,4294967296,-2147483649]");
}

Test(json_msgpack, uint64_max_from_msgpack_is_rendered_exactly)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_int64(&pk, INT64_MIN);
    char *out = packed_to_text(&sb, JSON_MSGPACK_COMPACT);
    cr_assert_str_eq(out, "[18446744073709551615,-9223372036854775808]");
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

Test(json_msgpack, integer_beyond_int64_is_a_clear_error)
{
    char *out;
    char err[JSON_MSGPACK_ERROR_BYTES] = "";
    cr_assert_eq(round_trip("[18446744073709551615]", 0, &out, err), ALLOT_EINVALID_ARGUMENT);
    cr_assert(strstr(err, "invalid JSON at line 1") != NULL, "%s", err);
    cr_assert(strstr(err, "too big") != NULL, "%s", err);
}

Test(json_msgpack, reals_stay_reals_with_the_shortest_text)
{
    assert_round_trip("[1.0, 0.1, 1e300, -2.5e-8, 52.52]", "[1.0,0.1,1e+300,-2.5e-08,52.52]");
}

Test(json_msgpack, reals_pack_as_float64_and_integers_as_ints)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[JSON_MSGPACK_ERROR_BYTES];
    cr_assert_eq(json_msgpack_from_text("[1.5, 7]", 8, &sb, err, sizeof err), 0);
    cr_assert_eq(sb.size, 1 + 9 + 1);
    cr_assert_eq((unsigned char)sb.data[1], 0xcb);
    cr_assert_eq((unsigned char)sb.data[10], 0x07);
    msgpack_sbuffer_destroy(&sb);
}

Test(json_msgpack, float32_nan_and_infinity_render_as_json)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_float(&pk, 0.1f);
    msgpack_pack_double(&pk, 0.0 / 0.0);
    msgpack_pack_double(&pk, 1.0 / 0.0);
    char *out = packed_to_text(&sb, JSON_MSGPACK_COMPACT);
    cr_assert_str_eq(out, "[1.5,0.1,null,null]");
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

Test(json_msgpack, unicode_and_escapes_round_trip)
{
    assert_round_trip(
        "\"h\\u00e9llo \\u20ac \\ud834\\udd1e \\\"q\\\" \\\\ \\n\\t\\u0001\"",
        "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e \\\"q\\\" \\\\ \\n\\t\\u0001\"");
    assert_round_trip("{\"\xe6\x97\xa5\": \"\xe6\x9c\xac\"}",
                      "{\"\xe6\x97\xa5\":\"\xe6\x9c\xac\"}");
}

Test(json_msgpack, nul_inside_strings_is_kept)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[JSON_MSGPACK_ERROR_BYTES];
    const char *json = "\"a\\u0000b\"";
    cr_assert_eq(json_msgpack_from_text(json, strlen(json), &sb, err, sizeof err), 0, "%s", err);
    cr_assert_eq(sb.size, 4);
    cr_assert_eq(memcmp(sb.data,
                        "\xa3"
                        "a\0b",
                        4),
                 0);
    char *out = packed_to_text(&sb, 0);
    cr_assert_str_eq(out, "\"a\\u0000b\"");
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

Test(json_msgpack, invalid_utf8_becomes_replacement_character)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* lone continuation, overlong '/', a surrogate, truncated 3-byte sequence */
    const char bad[] = "a\x80"
                       "b\xc0\xaf"
                       "c\xed\xa0\x80"
                       "d\xe2\x82";
    msgpack_pack_str(&pk, sizeof bad - 1);
    msgpack_pack_str_body(&pk, bad, sizeof bad - 1);
    char *out = packed_to_text(&sb, 0);
    cr_assert_str_eq(out, "\"a\xef\xbf\xbd"
                          "b\xef\xbf\xbd\xef\xbf\xbd"
                          "c\xef\xbf\xbd\xef\xbf\xbd"
                          "\xef\xbf\xbd"
                          "d\xef\xbf\xbd\xef\xbf\xbd\"");
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

Test(json_msgpack, bin_ext_and_non_string_keys_are_described)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "bin", 3);
    msgpack_pack_bin(&pk, 5);
    msgpack_pack_bin_body(&pk, "hello", 5);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "ext", 3);
    msgpack_pack_ext(&pk, 2, 5);
    msgpack_pack_ext_body(&pk, "\x01\x02", 2);
    msgpack_pack_int(&pk, -7);
    msgpack_pack_true(&pk);
    msgpack_pack_nil(&pk);
    msgpack_pack_nil(&pk);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 3);
    msgpack_pack_double(&pk, 2.5);
    msgpack_pack_int(&pk, 4);
    char *out = packed_to_text(&sb, 0);
    cr_assert_str_eq(out, "{\"bin\":\"aGVsbG8=\",\"ext\":{\"ext_type\":5,\"base64\":\"AQI=\"},"
                          "\"-7\":true,\"null\":null,\"<array>\":3,\"2.5\":4}");
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

Test(json_msgpack, pretty_output_is_indented_by_two)
{
    char *out;
    char err[JSON_MSGPACK_ERROR_BYTES];
    cr_assert_eq(round_trip("{\"a\":[1,{\"b\":null}],\"c\":{}}", JSON_MSGPACK_PRETTY, &out, err),
                 0);
    cr_assert_str_eq(out, "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n"
                          "  \"c\": {}\n}");
    free(out);
}

static char *nested_arrays_json(int depth)
{
    char *json = malloc((size_t)depth * 2 + 1);
    memset(json, '[', (size_t)depth);
    memset(json + depth, ']', (size_t)depth);
    json[depth * 2] = '\0';
    return json;
}

Test(json_msgpack, depth_up_to_the_limit_converts_and_one_more_is_refused)
{
    char *out;
    char err[JSON_MSGPACK_ERROR_BYTES] = "";
    char *ok = nested_arrays_json(JSON_MSGPACK_DEPTH_MAX);
    /* the innermost array is empty, so only DEPTH_MAX - 1 are open containers */
    char *ok_inner = nested_arrays_json(JSON_MSGPACK_DEPTH_MAX + 1);
    char *deep = nested_arrays_json(JSON_MSGPACK_DEPTH_MAX + 2);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(json_msgpack_from_text(ok, strlen(ok), &sb, err, sizeof err), 0, "%s", err);
    msgpack_sbuffer_clear(&sb);
    cr_assert_eq(json_msgpack_from_text(ok_inner, strlen(ok_inner), &sb, err, sizeof err), 0);
    msgpack_sbuffer_clear(&sb);
    cr_assert_eq(json_msgpack_from_text(deep, strlen(deep), &sb, err, sizeof err),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert(strstr(err, "deeper than 64") != NULL, "%s", err);
    (void)out;
    msgpack_sbuffer_destroy(&sb);
    free(ok);
    free(ok_inner);
    free(deep);
}

Test(json_msgpack, deep_hand_built_object_is_refused_not_overflowed)
{
    enum { levels = 1000 };
    msgpack_object *chain = calloc(levels, sizeof *chain);
    for (int i = 0; i < levels; i++) {
        chain[i].type = MSGPACK_OBJECT_ARRAY;
        chain[i].via.array.size = i + 1 < levels ? 1 : 0;
        chain[i].via.array.ptr = i + 1 < levels ? &chain[i + 1] : NULL;
    }
    char *out = NULL;
    char err[JSON_MSGPACK_ERROR_BYTES] = "";
    cr_assert_eq(json_msgpack_to_text(chain, 0, &out, NULL, err, sizeof err),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert_null(out);
    cr_assert(strstr(err, "deeper") != NULL, "%s", err);
    free(chain);
}

Test(json_msgpack, invalid_json_names_line_and_column)
{
    const char *bad[] = {"{",   "",        "{'a': 1}", "{\"a\": 1,}", "[1 2]", "{\"a\": 1} x",
                         "nul", "\"\xff\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out;
        char err[JSON_MSGPACK_ERROR_BYTES] = "";
        cr_assert_eq(round_trip(bad[i], 0, &out, err), ALLOT_EINVALID_ARGUMENT, "%s", bad[i]);
        cr_assert(strncmp(err, "invalid JSON at line ", 21) == 0, "%s -> %s", bad[i], err);
    }
}

Test(json_msgpack, duplicate_keys_are_rejected)
{
    char *out;
    char err[JSON_MSGPACK_ERROR_BYTES] = "";
    cr_assert_eq(round_trip("{\"a\": 1, \"a\": 2}", 0, &out, err), ALLOT_EINVALID_ARGUMENT);
    cr_assert(strstr(err, "duplicate") != NULL, "%s", err);
}

Test(json_msgpack, null_arguments_are_errors_not_crashes)
{
    char err[JSON_MSGPACK_ERROR_BYTES] = "";
    char *out = NULL;
    cr_assert_eq(json_msgpack_from_text(NULL, 0, NULL, err, sizeof err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(json_msgpack_to_text(NULL, 0, &out, NULL, NULL, 0), ALLOT_EINVALID_ARGUMENT);
}

Test(json_msgpack, random_msgpack_bytes_never_crash_the_renderer)
{
    unsigned seed = 12345;
    char buf[256];
    for (int round = 0; round < 20000; round++) {
        size_t len = 1 + (size_t)(rand_r(&seed) % (int)sizeof buf);
        for (size_t i = 0; i < len; i++) {
            buf[i] = (char)(rand_r(&seed) & 0xff);
            /* msgpack-c allocates what array16/32 and map16/32 headers declare: keep to fix* */
            if ((unsigned char)buf[i] >= 0xdc && (unsigned char)buf[i] <= 0xdf)
                buf[i] = (char)0xc0;
        }
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        while (msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS) {
            char *out = NULL;
            int rc = json_msgpack_to_text(&u.data, round & 1, &out, NULL, NULL, 0);
            cr_assert(rc == 0 || rc == ALLOT_EINVALID_ARGUMENT);
            free(out);
        }
        msgpack_unpacked_destroy(&u);
    }
}

Test(json_msgpack, random_json_text_never_crashes_the_parser)
{
    static const char alphabet[] = "{}[]\":,0123456789.eE-+ tfnrulasx\\u";
    unsigned seed = 777;
    char text[64];
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand_r(&seed) % (int)sizeof text);
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[rand_r(&seed) % (int)(sizeof alphabet - 1)];
        int rc = json_msgpack_from_text(text, len, &sb, NULL, 0);
        cr_assert(rc == 0 || rc == ALLOT_EINVALID_ARGUMENT);
        msgpack_sbuffer_clear(&sb);
    }
    msgpack_sbuffer_destroy(&sb);
}
