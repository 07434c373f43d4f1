/* order_apply.c - the one apply of order events: prepare (may fail, nothing changes), commit. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory/inventory_private.h"
#include "core/order/order_private.h"
#include "core/reservation/reservation_private.h"

/* ---- stock effects ----------------------------------------------------------------------------
 */

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
        state_dirty_sku(state, sku); /* before the change (checkpoint pre-image) */
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
    state_dirty_location(state, l); /* before the change (checkpoint pre-image) */
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

/* ---- prepare ----------------------------------------------------------------------------------
 */

static int prepare_whole(allot_state_t *state, const allot_event_t *event)
{
    const allot_event_order_t *e = &event->u.order;
    order_prepared_t *prep = &state->order_prepared;
    bool create = event->type == ALLOT_EVENT_ORDER_CREATE;
    prep->slot = order_slot_find(state, e->id);
    if (create && (prep->slot != ALLOT_SLOT_NONE || e->state != ALLOT_ORDER_CREATED ||
                   e->return_count > 0 || e->history_count > 0 || e->shipment_count == 0))
        return ALLOT_ECORRUPT;
    int rc = prep->slot != ALLOT_SLOT_NONE ? order_remove_reserve(state) : 0;
    if (rc != 0 || e->archived)
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

/* The order's arrays move when order_room grows them: the rejected shipment is found by index
 * again after it, never through a pointer taken before. */
static int prepare_reject(allot_state_t *state, allot_order_t *o,
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

static int prepare_return_create(allot_state_t *state, allot_order_t *o,
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

static int prepare_return_receive(allot_state_t *state, allot_order_t *o,
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

static int prepare_typed(allot_state_t *state, allot_order_t *o, uint8_t type,
                         const allot_event_order_change_t *c)
{
    order_prepared_t *prep = &state->order_prepared;
    const allot_event_shipment_t *s = NULL;
    bool needs_shipment = type == ALLOT_EVENT_SHIPMENT_REJECT ||
                          type == ALLOT_EVENT_SHIPMENT_SHIP || type == ALLOT_EVENT_SHIPMENT_DELIVER;
    if (needs_shipment && c->shipment >= o->v.shipment_count)
        return ALLOT_ECORRUPT;
    if (needs_shipment)
        s = &o->v.shipments[c->shipment];
    switch (type) {
    case ALLOT_EVENT_ORDER_MODIFY:
        prep->address = order_text_copy(o, c->address);
        prep->instructions = order_text_copy(o, c->instructions);
        return prep->address.ptr && prep->instructions.ptr ? 0 : ALLOT_ENOMEM;
    case ALLOT_EVENT_ORDER_CANCEL:
        for (uint32_t i = 0; i < o->v.shipment_count; i++) {
            const allot_event_shipment_t *x = &o->v.shipments[i];
            int rc = items_prepare(state, o->v.items + x->item_first, x->item_count, x->location);
            if (rc != 0)
                return rc;
        }
        return 0;
    case ALLOT_EVENT_SHIPMENT_REJECT:
        return prepare_reject(state, o, c);
    case ALLOT_EVENT_SHIPMENT_SHIP:
        if (s->state != ALLOT_SHIPMENT_RELEASED)
            return ALLOT_ECORRUPT;
        return items_prepare(state, o->v.items + s->item_first, s->item_count, s->location);
    case ALLOT_EVENT_SHIPMENT_DELIVER:
        return s->state == ALLOT_SHIPMENT_SHIPPED ? 0 : ALLOT_ECORRUPT;
    case ALLOT_EVENT_RETURN_CREATE:
        return prepare_return_create(state, o, c);
    case ALLOT_EVENT_RETURN_RECEIVE:
        return prepare_return_receive(state, o, c);
    case ALLOT_EVENT_ORDER_EVICT:
        if (!order_is_ended(&o->v))
            return ALLOT_ECORRUPT;
        int rc = order_remove_reserve(state);
        return rc != 0 ? rc : order_archived_append(state, o->slot);
    default:
        return 0;
    }
}

int order_apply_prepare(allot_state_t *state, const allot_event_t *event)
{
    if (event->type == ALLOT_EVENT_ORDER_CREATE || event->type == ALLOT_EVENT_ORDER_SNAPSHOT)
        return prepare_whole(state, event);
    const allot_event_order_change_t *c = &event->u.change;
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
        rc = allot_u32_vec_reserve(&state->dirty_orders, 1);
    if (rc != 0)
        return rc;
    prep->text = order_text_copy(o, c->text);
    if (prep->text.ptr == NULL)
        return ALLOT_ENOMEM;
    return prepare_typed(state, o, event->type, c);
}

/* ---- commit -----------------------------------------------------------------------------------
 */

static void commit_whole(allot_state_t *state, const allot_event_t *event)
{
    const allot_event_order_t *e = &event->u.order;
    order_prepared_t *prep = &state->order_prepared;
    if (event->type == ALLOT_EVENT_ORDER_SNAPSHOT) {
        if (prep->slot != ALLOT_SLOT_NONE)
            order_remove(state, prep->slot);
        if (!e->archived) {
            order_insert(state, prep->order);
            prep->order = NULL;
        }
        return;
    }
    allot_order_t *o = prep->order;
    prep->order = NULL;
    if (e->reservation.len > 0)
        reservation_consume_commit(state, e->reservation, e->created_ms);
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
}

static void commit_reject(allot_state_t *state, allot_order_t *o,
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

static void commit_shipment(allot_state_t *state, allot_order_t *o, uint8_t type,
                            const allot_event_order_change_t *c)
{
    allot_event_shipment_t *s = &o->v.shipments[c->shipment];
    if (type == ALLOT_EVENT_SHIPMENT_SHIP) {
        items_allocate(state, o->v.items + s->item_first, s->item_count, s->location, -1, true);
        s->state = ALLOT_SHIPMENT_SHIPPED;
        s->tracking = state->order_prepared.text;
    } else {
        s->state = ALLOT_SHIPMENT_DELIVERED;
    }
    uint8_t next = allot_order_state_from_shipments(&o->v);
    if (next != o->v.state) {
        o->v.state = next;
        o->v.entered_by =
            type == ALLOT_EVENT_SHIPMENT_SHIP ? ALLOT_ORDER_EVENT_SHIP : ALLOT_ORDER_EVENT_DELIVER;
    }
}

static void commit_return(allot_state_t *state, allot_order_t *o, uint8_t type,
                          const allot_event_order_change_t *c)
{
    if (type == ALLOT_EVENT_RETURN_CREATE) {
        allot_event_return_t *r = &o->v.returns[o->v.return_count++];
        o->v.item_count += c->item_count;
        int rc = allot_hash_insert(&state->order_return_index,
                                   allot_hash_bytes(r->id.ptr, r->id.len), o->slot);
        assert(rc == 0);
        (void)rc;
        return;
    }
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
        state_dirty_sku(state, sku); /* before the change (checkpoint pre-image) */
        allot_position_t *p = inventory_position_upsert(state, sku, l);
        p->on_hand += item->qty;
        if (p->on_hand > ALLOT_QUANTITY_MAX)
            p->on_hand = ALLOT_QUANTITY_MAX;
    }
}

static void commit_state_change(allot_state_t *state, allot_order_t *o, uint8_t type,
                                const allot_event_order_change_t *c)
{
    allot_event_order_t *v = &o->v;
    switch (type) {
    case ALLOT_EVENT_ORDER_PAY:
        v->payment = c->arg;
        break;
    case ALLOT_EVENT_ORDER_HOLD:
        v->state = ALLOT_ORDER_ON_HOLD;
        v->entered_by = ALLOT_ORDER_EVENT_HOLD;
        break;
    case ALLOT_EVENT_ORDER_UNHOLD:
        v->state = ALLOT_ORDER_CREATED;
        v->entered_by = ALLOT_ORDER_EVENT_UNHOLD;
        break;
    case ALLOT_EVENT_ORDER_MODIFY:
        if (c->arg & ALLOT_ORDER_MODIFY_ADDRESS)
            v->address = state->order_prepared.address;
        if (c->arg & ALLOT_ORDER_MODIFY_INSTRUCTIONS)
            v->instructions = state->order_prepared.instructions;
        if (c->arg & ALLOT_ORDER_MODIFY_METHOD)
            v->method = c->method;
        break;
    case ALLOT_EVENT_ORDER_RELEASE:
        v->state = ALLOT_ORDER_RELEASED;
        v->entered_by = ALLOT_ORDER_EVENT_RELEASE;
        for (uint32_t i = 0; i < v->shipment_count; i++)
            if (v->shipments[i].state == ALLOT_SHIPMENT_ALLOCATED)
                v->shipments[i].state = ALLOT_SHIPMENT_RELEASED;
        break;
    default: /* cancel */
        for (uint32_t i = 0; i < v->shipment_count; i++) {
            allot_event_shipment_t *s = &v->shipments[i];
            if (s->state != ALLOT_SHIPMENT_ALLOCATED && s->state != ALLOT_SHIPMENT_RELEASED)
                continue;
            items_allocate(state, v->items + s->item_first, s->item_count, s->location, -1, false);
            s->state = ALLOT_SHIPMENT_CANCELLED;
        }
        v->state = ALLOT_ORDER_CANCELLED;
        v->entered_by = ALLOT_ORDER_EVENT_CANCEL;
    }
}

/* The order event a change record is, for the history. */
static uint8_t history_event_of(uint8_t type)
{
    static const uint8_t events[] = {
        [ALLOT_EVENT_ORDER_PAY - 64] = ALLOT_ORDER_EVENT_PAY,
        [ALLOT_EVENT_ORDER_HOLD - 64] = ALLOT_ORDER_EVENT_HOLD,
        [ALLOT_EVENT_ORDER_UNHOLD - 64] = ALLOT_ORDER_EVENT_UNHOLD,
        [ALLOT_EVENT_ORDER_MODIFY - 64] = ALLOT_ORDER_EVENT_MODIFY,
        [ALLOT_EVENT_ORDER_RELEASE - 64] = ALLOT_ORDER_EVENT_RELEASE,
        [ALLOT_EVENT_ORDER_CANCEL - 64] = ALLOT_ORDER_EVENT_CANCEL,
        [ALLOT_EVENT_SHIPMENT_REJECT - 64] = ALLOT_ORDER_EVENT_REJECT,
        [ALLOT_EVENT_SHIPMENT_SHIP - 64] = ALLOT_ORDER_EVENT_SHIP,
        [ALLOT_EVENT_SHIPMENT_DELIVER - 64] = ALLOT_ORDER_EVENT_DELIVER,
        [ALLOT_EVENT_RETURN_CREATE - 64] = ALLOT_ORDER_EVENT_RETURN_CREATE,
        [ALLOT_EVENT_RETURN_RECEIVE - 64] = ALLOT_ORDER_EVENT_RETURN_RECEIVE,
    };
    return events[type - 64];
}

void order_apply_commit(allot_state_t *state, const allot_event_t *event)
{
    if (event->type == ALLOT_EVENT_ORDER_CREATE || event->type == ALLOT_EVENT_ORDER_SNAPSHOT) {
        commit_whole(state, event);
        return;
    }
    const allot_event_order_change_t *c = &event->u.change;
    uint32_t slot = state->order_prepared.slot;
    allot_order_t *o = state->orders[slot];
    if (event->type == ALLOT_EVENT_ORDER_EVICT) {
        order_remove(state, slot);
        return;
    }
    order_dirty_mark(state, slot); /* before the change (checkpoint pre-image) */
    switch (event->type) {
    case ALLOT_EVENT_SHIPMENT_REJECT:
        commit_reject(state, o, c);
        break;
    case ALLOT_EVENT_SHIPMENT_SHIP:
    case ALLOT_EVENT_SHIPMENT_DELIVER:
        commit_shipment(state, o, event->type, c);
        break;
    case ALLOT_EVENT_RETURN_CREATE:
    case ALLOT_EVENT_RETURN_RECEIVE:
        commit_return(state, o, event->type, c);
        break;
    default:
        commit_state_change(state, o, event->type, c);
    }
    history_add(o, c->at_ms, history_event_of(event->type), c->arg, c->shipment,
                state->order_prepared.text);
    order_settle(state, slot, c->at_ms);
}
