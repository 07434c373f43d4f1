/* order_apply.c - the one apply of order events: prepare (may fail, nothing changes), commit. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory/inventory_private.h"
#include "core/order/order_private.h"
#include "core/reservation/reservation_private.h"
#include "core/sale/sale_private.h"
#include "core/supply/supply_private.h"

/* ---- stock effects ------------------------------------------------------------------------- */

static allot_position_t *position_of(allot_state_t *state, allot_str_t sku, allot_str_t location,
                                     uint32_t *sku_index)
{
    *sku_index = allot_sku_index_find(state, sku);
    uint32_t l = allot_location_index_find(state, location);
    if (*sku_index == ALLOT_SKU_NONE || l == ALLOT_LOCATION_NONE)
        return NULL;
    return inventory_position_mut(state, *sku_index, l);
}

/* Every item has a position at location (whose allocated count is in range, so that adding the
 * items cannot overflow); room for the dirty marks. */
static int items_prepare(allot_state_t *state, const allot_event_item_t *items, uint32_t n,
                         allot_str_t location)
{
    uint32_t sku;
    for (uint32_t i = 0; i < n; i++) {
        const allot_position_t *p = position_of(state, items[i].sku, location, &sku);
        if (p == NULL || p->allocated > ALLOT_QUANTITY_MAX)
            return ALLOT_ECORRUPT;
    }
    return state_dirty_reserve(state, 1, n, 0, 0);
}

/* allocated += sign * qty; with `ship`, on_hand drops too (never below 0). */
static void items_allocate(allot_state_t *state, const allot_event_item_t *items, uint32_t n,
                           allot_str_t location, int sign, bool ship)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t sku;
        allot_position_t *p = position_of(state, items[i].sku, location, &sku);
        assert(p != NULL);
        inventory_sku_dirty(state, sku); /* before the change (checkpoint pre-image) */
        p->allocated += sign * items[i].qty;
        if (p->allocated < 0)
            p->allocated = 0;
        if (ship)
            p->on_hand = p->on_hand > items[i].qty ? p->on_hand - items[i].qty : 0;
    }
}

/* One shipment assigned at a location on the UTC day of at_ms (daily_capacity). */
static void capacity_count(allot_state_t *state, allot_str_t location, int64_t at_ms)
{
    uint32_t l = allot_location_index_find(state, location);
    allot_location_t *loc = &state->locations[l];
    int64_t day = allot_day_from_ms(at_ms);
    inventory_location_dirty(state, l); /* before the change (checkpoint pre-image) */
    if (loc->capacity_day != day) {
        loc->capacity_day = day;
        loc->capacity_count = 0;
    }
    loc->capacity_count++;
}

static void history_add(allot_order_t *o, int64_t at_ms, uint8_t event, uint8_t arg,
                        uint16_t shipment, allot_str_t text)
{
    assert(o->v.history_count < o->history_capacity);
    o->v.history[o->v.history_count++] = (allot_event_history_t){at_ms, event, arg, shipment, text};
}

/* ended_ms, the ended heap and the dirty mark after any change. */
static void order_settle(allot_state_t *state, uint32_t slot, int64_t at_ms)
{
    allot_event_order_t *v = &state->orders[slot]->v;
    if (!order_is_ended(v))
        v->ended_ms = 0;
    else if (v->ended_ms == 0)
        v->ended_ms = at_ms;
    order_ended_update(state, slot);
    order_dirty_mark(state, slot);
}

/* ---- backordered units (core/supply.h): held on their supplies ------------------------------ */

/* Units the live hold `reservation` (may be none) holds on the supply `id`. */
static int64_t hold_held_on(const allot_state_t *state, allot_str_t reservation, allot_str_t id)
{
    const allot_reservation_t *r = allot_reservation_find(state, reservation);
    int64_t qty = 0;
    for (uint32_t k = 0; r != NULL && allot_reservation_lines(r) != NULL && k < r->allocation_count;
         k++) {
        const allot_reservation_allocation_t *a = &allot_reservation_allocations(r)[k];
        if (a->location == ALLOT_LOCATION_SUPPLY &&
            allot_str_equal(allot_reservation_allocation_supply(r, a), id))
            qty += a->qty;
    }
    return qty;
}

