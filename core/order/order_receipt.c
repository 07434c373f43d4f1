/* order_receipt.c - the apply of supply.receive: the units serve the supply's backorders, orders
 * oldest first, then live holds oldest first; what is left is plain stock. */
#include <assert.h>
#include <stdlib.h>

#include "core/inventory/inventory_private.h"
#include "core/order/order_private.h"
#include "core/reservation/reservation_private.h"
#include "core/supply.h"
#include "core/supply/supply_private.h"

static const allot_state_t *sort_state; /* qsort has no context; core is single-threaded */

/* Orders by (created_ms, id). */
static int order_age_compare(const void *a, const void *b)
{
    const allot_event_order_t *x = &sort_state->orders[((const receipt_served_t *)a)->slot]->v;
    const allot_event_order_t *y = &sort_state->orders[((const receipt_served_t *)b)->slot]->v;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? -1 : 1;
    return state_id_compare(x->id.ptr, x->id.len, y->id.ptr, y->id.len);
}

/* Holds by (created_ms, id). */
static int hold_age_compare(const void *a, const void *b)
{
    const allot_reservation_t *x = &sort_state->reservations[((const receipt_served_t *)a)->slot];
    const allot_reservation_t *y = &sort_state->reservations[((const receipt_served_t *)b)->slot];
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? -1 : 1;
    allot_str_t x_id = allot_reservation_id(x), y_id = allot_reservation_id(y);
    return state_id_compare(x_id.ptr, x_id.len, y_id.ptr, y_id.len);
}

/* Units of the order waiting on `supply`, and the lines they are on (*lines). */
static int64_t order_waiting(const allot_event_order_t *v, allot_str_t supply, uint32_t *lines)
{
    int64_t qty = 0;
    uint64_t seen[(ALLOT_LINES_MAX + 63) / 64] = {0};
    *lines = 0;
    for (uint32_t i = 0; i < v->backorder_count; i++) {
        const allot_event_backorder_t *b = &v->backorders[i];
        if (!allot_str_equal(b->supply, supply))
            continue;
        qty += b->qty;
        if ((seen[b->line / 64] & (1ull << (b->line % 64))) == 0)
            (*lines)++;
        seen[b->line / 64] |= 1ull << (b->line % 64);
    }
    return qty;
}

/* Units the live hold holds on `supply`. */
static int64_t hold_waiting(const allot_reservation_t *r, allot_str_t supply)
{
    int64_t qty = 0;
    for (uint32_t k = 0; k < r->allocation_count; k++) {
        const allot_reservation_allocation_t *a = &allot_reservation_allocations(r)[k];
        if (a->location == ALLOT_LOCATION_SUPPLY &&
            allot_str_equal(allot_reservation_allocation_supply(r, a), supply))
            qty += a->qty;
    }
    return qty;
}

static int served_add(receipt_served_t **items, uint32_t *count, uint32_t *capacity, uint32_t slot,
                      int64_t qty)
{
    int rc = allot_array_grow((void **)items, capacity, *count + 1, sizeof(**items), 16);
    if (rc == 0)
        (*items)[(*count)++] = (receipt_served_t){slot, 0, qty, {"", 0}, {"", 0}, NULL};
    return rc;
}

/* Drop what a plan holds (new blocks a failed prepare left). */
void order_receipt_reset(order_receipt_t *plan)
{
    for (uint32_t i = 0; i < plan->order_count; i++)
        free(plan->orders[i].block);
    for (uint32_t i = 0; i < plan->hold_count; i++)
        free(plan->holds[i].block);
    plan->order_count = plan->hold_count = 0;
    plan->served = plan->unserved = 0;
}

void order_receipt_free(allot_state_t *state)
{
    order_receipt_t *plan = state->receipt;
    if (plan == NULL)
        return;
    order_receipt_reset(plan);
    free(plan->orders);
    free(plan->holds);
    free(plan);
    state->receipt = NULL;
}

