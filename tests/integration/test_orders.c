/* test_orders.c - orders through the real allotd: the whole lifecycle with stock effects,
 * returns, order.list paging, and orders with their history surviving kill -9 (WAL replay, and
 * checkpoint + WAL). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static const msgpack_object *field(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = allot_object_map_get(map, key);
    cr_assert_not_null(v, "no %s in the reply", key);
    return v;
}

static int64_t field_int(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = field(map, key);
    cr_assert(v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                  v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER,
              "%s is not an integer", key);
    return v->via.i64;
}

static void assert_field_str(const msgpack_object *map, const char *key, const char *expected)
{
    const msgpack_object *v = field(map, key);
    cr_assert(allot_object_str_equal(v, expected), "%s is not \"%s\"", key, expected);
}

static const msgpack_object *array_at(const msgpack_object *array, uint32_t i)
{
    cr_assert_eq(array->type, MSGPACK_OBJECT_ARRAY);
    cr_assert_lt(i, array->via.array.size);
    return &array->via.array.ptr[i];
}

/* stock.get of one SKU: the totals. */
static void stock_of(allot_client_t *c, const char *sku, int64_t *on_hand, int64_t *allocated)
{
    char params[64];
    snprintf(params, sizeof(params), "{\"sku\":\"%s\"}", sku);
    allot_reply_t r = {0};
    harness_call_ok(c, "stock.get", params, &r);
    *on_hand = field_int(&r.result, "on_hand");
    *allocated = field_int(&r.result, "allocated");
    allot_reply_free(&r);
}

static void call_ok(allot_client_t *c, const char *method, const char *params)
{
    allot_reply_t r = {0};
    harness_call_ok(c, method, params, &r);
    allot_reply_free(&r);
}

static void seed(allot_client_t *c)
{
    call_ok(c, "location.put",
            "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":52.5,\"lon\":13.4,\"priority\":1}");
    call_ok(c, "location.put",
            "{\"id\":\"W2\",\"type\":\"store\",\"lat\":48.1,\"lon\":11.6,\"priority\":2}");
    call_ok(c, "stock.set", "{\"sku\":\"A\",\"location\":\"W1\",\"on_hand\":10}");
    call_ok(c, "stock.set", "{\"sku\":\"A\",\"location\":\"W2\",\"on_hand\":10}");
}

/* ---- the lifecycle ------------------------------------------------------------------------- */