/* A new order's backorders: each supply exists, is open, is of its line's SKU and has room for
 * the order's units on it (what the consumed hold holds on it counts as room); dirty marks. */
static int backorders_prepare(allot_state_t *state, const allot_event_order_t *e)
{
    for (uint32_t i = 0; i < e->backorder_count; i++) {
        const allot_event_backorder_t *b = &e->backorders[i];
        uint32_t slot = supply_find(state, b->supply);
        if (slot == ALLOT_SLOT_NONE)
            return ALLOT_ECORRUPT;
        const supply_t *x = &state->supply->supplies[slot];
        int64_t wanted = 0;
        for (uint32_t k = 0; k < e->backorder_count; k++)
            if (allot_str_equal(e->backorders[k].supply, b->supply))
                wanted += e->backorders[k].qty;
        int64_t room =
            x->qty - x->received - x->held + hold_held_on(state, e->reservation, b->supply);
        if (x->state != ALLOT_SUPPLY_OPEN || wanted > room ||
            x->sku != allot_sku_index_find(state, e->lines[b->line].sku))
            return ALLOT_ECORRUPT;
    }
    return allot_u32_vec_reserve(&state->dirty[STATE_KEY_SUPPLY], e->backorder_count);
}

/* The order's backorders take (+1) or give back (-1) their units on their supplies. */
static void backorders_hold(allot_state_t *state, const allot_event_order_t *v, int sign)
{
    for (uint32_t i = 0; i < v->backorder_count; i++)
        supply_held_add(state, v->backorders[i].supply, sign * v->backorders[i].qty);
}

/* ---- the customer's units of each SKU (core/sale/): orders count until cancelled or evicted -- */

static bool order_counts(const allot_event_order_t *v)
{
    return v->customer.len > 0 && v->state != ALLOT_ORDER_CANCELLED && !v->archived;
}

static int holdings_reserve(allot_state_t *state, const allot_event_order_t *v)
{
    return order_counts(v) ? sale_holding_reserve(state, v->line_count) : 0;
}

static void holdings_add(allot_state_t *state, const allot_event_order_t *v, int sign)
{
    if (!order_counts(v))
        return;
    for (uint32_t i = 0; i < v->line_count; i++) {
        uint32_t sku = allot_sku_index_find(state, v->lines[i].sku);
        if (sku != ALLOT_SKU_NONE)
            sale_holding_add(state, sku, v->customer, sign * v->lines[i].qty);
    }
}

/* ---- whole orders: create, snapshot -------------------------------------------------------- */

/* order.create (create) and order.snapshot: the whole order, built apart until the commit. */
static int whole_prepare(allot_state_t *state, const allot_event_order_t *e, bool create)
{
    order_prepared_t *prep = &state->order_prepared;
    prep->slot = order_slot_find(state, e->id);
    if (create &&
        (prep->slot != ALLOT_SLOT_NONE || e->state != ALLOT_ORDER_CREATED || e->return_count > 0 ||
         e->history_count > 0 || e->shipment_count + e->backorder_count == 0 ||
         (e->backorder_count > 0 && e->reservation.len == 0)))
        return ALLOT_ECORRUPT;
    int rc = prep->slot != ALLOT_SLOT_NONE ? order_remove_reserve(state) : 0;
    if (rc == 0 && prep->slot != ALLOT_SLOT_NONE)
        rc = holdings_reserve(state, &state->orders[prep->slot]->v);
    if (rc != 0 || e->archived)
        return rc;
    if ((rc = holdings_reserve(state, e)) != 0)
        return rc;
    for (uint32_t i = 0; i < e->shipment_count; i++) {
        const allot_event_shipment_t *s = &e->shipments[i];
        if (allot_location_index_find(state, s->location) == ALLOT_LOCATION_NONE ||
            (create && s->state != ALLOT_SHIPMENT_ALLOCATED))
            return ALLOT_ECORRUPT;
        if (create &&
            (rc = items_prepare(state, e->items + s->item_first, s->item_count, s->location)) != 0)
            return rc;
    }
    if (create && (rc = backorders_prepare(state, e)) != 0) /* before the consume's marks */
        return rc;
    if (create && e->reservation.len > 0 &&
        (rc = reservation_consume_prepare(state, e->reservation)))
        return rc;
    rc = order_insert_reserve(state, e->customer, e->return_count);
    if (rc == 0)
        rc = allot_heap_reserve(&state->order_heap, 1);
    if (rc != 0)
        return rc;
    order_release(prep->order);
    prep->order = NULL;
    return order_build(e, create ? 1 : 0, &prep->order);
}

