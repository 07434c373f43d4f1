/* harness_reply.c - fixture, JSON and reply-path helpers shared by the integration tests. */
#include "tests/integration/harness_reply.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void harness_fixture_up(harness_server_t **srv, allot_client_t **cli)
{
    *srv = harness_server_start(NULL);
    *cli = harness_connect(*srv);
}

void harness_fixture_down(harness_server_t **srv, allot_client_t **cli)
{
    allot_client_close(*cli);
    *cli = NULL;
    if (*srv != NULL && (*srv)->pid != 0)
        harness_server_stop(*srv); /* asserts a clean exit: no crash, no sanitizer report */
    harness_server_destroy(*srv);
    *srv = NULL;
}

const char *harness_json(const char *fmt, ...)
{
    static char buffers[HARNESS_JSON_BUFFERS][HARNESS_JSON_BYTES];
    static unsigned next;
    char *b = buffers[next++ % HARNESS_JSON_BUFFERS];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, HARNESS_JSON_BYTES, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && n < HARNESS_JSON_BYTES, "harness_json: text too long");
    for (char *p = b; *p != '\0'; p++)
        if (*p == '\'')
            *p = '"';
    return b;
}

const msgpack_object *harness_reply_at(const allot_reply_t *r, const char *path)
{
    const msgpack_object *o = r->is_error ? &r->error : &r->result;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *seg = strtok_r(buf, ".", &save); seg != NULL; seg = strtok_r(NULL, ".", &save)) {
        if (o == NULL)
            return NULL;
        if (isdigit((unsigned char)seg[0])) {
            unsigned long i = strtoul(seg, NULL, 10);
            if (o->type != MSGPACK_OBJECT_ARRAY || i >= o->via.array.size)
                return NULL;
            o = &o->via.array.ptr[i];
        } else {
            o = allot_object_map_get(o, seg);
        }
    }
    return o;
}

int64_t harness_reply_int(const allot_reply_t *r, const char *path)
{
    const msgpack_object *o = harness_reply_at(r, path);
    cr_assert_not_null(o, "no %s in reply", path);
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    cr_assert_eq(o->type, MSGPACK_OBJECT_NEGATIVE_INTEGER, "%s is not an integer", path);
    return o->via.i64;
}

double harness_reply_num(const allot_reply_t *r, const char *path)
{
    const msgpack_object *o = harness_reply_at(r, path);
    cr_assert_not_null(o, "no %s in reply", path);
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        return o->via.f64;
    return (double)harness_reply_int(r, path);
}

uint32_t harness_reply_len(const allot_reply_t *r, const char *path)
{
    const msgpack_object *o = harness_reply_at(r, path);
    cr_assert_not_null(o, "no %s in reply", path);
    cr_assert_eq(o->type, MSGPACK_OBJECT_ARRAY, "%s is not an array", path);
    return o->via.array.size;
}

char *harness_object_json(const msgpack_object *o)
{
    allot_reply_t fake = {.result = *o};
    return harness_reply_json(&fake);
}

const char *harness_reply_text(const allot_reply_t *r, char *buf, size_t bytes)
{
    char *text = harness_reply_json(r);
    snprintf(buf, bytes, "%s", text);
    free(text);
    return buf;
}

void harness_expect_json_at(const allot_reply_t *r, const char *path, const char *expected)
{
    const msgpack_object *o = harness_reply_at(r, path);
    cr_assert_not_null(o, "no %s in reply", path);
    char *got = harness_object_json(o);
    const char *want = harness_json("%s", expected);
    cr_expect_str_eq(got, want, "%s:\n  got  %s\n  want %s", path, got, want);
    free(got);
}

void harness_expect_str_at(const allot_reply_t *r, const char *path, const char *expected)
{
    const msgpack_object *o = harness_reply_at(r, path);
    cr_assert_not_null(o, "no %s in reply", path);
    cr_expect(allot_object_str_equal(o, expected), "%s is not \"%s\"", path, expected);
}

void harness_expect_error_names(const allot_reply_t *r, const char *name)
{
    const msgpack_object *field = harness_reply_at(r, "field");
    bool named = strstr(r->message, name) != NULL;
    if (field != NULL && field->type == MSGPACK_OBJECT_STR)
        named = named || (field->via.str.size == strlen(name) &&
                          memcmp(field->via.str.ptr, name, field->via.str.size) == 0);
    cr_expect(named, "error does not name '%s': %s", name, r->message);
}

void harness_put_location(allot_client_t *c, const char *id, const char *fields)
{
    allot_reply_t r = {0};
    harness_call_ok(c, "location.put", harness_json("{'id':'%s',%s}", id, fields), &r);
    allot_reply_free(&r);
}

void harness_set_stock(allot_client_t *c, const char *sku, const char *location, int64_t on_hand)
{
    allot_reply_t r = {0};
    harness_call_ok(c, "stock.set",
                    harness_json("{'sku':'%s','location':'%s','on_hand':%lld}", sku, location,
                                 (long long)on_hand),
                    &r);
    allot_reply_free(&r);
}

int64_t harness_stock_field(allot_client_t *c, const char *sku, const char *location,
                            const char *field)
{
    allot_reply_t r = {0};
    harness_call_ok(c, "stock.get", harness_json("{'sku':'%s'}", sku), &r);
    int64_t value = -1;
    if (location == NULL) {
        value = harness_reply_int(&r, field);
    } else {
        uint32_t n = harness_reply_len(&r, "positions");
        for (uint32_t i = 0; i < n; i++) {
            char path[64];
            snprintf(path, sizeof path, "positions.%u.location", i);
            if (allot_object_str_equal(harness_reply_at(&r, path), location)) {
                snprintf(path, sizeof path, "positions.%u.%s", i, field);
                value = harness_reply_int(&r, path);
            }
        }
    }
    allot_reply_free(&r);
    return value;
}

int64_t harness_avail_of(allot_client_t *c, const char *params_json)
{
    allot_reply_t r = {0};
    harness_call_ok(c, "avail.get", params_json, &r);
    int64_t v = harness_reply_int(&r, "items.0.available");
    allot_reply_free(&r);
    return v;
}

/* The integer at path of a fresh reply to method (no params). */
static int64_t server_call_int(allot_client_t *c, const char *method, const char *path)
{
    allot_reply_t r = {0};
    harness_call_ok(c, method, "{}", &r);
    int64_t v = harness_reply_int(&r, path);
    allot_reply_free(&r);
    return v;
}

int64_t harness_server_info_int(allot_client_t *c, const char *field)
{
    return server_call_int(c, "server.info", field);
}

int64_t harness_server_stats_int(allot_client_t *c, const char *path)
{
    return server_call_int(c, "server.stats", path);
}