int order_receipt_collect(allot_state_t *state, order_receipt_t *plan, allot_str_t supply)
{
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < state->order_slots; i++) {
        const allot_order_t *o = state->orders[i];
        uint32_t lines;
        int64_t waiting = o != NULL ? order_waiting(&o->v, supply, &lines) : 0;
        if (waiting > 0)
            rc = served_add(&plan->orders, &plan->order_count, &plan->order_capacity, i, waiting);
    }
    for (uint32_t i = 0; rc == 0 && i < state->reservation_slots; i++) {
        const allot_reservation_t *r = &state->reservations[i];
        if (!r->used || r->status != ALLOT_RESERVATION_ACTIVE || allot_reservation_lines(r) == NULL)
            continue;
        int64_t waiting = hold_waiting(r, supply);
        if (waiting > 0)
            rc = served_add(&plan->holds, &plan->hold_count, &plan->hold_capacity, i, waiting);
    }
    sort_state = state;
    if (plan->order_count > 1)
        qsort(plan->orders, plan->order_count, sizeof(*plan->orders), order_age_compare);
    if (plan->hold_count > 1)
        qsort(plan->holds, plan->hold_count, sizeof(*plan->holds), hold_age_compare);
    return rc;
}

/* Serve up to *left units of each in turn; an order that cannot take one more shipment is
 * passed over (its units stay backordered; counted in unserved). Entries served nothing go. */
static void plan_serve(allot_state_t *state, order_receipt_t *plan, allot_str_t supply,
                       int64_t *left)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < plan->order_count; i++) {
        receipt_served_t s = plan->orders[i];
        const allot_event_order_t *v = &state->orders[s.slot]->v;
        uint32_t lines;
        (void)order_waiting(v, supply, &lines);
        if (v->shipment_count >= ALLOT_ORDER_SHIPMENTS_MAX ||
            v->item_count + lines > ALLOT_ORDER_ITEMS_MAX) {
            plan->unserved += s.qty < *left ? s.qty : *left;
            continue;
        }
        s.qty = s.qty < *left ? s.qty : *left;
        *left -= s.qty;
        if (s.qty > 0)
            plan->orders[n++] = s;
    }
    plan->order_count = n;
    n = 0;
    for (uint32_t i = 0; i < plan->hold_count; i++) {
        receipt_served_t s = plan->holds[i];
        s.qty = s.qty < *left ? s.qty : *left;
        *left -= s.qty;
        if (s.qty > 0)
            plan->holds[n++] = s;
    }
    plan->hold_count = n;
}

/* Room for every change the commit makes to the orders and holds served. */
static int plan_room(allot_state_t *state, order_receipt_t *plan, const supply_t *x,
                     allot_str_t supply)
{
    allot_str_t location = allot_location_id(allot_location_at(state, x->location));
    int rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_ORDER], plan->order_count);
    if (rc == 0)
        rc = allot_heap_reserve(&state->order_heap, plan->order_count);
    if (rc == 0) /* the location's capacity, the SKU's positions, each hold served */
        rc = state_dirty_reserve(state, 1, 1, plan->hold_count, 0);
    for (uint32_t i = 0; rc == 0 && i < plan->order_count; i++) {
        receipt_served_t *s = &plan->orders[i];
        allot_order_t *o = state->orders[s->slot];
        uint32_t lines;
        (void)order_waiting(&o->v, supply, &lines);
        bool history = o->v.history_count < ALLOT_ORDER_HISTORY_MAX;
        rc = order_room(o, 1, lines, 0, history ? 1 : 0);
        s->location = rc == 0 ? order_text_copy(o, location) : (allot_str_t){NULL, 0};
        s->supply = rc == 0 ? order_text_copy(o, supply) : (allot_str_t){NULL, 0};
        if (rc == 0 && (s->location.ptr == NULL || s->supply.ptr == NULL))
            rc = ALLOT_ENOMEM;
    }
    for (uint32_t i = 0; rc == 0 && i < plan->hold_count; i++) {
        receipt_served_t *s = &plan->holds[i];
        rc = reservation_receipt_prepare(state, s->slot, supply, x->location, s->qty, &s->block,
                                         &s->allocation_count);
    }
    return rc;
}

int order_receipt_plan(allot_state_t *state, uint32_t supply_slot, int64_t qty, bool room)
{
    if (state->receipt == NULL && (state->receipt = calloc(1, sizeof(order_receipt_t))) == NULL)
        return ALLOT_ENOMEM;
    order_receipt_t *plan = state->receipt;
    order_receipt_reset(plan);
    const supply_t *x = &state->supply->supplies[supply_slot];
    allot_str_t supply = {x->id, x->id_len};
    int64_t left = qty < x->held ? qty : x->held;
    if (left == 0)
        return 0;
    int rc = order_receipt_collect(state, plan, supply);
    if (rc != 0)
        return rc;
    int64_t covered = left;
    plan_serve(state, plan, supply, &left);
    plan->served = covered - left;
    return room ? plan_room(state, plan, x, supply) : 0;
}