int order_create_prepare(allot_state_t *state, const allot_event_order_t *e)
{
    return whole_prepare(state, e, true);
}

int order_snapshot_prepare(allot_state_t *state, const allot_event_order_t *e)
{
    return whole_prepare(state, e, false);
}

void order_create_commit(allot_state_t *state, const allot_event_order_t *e)
{
    order_prepared_t *prep = &state->order_prepared;
    allot_order_t *o = prep->order;
    prep->order = NULL;
    if (e->reservation.len > 0)
        reservation_consume_commit(state, e->reservation, e->created_ms);
    backorders_hold(state, &o->v, +1); /* the consumed hold's units, now the order's */
    for (uint32_t i = 0; i < o->v.shipment_count; i++) {
        const allot_event_shipment_t *s = &o->v.shipments[i];
        items_allocate(state, o->v.items + s->item_first, s->item_count, s->location, +1, false);
        if (e->reservation.len == 0)
            capacity_count(state, s->location, e->created_ms);
    }
    /* the consumed reservation is named by the history entry (snapshots keep it there) */
    history_add(o, e->created_ms, ALLOT_ORDER_EVENT_CREATE, 0, ALLOT_EVENT_SHIPMENT_NONE,
                o->v.reservation);
    o->v.reservation = (allot_str_t){"", 0};
    uint32_t slot = order_insert(state, o);
    (void)slot;
    holdings_add(state, e, +1);
}

void order_snapshot_commit(allot_state_t *state, const allot_event_order_t *e)
{
    order_prepared_t *prep = &state->order_prepared;
    if (prep->slot != ALLOT_SLOT_NONE) {
        holdings_add(state, &state->orders[prep->slot]->v, -1);
        order_remove(state, prep->slot);
    }
    if (!e->archived) {
        order_insert(state, prep->order);
        prep->order = NULL;
        holdings_add(state, e, +1);
    }
}

/* ---- changes of one order: prepare --------------------------------------------------------- */

/* What every change's prepare does first: the order it names, room for its history entry and
 * the record's text copied into the order (state->order_prepared). */
static int change_prepare(allot_state_t *state, const allot_event_order_change_t *c,
                          allot_order_t **out)
{
    order_prepared_t *prep = &state->order_prepared;
    prep->slot = order_slot_find(state, c->id);
    if (prep->slot == ALLOT_SLOT_NONE)
        return ALLOT_ECORRUPT;
    allot_order_t *o = state->orders[prep->slot];
    if (o->v.history_count >= ALLOT_ORDER_HISTORY_MAX)
        return ALLOT_ECORRUPT;
    int rc = order_room(o, 0, 0, 0, 1);
    if (rc == 0)
        rc = allot_heap_reserve(&state->order_heap, 1);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_ORDER], 1);
    if (rc != 0)
        return rc;
    prep->text = order_text_copy(o, c->text);
    if (prep->text.ptr == NULL)
        return ALLOT_ENOMEM;
    *out = o;
    return 0;
}

/* change_prepare, then the shipment the record names (reject, ship, deliver). */
static int shipment_prepare(allot_state_t *state, const allot_event_order_change_t *c,
                            allot_order_t **o, const allot_event_shipment_t **s)
{
    int rc = change_prepare(state, c, o);
    if (rc != 0)
        return rc;
    if (c->shipment >= (*o)->v.shipment_count)
        return ALLOT_ECORRUPT;
    *s = &(*o)->v.shipments[c->shipment];
    return 0;
}

