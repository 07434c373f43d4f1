/* args_differential.h - the one-pass scan of the hot methods' arguments held to the generic path
 * (net/args_typed.h), for tests.
 *
 * Contract: args_differential(method, params, &outcome) runs, on one params map, the scan of
 * `method` (reserve, avail.get or order.create) and the generic path the dispatcher falls back to
 * (args_check_keys_also with the command's keys, plus the read keys for avail.get, then
 * args_<method>_get), and returns NULL when they agree, else what differs:
 *   - the scan accepts exactly when the generic path does (the scan declines an avail.get naming
 *     min_index or wait_ms, which the generic path reads: that counts as agreeing);
 *   - when both accept, the typed arguments are the same: every field, strings at the same
 *     address (both point into the request's bytes), addresses byte for byte.
 * outcome (may be NULL) gets whether the scan accepted and the generic path's error code. Header
 * only; used by tests/unit/test_net_args_typed.c and the request fuzzer.
 */
#ifndef ALLOT_TESTS_ARGS_DIFFERENTIAL_H
#define ALLOT_TESTS_ARGS_DIFFERENTIAL_H

#include <msgpack.h>
#include <stdbool.h>
#include <string.h>

#include "core/errors.h"
#include "net/args.h"
#include "net/args_typed.h"
#include "net/dispatch.h"

typedef struct args_differential_outcome {
    bool scanned;               /* the scan accepted */
    int generic;                /* the generic path's result: 0 or an ALLOT_E* code */
    allot_error_detail_t error; /* its error */
} args_differential_outcome_t;

static inline bool args_differential_str_same(allot_str_t a, allot_str_t b)
{
    return a.len == b.len && (a.len == 0 || a.ptr == b.ptr);
}

static inline bool args_differential_lines_same(const allot_line_input_t *a,
                                                const allot_line_input_t *b, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        if (!args_differential_str_same(a[i].sku, b[i].sku) || a[i].qty != b[i].qty)
            return false;
    return true;
}

static inline bool args_differential_place_same(bool has_a, double lat_a, double lon_a, bool has_b,
                                                double lat_b, double lon_b)
{
    return has_a == has_b && memcmp(&lat_a, &lat_b, sizeof(double)) == 0 &&
           memcmp(&lon_a, &lon_b, sizeof(double)) == 0;
}

static inline const char *args_differential_reserve(const args_reserve_t *s,
                                                    const args_reserve_t *g)
{
    const allot_reserve_request_t *a = &s->request, *b = &g->request;
    if (!args_differential_str_same(a->id, b->id))
        return "reserve: id";
    if (a->line_count != b->line_count ||
        !args_differential_lines_same(a->lines, b->lines, a->line_count) ||
        memcmp(a->backorder, b->backorder, a->line_count * sizeof(bool)) != 0)
        return "reserve: lines";
    if (a->ttl_s != b->ttl_s || a->method != b->method || a->policy != b->policy ||
        a->partial != b->partial || a->replace != b->replace)
        return "reserve: ttl_s, method, policy, partial or replace";
    if (!args_differential_place_same(a->has_ship_to, a->lat, a->lon, b->has_ship_to, b->lat,
                                      b->lon))
        return "reserve: ship_to";
    if (!args_differential_str_same(a->location, b->location) ||
        !args_differential_str_same(a->customer, b->customer) ||
        !args_differential_str_same(a->token, b->token))
        return "reserve: location, customer or token";
    if (a->lines != s->lines || a->backorder != s->backorder)
        return "reserve: lines not in its arguments";
    return NULL;
}

static inline const char *args_differential_avail(const args_avail_t *s, const args_avail_t *g)
{
    const allot_avail_request_t *a = &s->request, *b = &g->request;
    if (s->sku_count != g->sku_count)
        return "avail.get: sku count";
    for (uint32_t i = 0; i < s->sku_count; i++)
        if (!args_differential_str_same(s->skus[i], g->skus[i]))
            return "avail.get: skus";
    if (s->detail != g->detail || s->promise != g->promise || a->method != b->method)
        return "avail.get: detail, promise or method";
    if (!args_differential_place_same(a->has_ship_to, a->lat, a->lon, b->has_ship_to, b->lat,
                                      b->lon) ||
        memcmp(&a->radius_km, &b->radius_km, sizeof(double)) != 0)
        return "avail.get: ship_to or radius_km";
    if (!args_differential_str_same(a->location, b->location))
        return "avail.get: location";
    return NULL;
}

