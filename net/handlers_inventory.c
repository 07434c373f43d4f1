/* handlers_inventory.c - RPC handlers for locations, stock, availability and reservations. */
#include "args.h"
#include "args_typed.h"
#include "command.h"
#include "core/inventory.h"
#include "core/reservation.h"
#include "core/supply.h"
#include "core/state.h"
#include "pack.h"
#include "promise_wire.h"

/* Single-threaded loop: scratch for replies that list up to every location. */
static uint32_t location_indices[ALLOT_LOCATIONS_MAX];
static allot_position_view_t position_views[ALLOT_LOCATIONS_MAX];
static allot_avail_location_t avail_locations[ALLOT_LOCATIONS_MAX];
static uint32_t avail_sku_indices[ALLOT_AVAIL_SKUS_MAX];

/* ---- shared packers -------------------------------------------------------------------------- */

static void pack_location(msgpack_packer *pk, const allot_location_t *l)
{
    msgpack_pack_map(pk, 10 + PROMISE_CALENDAR_FIELDS);
    pack_key_str(pk, "id", allot_location_id(l));
    pack_key_cstr(pk, "type", allot_location_type_names[l->type]);
    pack_key_double(pk, "lat", l->lat);
    pack_key_double(pk, "lon", l->lon);
    pack_key_int(pk, "priority", l->priority);
    pack_key_bool(pk, "ship", l->ship);
    pack_key_bool(pk, "pickup", l->pickup);
    pack_key_double(pk, "same_day_radius_km", l->same_day_radius_km);
    pack_key_int(pk, "daily_capacity", l->daily_capacity);
    pack_key_bool(pk, "active", l->active);
    promise_calendar_pack(pk, &l->calendar);
}

static void pack_position(msgpack_packer *pk, const allot_stock_result_t *r)
{
    msgpack_pack_map(pk, r->stale ? 8 : 7);
    pack_key_str(pk, "sku", r->position.sku);
    pack_key_str(pk, "location", r->position.location);
    pack_key_int(pk, "on_hand", r->position.on_hand);
    pack_key_int(pk, "reserved", r->position.reserved);
    pack_key_int(pk, "allocated", r->position.allocated);
    pack_key_int(pk, "safety_stock", r->position.safety_stock);
    pack_key_int(pk, "available", r->position.available);
    if (r->stale)
        pack_key_bool(pk, "stale", true);
}

/* A backorder hold: {supply, qty, eta_ms} (the supply's eta now). */
static void pack_supply_allocation(msgpack_packer *pk, const allot_state_t *state,
                                   const allot_reservation_t *r,
                                   const allot_reservation_allocation_t *a)
{
    allot_str_t supply = allot_reservation_allocation_supply(r, a);
    msgpack_pack_map(pk, 3);
    pack_key_str(pk, "supply", supply);
    pack_key_int(pk, "qty", a->qty);
    pack_key_int(pk, "eta_ms", allot_supply_eta_ms(state, supply));
}

static void pack_reservation_lines(msgpack_packer *pk, const allot_state_t *state,
                                   const allot_reservation_t *r)
{
    pack_cstr(pk, "lines");
    msgpack_pack_array(pk, r->line_count);
    for (uint32_t i = 0; i < r->line_count; i++) {
        const allot_reservation_line_t *line = &allot_reservation_lines(r)[i];
        msgpack_pack_map(pk, 3);
        pack_key_str(pk, "sku", allot_sku_id(allot_sku_at(state, line->sku)));
        pack_key_int(pk, "qty", line->qty_held);
        pack_cstr(pk, "allocations");
        msgpack_pack_array(pk, line->allocation_count);
        for (uint32_t k = 0; k < line->allocation_count; k++) {
            const allot_reservation_allocation_t *a =
                &allot_reservation_allocations(r)[line->allocation_first + k];
            if (a->location == ALLOT_LOCATION_SUPPLY) {
                pack_supply_allocation(pk, state, r, a);
                continue;
            }
            msgpack_pack_map(pk, 2);
            pack_key_str(pk, "location", allot_location_id(allot_location_at(state, a->location)));
            pack_key_int(pk, "qty", a->qty);
        }
    }
}

/* ---- a reserve's reply in one piece ---------------------------------------------------------- */

/* The most bytes a piece of the reply takes: its keys and headers, an id, a string of at most
 * ALLOT_ID_BYTES_MAX bytes (3-byte header) and an integer (9 bytes). */
#define RESERVE_REPLY_BYTES       1024
#define RESERVE_REPLY_PIECE_BYTES (32 + 3 + ALLOT_ID_BYTES_MAX + 9)