int order_change_prepare(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o;
    return change_prepare(state, c, &o);
}

int order_modify_prepare(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o;
    int rc = change_prepare(state, c, &o);
    if (rc != 0)
        return rc;
    order_prepared_t *prep = &state->order_prepared;
    prep->address = order_text_copy(o, c->address);
    prep->instructions = order_text_copy(o, c->instructions);
    return prep->address.ptr && prep->instructions.ptr ? 0 : ALLOT_ENOMEM;
}

int order_cancel_prepare(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o;
    int rc = change_prepare(state, c, &o);
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; rc == 0 && i < o->v.shipment_count; i++) {
        const allot_event_shipment_t *x = &o->v.shipments[i];
        rc = items_prepare(state, o->v.items + x->item_first, x->item_count, x->location);
    }
    if (rc == 0) /* backordered units go back to their supplies */
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_SUPPLY], o->v.backorder_count);
    return rc != 0 ? rc : holdings_reserve(state, &o->v);
}

/* The order's arrays move when order_room grows them: the rejected shipment is found by index
 * again after it, never through a pointer taken before. */
static int reject_prepare(allot_state_t *state, allot_order_t *o,
                          const allot_event_order_change_t *c)
{
    uint8_t old_state = o->v.shipments[c->shipment].state;
    if (old_state != ALLOT_SHIPMENT_ALLOCATED && old_state != ALLOT_SHIPMENT_RELEASED)
        return ALLOT_ECORRUPT;
    if (o->v.shipment_count + c->shipment_count > ALLOT_ORDER_SHIPMENTS_MAX ||
        o->v.item_count + c->item_count > ALLOT_ORDER_ITEMS_MAX)
        return ALLOT_ECORRUPT;
    int rc = order_room(o, c->shipment_count, c->item_count, 0, 1);
    for (uint32_t i = 0; rc == 0 && i < c->shipment_count; i++) {
        const allot_event_shipment_t *s = &c->shipments[i];
        rc = items_prepare(state, c->items + s->item_first, s->item_count, s->location);
    }
    if (rc != 0)
        return rc;
    /* written past the end: invisible until the commit raises the counts */
    for (uint32_t i = 0; i < c->shipment_count; i++) {
        allot_event_shipment_t *dst = &o->v.shipments[o->v.shipment_count + i];
        if (!order_shipment_copy(o, dst, &c->shipments[i]))
            return ALLOT_ENOMEM;
        dst->item_first += o->v.item_count;
        dst->state = old_state;
    }
    for (uint32_t i = 0; i < c->item_count; i++) {
        allot_event_item_t *dst = &o->v.items[o->v.item_count + i];
        *dst = (allot_event_item_t){order_text_copy(o, c->items[i].sku), c->items[i].qty};
        if (dst->sku.ptr == NULL)
            return ALLOT_ENOMEM;
    }
    const allot_event_shipment_t *old = &o->v.shipments[c->shipment]; /* after order_room */
    return items_prepare(state, o->v.items + old->item_first, old->item_count, old->location);
}

int shipment_reject_prepare(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o;
    const allot_event_shipment_t *s;
    int rc = shipment_prepare(state, c, &o, &s);
    return rc != 0 ? rc : reject_prepare(state, o, c);
}

int shipment_ship_prepare(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o;
    const allot_event_shipment_t *s;
    int rc = shipment_prepare(state, c, &o, &s);
    if (rc != 0)
        return rc;
    if (s->state != ALLOT_SHIPMENT_RELEASED)
        return ALLOT_ECORRUPT;
    return items_prepare(state, o->v.items + s->item_first, s->item_count, s->location);
}

int shipment_deliver_prepare(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o;
    const allot_event_shipment_t *s;
    int rc = shipment_prepare(state, c, &o, &s);
    if (rc != 0)
        return rc;
    return s->state == ALLOT_SHIPMENT_SHIPPED ? 0 : ALLOT_ECORRUPT;
}

