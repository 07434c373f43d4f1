/* order_create.c - order.create: from a reservation (consumed) or from lines (sourced now). */
#include <assert.h>
#include <string.h>

#include "core/base/request_hash.h"
#include "core/order.h"
#include "core/order/order_private.h"
#include "core/reservation.h"
#include "core/sale.h"

/* ---- request hash (idempotency) ---------------------------------------------------------------
 */

/* Everything of the request but its id. */
static uint64_t order_request_hash(const allot_order_create_request_t *req)
{
    request_hash_t h = request_hash_start();
    request_hash_str(&h, req->customer);
    request_hash_str(&h, req->reservation);
    request_hash_u64(&h, req->line_count);
    for (uint32_t i = 0; i < req->line_count; i++) {
        request_hash_str(&h, req->lines[i].sku);
        request_hash_u64(&h, (uint64_t)req->lines[i].qty);
    }
    request_hash_u64(&h, (uint64_t)req->method);
    request_hash_u64(&h, req->has_ship_to);
    if (req->has_ship_to) {
        request_hash_double(&h, req->lat);
        request_hash_double(&h, req->lon);
    }
    request_hash_str(&h, req->location);
    request_hash_u64(&h, (uint64_t)req->policy);
    request_hash_str(&h, req->address);
    request_hash_str(&h, req->instructions);
    return h.value;
}

/* ---- validation -------------------------------------------------------------------------------
 */

static int create_check(const allot_state_t *state, const allot_order_create_request_t *req,
                        allot_avail_query_t *query, allot_error_detail_t *detail)
{
    if (!allot_id_valid(req->id))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "id",
                               "id must be 1..128 bytes of UTF-8");
    if (req->customer.len > 0 && !allot_id_valid(req->customer))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "customer",
                               "customer must be 1..128 bytes of UTF-8");
    bool from_reservation = req->reservation.len > 0;
    if (from_reservation == (req->line_count > 0))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "reservation",
                               "give exactly one of reservation or lines");
    if (from_reservation && !allot_id_valid(req->reservation))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "reservation",
                               "reservation must be 1..128 bytes of UTF-8");
    int rc = allot_lines_check(req->lines, req->line_count, detail);
    if (rc != 0)
        return rc;
    if ((unsigned)req->policy >= ALLOT_POLICY_COUNT || (unsigned)req->method >= ALLOT_METHOD_COUNT)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "policy",
                               "unknown policy or method");
    if (req->address.len > ALLOT_ORDER_ADDRESS_BYTES_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "address",
                               "address must encode in at most %u bytes",
                               (unsigned)ALLOT_ORDER_ADDRESS_BYTES_MAX);
    if (req->instructions.len > ALLOT_TEXT_BYTES_MAX ||
        !allot_utf8_valid(req->instructions.ptr, req->instructions.len))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "instructions",
                               "instructions must be at most %u bytes of UTF-8",
                               (unsigned)ALLOT_TEXT_BYTES_MAX);
    if (!from_reservation && req->method == ALLOT_METHOD_PICKUP && req->location.len == 0)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "location",
                               "pickup needs location");
    allot_avail_request_t avail = {req->method, req->has_ship_to, req->lat, req->lon,
                                   0,           req->location};
    return allot_avail_prepare(state, &avail, query, detail);
}

/* An id seen before (in memory or archived): 1 = same request (*out set), else CONFLICT. An
 * archive that cannot be read (EIO, CORRUPT) fails the request: the id might be an archived
 * order's, which must never be reused. */
static int create_existing(allot_state_t *state, const allot_order_create_request_t *req,
                           uint64_t hash, const allot_order_view_t **out,
                           allot_error_detail_t *detail)
{
    uint32_t slot = order_slot_find(state, req->id);
    const allot_order_view_t *v = slot != ALLOT_SLOT_NONE ? &state->orders[slot]->v : NULL;
    if (v == NULL && state->archive.get_cb != NULL) {
        allot_error_detail_t lookup;
        allot_error_detail_clear(&lookup);
        int rc = allot_order_get(state, req->id, &v, &lookup);
        if (rc == ALLOT_ENOT_FOUND)
            v = NULL;
        else if (rc != 0)
            return allot_error_set(detail, rc, NULL, "%s", lookup.message);
    }
    if (v == NULL)
        return 0;
    if (v->request_hash != hash)
        return allot_error_set(detail, ALLOT_ECONFLICT, "id",
                               "order %s exists with a different request",
                               allot_str_echo(req->id, &(allot_echo_t){0}));
    *out = v;
    return 1;
}

/* ---- building the event -----------------------------------------------------------------------
 */