static inline const char *args_differential_order_create(const args_order_create_t *s,
                                                         const args_order_create_t *g,
                                                         allot_str_t scanned_address)
{
    const allot_order_create_request_t *a = &s->request, *b = &g->request;
    if (!args_differential_str_same(a->id, b->id) ||
        !args_differential_str_same(a->customer, b->customer) ||
        !args_differential_str_same(a->reservation, b->reservation))
        return "order.create: id, customer or reservation";
    if (a->line_count != b->line_count ||
        !args_differential_lines_same(a->lines, b->lines, a->line_count) || a->lines != s->lines)
        return "order.create: lines";
    if (a->method != b->method || a->policy != b->policy)
        return "order.create: method or policy";
    if (!args_differential_place_same(a->has_ship_to, a->lat, a->lon, b->has_ship_to, b->lat,
                                      b->lon))
        return "order.create: ship_to";
    if (!args_differential_str_same(a->location, b->location) ||
        !args_differential_str_same(a->instructions, b->instructions))
        return "order.create: location or instructions";
    if (scanned_address.len != b->address.len ||
        memcmp(scanned_address.ptr, b->address.ptr, b->address.len) != 0)
        return "order.create: address";
    return NULL;
}

/* Whether params (a map) names the key. */
static inline bool args_differential_names(const msgpack_object *params, const char *key)
{
    size_t len = strlen(key);
    for (uint32_t i = 0; i < params->via.map.size; i++) {
        const msgpack_object *k = &params->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
            memcmp(k->via.str.ptr, key, len) == 0)
            return true;
    }
    return false;
}

/* The scan's typed arguments (the address copied out of the shared buffer before the generic
 * path packs it again), then the generic path's. */
static inline const char *args_differential(const char *method, const msgpack_object *params,
                                            args_differential_outcome_t *outcome)
{
    static const char *const read_keys[] = {"min_index", "wait_ms", NULL};
    static args_typed_t scanned, generic;
    static char address[ALLOT_ORDER_ADDRESS_BYTES_MAX];
    args_differential_outcome_t local;
    if (outcome == NULL)
        outcome = &local;
    const command_t *command = command_lookup(method, strlen(method));
    bool avail = strcmp(method, "avail.get") == 0, reserve = strcmp(method, "reserve") == 0;
    allot_str_t scanned_address = {"", 0};
    if (reserve) {
        outcome->scanned = args_reserve_scan(params, &scanned.reserve);
    } else if (avail) {
        outcome->scanned = args_avail_scan(params, &scanned.avail);
    } else {
        outcome->scanned = args_order_create_scan(params, &scanned.order_create);
        if (outcome->scanned &&
            scanned.order_create.request.address.len > ALLOT_ORDER_ADDRESS_BYTES_MAX)
            return "the scan accepts an address over the limit";
        if (outcome->scanned && scanned.order_create.request.address.len > 0) {
            scanned_address.len = scanned.order_create.request.address.len;
            memcpy(address, scanned.order_create.request.address.ptr, scanned_address.len);
            scanned_address.ptr = address;
        }
    }
    allot_error_detail_clear(&outcome->error);
    outcome->generic = args_check_keys_also(params, command->allowed_keys, avail ? read_keys : NULL,
                                            "params", &outcome->error);
    if (outcome->generic == 0)
        outcome->generic =
            reserve ? args_reserve_get(params, &generic.reserve, &outcome->error)
            : avail ? args_avail_get(params, &generic.avail, &outcome->error)
                    : args_order_create_get(params, &generic.order_create, &outcome->error);
    if (outcome->scanned && outcome->generic != 0)
        return "the scan accepts what the generic path refuses";
    if (!outcome->scanned && outcome->generic == 0) {
        bool waits = avail && (args_differential_names(params, "min_index") ||
                               args_differential_names(params, "wait_ms"));
        return waits ? NULL : "the scan declines what the generic path accepts";
    }
    if (!outcome->scanned)
        return NULL;
    if (reserve)
        return args_differential_reserve(&scanned.reserve, &generic.reserve);
    if (avail)
        return args_differential_avail(&scanned.avail, &generic.avail);
    return args_differential_order_create(&scanned.order_create, &generic.order_create,
                                          scanned_address);
}

#endif