static int return_prepare(allot_state_t *state, allot_order_t *o,
                          const allot_event_order_change_t *c)
{
    uint32_t index;
    if (order_return_find(state, c->text, &index) != ALLOT_SLOT_NONE ||
        o->v.return_count >= ALLOT_ORDER_RETURNS_MAX ||
        o->v.item_count + c->item_count > ALLOT_ORDER_ITEMS_MAX)
        return ALLOT_ECORRUPT;
    int rc = order_room(o, 0, c->item_count, 1, 1);
    if (rc == 0)
        rc = allot_hash_reserve(&state->order_return_index, 1);
    if (rc != 0)
        return rc;
    allot_event_return_t *dst = &o->v.returns[o->v.return_count];
    if (!order_return_copy(o, dst, &c->ret))
        return ALLOT_ENOMEM;
    dst->id = state->order_prepared.text;
    dst->state = ALLOT_RETURN_REQUESTED;
    dst->item_first = o->v.item_count;
    dst->item_count = c->item_count;
    for (uint32_t i = 0; i < c->item_count; i++) {
        allot_event_item_t *item = &o->v.items[o->v.item_count + i];
        *item = (allot_event_item_t){order_text_copy(o, c->items[i].sku), c->items[i].qty};
        if (item->sku.ptr == NULL)
            return ALLOT_ENOMEM;
    }
    return 0;
}

int return_create_prepare(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o;
    int rc = change_prepare(state, c, &o);
    return rc != 0 ? rc : return_prepare(state, o, c);
}

static int receive_prepare(allot_state_t *state, allot_order_t *o,
                           const allot_event_order_change_t *c)
{
    uint32_t index;
    if (order_return_find(state, c->text, &index) != o->slot ||
        o->v.returns[index].state != ALLOT_RETURN_REQUESTED)
        return ALLOT_ECORRUPT;
    uint32_t l = allot_location_index_find(state, c->location);
    if (l == ALLOT_LOCATION_NONE)
        return ALLOT_ECORRUPT;
    const allot_event_return_t *r = &o->v.returns[index];
    int rc = state_dirty_reserve(state, 0, r->item_count, 0, 0);
    for (uint32_t i = 0; rc == 0 && c->arg == ALLOT_DISPOSITION_RESTOCK && i < r->item_count; i++) {
        uint32_t sku;
        rc = inventory_sku_intern(state, o->v.items[r->item_first + i].sku, &sku);
        if (rc == 0)
            rc = inventory_position_reserve(state, sku, l);
    }
    state->order_prepared.location = order_text_copy(o, c->location);
    return rc == 0 && state->order_prepared.location.ptr == NULL ? ALLOT_ENOMEM : rc;
}

int return_receive_prepare(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o;
    int rc = change_prepare(state, c, &o);
    return rc != 0 ? rc : receive_prepare(state, o, c);
}

int order_evict_prepare(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o;
    int rc = change_prepare(state, c, &o);
    if (rc != 0)
        return rc;
    if (!order_is_ended(&o->v))
        return ALLOT_ECORRUPT;
    rc = holdings_reserve(state, &o->v);
    if (rc == 0)
        rc = order_remove_reserve(state);
    return rc != 0 ? rc : order_archived_append(state, o->slot);
}

/* ---- changes of one order: commit ---------------------------------------------------------- */

/* The order change_prepare found, marked dirty before it changes (checkpoint pre-image). */
static allot_order_t *change_begin(allot_state_t *state)
{
    uint32_t slot = state->order_prepared.slot;
    order_dirty_mark(state, slot);
    return state->orders[slot];
}

/* Every change ends with its history entry (`event`) and the order settled. */
static void change_end(allot_state_t *state, allot_order_t *o, const allot_event_order_change_t *c,
                       uint8_t event)
{
    history_add(o, c->at_ms, event, c->arg, c->shipment, state->order_prepared.text);
    order_settle(state, state->order_prepared.slot, c->at_ms);
}

void order_pay_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o = change_begin(state);
    o->v.payment = c->arg;
    change_end(state, o, c, ALLOT_ORDER_EVENT_PAY);
}

