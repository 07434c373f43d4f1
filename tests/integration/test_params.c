/* test_params.c - params maps and the text of error replies through the real allotd: a key given
 * twice is refused with nothing changed, and client bytes shown in an error (an unknown method
 * or key, an id) arrive as valid UTF-8, escaped and cut on character boundaries. Requests that
 * JSON cannot express are packed here with msgpack-c. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_reply.h"
#include "tests/utf8_strict.h"

static harness_server_t *srv;
static allot_client_t *cli;

static void up(void)
{
    harness_fixture_up(&srv, &cli);
}

static void down(void)
{
    harness_fixture_down(&srv, &cli);
}

TestSuite(params, .init = up, .fini = down, .timeout = 60);

/* ---- packing params ------------------------------------------------------------------------ */

typedef struct params {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} params_t;

/* Start a params map of `keys` entries; pack them with the helpers below, then params_call. */
static msgpack_packer *params_begin(params_t *p, uint32_t keys)
{
    msgpack_sbuffer_init(&p->sbuf);
    msgpack_packer_init(&p->pk, &p->sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&p->pk, keys);
    return &p->pk;
}

static void pack_bytes(msgpack_packer *pk, const char *bytes, size_t len)
{
    msgpack_pack_str_with_body(pk, bytes, len);
}

static void pack_text(msgpack_packer *pk, const char *s)
{
    pack_bytes(pk, s, strlen(s));
}

/* One line {sku, qty} as an array element; qty_again >= 0 adds "qty" a second time. */
static void pack_line(msgpack_packer *pk, const char *sku, int qty, int qty_again)
{
    msgpack_pack_map(pk, qty_again >= 0 ? 3 : 2);
    pack_text(pk, "sku");
    pack_text(pk, sku);
    pack_text(pk, "qty");
    msgpack_pack_int(pk, qty);
    if (qty_again >= 0) {
        pack_text(pk, "qty");
        msgpack_pack_int(pk, qty_again);
    }
}

/* Send method with the packed params (freed here); asserts the transport worked. */
static void params_call(params_t *p, const char *method, allot_reply_t *r)
{
    cr_assert_eq(allot_client_call(cli, method, p->sbuf.data, p->sbuf.size, r), 0, "%s: %s", method,
                 allot_client_last_error(cli));
    msgpack_sbuffer_destroy(&p->sbuf);
}

/* ---- checking replies ---------------------------------------------------------------------- */

/* Assert an error reply with this code in which every string is valid UTF-8 (read strictly);
 * returns its message (valid until the reply is reused). */
static const msgpack_object_str *error_checked(const allot_reply_t *r, const char *code)
{
    cr_assert(r->is_error, "expected %s, got a result", code);
    cr_assert_str_eq(r->code, code, "message: %s", r->message);
    const msgpack_object *error = &r->error;
    cr_assert_eq(error->type, MSGPACK_OBJECT_MAP);
    const msgpack_object_str *message = NULL;
    for (uint32_t i = 0; i < error->via.map.size; i++) {
        const msgpack_object *k = &error->via.map.ptr[i].key;
        const msgpack_object *v = &error->via.map.ptr[i].val;
        cr_assert_eq(k->type, MSGPACK_OBJECT_STR);
        cr_assert(utf8_strict_valid(k->via.str.ptr, k->via.str.size), "key %u", i);
        if (v->type != MSGPACK_OBJECT_STR)
            continue;
        cr_assert(utf8_strict_valid(v->via.str.ptr, v->via.str.size),
                  "value of '%.*s' is not valid UTF-8", (int)k->via.str.size, k->via.str.ptr);
        if (k->via.str.size == 7 && memcmp(k->via.str.ptr, "message", 7) == 0)
            message = &v->via.str;
    }
    cr_assert_not_null(message, "no message");
    return message;
}

static void expect_message(const allot_reply_t *r, const char *code, const char *expected)
{
    const msgpack_object_str *m = error_checked(r, code);
    cr_expect(m->size == strlen(expected) && memcmp(m->ptr, expected, m->size) == 0,
              "message '%.*s', expected '%s'", (int)m->size, m->ptr, expected);
}

static void expect_field(const allot_reply_t *r, const char *field)
{
    harness_expect_str_at(r, "field", field);
}

static void setup_stock(void)
{
    harness_put_location(cli, "L1", "'type':'warehouse','lat':52.52,'lon':13.40");
    harness_set_stock(cli, "A", "L1", 10);
    harness_set_stock(cli, "B", "L1", 10);
}