Test(orders, full_lifecycle_moves_stock_and_records_history, .timeout = 60)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    seed(c);
    allot_reply_t r = {0};
    int64_t on_hand, allocated;
    call_ok(c, "reserve", "{\"id\":\"cart-1\",\"lines\":[{\"sku\":\"A\",\"qty\":3}]}");
    harness_call_ok(
        c, "order.create",
        "{\"id\":\"o-1\",\"customer\":\"c-1\",\"reservation\":\"cart-1\","
        "\"address\":{\"city\":\"Berlin\",\"zip\":\"10115\"},\"instructions\":\"gate\"}",
        &r);
    assert_field_str(&r.result, "state", "created");
    assert_field_str(&r.result, "payment", "none");
    const msgpack_object *shipment = array_at(field(&r.result, "shipments"), 0);
    assert_field_str(shipment, "id", "S1");
    assert_field_str(shipment, "location", "W1");
    assert_field_str(shipment, "state", "allocated");
    assert_field_str(field(&r.result, "address"), "city", "Berlin");
    stock_of(c, "A", &on_hand, &allocated);
    cr_assert_eq(allocated, 3);
    harness_call_error(c, "reservation.get", "{\"id\":\"cart-1\"}", "NOT_FOUND", &r);
    harness_call_error(c, "order.release", "{\"id\":\"o-1\"}", "INVALID_TRANSITION", &r);
    assert_field_str(&r.error, "state", "created");
    call_ok(c, "order.pay", "{\"id\":\"o-1\",\"status\":\"authorized\"}");
    call_ok(c, "order.release", "{\"id\":\"o-1\"}");
    harness_call_error(c, "order.modify", "{\"id\":\"o-1\",\"instructions\":\"x\"}",
                       "INVALID_TRANSITION", &r);
    harness_call_ok(c, "shipment.ship",
                    "{\"order\":\"o-1\",\"shipment\":\"S1\",\"tracking\":\"T1\"}", &r);
    assert_field_str(&r.result, "state", "shipped");
    stock_of(c, "A", &on_hand, &allocated);
    cr_assert_eq(on_hand, 17);
    cr_assert_eq(allocated, 0);
    harness_call_ok(c, "shipment.deliver", "{\"order\":\"o-1\",\"shipment\":\"S1\"}", &r);
    assert_field_str(&r.result, "state", "delivered");
    harness_call_error(c, "return.create",
                       "{\"id\":\"ret-0\",\"order\":\"o-1\",\"lines\":[{\"sku\":\"A\",\"qty\":4}]}",
                       "INVALID_ARGUMENT", &r);
    harness_call_ok(c, "return.create",
                    "{\"id\":\"ret-1\",\"order\":\"o-1\",\"lines\":[{\"sku\":\"A\",\"qty\":2}],"
                    "\"reason\":\"too big\"}",
                    &r);
    assert_field_str(&r.result, "state", "requested");
    assert_field_str(&r.result, "order", "o-1");
    cr_assert_not_null(allot_object_map_get(&r.result, "label"));
    call_ok(c, "return.create",
            "{\"id\":\"ret-2\",\"order\":\"o-1\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}");
    harness_call_ok(c, "return.receive",
                    "{\"id\":\"ret-1\",\"location\":\"W1\",\"disposition\":\"restock\"}", &r);
    assert_field_str(&r.result, "state", "received");
    stock_of(c, "A", &on_hand, &allocated);
    cr_assert_eq(on_hand, 19, "restock adds to on_hand");
    call_ok(c, "return.receive",
            "{\"id\":\"ret-2\",\"location\":\"W1\",\"disposition\":\"damaged\"}");
    stock_of(c, "A", &on_hand, &allocated);
    cr_assert_eq(on_hand, 19, "damaged does not");
    harness_call_ok(c, "order.get", "{\"id\":\"o-1\"}", &r);
    const msgpack_object *history = field(&r.result, "history");
    cr_assert_eq(history->via.array.size, 9);
    assert_field_str(array_at(history, 0), "event", "order.create");
    assert_field_str(array_at(history, 0), "reservation", "cart-1");
    assert_field_str(array_at(history, 3), "event", "shipment.ship");
    assert_field_str(array_at(history, 3), "tracking", "T1");
    harness_call_ok(c, "server.info", "{}", &r);
    cr_assert_eq(field_int(&r.result, "orders"), 1);
    allot_reply_free(&r);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(orders, reject_moves_the_shipment_and_cancel_frees_the_units, .timeout = 60)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    seed(c);
    allot_reply_t r = {0};
    int64_t on_hand, allocated;
    call_ok(c, "order.create",
            "{\"id\":\"o-2\",\"customer\":\"c-2\",\"lines\":[{\"sku\":\"A\",\"qty\":4}]}");
    harness_call_ok(c, "shipment.reject",
                    "{\"order\":\"o-2\",\"shipment\":\"S1\",\"reason\":\"shelf empty\"}", &r);
    const msgpack_object *shipments = field(&r.result, "shipments");
    assert_field_str(array_at(shipments, 0), "state", "rejected");
    assert_field_str(array_at(shipments, 0), "reason", "shelf empty");
    assert_field_str(array_at(shipments, 1), "location", "W2");
    harness_call_error(c, "shipment.reject", "{\"order\":\"o-2\",\"shipment\":\"S2\"}",
                       "INSUFFICIENT_STOCK", &r);
    stock_of(c, "A", &on_hand, &allocated);
    cr_assert_eq(allocated, 4);
    call_ok(c, "order.cancel", "{\"id\":\"o-2\",\"reason\":\"fraud\"}");
    call_ok(c, "order.cancel", "{\"id\":\"o-2\"}"); /* repeat: no-op success */
    stock_of(c, "A", &on_hand, &allocated);
    cr_assert_eq(allocated, 0);
    harness_call_error(c, "order.get", "{\"id\":\"nope\"}", "NOT_FOUND", &r);
    harness_call_error(c, "order.get", "{\"id\":\"o-2\",\"bogus\":1}", "INVALID_ARGUMENT", &r);
    allot_reply_free(&r);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* ---- order.list ----------------------------------------------------------------------------- */

