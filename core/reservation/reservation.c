/* reservation.c - reserve / get / extend / release / expire: validation, idempotency, events. */
#include "core/reservation.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/request_hash.h"
#include "core/reservation/reservation_private.h"
#include "core/sale.h"
#include "core/supply.h"

const char *const allot_reservation_status_names[] = {"active", "released", "expired", NULL};

/* ---- request normalization and hash -------------------------------------------------------- */

/* Hash of the normalized request: everything but `replace` (and the id itself). */
static uint64_t reserve_request_hash(const allot_reserve_request_t *req)
{
    request_hash_t hasher = request_hash_start();
    request_hash_u64(&hasher, req->line_count);
    for (uint32_t i = 0; i < req->line_count; i++) {
        request_hash_str(&hasher, req->lines[i].sku);
        request_hash_u64(&hasher, (uint64_t)req->lines[i].qty);
        if (req->backorder != NULL && req->backorder[i]) /* others hash as they always did */
            request_hash_u64(&hasher, UINT64_C(0xb0));
    }
    request_hash_u64(&hasher, (uint64_t)req->ttl_s);
    request_hash_u64(&hasher, (uint64_t)req->method);
    request_hash_u64(&hasher, req->has_ship_to);
    if (req->has_ship_to) {
        request_hash_double(&hasher, req->lat);
        request_hash_double(&hasher, req->lon);
    }
    request_hash_str(&hasher, req->location);
    request_hash_u64(&hasher, (uint64_t)req->policy);
    request_hash_u64(&hasher, req->partial);
    if (req->customer.len > 0) /* requests without one hash as they always did */
        request_hash_str(&hasher, req->customer);
    return hasher.value;
}

/* ---- validation --------------------------------------------------------------------------------
 */

static int reserve_lines_check(const allot_reserve_request_t *req, allot_error_detail_t *detail)
{
    if (req->line_count == 0)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "lines", "lines must not be empty");
    return allot_lines_check(req->lines, req->line_count, detail);
}

static int ttl_check(int64_t ttl_s, allot_error_detail_t *detail)
{
    if (ttl_s < ALLOT_RESERVATION_TTL_S_MIN || ttl_s > ALLOT_RESERVATION_TTL_S_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "ttl_s", "ttl_s must be %d..%d",
                               ALLOT_RESERVATION_TTL_S_MIN, ALLOT_RESERVATION_TTL_S_MAX);
    return 0;
}

static int reserve_check(const allot_state_t *state, const allot_reserve_request_t *req,
                         allot_avail_query_t *query, allot_error_detail_t *detail)
{
    if (!allot_id_valid(req->id))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "id",
                               "id must be 1..128 bytes of UTF-8");
    if (req->customer.len > 0 && !allot_id_valid(req->customer))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "customer",
                               "customer must be 1..128 bytes of UTF-8");
    int rc = reserve_lines_check(req, detail);
    if (rc == 0)
        rc = ttl_check(req->ttl_s, detail);
    if (rc != 0)
        return rc;
    if ((unsigned)req->policy >= ALLOT_POLICY_COUNT)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "policy",
                               "policy must be fewest_splits, priority, nearest or highest_stock");
    if (req->method == ALLOT_METHOD_PICKUP && req->location.len == 0)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "location",
                               "pickup needs location");
    allot_avail_request_t avail = {req->method, req->has_ship_to, req->lat, req->lon,
                                   0,           req->location};
    rc = allot_avail_prepare(state, &avail, query, detail);
    if (rc != 0)
        return rc;
    if (req->method == ALLOT_METHOD_PICKUP && !state->locations[query->location].pickup)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "location",
                               "location %s does not offer pickup",
                               allot_str_echo(req->location, &(allot_echo_t){0}));
    return 0;
}

/* r's id as shown in an error message. */
static const char *reservation_id_echo(const allot_reservation_t *r, allot_echo_t *echo)
{
    return allot_str_echo(allot_reservation_id(r), echo);
}