static void expect_not_found(const char *method, const char *id)
{
    allot_reply_t r = {0};
    harness_call_error(cli, method, harness_json("{'id':'%s'}", id), "NOT_FOUND", &r);
    allot_reply_free(&r);
}

/* ---- a key given twice --------------------------------------------------------------------- */

Test(params, reserve_with_id_given_twice_is_refused_and_creates_nothing)
{
    setup_stock();
    allot_reply_t r = {0};
    params_t p;
    msgpack_packer *pk = params_begin(&p, 3);
    pack_text(pk, "id");
    pack_text(pk, "dupA");
    pack_text(pk, "lines");
    msgpack_pack_array(pk, 1);
    pack_line(pk, "A", 1, -1);
    pack_text(pk, "id");
    pack_text(pk, "dupB");
    params_call(&p, "reserve", &r);
    expect_message(&r, "INVALID_ARGUMENT", "duplicate key 'id' in 'params'");
    expect_field(&r, "id");

    expect_not_found("reservation.get", "dupA");
    expect_not_found("reservation.get", "dupB");
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "reserved"), 0);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 0);

    /* the same request with the id once is fine */
    harness_call_ok(cli, "reserve", "{\"id\": \"dupA\", \"lines\": [{\"sku\": \"A\", \"qty\": 1}]}",
                    &r);
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "reserved"), 1);
    allot_reply_free(&r);
}

Test(params, a_key_given_twice_in_a_line_or_ship_to_or_stock_set_changes_nothing)
{
    setup_stock();
    allot_reply_t r = {0};
    params_t p;

    /* reserve {id, lines: [{sku, qty: 1, qty: 5}]} */
    msgpack_packer *pk = params_begin(&p, 2);
    pack_text(pk, "id");
    pack_text(pk, "r1");
    pack_text(pk, "lines");
    msgpack_pack_array(pk, 2);
    pack_line(pk, "B", 1, -1);
    pack_line(pk, "A", 1, 5);
    params_call(&p, "reserve", &r);
    expect_message(&r, "INVALID_ARGUMENT", "duplicate key 'qty' in 'lines'");
    expect_field(&r, "qty");
    expect_not_found("reservation.get", "r1");

    /* order.create {id, lines: [{sku: A, sku: B, qty: 1}]} */
    pk = params_begin(&p, 2);
    pack_text(pk, "id");
    pack_text(pk, "o1");
    pack_text(pk, "lines");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    pack_text(pk, "sku");
    pack_text(pk, "A");
    pack_text(pk, "sku");
    pack_text(pk, "B");
    pack_text(pk, "qty");
    msgpack_pack_int(pk, 1);
    params_call(&p, "order.create", &r);
    expect_message(&r, "INVALID_ARGUMENT", "duplicate key 'sku' in 'lines'");
    expect_not_found("order.get", "o1");

    /* reserve {id, lines, ship_to: {lat, lon, lon}} */
    pk = params_begin(&p, 3);
    pack_text(pk, "id");
    pack_text(pk, "r2");
    pack_text(pk, "lines");
    msgpack_pack_array(pk, 1);
    pack_line(pk, "A", 1, -1);
    pack_text(pk, "ship_to");
    msgpack_pack_map(pk, 3);
    pack_text(pk, "lat");
    msgpack_pack_double(pk, 52.5);
    pack_text(pk, "lon");
    msgpack_pack_double(pk, 13.4);
    pack_text(pk, "lon");
    msgpack_pack_double(pk, -13.4);
    params_call(&p, "reserve", &r);
    expect_message(&r, "INVALID_ARGUMENT", "duplicate key 'lon' in 'ship_to'");
    expect_not_found("reservation.get", "r2");

    /* stock.set {sku, location, on_hand: 5, on_hand: 7} */
    pk = params_begin(&p, 4);
    pack_text(pk, "sku");
    pack_text(pk, "A");
    pack_text(pk, "location");
    pack_text(pk, "L1");
    pack_text(pk, "on_hand");
    msgpack_pack_int(pk, 5);
    pack_text(pk, "on_hand");
    msgpack_pack_int(pk, 7);
    params_call(&p, "stock.set", &r);
    expect_message(&r, "INVALID_ARGUMENT", "duplicate key 'on_hand' in 'params'");

    cr_expect_eq(harness_stock_field(cli, "A", "L1", "on_hand"), 10);
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "reserved"), 0);
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "allocated"), 0);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 0);
    cr_expect_eq(harness_server_info_int(cli, "orders"), 0);
    allot_reply_free(&r);
}