void order_hold_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o = change_begin(state);
    o->v.state = ALLOT_ORDER_ON_HOLD;
    o->v.entered_by = ALLOT_ORDER_EVENT_HOLD;
    change_end(state, o, c, ALLOT_ORDER_EVENT_HOLD);
}

void order_unhold_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o = change_begin(state);
    o->v.state = ALLOT_ORDER_CREATED;
    o->v.entered_by = ALLOT_ORDER_EVENT_UNHOLD;
    change_end(state, o, c, ALLOT_ORDER_EVENT_UNHOLD);
}

void order_modify_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o = change_begin(state);
    if (c->arg & ALLOT_ORDER_MODIFY_ADDRESS)
        o->v.address = state->order_prepared.address;
    if (c->arg & ALLOT_ORDER_MODIFY_INSTRUCTIONS)
        o->v.instructions = state->order_prepared.instructions;
    if (c->arg & ALLOT_ORDER_MODIFY_METHOD)
        o->v.method = c->method;
    change_end(state, o, c, ALLOT_ORDER_EVENT_MODIFY);
}

void order_release_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o = change_begin(state);
    allot_event_order_t *v = &o->v;
    v->state = ALLOT_ORDER_RELEASED;
    v->entered_by = ALLOT_ORDER_EVENT_RELEASE;
    for (uint32_t i = 0; i < v->shipment_count; i++)
        if (v->shipments[i].state == ALLOT_SHIPMENT_ALLOCATED)
            v->shipments[i].state = ALLOT_SHIPMENT_RELEASED;
    change_end(state, o, c, ALLOT_ORDER_EVENT_RELEASE);
}

void order_cancel_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o = change_begin(state);
    allot_event_order_t *v = &o->v;
    holdings_add(state, v, -1); /* while it still counts */
    for (uint32_t i = 0; i < v->shipment_count; i++) {
        allot_event_shipment_t *s = &v->shipments[i];
        if (s->state != ALLOT_SHIPMENT_ALLOCATED && s->state != ALLOT_SHIPMENT_RELEASED)
            continue;
        items_allocate(state, v->items + s->item_first, s->item_count, s->location, -1, false);
        s->state = ALLOT_SHIPMENT_CANCELLED;
    }
    backorders_hold(state, v, -1);
    v->backorder_count = 0; /* nothing waits any more */
    v->state = ALLOT_ORDER_CANCELLED;
    v->entered_by = ALLOT_ORDER_EVENT_CANCEL;
    change_end(state, o, c, ALLOT_ORDER_EVENT_CANCEL);
}

static void shipment_reject(allot_state_t *state, allot_order_t *o,
                            const allot_event_order_change_t *c)
{
    allot_event_shipment_t *old = &o->v.shipments[c->shipment];
    items_allocate(state, o->v.items + old->item_first, old->item_count, old->location, -1, false);
    old->state = ALLOT_SHIPMENT_REJECTED;
    old->reason = state->order_prepared.text;
    uint32_t first = o->v.shipment_count;
    o->v.shipment_count += c->shipment_count;
    o->v.item_count += c->item_count;
    for (uint32_t i = first; i < o->v.shipment_count; i++) {
        const allot_event_shipment_t *s = &o->v.shipments[i];
        items_allocate(state, o->v.items + s->item_first, s->item_count, s->location, +1, false);
        capacity_count(state, s->location, c->at_ms);
    }
}

void shipment_reject_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o = change_begin(state);
    shipment_reject(state, o, c);
    change_end(state, o, c, ALLOT_ORDER_EVENT_REJECT);
}

/* After a shipment moved on: the order's state follows from its shipments. */
static void state_from_shipments(allot_order_t *o, uint8_t event)
{
    uint8_t next = allot_order_state_from_shipments(&o->v);
    if (next != o->v.state) {
        o->v.state = next;
        o->v.entered_by = event;
    }
}