/* Group allocations into one shipment per location (first-seen order); items contiguous. */
int order_shipments_build(allot_state_t *state, const order_alloc_t *allocs, uint32_t n,
                          allot_event_order_t *e, allot_error_detail_t *detail)
{
    uint32_t locations[ALLOT_ORDER_SHIPMENTS_MAX];
    uint32_t count = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = 0;
        while (k < count && locations[k] != allocs[i].location)
            k++;
        if (k == count && count == ALLOT_ORDER_SHIPMENTS_MAX)
            return allot_error_set(detail, ALLOT_ETOO_LARGE, "lines",
                                   "an order ships from at most %u locations",
                                   (unsigned)ALLOT_ORDER_SHIPMENTS_MAX);
        if (k == count)
            locations[count++] = allocs[i].location;
    }
    if (order_build_reserve(state, count, n) != 0)
        return allot_error_set(detail, ALLOT_ENOMEM, NULL, "out of memory");
    uint32_t items = 0;
    for (uint32_t k = 0; k < count; k++) {
        allot_event_shipment_t *s = &state->build_shipments[k];
        memset(s, 0, sizeof(*s));
        s->location = allot_location_id(&state->locations[locations[k]]);
        s->tracking = s->reason = (allot_str_t){"", 0};
        s->state = ALLOT_SHIPMENT_ALLOCATED;
        s->item_first = items;
        for (uint32_t i = 0; i < n; i++)
            if (allocs[i].location == locations[k])
                state->build_items[items++] =
                    (allot_event_item_t){allot_sku_id(&state->skus[allocs[i].sku]), allocs[i].qty};
        s->item_count = items - s->item_first;
    }
    e->shipment_count = count;
    e->shipments = state->build_shipments;
    e->item_count = items;
    e->items = state->build_items;
    return 0;
}

static void create_head(const allot_order_create_request_t *req, uint64_t hash, int64_t now_ms,
                        allot_event_order_t *e)
{
    memset(e, 0, sizeof(*e));
    e->id = req->id;
    e->customer = req->customer;
    e->reservation = req->reservation;
    e->location = req->location;
    e->instructions = req->instructions;
    e->address = req->address;
    e->request_hash = hash;
    e->created_ms = now_ms;
    e->state = ALLOT_ORDER_CREATED;
    e->payment = ALLOT_PAYMENT_NONE;
    e->entered_by = ALLOT_ORDER_EVENT_CREATE;
    e->method = (uint8_t)req->method;
    e->policy = (uint8_t)req->policy;
    e->has_ship_to = req->has_ship_to;
    e->lat = req->has_ship_to ? req->lat : 0;
    e->lon = req->has_ship_to ? req->lon : 0;
}

/* ---- fairness (core/sale.h) -------------------------------------------------------------- */

/* max_per_customer of each SKU of the order's lines; the consumed hold r (may be NULL) gives its
 * units back when it was the same customer's. */