static size_t reserve_reply_str(char *out, allot_str_t s)
{
    size_t n = pack_put_str_header(out, s.len);
    memcpy(out + n, s.ptr, s.len);
    return n + s.len;
}

/* One line's {sku, qty, allocations: [{location, qty}...]} at out + *n; false when it does not
 * fit or holds something the generic packer writes otherwise (a backorder, a negative count). */
static bool reserve_reply_line(char *out, size_t *n, const allot_state_t *state,
                               const allot_reservation_t *r, const allot_reservation_line_t *line)
{
    static const char line_key[] = "\x83\xa3sku", qty_key[] = "\xa3qty";
    static const char allocations_key[] = "\xab"
                                          "allocations";
    static const char location_key[] = "\x82\xa8location";
    if (*n + RESERVE_REPLY_PIECE_BYTES > RESERVE_REPLY_BYTES || line->qty_held < 0 ||
        line->allocation_count >= 65536)
        return false;
    memcpy(out + *n, line_key, sizeof(line_key) - 1);
    *n += sizeof(line_key) - 1;
    *n += reserve_reply_str(out + *n, allot_sku_id(allot_sku_at(state, line->sku)));
    memcpy(out + *n, qty_key, sizeof(qty_key) - 1);
    *n += sizeof(qty_key) - 1;
    *n += pack_put_uint(out + *n, (uint64_t)line->qty_held);
    memcpy(out + *n, allocations_key, sizeof(allocations_key) - 1);
    *n += sizeof(allocations_key) - 1;
    *n += pack_put_container_header(out + *n, false, line->allocation_count);
    for (uint32_t k = 0; k < line->allocation_count; k++) {
        const allot_reservation_allocation_t *a =
            &allot_reservation_allocations(r)[line->allocation_first + k];
        if (a->location == ALLOT_LOCATION_SUPPLY || a->qty < 0 ||
            *n + RESERVE_REPLY_PIECE_BYTES > RESERVE_REPLY_BYTES)
            return false;
        memcpy(out + *n, location_key, sizeof(location_key) - 1);
        *n += sizeof(location_key) - 1;
        *n += reserve_reply_str(out + *n, allot_location_id(allot_location_at(state, a->location)));
        memcpy(out + *n, qty_key, sizeof(qty_key) - 1);
        *n += sizeof(qty_key) - 1;
        *n += pack_put_uint(out + *n, (uint64_t)a->qty);
    }
    return true;
}

/* A reserve's reply {id, expires_at_ms, lines} (no shortfalls) written into one buffer from
 * pre-encoded keys and handed to the packer in one piece, the bytes msgpack-c would write (the
 * piece by piece packing below was 20 calls and a strlen per key); false (nothing written) for
 * what it does not cover: backorders, replies over RESERVE_REPLY_BYTES. */
static bool pack_reservation_flat(msgpack_packer *pk, const allot_state_t *state,
                                  const allot_reservation_t *r)
{
    static const char head[] = "\x83\xa2id", expires_key[] = "\xad"
                                                             "expires_at_ms";
    static const char lines_key[] = "\xa5lines";
    char out[RESERVE_REPLY_BYTES];
    if (r->expires_at_ms < 0)
        return false;
    size_t n = sizeof(head) - 1;
    memcpy(out, head, n);
    n += reserve_reply_str(out + n, allot_reservation_id(r));
    memcpy(out + n, expires_key, sizeof(expires_key) - 1);
    n += sizeof(expires_key) - 1;
    n += pack_put_uint(out + n, (uint64_t)r->expires_at_ms);
    memcpy(out + n, lines_key, sizeof(lines_key) - 1);
    n += sizeof(lines_key) - 1;
    n += pack_put_container_header(out + n, false, r->line_count);
    for (uint32_t i = 0; i < r->line_count; i++)
        if (!reserve_reply_line(out, &n, state, r, &allot_reservation_lines(r)[i]))
            return false;
    pk->callback(pk->data, out, n);
    return true;
}

/* reserve: {id, expires_at_ms, lines, shortfalls?}; with_state adds state, created_ms and, for
 * ended reservations, ended_ms (reservation.get/extend/release). */