/* An existing id: same request -> 1 (return it), replace -> 0, otherwise an error. */
static int reserve_existing(const allot_reservation_t *r, const allot_reserve_request_t *req,
                            uint64_t hash, int64_t now_ms, allot_error_detail_t *detail)
{
    if (r->status == ALLOT_RESERVATION_EXPIRED ||
        (r->status == ALLOT_RESERVATION_ACTIVE && r->expires_at_ms <= now_ms))
        return allot_error_set(detail, ALLOT_EEXPIRED, "id", "reservation %s expired",
                               reservation_id_echo(r, &(allot_echo_t){0}));
    if (r->status == ALLOT_RESERVATION_RELEASED)
        return allot_error_set(detail, ALLOT_ECONFLICT, "id",
                               "reservation %s was released; use a new id",
                               reservation_id_echo(r, &(allot_echo_t){0}));
    if (r->request_hash == hash)
        return 1;
    if (!req->replace)
        return allot_error_set(detail, ALLOT_ECONFLICT, "id",
                               "reservation %s exists with a different request",
                               reservation_id_echo(r, &(allot_echo_t){0}));
    return 0;
}

/* ---- fairness (core/sale.h) -------------------------------------------------------------- */

/* Units of SKU (index) the lines of r hold. */
static int64_t hold_units(const allot_reservation_t *r, uint32_t sku)
{
    int64_t units = 0;
    for (uint32_t i = 0; i < r->line_count; i++)
        if (allot_reservation_lines(r)[i].sku == sku)
            units += allot_reservation_lines(r)[i].qty_held;
    return units;
}

static bool same_customer(const allot_reservation_t *r, allot_str_t customer)
{
    return r != NULL && r->customer_len == customer.len &&
           (customer.len == 0 ||
            memcmp(allot_reservation_customer(r).ptr, customer.ptr, customer.len) == 0);
}

/* The queued SKUs of the request need the customer's token (one SKU per token), unless the hold
 * being replaced already had the SKU for the same customer. *ticket: the token's ticket. */
static int reserve_tokens_check(const allot_state_t *state, const allot_reserve_request_t *req,
                                const allot_reservation_t *old, int64_t now_ms, uint64_t *ticket,
                                allot_error_detail_t *detail)
{
    *ticket = 0;
    uint32_t queued_sku = ALLOT_SKU_NONE;
    for (uint32_t i = 0; i < req->line_count; i++) {
        uint32_t sku = allot_sku_index_find(state, req->lines[i].sku);
        if (sku == queued_sku || !allot_sku_queued(state, sku))
            continue;
        if (same_customer(old, req->customer) && req->customer.len > 0 && hold_units(old, sku) > 0)
            continue;
        if (*ticket != 0)
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "lines",
                                   "one reserve may hold one queued SKU (a token is for one SKU)");
        int rc =
            allot_queue_token_check(state, sku, req->customer, req->token, now_ms, ticket, detail);
        if (rc != 0)
            return rc;
        queued_sku = sku;
    }
    return 0;
}

/* max_per_customer of each SKU the request asks for: what the customer holds, less what the
 * replaced hold of the same customer gives back, plus the units requested (checked before
 * sourcing, so a request over the limit is refused whatever the stock). */