void shipment_ship_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o = change_begin(state);
    allot_event_shipment_t *s = &o->v.shipments[c->shipment];
    items_allocate(state, o->v.items + s->item_first, s->item_count, s->location, -1, true);
    s->state = ALLOT_SHIPMENT_SHIPPED;
    s->tracking = state->order_prepared.text;
    state_from_shipments(o, ALLOT_ORDER_EVENT_SHIP);
    change_end(state, o, c, ALLOT_ORDER_EVENT_SHIP);
}

void shipment_deliver_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o = change_begin(state);
    o->v.shipments[c->shipment].state = ALLOT_SHIPMENT_DELIVERED;
    state_from_shipments(o, ALLOT_ORDER_EVENT_DELIVER);
    change_end(state, o, c, ALLOT_ORDER_EVENT_DELIVER);
}

void return_create_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o = change_begin(state);
    allot_event_return_t *r = &o->v.returns[o->v.return_count++];
    o->v.item_count += c->item_count;
    int rc = allot_hash_insert(&state->order_return_index, allot_hash_bytes(r->id.ptr, r->id.len),
                               o->slot);
    assert(rc == 0);
    (void)rc;
    change_end(state, o, c, ALLOT_ORDER_EVENT_RETURN_CREATE);
}

/* A received return's disposition; restock puts its items back on hand at the location. */
static void return_receive(allot_state_t *state, allot_order_t *o,
                           const allot_event_order_change_t *c)
{
    uint32_t index;
    order_return_find(state, c->text, &index);
    allot_event_return_t *r = &o->v.returns[index];
    r->state = ALLOT_RETURN_RECEIVED;
    r->disposition = c->arg;
    r->location = state->order_prepared.location;
    r->received_ms = c->at_ms;
    if (c->arg != ALLOT_DISPOSITION_RESTOCK)
        return;
    uint32_t l = allot_location_index_find(state, c->location);
    for (uint32_t i = 0; i < r->item_count; i++) {
        const allot_event_item_t *item = &o->v.items[r->item_first + i];
        uint32_t sku = allot_sku_index_find(state, item->sku);
        inventory_sku_dirty(state, sku); /* before the change (checkpoint pre-image) */
        allot_position_t *p = inventory_position_upsert(state, sku, l);
        p->on_hand += item->qty;
        if (p->on_hand > ALLOT_QUANTITY_MAX)
            p->on_hand = ALLOT_QUANTITY_MAX;
    }
}

void return_receive_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    allot_order_t *o = change_begin(state);
    return_receive(state, o, c);
    change_end(state, o, c, ALLOT_ORDER_EVENT_RETURN_RECEIVE);
}

/* The order leaves memory (its archived snapshot was recorded by the prepare). */
void order_evict_commit(allot_state_t *state, const allot_event_order_change_t *c)
{
    (void)c;
    holdings_add(state, &state->orders[state->order_prepared.slot]->v, -1);
    order_remove(state, state->order_prepared.slot);
}

/* ---- receipts: backordered units become a shipment (order_receipt.c plans them) ------------ */

void order_receipt_serve(allot_state_t *state, const receipt_served_t *served, allot_str_t supply,
                         int64_t at_ms)
{
    order_dirty_mark(state, served->slot); /* before the change (checkpoint pre-image) */
    allot_order_t *o = state->orders[served->slot];
    allot_event_order_t *v = &o->v;
    allot_event_shipment_t *s = &v->shipments[v->shipment_count];
    *s = (allot_event_shipment_t){served->location,        {"", 0},       {"", 0},
                                  ALLOT_SHIPMENT_RELEASED, v->item_count, 0};
    if (v->state == ALLOT_ORDER_CREATED || v->state == ALLOT_ORDER_ON_HOLD)
        s->state = ALLOT_SHIPMENT_ALLOCATED; /* released with the order */
    int64_t left = served->qty;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < v->backorder_count; i++) {
        allot_event_backorder_t b = v->backorders[i];
        int64_t take = allot_str_equal(b.supply, supply) ? (b.qty < left ? b.qty : left) : 0;
        left -= take;
        if (take > 0) { /* one item per line, in the order the backorders name them */
            uint32_t k = 0;
            while (k < s->item_count &&
                   !allot_str_equal(v->items[s->item_first + k].sku, v->lines[b.line].sku))
                k++;
            if (k == s->item_count)
                v->items[s->item_first + s->item_count++] =
                    (allot_event_item_t){v->lines[b.line].sku, 0};
            v->items[s->item_first + k].qty += take;
        }
        b.qty -= take;
        if (b.qty > 0)
            v->backorders[kept++] = b;
    }
    assert(left == 0 && s->item_count > 0);
    v->backorder_count = kept;
    v->item_count += s->item_count;
    uint16_t index = (uint16_t)v->shipment_count++;
    items_allocate(state, v->items + s->item_first, s->item_count, s->location, +1, false);
    capacity_count(state, s->location, at_ms);
    if (v->history_count < o->history_capacity && v->history_count < ALLOT_ORDER_HISTORY_MAX)
        history_add(o, at_ms, ALLOT_ORDER_EVENT_RECEIVE, 0, index, served->supply);
    order_settle(state, served->slot, at_ms);
}