Test(orders, list_pages_newest_first, .timeout = 60)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    seed(c);
    char params[160];
    for (int i = 0; i < 5; i++) {
        snprintf(params, sizeof(params),
                 "{\"id\":\"L-%d\",\"customer\":\"c-9\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}", i);
        call_ok(c, "order.create", params);
    }
    call_ok(c, "order.create",
            "{\"id\":\"other\",\"customer\":\"c-8\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}");
    allot_reply_t r = {0};
    char seen[5][8];
    int n = 0;
    char after[32] = "";
    for (int page = 0; page < 3; page++) {
        if (after[0] == '\0')
            snprintf(params, sizeof(params), "{\"customer\":\"c-9\",\"limit\":2}");
        else
            snprintf(params, sizeof(params), "{\"customer\":\"c-9\",\"limit\":2,\"after\":\"%s\"}",
                     after);
        harness_call_ok(c, "order.list", params, &r);
        const msgpack_object *orders = field(&r.result, "orders");
        for (uint32_t i = 0; i < orders->via.array.size; i++) {
            const msgpack_object *id = field(array_at(orders, i), "id");
            cr_assert_lt(n, 5);
            snprintf(seen[n++], sizeof(seen[0]), "%.*s", (int)id->via.str.size, id->via.str.ptr);
        }
        const msgpack_object *next = field(&r.result, "next_after");
        if (next->type == MSGPACK_OBJECT_NIL)
            break;
        snprintf(after, sizeof(after), "%.*s", (int)next->via.str.size, next->via.str.ptr);
    }
    cr_assert_eq(n, 5);
    /* created in order within one loop iteration or later: newest first = highest created_ms,
     * ties by id descending, so L-4 .. L-0 */
    for (int i = 0; i < 5; i++) {
        char expected[8];
        snprintf(expected, sizeof(expected), "L-%d", 4 - i);
        cr_assert_str_eq(seen[i], expected);
    }
    harness_call_error(c, "order.list", "{\"customer\":\"c-9\",\"limit\":101}", "INVALID_ARGUMENT",
                       &r);
    harness_call_error(c, "order.list", "{\"customer\":\"c-9\",\"after\":\"other\"}",
                       "INVALID_ARGUMENT", &r);
    allot_reply_free(&r);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* The ids of an order.list page, comma-separated, into buf; the cursor into after ("" at the
 * end). */
static void list_ids(allot_client_t *c, const char *params, char *buf, size_t bytes, char *after,
                     size_t after_bytes)
{
    allot_reply_t r = {0};
    harness_call_ok(c, "order.list", params, &r);
    const msgpack_object *orders = field(&r.result, "orders");
    buf[0] = '\0';
    for (uint32_t i = 0; i < orders->via.array.size; i++) {
        const msgpack_object *id = field(array_at(orders, i), "id");
        size_t used = strlen(buf);
        snprintf(buf + used, bytes - used, "%s%.*s", i ? "," : "", (int)id->via.str.size,
                 id->via.str.ptr);
    }
    const msgpack_object *next = field(&r.result, "next_after");
    snprintf(after, after_bytes, "%.*s",
             next->type == MSGPACK_OBJECT_STR ? (int)next->via.str.size : 0,
             next->type == MSGPACK_OBJECT_STR ? next->via.str.ptr : "");
    allot_reply_free(&r);
}