static int reserve_limits_check(const allot_state_t *state, const allot_reserve_request_t *req,
                                const allot_reservation_t *old, allot_error_detail_t *detail)
{
    for (uint32_t i = 0; i < req->line_count; i++) {
        uint32_t sku = allot_sku_index_find(state, req->lines[i].sku);
        bool first = true;
        int64_t units = 0;
        for (uint32_t j = 0; j < req->line_count; j++) {
            if (!allot_str_equal(req->lines[j].sku, req->lines[i].sku))
                continue;
            first = first && j >= i;
            units += req->lines[j].qty;
        }
        if (!first || sku == ALLOT_SKU_NONE)
            continue;
        int64_t given_back = same_customer(old, req->customer) ? hold_units(old, sku) : 0;
        int rc = allot_customer_limit_check(state, sku, req->customer, units, given_back, detail);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- reserve ----------------------------------------------------------------------------------
 */

static int reserve_emit(allot_state_t *state, const allot_reserve_request_t *req, uint64_t hash,
                        const allot_plan_t *plan, bool replace, uint64_t ticket, int64_t now_ms)
{
    int rc = reservation_build_reserve(state, plan->allocation_count);
    if (rc != 0)
        return rc;
    /* Field by field: the payload is 3.3 KB (ALLOT_LINES_MAX lines), and zeroing all of it cost
     * more than the rest of this function; only the plan's lines are read. */
    allot_event_t event;
    event.type = replace ? ALLOT_EVENT_RESERVATION_REPLACE : ALLOT_EVENT_RESERVATION_CREATE;
    allot_event_reservation_t *e = &event.u.reservation;
    e->id = req->id;
    e->status = ALLOT_RESERVATION_ACTIVE;
    e->request_hash = hash;
    e->created_ms = now_ms;
    e->ended_ms = 0;
    e->at_ms = now_ms;
    e->customer = req->customer;
    e->ticket = ticket;
    e->expires_at_ms = now_ms + req->ttl_s * 1000;
    e->line_count = plan->line_count;
    e->allocation_count = plan->allocation_count;
    e->allocations = state->build_allocations;
    for (uint32_t i = 0; i < plan->line_count; i++) {
        const allot_plan_line_t *pl = &plan->lines[i];
        e->lines[i] = (allot_event_line_t){req->lines[i].sku, pl->qty_requested,
                                           pl->allocation_first, pl->allocation_count};
    }
    for (uint32_t k = 0; k < plan->allocation_count; k++) {
        const allot_plan_allocation_t *a = &plan->allocations[k];
        bool supply = a->location == ALLOT_LOCATION_SUPPLY;
        allot_str_t at = supply ? allot_supply_id_at(state, a->supply)
                                : allot_location_id(&state->locations[a->location]);
        e->allocations[k] = (allot_event_allocation_t){at, a->qty, supply};
        if (!supply)
            state->location_recent = a->location; /* the record's apply finds it first */
    }
    return state_event_emit(state, &event);
}

int allot_reserve(allot_state_t *state, const allot_reserve_request_t *req, int64_t now_ms,
                  const allot_reservation_t **out, allot_error_detail_t *detail)
{
    assert(state != NULL && req != NULL && detail != NULL);
    uint32_t id_hash = allot_hash_bytes(req->id.ptr, req->id.len);
    reservation_slot_prefetch(state, id_hash); /* loads while the request is checked and hashed */
    allot_avail_query_t query;
    int rc = reserve_check(state, req, &query, detail);
    if (rc != 0)
        return rc;
    uint64_t hash = reserve_request_hash(req);
    uint32_t slot = reservation_slot_find_hashed(state, req->id, id_hash);
    const allot_reservation_t *old = NULL;
    if (slot != ALLOT_SLOT_NONE) {
        rc = reserve_existing(&state->reservations[slot], req, hash, now_ms, detail);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            *out = &state->reservations[slot];
            return 0;
        }
        old = &state->reservations[slot];
    } else if (state->reservation_live >= state->config.reservations_max) {
        return allot_error_set(detail, ALLOT_EOVERLOADED, NULL, "too many live reservations");
    }
    uint64_t ticket = 0;
    if (allot_sku_settings_count(state) > 0) { /* else no SKU has a limit or a queue */
        rc = reserve_tokens_check(state, req, old, now_ms, &ticket, detail);
        if (rc == 0)
            rc = reserve_limits_check(state, req, old, detail);
        if (rc != 0)
            return rc;
    }
    allot_sourcing_request_t sourcing = {
        req->lines, req->line_count, query, req->policy, req->partial, old, now_ms, req->backorder};
    allot_plan_t plan;
    rc = allot_sourcing_plan(state, &sourcing, &plan, detail);
    if (rc != 0)
        return rc;
    detail->shortfall_count = 0;
    rc = reserve_emit(state, req, hash, &plan, old != NULL, ticket, now_ms);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    *out = &state->reservations[reservation_slot_find_hashed(state, req->id, id_hash)];
    return 0;
}

/* ---- get / extend / release ---------------------------------------------------------------- */

const allot_reservation_t *allot_reservation_find(const allot_state_t *state, allot_str_t id)
{
    uint32_t slot = reservation_slot_find(state, id);
    return slot == ALLOT_SLOT_NONE ? NULL : &state->reservations[slot];
}

uint32_t allot_reservation_prefetch_slot(const allot_state_t *state, allot_str_t id)
{
    uint32_t hash = allot_hash_bytes(id.ptr, id.len);
    reservation_slot_prefetch(state, hash);
    return hash;
}

void allot_reservation_prefetch_record(const allot_state_t *state, uint32_t hash)
{
    uint32_t candidate = allot_hash_first(&state->reservation_index, hash);
    if (candidate != ALLOT_HASH_NONE && candidate < state->reservation_slots)
        __builtin_prefetch(&state->reservations[candidate]);
}

/* The live, unexpired reservation with this id, or an error. */
static int reservation_live_find(const allot_state_t *state, allot_str_t id, int64_t now_ms,
                                 uint32_t *slot, allot_error_detail_t *detail)
{
    if (!allot_id_valid(id))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "id",
                               "id must be 1..128 bytes of UTF-8");
    *slot = reservation_slot_find(state, id);
    if (*slot == ALLOT_SLOT_NONE)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "id", "reservation %s not found",
                               allot_str_echo(id, &(allot_echo_t){0}));
    const allot_reservation_t *r = &state->reservations[*slot];
    if (r->status == ALLOT_RESERVATION_RELEASED)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "id", "reservation %s was released",
                               reservation_id_echo(r, &(allot_echo_t){0}));
    if (r->status == ALLOT_RESERVATION_EXPIRED || r->expires_at_ms <= now_ms)
        return allot_error_set(detail, ALLOT_EEXPIRED, "id", "reservation %s expired",
                               reservation_id_echo(r, &(allot_echo_t){0}));
    return 0;
}