static void pack_reservation(msgpack_packer *pk, const allot_state_t *state,
                             const allot_reservation_t *r, bool with_state)
{
    static allot_shortfall_t shortfalls[ALLOT_LINES_MAX];
    uint32_t shortfall_count = allot_reservation_shortfalls(state, r, shortfalls, ALLOT_LINES_MAX);
    if (!with_state && shortfall_count == 0 && pack_reservation_flat(pk, state, r))
        return;
    bool ended = r->status != ALLOT_RESERVATION_ACTIVE;
    uint32_t fields = 3 + (shortfall_count > 0) + (with_state ? 2 + ended : 0);
    msgpack_pack_map(pk, fields);
    pack_key_str(pk, "id", allot_reservation_id(r));
    if (with_state) {
        pack_key_cstr(pk, "state", allot_reservation_status_names[r->status]);
        pack_key_int(pk, "created_ms", r->created_ms);
        if (ended)
            pack_key_int(pk, "ended_ms", allot_reservation_ended_ms(r));
    }
    pack_key_int(pk, "expires_at_ms", r->expires_at_ms);
    pack_reservation_lines(pk, state, r);
    if (shortfall_count == 0)
        return;
    pack_cstr(pk, "shortfalls");
    msgpack_pack_array(pk, shortfall_count);
    for (uint32_t i = 0; i < shortfall_count; i++) {
        msgpack_pack_map(pk, 3);
        pack_key_str(pk, "sku", shortfalls[i].sku);
        pack_key_int(pk, "requested", shortfalls[i].requested);
        pack_key_int(pk, "available", shortfalls[i].available);
    }
}

/* ---- locations ------------------------------------------------------------------------------- */

int handle_location_put(command_call_t *call)
{
    const msgpack_object *p = call->params;
    allot_error_detail_t *e = call->error;
    allot_location_input_t in;
    allot_location_input_defaults(&in);
    int type = 0;
    int rc = args_id(p, "id", &in.id, NULL, e);
    if (rc == 0)
        rc = args_enum(p, "type", allot_location_type_names, &type, NULL, e);
    if (rc == 0)
        rc = args_double(p, "lat", -90.0, 90.0, &in.lat, NULL, e);
    if (rc == 0)
        rc = args_double(p, "lon", -180.0, 180.0, &in.lon, NULL, e);
    if (rc == 0)
        rc = args_int64(p, "priority", ALLOT_PRIORITY_MIN, ALLOT_PRIORITY_MAX, &in.priority,
                        &(bool){false}, e);
    if (rc == 0)
        rc = args_bool(p, "ship", &in.ship, &(bool){false}, e);
    if (rc == 0)
        rc = args_bool(p, "pickup", &in.pickup, &(bool){false}, e);
    if (rc == 0)
        rc = args_double(p, "same_day_radius_km", 0.0, ALLOT_RADIUS_KM_MAX, &in.same_day_radius_km,
                         &(bool){false}, e);
    if (rc == 0)
        rc = args_int64(p, "daily_capacity", 0, ALLOT_DAILY_CAPACITY_MAX, &in.daily_capacity,
                        &(bool){false}, e);
    if (rc == 0)
        rc = args_bool(p, "active", &in.active, &(bool){false}, e);
    if (rc == 0)
        rc = promise_calendar_args(p, &in.calendar, e);
    if (rc != 0)
        return rc;
    in.type = (allot_location_type_t)type;
    const allot_location_t *location;
    rc = allot_location_put(call->state, &in, &location, e);
    if (rc != 0)
        return rc;
    pack_location(call->result, location);
    return 0;
}

int handle_location_get(command_call_t *call)
{
    allot_str_t id;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc != 0)
        return rc;
    const allot_location_t *location = allot_location_find(call->state, id);
    if (location == NULL)
        return allot_error_set(call->error, ALLOT_ENOT_FOUND, "id", "location %s not found",
                               allot_str_echo(id, &(allot_echo_t){0}));
    pack_location(call->result, location);
    return 0;
}

int handle_location_list(command_call_t *call)
{
    uint32_t n = allot_location_list_sorted(call->state, location_indices, ALLOT_LOCATIONS_MAX);
    msgpack_pack_map(call->result, 1);
    pack_cstr(call->result, "locations");
    msgpack_pack_array(call->result, n);
    for (uint32_t i = 0; i < n; i++)
        pack_location(call->result, allot_location_at(call->state, location_indices[i]));
    return 0;
}

/* ---- stock ----------------------------------------------------------------------------------- */