static int order_limits_check(const allot_state_t *state, const allot_event_order_t *e,
                              const allot_reservation_t *r, allot_error_detail_t *detail)
{
    if (allot_sku_settings_count(state) == 0)
        return 0;
    bool same = r != NULL && r->customer_len == e->customer.len &&
                memcmp(allot_reservation_customer(r).ptr, e->customer.ptr, e->customer.len) == 0;
    for (uint32_t i = 0; i < e->line_count; i++) {
        int64_t units = 0;
        bool first = true;
        for (uint32_t j = 0; j < e->line_count; j++) {
            if (!allot_str_equal(e->lines[j].sku, e->lines[i].sku))
                continue;
            first = first && j >= i;
            units += e->lines[j].qty;
        }
        uint32_t sku = allot_sku_index_find(state, e->lines[i].sku);
        if (!first || sku == ALLOT_SKU_NONE)
            continue;
        int64_t given_back = 0;
        for (uint32_t k = 0; same && k < r->line_count; k++)
            if (allot_reservation_lines(r)[k].sku == sku)
                given_back += allot_reservation_lines(r)[k].qty_held;
        int rc = allot_customer_limit_check(state, sku, e->customer, units, given_back, detail);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Lines of a queued SKU go through the queue: reserve with a token, then order the hold. */
static int order_queue_check(const allot_state_t *state, const allot_order_create_request_t *req,
                             allot_error_detail_t *detail)
{
    if (allot_sku_settings_count(state) == 0)
        return 0;
    for (uint32_t i = 0; i < req->line_count; i++) {
        uint32_t sku = allot_sku_index_find(state, req->lines[i].sku);
        if (allot_sku_queued(state, sku))
            return allot_error_set(detail, ALLOT_EQUEUED, "lines",
                                   "SKU %s is queued: reserve it with a queue token, then "
                                   "create the order from the reservation",
                                   allot_str_echo(req->lines[i].sku, &(allot_echo_t){0}));
    }
    return 0;
}

/* From a live reservation: its held lines and allocations, no re-sourcing; its backorder
 * allocations stay on the order's lines as backorders on the same supplies. */
static int create_from_reservation(allot_state_t *state, const allot_order_create_request_t *req,
                                   int64_t now_ms, allot_event_order_t *e,
                                   allot_event_item_t *lines, allot_error_detail_t *detail)
{
    const allot_reservation_t *r;
    int rc = allot_reservation_get(state, req->reservation, now_ms, &r, detail);
    if (rc != 0) {
        detail->field = "reservation";
        return rc;
    }
    static order_alloc_t allocs[ALLOT_ORDER_ITEMS_MAX];
    uint32_t n = 0;
    if (r->allocation_count > ALLOT_ORDER_ITEMS_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, "reservation",
                               "an order holds at most %u allocations",
                               (unsigned)ALLOT_ORDER_ITEMS_MAX);
    static allot_event_backorder_t backorders[ALLOT_ORDER_BACKORDERS_MAX];
    e->line_count = 0;
    e->backorder_count = 0;
    for (uint32_t i = 0; i < r->line_count; i++) {
        const allot_reservation_line_t *line = &allot_reservation_lines(r)[i];
        if (line->qty_held == 0)
            continue;
        uint32_t at = e->line_count++;
        lines[at] = (allot_event_item_t){allot_sku_id(&state->skus[line->sku]), line->qty_held};
        for (uint32_t k = 0; k < line->allocation_count; k++) {
            const allot_reservation_allocation_t *a =
                &allot_reservation_allocations(r)[line->allocation_first + k];
            if (a->location == ALLOT_LOCATION_SUPPLY) /* stays backordered on the order's line */
                backorders[e->backorder_count++] = (allot_event_backorder_t){
                    allot_reservation_allocation_supply(r, a), a->qty, at};
            else
                allocs[n++] = (order_alloc_t){line->sku, a->location, a->qty};
        }
    }
    e->lines = lines;
    e->backorders = backorders;
    if (req->customer.len == 0 && r->customer_len > 0) /* the hold's customer carries over */
        e->customer = allot_reservation_customer(r);
    rc = order_shipments_build(state, allocs, n, e, detail);
    return rc != 0 ? rc : order_limits_check(state, e, r, detail);
}

/* From lines: sourced now, all or nothing. */
static int create_from_lines(allot_state_t *state, const allot_order_create_request_t *req,
                             const allot_avail_query_t *query, int64_t now_ms,
                             allot_event_order_t *e, allot_event_item_t *lines,
                             allot_error_detail_t *detail)
{
    int rc = order_queue_check(state, req, detail);
    if (rc != 0)
        return rc;
    allot_sourcing_request_t sourcing = {req->lines, req->line_count, *query, req->policy, false,
                                         NULL,       now_ms,          NULL};
    allot_plan_t plan;
    rc = allot_sourcing_plan(state, &sourcing, &plan, detail);
    if (rc != 0)
        return rc;
    detail->shortfall_count = 0;
    if (plan.allocation_count > ALLOT_ORDER_ITEMS_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, "lines",
                               "an order holds at most %u allocations",
                               (unsigned)ALLOT_ORDER_ITEMS_MAX);
    static order_alloc_t allocs[ALLOT_ORDER_ITEMS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < plan.line_count; i++) {
        const allot_plan_line_t *pl = &plan.lines[i];
        lines[i] = (allot_event_item_t){req->lines[i].sku, req->lines[i].qty};
        for (uint32_t k = 0; k < pl->allocation_count; k++) {
            const allot_plan_allocation_t *a = &plan.allocations[pl->allocation_first + k];
            allocs[n++] = (order_alloc_t){pl->sku, a->location, a->qty};
        }
    }
    e->line_count = plan.line_count;
    e->lines = lines;
    rc = order_shipments_build(state, allocs, n, e, detail);
    return rc != 0 ? rc : order_limits_check(state, e, NULL, detail);
}

int allot_order_create(allot_state_t *state, const allot_order_create_request_t *req,
                       int64_t now_ms, const allot_order_view_t **out, allot_error_detail_t *detail)
{
    assert(state != NULL && req != NULL && detail != NULL);
    allot_avail_query_t query;
    int rc = create_check(state, req, &query, detail);
    if (rc != 0)
        return rc;
    uint64_t hash = order_request_hash(req);
    rc = create_existing(state, req, hash, out, detail);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    allot_event_t event = {.type = ALLOT_EVENT_ORDER_CREATE};
    allot_event_order_t *e = &event.u.order;
    create_head(req, hash, now_ms, e);
    allot_event_item_t lines[ALLOT_LINES_MAX];
    if (req->reservation.len > 0)
        rc = create_from_reservation(state, req, now_ms, e, lines, detail);
    else
        rc = create_from_lines(state, req, &query, now_ms, e, lines, detail);
    if (rc != 0)
        return rc;
    rc = state_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    *out = &state->orders[order_slot_find(state, req->id)]->v;
    return 0;
}