/* ---- client bytes in error messages -------------------------------------------------------- */

Test(params, unknown_method_and_key_of_invalid_bytes_are_answered_in_valid_utf8)
{
    allot_reply_t r = {0};
    cr_assert_eq(allot_client_call(cli, "\xff\xfe", NULL, 0, &r), 0);
    expect_message(&r, "UNKNOWN_METHOD", "unknown method '\\xff\\xfe'");

    params_t p;
    msgpack_packer *pk = params_begin(&p, 1);
    pack_bytes(pk, "\xff\xfe", 2);
    msgpack_pack_int(pk, 1);
    params_call(&p, "ping", &r);
    expect_message(&r, "INVALID_ARGUMENT", "unknown key '\\xff\\xfe' in 'params'");

    /* an overlong '/' and a surrogate: each byte shown as an escape */
    pk = params_begin(&p, 1);
    pack_bytes(pk, "k\xc0\xaf\xed\xa0\x80", 6);
    msgpack_pack_int(pk, 1);
    params_call(&p, "server.info", &r);
    expect_message(&r, "INVALID_ARGUMENT", "unknown key 'k\\xc0\\xaf\\xed\\xa0\\x80' in 'params'");

    harness_call_ok(cli, "ping", NULL, &r); /* the connection is still fine */
    allot_reply_free(&r);
}

/* Keys and methods of 2-, 3- and 4-byte characters after 0..3 ASCII bytes, so that the bound on
 * what is shown falls on every byte of a character. */