int handle_stock_set(command_call_t *call)
{
    const msgpack_object *p = call->params;
    allot_error_detail_t *e = call->error;
    allot_stock_set_input_t in = {0};
    int rc = args_id(p, "sku", &in.sku, NULL, e);
    if (rc == 0)
        rc = args_id(p, "location", &in.location, NULL, e);
    if (rc == 0)
        rc = args_int64(p, "on_hand", 0, ALLOT_QUANTITY_MAX, &in.on_hand, NULL, e);
    if (rc == 0)
        rc = args_int64(p, "safety_stock", 0, ALLOT_QUANTITY_MAX, &in.safety_stock,
                        &in.has_safety_stock, e);
    if (rc == 0)
        rc = args_int64(p, "as_of_ms", INT64_MIN + 1, INT64_MAX, &in.as_of_ms, &in.has_as_of_ms, e);
    if (rc != 0)
        return rc;
    allot_stock_result_t result;
    rc = allot_stock_set(call->state, &in, &result, e);
    if (rc != 0)
        return rc;
    pack_position(call->result, &result);
    return 0;
}

int handle_stock_adjust(command_call_t *call)
{
    const msgpack_object *p = call->params;
    allot_error_detail_t *e = call->error;
    allot_stock_adjust_input_t in = {.key = {"", 0}};
    allot_str_t reason;
    bool has_key = false;
    int rc = args_id(p, "sku", &in.sku, NULL, e);
    if (rc == 0)
        rc = args_id(p, "location", &in.location, NULL, e);
    if (rc == 0)
        rc = args_int64(p, "delta", -ALLOT_QUANTITY_MAX, ALLOT_QUANTITY_MAX, &in.delta, NULL, e);
    if (rc == 0)
        rc = args_str(p, "reason", ALLOT_TEXT_BYTES_MAX, &reason, &(bool){false}, e);
    if (rc == 0)
        rc = args_id(p, "key", &in.key, &has_key, e);
    if (rc != 0)
        return rc;
    if (!has_key)
        in.key = (allot_str_t){"", 0};
    allot_stock_result_t result;
    rc = allot_stock_adjust(call->state, &in, call->now_ms, &result, e);
    if (rc != 0)
        return rc;
    pack_position(call->result, &result);
    return 0;
}

int handle_stock_get(command_call_t *call)
{
    allot_str_t sku;
    int rc = args_id(call->params, "sku", &sku, NULL, call->error);
    allot_stock_summary_t sum;
    if (rc == 0)
        rc = allot_stock_get(call->state, sku, &sum, position_views, ALLOT_LOCATIONS_MAX,
                             call->error);
    if (rc != 0)
        return rc;
    msgpack_packer *pk = call->result;
    msgpack_pack_map(pk, 6);
    pack_key_str(pk, "sku", sum.sku);
    pack_key_int(pk, "on_hand", sum.on_hand);
    pack_key_int(pk, "reserved", sum.reserved);
    pack_key_int(pk, "allocated", sum.allocated);
    pack_key_int(pk, "available", sum.available);
    pack_cstr(pk, "positions");
    msgpack_pack_array(pk, sum.position_count);
    for (uint32_t i = 0; i < sum.position_count; i++) {
        const allot_position_view_t *v = &position_views[i];
        msgpack_pack_map(pk, 6);
        pack_key_str(pk, "location", v->location);
        pack_key_int(pk, "on_hand", v->on_hand);
        pack_key_int(pk, "reserved", v->reserved);
        pack_key_int(pk, "allocated", v->allocated);
        pack_key_int(pk, "safety_stock", v->safety_stock);
        pack_key_int(pk, "available", v->available);
    }
    return 0;
}

/* ---- availability ---------------------------------------------------------------------------- */

/* The arguments the dispatcher scanned, or else the getters' (net/args_typed.h). */
static int avail_args(command_call_t *call, const args_avail_t **args, allot_avail_query_t *query)
{
    static args_avail_t generic;
    if (call->args != NULL) {
        *args = &call->args->avail;
    } else {
        int rc = args_avail_get(call->params, &generic, call->error);
        if (rc != 0)
            return rc;
        *args = &generic;
    }
    return allot_avail_prepare(call->state, &(*args)->request, query, call->error);
}

/* One item of a listing reply without locations, {"sku": id, "available": n}, handed to the
 * buffer in one piece (the hot path of product and listing pages). */
static void pack_avail_item(msgpack_packer *pk, allot_str_t sku, int64_t available)
{
    static const char sku_key[] = "\x82\xa3sku"; /* map of 2, "sku" */
    static const char available_key[] = "\xa9"
                                        "available"; /* "available" */
    char item[sizeof(sku_key) - 1 + 3 + ALLOT_ID_BYTES_MAX + sizeof(available_key) - 1 + 9];
    size_t n = sizeof(sku_key) - 1;
    memcpy(item, sku_key, n);
    n += pack_put_str_header(item + n, sku.len);
    memcpy(item + n, sku.ptr, sku.len);
    n += sku.len;
    memcpy(item + n, available_key, sizeof(available_key) - 1);
    n += sizeof(available_key) - 1;
    n += pack_put_uint(item + n, available > 0 ? (uint64_t)available : 0);
    pk->callback(pk->data, item, n);
}