int allot_reservation_get(const allot_state_t *state, allot_str_t id, int64_t now_ms,
                          const allot_reservation_t **out, allot_error_detail_t *detail)
{
    uint32_t slot;
    int rc = reservation_live_find(state, id, now_ms, &slot, detail);
    if (rc != 0)
        return rc;
    *out = &state->reservations[slot];
    return 0;
}

int allot_reservation_extend(allot_state_t *state, allot_str_t id, int64_t ttl_s, int64_t now_ms,
                             const allot_reservation_t **out, allot_error_detail_t *detail)
{
    uint32_t slot;
    int rc = reservation_live_find(state, id, now_ms, &slot, detail);
    if (rc == 0)
        rc = ttl_check(ttl_s, detail);
    if (rc != 0)
        return rc;
    allot_event_t event; /* not zeroed whole: only the payload below is read */
    event.type = ALLOT_EVENT_RESERVATION_EXTEND;
    event.u.extend = (allot_event_extend_t){id, now_ms + ttl_s * 1000, now_ms};
    rc = state_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    *out = &state->reservations[slot];
    return 0;
}

static int reservation_release_emit(allot_state_t *state, allot_str_t id, uint8_t reason,
                                    int64_t now_ms)
{
    allot_event_t event; /* not zeroed whole: only the payload below is read */
    event.type = ALLOT_EVENT_RESERVATION_RELEASE;
    event.u.release = (allot_event_release_t){id, reason, now_ms};
    return state_event_emit(state, &event);
}

int allot_reservation_release(allot_state_t *state, allot_str_t id, int64_t now_ms,
                              const allot_reservation_t **out, allot_error_detail_t *detail)
{
    if (!allot_id_valid(id))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "id",
                               "id must be 1..128 bytes of UTF-8");
    uint32_t slot = reservation_slot_find(state, id);
    if (slot == ALLOT_SLOT_NONE)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "id", "reservation %s not found",
                               allot_str_echo(id, &(allot_echo_t){0}));
    const allot_reservation_t *r = &state->reservations[slot];
    if (r->status == ALLOT_RESERVATION_ACTIVE) {
        uint8_t reason =
            r->expires_at_ms <= now_ms ? ALLOT_RELEASE_EXPIRED : ALLOT_RELEASE_RELEASED;
        int rc = reservation_release_emit(state, id, reason, now_ms);
        if (rc != 0)
            return allot_error_set(detail, rc, NULL, "out of memory");
    }
    *out = &state->reservations[slot];
    return 0;
}

uint32_t allot_reservation_shortfalls(const allot_state_t *state, const allot_reservation_t *r,
                                      allot_shortfall_t *shortfalls, uint32_t shortfalls_max)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->line_count && n < shortfalls_max; i++) {
        const allot_reservation_line_t *line = &allot_reservation_lines(r)[i];
        if (line->qty_held < line->qty_requested)
            shortfalls[n++] = (allot_shortfall_t){allot_sku_id(&state->skus[line->sku]),
                                                  line->qty_requested, line->qty_held};
    }
    return n;
}

/* ---- expiry -------------------------------------------------------------------------------- */

int64_t allot_reservation_next_expiry_ms(const allot_state_t *state)
{
    if (state->expiry_heap.count == 0)
        return INT64_MAX;
    return allot_heap_top_key_ms(&state->expiry_heap); /* expires_at_ms */
}

uint32_t allot_reservations_expire(allot_state_t *state, int64_t now_ms, uint32_t max)
{
    uint32_t released = 0;
    while (released < max && state->expiry_heap.count > 0) {
        const allot_reservation_t *r = &state->reservations[allot_heap_top(&state->expiry_heap)];
        if (r->expires_at_ms > now_ms)
            break;
        if (reservation_release_emit(state, allot_reservation_id(r), ALLOT_RELEASE_EXPIRED,
                                     now_ms) != 0)
            break; /* out of memory: the next tick retries */
        released++;
    }
    return released;
}