Test(params, long_multibyte_keys_and_methods_are_cut_on_character_boundaries)
{
    static const char *const characters[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    allot_reply_t r = {0};
    char text[96];
    for (size_t c = 0; c < 3; c++) {
        size_t n = strlen(characters[c]);
        for (size_t ascii = 0; ascii <= 3; ascii++) {
            memset(text, 'a', ascii);
            size_t len = ascii;
            while (len + n <= 80) {
                memcpy(text + len, characters[c], n);
                len += n;
            }
            params_t p;
            msgpack_packer *pk = params_begin(&p, 1);
            pack_bytes(pk, text, len);
            msgpack_pack_int(pk, 1);
            params_call(&p, "ping", &r);
            const msgpack_object_str *m = error_checked(&r, "INVALID_ARGUMENT");
            cr_expect(m->size > 16 && memcmp(m->ptr + m->size - 16, "...' in 'params'", 16) == 0,
                      "character %zu after %zu ASCII: '%.*s'", c, ascii, (int)m->size, m->ptr);

            text[64] = '\0'; /* the longest method, which may end inside a character */
            cr_assert_eq(allot_client_call(cli, text, NULL, 0, &r), 0);
            m = error_checked(&r, "UNKNOWN_METHOD");
            cr_expect_gt(m->size, 20, "character %zu after %zu ASCII", c, ascii);
        }
    }
    allot_reply_free(&r);
}

Test(params, ids_with_control_characters_are_escaped_in_not_found_and_conflict_messages)
{
    setup_stock();
    allot_reply_t r = {0};
    params_t p;
    msgpack_packer *pk = params_begin(&p, 1);
    pack_text(pk, "id");
    pack_bytes(pk, "a\0b\\c\n", 6);
    params_call(&p, "reservation.get", &r);
    expect_message(&r, "NOT_FOUND", "reservation a\\x00b\\\\c\\x0a not found");

    /* a 128-byte id of euro signs: shown cut after whole characters */
    char id[129];
    for (size_t i = 0; i < 42; i++)
        memcpy(id + 3 * i, "\xe2\x82\xac", 3);
    memcpy(id + 126, "ab", 3);
    pk = params_begin(&p, 1);
    pack_text(pk, "id");
    pack_text(pk, id);
    params_call(&p, "order.get", &r);
    char expected[128] = "order ";
    memcpy(expected + 6, id, 63);
    strcpy(expected + 69, "... not found");
    expect_message(&r, "NOT_FOUND", expected);

    /* CONFLICT names the stored id the same way */
    harness_call_ok(cli, "reserve",
                    "{\"id\": \"c\\tc\", \"lines\": [{\"sku\": \"A\", \"qty\": 1}]}", &r);
    harness_call_json(cli, "reserve",
                      "{\"id\": \"c\\tc\", \"lines\": [{\"sku\": \"A\", \"qty\": 2}]}", &r);
    expect_message(&r, "CONFLICT", "reservation c\\x09c exists with a different request");
    allot_reply_free(&r);
}

/* ---- several faults: the first of the key check, then the getters in handler order --------- */

/* method(params_json) is refused with INVALID_ARGUMENT naming field with message. */
static void expect_first_fault(const char *method, const char *params_json, const char *field,
                               const char *message)
{
    allot_reply_t r = {0};
    harness_call_error(cli, method, params_json, "INVALID_ARGUMENT", &r);
    expect_message(&r, "INVALID_ARGUMENT", message);
    expect_field(&r, field);
    allot_reply_free(&r);
}

Test(params, hot_methods_with_several_faults_are_answered_with_the_first_in_handler_order)
{
    setup_stock();
    /* an unknown key wins over every bad value, wherever it is */
    expect_first_fault("reserve", "{\"ttl_s\": 0, \"id\": \"\", \"bogus\": 1}", "params",
                       "unknown key 'bogus' in 'params'");
    /* then the getters' order, not the map's: id before lines before ttl_s */
    expect_first_fault("reserve", "{\"ttl_s\": 0, \"lines\": [], \"id\": \"\"}", "id",
                       "field 'id' must be a non-empty id (1..128 bytes of UTF-8)");
    expect_first_fault("reserve",
                       "{\"method\": \"SHIP\", \"ttl_s\": 0, \"id\": \"r1\", "
                       "\"lines\": [{\"qty\": 0, \"sku\": \"A\"}]}",
                       "qty", "field 'qty' is out of range 1..1099511627776");
    expect_first_fault("reserve",
                       "{\"method\": \"SHIP\", \"ttl_s\": 0, \"id\": \"r1\", "
                       "\"lines\": [{\"qty\": 1, \"sku\": \"A\"}]}",
                       "ttl_s", "field 'ttl_s' is out of range 1..86400");
    /* avail.get: radius_km before the SKU ids (checked after every other argument) */
    expect_first_fault("avail.get", "{\"promise\": 1, \"skus\": [\"\"], \"radius_km\": 0}",
                       "radius_km", "field 'radius_km' is out of range 0.001..20038");
    expect_first_fault("avail.get", "{\"skus\": [\"\"], \"promise\": 1}", "promise",
                       "field 'promise' must be a boolean");
    expect_first_fault("avail.get", "{\"skus\": [\"A\", \"\"], \"min_index\": 0}", "skus",
                       "skus[1] must be an id (1..128 bytes of UTF-8)");
    /* order.create: the address before the instructions */
    expect_first_fault("order.create",
                       "{\"instructions\": 5, \"address\": [], \"id\": \"o1\", "
                       "\"lines\": [{\"sku\": \"A\", \"qty\": 1}]}",
                       "address", "address must be a map");
    expect_not_found("order.get", "o1");
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 0);
}

Test(params, hot_methods_read_every_argument_and_read_keys)
{
    setup_stock();
    allot_reply_t r = {0};
    harness_call_ok(
        cli, "reserve",
        "{\"id\": \"r1\", \"lines\": [{\"sku\": \"A\", \"qty\": 2, \"backorder\": null}],"
        " \"ttl_s\": 86400, \"method\": \"ship\", \"ship_to\": {\"lat\": 52.5, "
        "\"lon\": 13.4}, \"location\": null, \"policy\": \"priority\", \"partial\": "
        "false, \"replace\": false, \"customer\": \"u1\", \"token\": \"\"}",
        &r);
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "reserved"), 2);
    /* a read that names min_index is read by the getters, as before */
    harness_call_ok(cli, "avail.get", "{\"skus\": [\"A\", \"B\"], \"min_index\": 0}", &r);
    cr_expect_eq(harness_reply_int(&r, "items.0.available"), 8);
    cr_expect_eq(harness_reply_int(&r, "items.1.available"), 10);
    harness_call_ok(cli, "order.create",
                    "{\"id\": \"o1\", \"reservation\": \"r1\", \"customer\": \"u1\", "
                    "\"address\": {\"city\": \"Berlin\"}, \"instructions\": \"ring twice\"}",
                    &r);
    harness_call_ok(cli, "order.get", "{\"id\": \"o1\"}", &r);
    harness_expect_str_at(&r, "instructions", "ring twice");
    harness_expect_str_at(&r, "address.city", "Berlin");
    allot_reply_free(&r);
}