/* ---- the apply of SUPPLY_RECEIVE ------------------------------------------------------------ */

int order_receipt_prepare(allot_state_t *state, const allot_event_supply_t *e)
{
    int rc = supply_receipt_prepare(state, e);
    if (rc != 0 || !e->serves)
        return rc;
    uint32_t slot = supply_find(state, e->id);
    const supply_t *x = &state->supply->supplies[slot];
    rc = order_receipt_plan(state, slot, e->qty, true);
    if (rc != 0)
        return rc;
    /* the last unit ends the supply: nothing may still wait on it */
    if (x->received + e->qty == x->qty && state->receipt->served != x->held)
        return ALLOT_ECORRUPT;
    return 0;
}

void order_receipt_commit(allot_state_t *state, const allot_event_supply_t *e)
{
    supply_receipt_commit(state, e);
    if (!e->serves)
        return;
    order_receipt_t *plan = state->receipt;
    supply_held_add(state, e->id, -plan->served);
    uint32_t slot = supply_find(state, e->id);
    const supply_t *x = &state->supply->supplies[slot];
    for (uint32_t i = 0; i < plan->order_count; i++)
        order_receipt_serve(state, &plan->orders[i], e->id, e->at_ms);
    for (uint32_t i = 0; i < plan->hold_count; i++) {
        receipt_served_t *s = &plan->holds[i];
        reservation_receipt_commit(state, s->slot, s->block, s->allocation_count, x->sku,
                                   x->location, s->qty, e->at_ms);
        s->block = NULL; /* the hold owns it */
    }
    plan->hold_count = 0;
}

/* ---- supply.receive (core/supply.h): checks, then one record ------------------------------ */

/* The orders and holds the receipt would pass over must not be left waiting on a supply the
 * receipt ends (TOO_LARGE: the order that cannot take one more shipment). */
static int receipt_ends_check(allot_state_t *state, uint32_t slot, int64_t qty,
                              allot_error_detail_t *detail)
{
    const supply_t *x = &state->supply->supplies[slot];
    if (x->held == 0 || x->received + qty < x->qty)
        return 0;
    int rc = order_receipt_plan(state, slot, qty, false);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    if (state->receipt->served == x->held)
        return 0;
    return allot_error_set(detail, ALLOT_ETOO_LARGE, "qty",
                           "supply %s: an order waiting on it cannot take one more shipment "
                           "(at most %u shipments and %u items); receive less, or cancel that "
                           "order",
                           allot_str_echo((allot_str_t){x->id, x->id_len}, &(allot_echo_t){0}),
                           (unsigned)ALLOT_ORDER_SHIPMENTS_MAX, (unsigned)ALLOT_ORDER_ITEMS_MAX);
}

int allot_supply_receive(allot_state_t *state, allot_str_t id, bool has_qty, int64_t qty,
                         int64_t now_ms, allot_supply_view_t *out, allot_error_detail_t *detail)
{
    uint32_t slot;
    int rc = supply_lookup(state, id, &slot, detail);
    if (rc != 0)
        return rc;
    const supply_t *x = &state->supply->supplies[slot];
    if (x->state != ALLOT_SUPPLY_OPEN)
        return supply_not_open(x, detail);
    int64_t rest = x->qty - x->received;
    if (!has_qty)
        qty = rest;
    if (qty < 1 || qty > rest)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "qty",
                               "qty must be 1..%lld (the units not received yet)", (long long)rest);
    const allot_position_t *p = inventory_position_mut(state, x->sku, x->location);
    int64_t on_hand = p != NULL ? p->on_hand : 0;
    if (on_hand + qty > ALLOT_QUANTITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "qty", "on_hand would exceed %lld",
                               (long long)ALLOT_QUANTITY_MAX);
    if ((rc = receipt_ends_check(state, slot, qty, detail)) != 0)
        return rc;
    allot_supply_view_t v;
    supply_view_fill(state, slot, &v);
    allot_event_t event = {.type = ALLOT_EVENT_SUPPLY_RECEIVE};
    event.u.supply = (allot_event_supply_t){.id = v.id,
                                            .sku = v.sku,
                                            .location = v.location,
                                            .qty = qty,
                                            .on_hand_after = on_hand + qty,
                                            .at_ms = now_ms,
                                            .serves = true};
    rc = state_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    supply_view_fill(state, slot, out);
    return 0;
}