Test(orders, list_without_customer_pages_every_order_newest_first_filtered_by_state, .timeout = 60)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    seed(c);
    char params[160];
    for (int i = 0; i < 5; i++) {
        snprintf(params, sizeof(params),
                 "{\"id\":\"M-%d\",\"customer\":\"c-%d\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}", i,
                 i % 2);
        call_ok(c, "order.create", params);
    }
    call_ok(c, "order.hold", "{\"id\":\"M-1\",\"reason\":\"fraud check\"}");
    call_ok(c, "order.hold", "{\"id\":\"M-3\",\"reason\":\"address\"}");
    call_ok(c, "order.pay", "{\"id\":\"M-2\",\"status\":\"authorized\"}");
    char ids[256], after[32];
    list_ids(c, "{}", ids, sizeof(ids), after, sizeof(after));
    cr_expect_str_eq(ids, "M-4,M-3,M-2,M-1,M-0");
    cr_expect_str_eq(after, "");
    list_ids(c, "{\"limit\":2}", ids, sizeof(ids), after, sizeof(after));
    cr_expect_str_eq(ids, "M-4,M-3");
    cr_expect_str_eq(after, "M-3");
    list_ids(c, "{\"limit\":2,\"after\":\"M-3\"}", ids, sizeof(ids), after, sizeof(after));
    cr_expect_str_eq(ids, "M-2,M-1");
    list_ids(c, "{\"limit\":2,\"after\":\"M-1\"}", ids, sizeof(ids), after, sizeof(after));
    cr_expect_str_eq(ids, "M-0");
    cr_expect_str_eq(after, "");
    list_ids(c, "{\"state\":\"on_hold\"}", ids, sizeof(ids), after, sizeof(after));
    cr_expect_str_eq(ids, "M-3,M-1");
    list_ids(c, "{\"state\":\"created\",\"payment\":\"authorized\"}", ids, sizeof(ids), after,
             sizeof(after));
    cr_expect_str_eq(ids, "M-2", "orders paid but not released");
    allot_reply_t r = {0};
    harness_call_error(c, "order.list", "{\"state\":\"lost\"}", "INVALID_ARGUMENT", &r);
    harness_call_error(c, "order.list", "{\"customer\":\"c-1\",\"state\":\"on_hold\"}",
                       "INVALID_ARGUMENT", &r);
    harness_call_error(c, "order.list", "{\"after\":\"nope\"}", "INVALID_ARGUMENT", &r);
    allot_reply_free(&r);
    allot_client_close(c);
    harness_server_destroy(s);
}

/* ---- durability ----------------------------------------------------------------------------- */

static char *order_json(allot_client_t *c, const char *id)
{
    char params[64];
    snprintf(params, sizeof(params), "{\"id\":\"%s\"}", id);
    allot_reply_t r = {0};
    harness_call_ok(c, "order.get", params, &r);
    char *json = harness_reply_json(&r);
    allot_reply_free(&r);
    return json;
}

static void restart_after_kill9(harness_server_t *s)
{
    harness_server_kill9(s);
    cr_assert(harness_server_restart_try(s, HARNESS_START_TIMEOUT_MS), "restart failed: %s",
              harness_server_log(s));
}