/* SKUs whose positions are being loaded while one is answered. */
#define AVAIL_PREFETCH_AHEAD 4

int handle_avail_get(command_call_t *call)
{
    allot_avail_query_t query;
    const args_avail_t *args = NULL;
    int rc = avail_args(call, &args, &query);
    if (rc != 0)
        return rc;
    const allot_str_t *avail_skus = args->skus;
    uint32_t sku_count = args->sku_count;
    bool list = args->detail || query.method == ALLOT_METHOD_PICKUP;
    allot_sku_index_find_many(call->state, avail_skus, sku_count, avail_sku_indices);
    if (args->promise) {
        promise_avail_items(call, &query, avail_skus, avail_sku_indices, sku_count, list);
        return 0;
    }
    allot_avail_memo_t memo;
    allot_avail_memo_init(&memo);
    msgpack_packer *pk = call->result;
    msgpack_pack_map(pk, 1);
    pack_cstr(pk, "items");
    msgpack_pack_array(pk, sku_count);
    for (uint32_t i = 0; i < AVAIL_PREFETCH_AHEAD && i < sku_count; i++)
        allot_sku_prefetch_positions(call->state, avail_sku_indices[i]);
    for (uint32_t i = 0; i < sku_count; i++) {
        if (i + AVAIL_PREFETCH_AHEAD < sku_count)
            allot_sku_prefetch_positions(call->state, avail_sku_indices[i + AVAIL_PREFETCH_AHEAD]);
        uint32_t n = 0;
        int64_t available =
            allot_avail_sku_at(call->state, &query, &memo, avail_sku_indices[i],
                               list ? avail_locations : NULL, ALLOT_LOCATIONS_MAX, &n);
        if (!list) {
            pack_avail_item(pk, avail_skus[i], available);
            continue;
        }
        msgpack_pack_map(pk, 3);
        pack_key_str(pk, "sku", avail_skus[i]);
        pack_key_int(pk, "available", available);
        pack_cstr(pk, "locations");
        msgpack_pack_array(pk, n);
        for (uint32_t k = 0; k < n; k++) {
            msgpack_pack_map(pk, query.has_ship_to ? 3 : 2);
            pack_key_str(
                pk, "id",
                allot_location_id(allot_location_at(call->state, avail_locations[k].location)));
            pack_key_int(pk, "available", avail_locations[k].available);
            if (query.has_ship_to)
                pack_key_double(pk, "distance_km", avail_locations[k].distance_km);
        }
    }
    return 0;
}

/* ---- reservations ---------------------------------------------------------------------------- */

int handle_reserve(command_call_t *call)
{
    static args_reserve_t generic;
    const allot_reserve_request_t *req = &generic.request;
    int rc = 0;
    if (call->args != NULL)
        req = &call->args->reserve.request;
    else
        rc = args_reserve_get(call->params, &generic, call->error);
    if (rc != 0)
        return rc;
    const allot_reservation_t *r;
    rc = allot_reserve(call->state, req, call->now_ms, &r, call->error);
    if (rc != 0)
        return rc;
    pack_reservation(call->result, call->state, r, false);
    return 0;
}

int handle_reservation_get(command_call_t *call)
{
    allot_str_t id;
    const allot_reservation_t *r;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = allot_reservation_get(call->state, id, call->now_ms, &r, call->error);
    if (rc != 0)
        return rc;
    pack_reservation(call->result, call->state, r, true);
    return 0;
}

int handle_reservation_extend(command_call_t *call)
{
    allot_str_t id;
    int64_t ttl_s;
    const allot_reservation_t *r;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = args_int64(call->params, "ttl_s", ALLOT_RESERVATION_TTL_S_MIN,
                        ALLOT_RESERVATION_TTL_S_MAX, &ttl_s, NULL, call->error);
    if (rc == 0)
        rc = allot_reservation_extend(call->state, id, ttl_s, call->now_ms, &r, call->error);
    if (rc != 0)
        return rc;
    pack_reservation(call->result, call->state, r, true);
    return 0;
}

int handle_reservation_release(command_call_t *call)
{
    allot_str_t id;
    const allot_reservation_t *r;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = allot_reservation_release(call->state, id, call->now_ms, &r, call->error);
    if (rc != 0)
        return rc;
    pack_reservation(call->result, call->state, r, true);
    return 0;
}