/* ---- supply cancels: backordered units move or are cancelled (order_displace.c plans them) -- */

/* Whether the order has nothing left to ship: every shipment cancelled or rejected and no
 * units waiting. */
static bool order_nothing_left(const allot_event_order_t *v)
{
    for (uint32_t i = 0; i < v->shipment_count; i++)
        if (v->shipments[i].state != ALLOT_SHIPMENT_CANCELLED &&
            v->shipments[i].state != ALLOT_SHIPMENT_REJECTED)
            return false;
    return v->backorder_count == 0;
}

/* The lines give up their cancelled units; a line left with none goes (the backorders after it
 * name one line less). */
static void lines_cut(allot_event_order_t *v, const int64_t *cancelled)
{
    for (uint32_t i = v->line_count; i-- > 0;) {
        v->lines[i].qty -= cancelled[i];
        if (v->lines[i].qty > 0)
            continue;
        for (uint32_t k = i + 1; k < v->line_count; k++)
            v->lines[k - 1] = v->lines[k];
        v->line_count--;
        for (uint32_t k = 0; k < v->backorder_count; k++)
            if (v->backorders[k].line > i)
                v->backorders[k].line--;
    }
}

void order_displace_apply(allot_state_t *state, receipt_served_t *served, int64_t at_ms)
{
    order_dirty_mark(state, served->slot); /* before the change (checkpoint pre-image) */
    allot_order_t *o = state->orders[served->slot];
    allot_event_order_t *v = &o->v;
    int64_t cancelled[ALLOT_LINES_MAX] = {0};
    const allot_event_backorder_t *moved = served->block;
    for (uint32_t i = 0; i < v->backorder_count; i++)
        cancelled[v->backorders[i].line] += v->backorders[i].qty;
    for (uint32_t i = 0; i < served->allocation_count; i++)
        cancelled[moved[i].line] -= moved[i].qty;
    holdings_add(state, v, -1); /* while it still counts, with the lines it had */
    backorders_hold(state, v, -1);
    free(v->backorders);
    v->backorders = served->block;
    v->backorder_count = o->backorder_capacity = served->allocation_count;
    served->block = NULL; /* the order owns it */
    backorders_hold(state, v, +1);
    if (order_nothing_left(v)) { /* cancelled as order.cancel would (its lines as ordered) */
        v->state = ALLOT_ORDER_CANCELLED;
        v->entered_by = ALLOT_ORDER_EVENT_CANCEL;
        if (v->history_count < o->history_capacity && v->history_count < ALLOT_ORDER_HISTORY_MAX)
            history_add(o, at_ms, ALLOT_ORDER_EVENT_CANCEL, 0, 0, served->supply);
    } else {
        lines_cut(v, cancelled);
        if (v->state != ALLOT_ORDER_CREATED && v->state != ALLOT_ORDER_ON_HOLD)
            v->state = allot_order_state_from_shipments(v); /* nothing waits: maybe shipped */
    }
    holdings_add(state, v, +1);
    order_settle(state, served->slot, at_ms);
}