Test(orders, orders_and_history_survive_kill9_via_wal_and_checkpoint, .timeout = 90)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    seed(c);
    call_ok(c, "order.create",
            "{\"id\":\"d-1\",\"customer\":\"c-3\",\"lines\":[{\"sku\":\"A\",\"qty\":2}]}");
    call_ok(c, "order.hold", "{\"id\":\"d-1\",\"reason\":\"review\"}");
    call_ok(c, "order.unhold", "{\"id\":\"d-1\"}");
    call_ok(c, "order.pay", "{\"id\":\"d-1\",\"status\":\"captured\"}");
    call_ok(c, "order.release", "{\"id\":\"d-1\"}");
    call_ok(c, "shipment.ship", "{\"order\":\"d-1\",\"shipment\":\"S1\",\"tracking\":\"TT\"}");
    char *before = order_json(c, "d-1");
    int64_t on_hand, allocated;
    stock_of(c, "A", &on_hand, &allocated);
    allot_client_close(c);

    restart_after_kill9(s); /* WAL replay only */
    c = harness_connect(s);
    char *after = order_json(c, "d-1");
    cr_assert_str_eq(before, after);
    free(after);
    int64_t on_hand2, allocated2;
    stock_of(c, "A", &on_hand2, &allocated2);
    cr_assert_eq(on_hand2, on_hand);
    cr_assert_eq(allocated2, allocated);

    call_ok(c, "server.checkpoint", "{}");
    call_ok(c, "shipment.deliver", "{\"order\":\"d-1\",\"shipment\":\"S1\"}");
    call_ok(c, "order.create",
            "{\"id\":\"d-2\",\"customer\":\"c-3\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}");
    free(before);
    before = order_json(c, "d-1");
    char *before2 = order_json(c, "d-2");
    allot_client_close(c);

    restart_after_kill9(s); /* checkpoint (LMDB) + WAL after it */
    c = harness_connect(s);
    after = order_json(c, "d-1");
    cr_assert_str_eq(before, after);
    free(after);
    after = order_json(c, "d-2");
    cr_assert_str_eq(before2, after);
    allot_reply_t r = {0};
    harness_call_ok(c, "order.list", "{\"customer\":\"c-3\"}", &r);
    cr_assert_eq(field(&r.result, "orders")->via.array.size, 2);
    allot_reply_free(&r);
    free(after);
    free(before);
    free(before2);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* ---- reject growing the order ------------------------------------------------------------- */

/* Four shipments fill the order's shipment array: the reject grows it while it reads the rejected
 * shipment (this once took the server down with SIGSEGV). */
Test(orders, reject_of_the_first_of_four_shipments_reroutes_and_the_server_stays_up, .timeout = 60)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    char params[160];
    for (int i = 0; i < 5; i++) {
        snprintf(params, sizeof(params),
                 "{\"id\":\"L%d\",\"type\":\"warehouse\",\"lat\":50.0,\"lon\":8.0,\"priority\":%d}",
                 i, i);
        call_ok(c, "location.put", params);
        snprintf(params, sizeof(params), "{\"sku\":\"X\",\"location\":\"L%d\",\"on_hand\":1}", i);
        call_ok(c, "stock.set", params);
    }
    allot_reply_t r = {0};
    harness_call_ok(c, "order.create",
                    "{\"id\":\"o1\",\"lines\":[{\"sku\":\"X\",\"qty\":4}],\"policy\":\"priority\"}",
                    &r);
    cr_assert_eq(field(&r.result, "shipments")->via.array.size, 4);
    harness_call_ok(c, "shipment.reject", "{\"order\":\"o1\",\"shipment\":\"S1\"}", &r);
    const msgpack_object *shipments = field(&r.result, "shipments");
    cr_assert_eq(shipments->via.array.size, 5);
    assert_field_str(array_at(shipments, 0), "state", "rejected");
    assert_field_str(array_at(shipments, 4), "location", "L4");
    assert_field_str(array_at(shipments, 4), "state", "allocated");
    int64_t on_hand, allocated;
    stock_of(c, "X", &on_hand, &allocated);
    cr_assert_eq(allocated, 4);
    char *before = order_json(c, "o1");
    allot_client_close(c);

    restart_after_kill9(s); /* the reject replays from the WAL */
    c = harness_connect(s);
    char *after = order_json(c, "o1");
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    stock_of(c, "X", &on_hand, &allocated);
    cr_assert_eq(allocated, 4);
    allot_reply_free(&r);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
