/* change.c - the public changes each applied record gives (core/stream.h): captured before its
 * commit, compared after it, handed to the observer with their seq; avail.changed coalescing. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/inventory.h"
#include "core/inventory/inventory_private.h"
#include "core/order/order_private.h"
#include "core/reservation.h"
#include "core/sale/sale_private.h"
#include "core/stream/stream_private.h"
#include "core/supply.h"

#define CHANGE_NAME(number, NAME, name) [number] = name,
static const char *const change_type_names[ALLOT_CHANGE_TYPE_LIMIT] = {
    ALLOT_CHANGE_TYPES(CHANGE_NAME)};
#undef CHANGE_NAME

const char *allot_change_type_name(uint8_t type)
{
    return type < ALLOT_CHANGE_TYPE_LIMIT ? change_type_names[type] : NULL;
}

uint8_t allot_change_type_find(allot_str_t name)
{
    for (uint8_t t = 1; t < ALLOT_CHANGE_TYPE_LIMIT; t++) {
        const char *n = change_type_names[t];
        if (n != NULL && strlen(n) == name.len && memcmp(n, name.ptr, name.len) == 0)
            return t;
    }
    return 0;
}

int stream_init(allot_state_t *state)
{
    state->stream = calloc(1, sizeof(*state->stream));
    if (state->stream == NULL)
        return ALLOT_ENOMEM;
    state->stream->clock_ms = ALLOT_TIME_MS_MIN;
    return 0;
}

void stream_free_all(allot_state_t *state)
{
    stream_state_t *stream = state->stream;
    if (stream == NULL)
        return;
    free(stream->consumers);
    free(stream->before);
    free(stream->avail);
    allot_u32_vec_free(&stream->owed);
    free(stream);
    state->stream = NULL;
}

void allot_state_set_change_observer(allot_state_t *state, allot_change_cb cb, void *ctx)
{
    state->stream->cb = cb;
    state->stream->ctx = ctx;
}

void allot_state_record_set(allot_state_t *state, uint64_t lsn, int64_t at_ms)
{
    state->stream->lsn = lsn;
    if (at_ms > state->stream->clock_ms)
        state->stream->clock_ms = at_ms;
}

uint64_t allot_stream_changes_dropped(const allot_state_t *state)
{
    return state->stream->dropped;
}

/* Hand one change to the observer with the record's time and the next index. */
static void change_give(stream_state_t *stream, allot_change_t *change)
{
    if (stream->index >= ALLOT_CHANGES_PER_RECORD_MAX) {
        stream->dropped++;
        return;
    }
    change->at_ms = stream->clock_ms;
    stream->cb(stream->ctx, stream->lsn, stream->index++, change);
}

/* ---- what a record touches ------------------------------------------------------------------ */

static void sku_touch(stream_state_t *stream, allot_str_t sku)
{
    for (uint32_t i = 0; i < stream->sku_count; i++)
        if (stream->skus[i].len == sku.len && memcmp(stream->skus[i].ptr, sku.ptr, sku.len) == 0)
            return;
    if (stream->sku_count < sizeof(stream->skus) / sizeof(stream->skus[0]))
        stream->skus[stream->sku_count++] = sku;
}

/* The lines of the live hold `id` (copied: the commit may free the hold), and its SKUs. */
static void hold_capture(allot_state_t *state, allot_str_t id)
{
    stream_state_t *stream = state->stream;
    const allot_reservation_t *hold = allot_reservation_find(state, id);
    if (hold == NULL || allot_reservation_lines(hold) == NULL)
        return;
    memcpy(stream->hold_id_bytes, id.ptr, id.len);
    stream->hold_id = (allot_str_t){stream->hold_id_bytes, id.len};
    for (uint32_t i = 0; i < hold->line_count && i < ALLOT_LINES_MAX; i++) {
        allot_str_t sku = allot_sku_id(allot_sku_at(state, allot_reservation_lines(hold)[i].sku));
        memcpy(stream->line_sku_bytes[i], sku.ptr, sku.len);
        allot_str_t copy = {stream->line_sku_bytes[i], sku.len};
        stream->lines[i] = (allot_change_line_t){copy, allot_reservation_lines(hold)[i].qty_held};
        sku_touch(stream, copy);
    }
    stream->line_count = hold->line_count;
}

/* The order's state, its shipments' states and its lines' SKUs. */
static void order_capture(allot_state_t *state, allot_str_t id)
{
    stream_state_t *stream = state->stream;
    uint32_t slot = order_slot_find(state, id);
    if (slot == ALLOT_SLOT_NONE)
        return;
    const allot_event_order_t *v = &state->orders[slot]->v;
    stream->order_known = true;
    stream->order_state = v->state;
    stream->shipment_count = v->shipment_count;
    for (uint32_t i = 0; i < v->shipment_count && i < ALLOT_ORDER_SHIPMENTS_MAX; i++)
        stream->shipments[i].state = v->shipments[i].state;
    for (uint32_t i = 0; i < v->line_count; i++)
        sku_touch(stream, v->lines[i].sku);
}

/* The orders a receipt serves or a cancel moves (their plan, made by the prepare): their state
 * and shipments. */
static void receipt_capture(allot_state_t *state, const allot_event_supply_t *e)
{
    stream_state_t *stream = state->stream;
    const order_receipt_t *plan = state->receipt;
    stream->receipt_order_count = 0;
    for (uint32_t i = 0; e->serves && plan != NULL && i < plan->order_count; i++) {
        if (stream->receipt_order_count == STREAM_RECEIPT_ORDERS_MAX) {
            stream->dropped += 2 * (plan->order_count - i);
            break;
        }
        const allot_event_order_t *v = &state->orders[plan->orders[i].slot]->v;
        stream->receipt_orders[stream->receipt_order_count++] =
            (stream_receipt_order_t){plan->orders[i].slot, v->shipment_count, v->state};
    }
}

/* The supply's eta before the record (INT64_MIN for a new supply). */
static void supply_capture(allot_state_t *state, allot_str_t id)
{
    allot_supply_view_t v;
    allot_error_detail_t detail;
    state->stream->supply_eta_before =
        allot_supply_get(state, id, &v, &detail) == 0 ? v.eta_ms : INT64_MIN;
}

static void skus_of_event(allot_state_t *state, const allot_event_t *event)
{
    stream_state_t *stream = state->stream;
    switch (event->type) {
    case ALLOT_EVENT_STOCK_SET:
        sku_touch(stream, event->u.stock_set.sku);
        break;
    case ALLOT_EVENT_STOCK_ADJUST:
        sku_touch(stream, event->u.stock_adjust.sku);
        break;
    case ALLOT_EVENT_SKU_PUT: /* its low_stock may take the SKU across */
        sku_touch(stream, event->u.sku_settings.sku);
        break;
    case ALLOT_EVENT_RESERVATION_REPLACE:
    case ALLOT_EVENT_RESERVATION_CREATE:
        if (event->type == ALLOT_EVENT_RESERVATION_REPLACE)
            hold_capture(state, event->u.reservation.id);
        for (uint32_t i = 0; i < event->u.reservation.line_count; i++)
            sku_touch(stream, event->u.reservation.lines[i].sku);
        break;
    case ALLOT_EVENT_RESERVATION_RELEASE:
        hold_capture(state, event->u.release.id);
        break;
    case ALLOT_EVENT_SUPPLY_PUT:
    case ALLOT_EVENT_SUPPLY_RECEIVE:
    case ALLOT_EVENT_SUPPLY_CANCEL:
        supply_capture(state, event->u.supply.id);
        if (event->type == ALLOT_EVENT_SUPPLY_RECEIVE)
            sku_touch(stream, event->u.supply.sku);
        receipt_capture(state, &event->u.supply); /* a put: a delay (serves) moves them */
        break;
    case ALLOT_EVENT_ORDER_CREATE:
        if (event->u.order.reservation.len > 0)
            hold_capture(state, event->u.order.reservation);
        for (uint32_t i = 0; i < event->u.order.line_count; i++)
            sku_touch(stream, event->u.order.lines[i].sku);
        break;
    default:
        if (event->type >= ALLOT_EVENT_ORDER_PAY && event->type <= ALLOT_EVENT_RETURN_RECEIVE)
            order_capture(state, event->u.change.id);
        break;
    }
}

/* Copy the positions and the low_stock of every touched SKU. */
static void positions_capture(allot_state_t *state)
{
    stream_state_t *stream = state->stream;
    stream->before_count = 0;
    for (uint32_t s = 0; s < stream->sku_count; s++) {
        uint32_t index = allot_sku_index_find(state, stream->skus[s]);
        stream->sku_indices[s] = index;  /* SKUs are never removed: still its index after */
        stream->low_stock_before[s] = 0; /* a SKU that does not exist yet has no setting */
        if (index == ALLOT_SKU_NONE)
            continue;
        const allot_sku_t *sku = allot_sku_at(state, index);
        uint32_t need = stream->before_count + sku->position_count;
        stream->low_stock_before[s] = -1;
        if (allot_array_grow((void **)&stream->before, &stream->before_capacity, need,
                             sizeof(*stream->before), 64) != 0)
            continue; /* out of memory: that SKU's changes compare with nothing */
        stream->low_stock_before[s] = sale_sku_low_stock(state, index);
        for (uint32_t p = 0; p < sku->position_count; p++) {
            const allot_position_t *pos = &sku->positions[p];
            stream->before[stream->before_count++] =
                (stream_before_t){index,         pos->location,  pos->on_hand,
                                  pos->reserved, pos->allocated, pos->safety_stock};
        }
    }
}

static void clock_advance(stream_state_t *stream, const allot_event_t *event)
{
    int64_t at_ms = INT64_MIN;
    switch (event->type) {
    case ALLOT_EVENT_STOCK_ADJUST:
        at_ms = event->u.stock_adjust.at_ms;
        break;
    case ALLOT_EVENT_RESERVATION_CREATE:
        at_ms = event->u.reservation.created_ms;
        break;
    case ALLOT_EVENT_RESERVATION_REPLACE:
        at_ms = event->u.reservation.at_ms;
        break;
    case ALLOT_EVENT_RESERVATION_EXTEND:
        at_ms = event->u.extend.at_ms;
        break;
    case ALLOT_EVENT_RESERVATION_RELEASE:
        at_ms = event->u.release.at_ms;
        break;
    case ALLOT_EVENT_ORDER_CREATE:
        at_ms = event->u.order.created_ms;
        break;
    case ALLOT_EVENT_EVENTS_ACK:
        at_ms = event->u.consumer.at_ms;
        break;
    case ALLOT_EVENT_EVENTS_TICK:
        at_ms = event->u.tick.at_ms;
        break;
    case ALLOT_EVENT_SUPPLY_PUT:
    case ALLOT_EVENT_SUPPLY_RECEIVE:
    case ALLOT_EVENT_SUPPLY_CANCEL:
        at_ms = event->u.supply.at_ms;
        break;
    default:
        if (event->type >= ALLOT_EVENT_ORDER_PAY && event->type <= ALLOT_EVENT_ORDER_EVICT)
            at_ms = event->u.change.at_ms;
        break;
    }
    if (at_ms > stream->clock_ms)
        stream->clock_ms = at_ms;
}

void stream_record_before(allot_state_t *state, const allot_event_t *event)
{
    stream_state_t *stream = state->stream;
    if (stream->cb == NULL)
        return;
    stream->index = 0;
    stream->sku_count = 0;
    stream->line_count = 0;
    stream->hold_id.len = 0;
    stream->order_known = false;
    stream->shipment_count = 0;
    stream->receipt_order_count = 0;
    clock_advance(stream, event);
    skus_of_event(state, event);
    positions_capture(state);
}

/* ---- after the commit ----------------------------------------------------------------------- */

static const char *stock_reason(const allot_event_t *event)
{
    switch (event->type) {
    case ALLOT_EVENT_RESERVATION_CREATE:
    case ALLOT_EVENT_RESERVATION_REPLACE:
        return "reservation";
    case ALLOT_EVENT_RESERVATION_RELEASE:
        return event->u.release.reason == ALLOT_RELEASE_EXPIRED ? "reservation.expired"
                                                                : "reservation.released";
    case ALLOT_EVENT_ORDER_CREATE:
        return "order";
    case ALLOT_EVENT_SHIPMENT_SHIP:
        return "shipment";
    case ALLOT_EVENT_RETURN_RECEIVE:
        return "return";
    default:
        return allot_event_type_name(event->type);
    }
}

static allot_str_t stock_ref(const allot_event_t *event)
{
    switch (event->type) {
    case ALLOT_EVENT_STOCK_ADJUST:
        return event->u.stock_adjust.key;
    case ALLOT_EVENT_RESERVATION_CREATE:
    case ALLOT_EVENT_RESERVATION_REPLACE:
        return event->u.reservation.id;
    case ALLOT_EVENT_RESERVATION_RELEASE:
        return event->u.release.id;
    case ALLOT_EVENT_ORDER_CREATE:
        return event->u.order.id;
    case ALLOT_EVENT_RETURN_CREATE:
    case ALLOT_EVENT_RETURN_RECEIVE:
        return event->u.change.text;
    case ALLOT_EVENT_STOCK_SET:
        return (allot_str_t){"", 0};
    case ALLOT_EVENT_SUPPLY_RECEIVE:
        return event->u.supply.id;
    default:
        return event->u.change.id;
    }
}

static const stream_before_t *before_find(const stream_state_t *stream, uint32_t sku,
                                          uint32_t location)
{
    for (uint32_t i = 0; i < stream->before_count; i++)
        if (stream->before[i].sku == sku && stream->before[i].location == location)
            return &stream->before[i];
    return NULL;
}

static bool ship_eligible(const allot_state_t *state, uint32_t location)
{
    const allot_location_t *l = inventory_location_at(state, location);
    return l->active && l->ship;
}

static int64_t before_available(const stream_before_t *b)
{
    int64_t v = b->on_hand - b->reserved - b->allocated - b->safety_stock;
    return v > 0 ? v : 0;
}

/* stock.changed for each position of the SKU that changed; *before / *after: ship totals. */
static void sku_changes(allot_state_t *state, const allot_event_t *event, uint32_t index,
                        int64_t *before_total, int64_t *after_total)
{
    stream_state_t *stream = state->stream;
    const allot_sku_t *sku = allot_sku_at(state, index);
    *before_total = 0;
    *after_total = 0;
    for (uint32_t i = 0; i < stream->before_count; i++)
        if (stream->before[i].sku == index && ship_eligible(state, stream->before[i].location))
            *before_total += before_available(&stream->before[i]);
    for (uint32_t p = 0; p < sku->position_count; p++) {
        const allot_position_t *pos = &sku->positions[p];
        int64_t available = allot_position_available(pos);
        if (ship_eligible(state, pos->location))
            *after_total += available;
        const stream_before_t *b = before_find(stream, index, pos->location);
        if (b != NULL && b->on_hand == pos->on_hand && b->reserved == pos->reserved &&
            b->allocated == pos->allocated && b->safety_stock == pos->safety_stock)
            continue;
        allot_change_t change = {.type = ALLOT_CHANGE_STOCK_CHANGED};
        change.sku = allot_sku_id(sku);
        change.location = allot_location_id(allot_location_at(state, pos->location));
        change.on_hand = pos->on_hand;
        change.reserved = pos->reserved;
        change.allocated = pos->allocated;
        change.safety_stock = pos->safety_stock;
        change.available = available;
        change.on_hand_delta = pos->on_hand - (b != NULL ? b->on_hand : 0);
        change.reason = stock_reason(event);
        change.ref = stock_ref(event);
        change_give(stream, &change);
    }
}

static stream_avail_t *avail_slot(stream_state_t *stream, uint32_t index)
{
    if (index >= stream->avail_capacity) {
        uint32_t old = stream->avail_capacity;
        if (allot_array_grow((void **)&stream->avail, &stream->avail_capacity, index + 1,
                             sizeof(*stream->avail), 1024) != 0)
            return NULL;
        for (uint32_t i = old; i < stream->avail_capacity; i++)
            stream->avail[i] = (stream_avail_t){INT64_MIN, 0, false};
    }
    return &stream->avail[index];
}

static void avail_give(allot_state_t *state, uint32_t index, stream_avail_t *av, int64_t total)
{
    stream_state_t *stream = state->stream;
    av->emitted_ms = stream->clock_ms;
    av->emitted = total;
    av->owed = false;
    allot_change_t change = {.type = ALLOT_CHANGE_AVAIL_CHANGED};
    change.sku = allot_sku_id(allot_sku_at(state, index));
    change.available = total;
    change_give(stream, &change);
}

static bool avail_due(const stream_state_t *stream, const stream_avail_t *av)
{
    return av->emitted_ms == INT64_MIN ||
           stream->clock_ms - av->emitted_ms >= ALLOT_AVAIL_COALESCE_MS;
}

/* A SKU's ship total moved from before to after: give avail.changed now or owe it. */
static void avail_changed(allot_state_t *state, uint32_t index, int64_t before, int64_t after)
{
    stream_state_t *stream = state->stream;
    stream_avail_t *av = avail_slot(stream, index);
    if (av == NULL || (before == after && !av->owed))
        return;
    if (av->emitted_ms == INT64_MIN)
        av->emitted = before;
    if (avail_due(stream, av)) {
        if (after != av->emitted || av->owed)
            avail_give(state, index, av, after);
        return;
    }
    if (!av->owed && allot_u32_vec_reserve(&stream->owed, 1) == 0) {
        av->owed = true;
        allot_u32_vec_push(&stream->owed, index);
    }
}

static int64_t sku_ship_total(const allot_state_t *state, uint32_t index)
{
    const allot_sku_t *sku = allot_sku_at(state, index);
    int64_t total = 0;
    for (uint32_t p = 0; p < sku->position_count; p++)
        if (ship_eligible(state, sku->positions[p].location))
            total += allot_position_available(&sku->positions[p]);
    return total;
}

/* Give the owed avail.changed whose window has ended, oldest first. */
static void owed_flush(allot_state_t *state)
{
    stream_state_t *stream = state->stream;
    allot_u32_vec_t *owed = &stream->owed;
    while (stream->owed_head < owed->count) {
        uint32_t index = owed->items[stream->owed_head];
        stream_avail_t *av = &stream->avail[index];
        if (av->owed && !avail_due(stream, av))
            break;
        stream->owed_head++;
        if (!av->owed)
            continue;
        int64_t total = sku_ship_total(state, index);
        if (total != av->emitted)
            avail_give(state, index, av, total);
        else
            av->owed = false;
    }
    if (stream->owed_head == owed->count) {
        owed->count = 0;
        stream->owed_head = 0;
    } else if (stream->owed_head > owed->count / 2) {
        memmove(owed->items, owed->items + stream->owed_head,
                (owed->count - stream->owed_head) * sizeof(uint32_t));
        owed->count -= stream->owed_head;
        stream->owed_head = 0;
    }
}

int64_t allot_stream_tick_due_ms(const allot_state_t *state)
{
    const stream_state_t *stream = state->stream;
    for (uint32_t i = stream->owed_head; i < stream->owed.count; i++) {
        const stream_avail_t *av = &stream->avail[stream->owed.items[i]];
        if (av->owed)
            return av->emitted_ms + ALLOT_AVAIL_COALESCE_MS;
    }
    return INT64_MAX;
}

int allot_stream_tick(allot_state_t *state, int64_t now_ms)
{
    allot_event_t event; /* not zeroed whole: only the payload below is read */
    event.type = ALLOT_EVENT_EVENTS_TICK;
    event.u.tick = (allot_event_tick_t){.at_ms = now_ms};
    return state_event_emit(state, &event);
}

/* The lines of the live hold `id` as they are now. */
static uint32_t hold_lines(const allot_state_t *state, allot_str_t id, allot_change_line_t *lines)
{
    const allot_reservation_t *hold = allot_reservation_find(state, id);
    if (hold == NULL || allot_reservation_lines(hold) == NULL)
        return 0;
    uint32_t n = hold->line_count < ALLOT_LINES_MAX ? hold->line_count : ALLOT_LINES_MAX;
    for (uint32_t i = 0; i < n; i++)
        lines[i] = (allot_change_line_t){
            allot_sku_id(allot_sku_at(state, allot_reservation_lines(hold)[i].sku)),
            allot_reservation_lines(hold)[i].qty_held};
    return n;
}

static void hold_ended_give(stream_state_t *stream, uint8_t type, allot_str_t order)
{
    if (stream->hold_id.len == 0)
        return;
    allot_change_t change = {.type = type, .id = stream->hold_id, .order = order};
    change.lines = stream->lines;
    change.line_count = stream->line_count;
    change_give(stream, &change);
}

static void hold_changes(allot_state_t *state, const allot_event_t *event)
{
    stream_state_t *stream = state->stream;
    allot_change_line_t lines[ALLOT_LINES_MAX];
    allot_change_t change = {.type = ALLOT_CHANGE_RESERVATION_CREATED};
    switch (event->type) {
    case ALLOT_EVENT_RESERVATION_REPLACE:
        hold_ended_give(stream, ALLOT_CHANGE_RESERVATION_RELEASED, (allot_str_t){"", 0});
        __attribute__((fallthrough)); /* then the new hold */
    case ALLOT_EVENT_RESERVATION_CREATE:
        change.id = event->u.reservation.id;
        change.lines = lines;
        change.line_count = hold_lines(state, change.id, lines);
        change_give(stream, &change);
        break;
    case ALLOT_EVENT_RESERVATION_RELEASE:
        hold_ended_give(stream,
                        event->u.release.reason == ALLOT_RELEASE_EXPIRED
                            ? ALLOT_CHANGE_RESERVATION_EXPIRED
                            : ALLOT_CHANGE_RESERVATION_RELEASED,
                        (allot_str_t){"", 0});
        break;
    default:
        break;
    }
}

static void shipment_changes(stream_state_t *stream, const allot_event_order_t *v,
                             uint32_t shipments_before)
{
    for (uint32_t i = 0; i < v->shipment_count; i++) {
        const allot_event_shipment_t *s = &v->shipments[i];
        bool known = i < shipments_before;
        if (known && stream->shipments[i].state == s->state)
            continue;
        allot_change_t change = {.type = ALLOT_CHANGE_SHIPMENT_CHANGED};
        change.order = v->id;
        change.customer = v->customer;
        change.shipment = i;
        change.location = s->location;
        change.tracking = s->tracking;
        change.from = known ? allot_shipment_state_names[stream->shipments[i].state] : NULL;
        change.to = allot_shipment_state_names[s->state];
        change_give(stream, &change);
    }
}

static void return_change(stream_state_t *stream, const allot_event_order_t *v, allot_str_t id)
{
    for (uint32_t i = 0; i < v->return_count; i++) {
        const allot_event_return_t *r = &v->returns[i];
        if (r->id.len != id.len || memcmp(r->id.ptr, id.ptr, id.len) != 0)
            continue;
        allot_change_t change = {.type = ALLOT_CHANGE_RETURN_CHANGED, .id = r->id};
        change.order = v->id;
        change.customer = v->customer;
        change.state = allot_return_state_names[r->state];
        change_give(stream, &change);
        return;
    }
}

static void order_changes(allot_state_t *state, const allot_event_t *event)
{
    stream_state_t *stream = state->stream;
    bool create = event->type == ALLOT_EVENT_ORDER_CREATE;
    allot_str_t id = create ? event->u.order.id : event->u.change.id;
    uint32_t slot = order_slot_find(state, id);
    if (slot == ALLOT_SLOT_NONE || (!create && !stream->order_known))
        return;
    const allot_event_order_t *v = &state->orders[slot]->v;
    allot_change_t change = {.type = ALLOT_CHANGE_ORDER_CHANGED, .id = v->id};
    change.customer = v->customer;
    if (create) {
        change.type = ALLOT_CHANGE_ORDER_CREATED;
        change_give(stream, &change);
        hold_ended_give(stream, ALLOT_CHANGE_RESERVATION_RELEASED, v->id);
        shipment_changes(stream, v, 0);
        return;
    }
    change.from = allot_order_state_names[stream->order_state];
    change.to = allot_order_state_names[v->state];
    change.cause = allot_event_type_name(event->type);
    change_give(stream, &change);
    shipment_changes(stream, v, stream->shipment_count);
    if (event->type == ALLOT_EVENT_RETURN_CREATE || event->type == ALLOT_EVENT_RETURN_RECEIVE)
        return_change(stream, v, event->u.change.text);
}

/* A receipt's orders: order.changed (cause supply.receive; the state may stay) and
 * shipment.changed for each new shipment; a cancel's: order.changed (cause supply.cancelled);
 * a delaying put's: order.changed (cause supply.delayed). */
static void receipt_changes(allot_state_t *state, const allot_event_t *event)
{
    stream_state_t *stream = state->stream;
    for (uint32_t i = 0; i < stream->receipt_order_count; i++) {
        const stream_receipt_order_t *before = &stream->receipt_orders[i];
        const allot_event_order_t *v = &state->orders[before->slot]->v;
        allot_change_t change = {.type = ALLOT_CHANGE_ORDER_CHANGED, .id = v->id};
        change.customer = v->customer;
        change.from = allot_order_state_names[before->state];
        change.to = allot_order_state_names[v->state];
        change.cause = event->type == ALLOT_EVENT_SUPPLY_CANCEL ? "supply.cancelled"
                       : event->type == ALLOT_EVENT_SUPPLY_PUT  ? "supply.delayed"
                                                               : allot_event_type_name(event->type);
        change_give(stream, &change);
        for (uint32_t k = before->shipment_count; k < v->shipment_count; k++) {
            const allot_event_shipment_t *s = &v->shipments[k];
            allot_change_t shipment = {.type = ALLOT_CHANGE_SHIPMENT_CHANGED};
            shipment.order = v->id;
            shipment.customer = v->customer;
            shipment.shipment = k;
            shipment.location = s->location;
            shipment.tracking = s->tracking;
            shipment.to = allot_shipment_state_names[s->state];
            change_give(stream, &shipment);
        }
    }
}

/* Is a SKU with this total available and this low_stock setting low? */
static bool sku_low(int64_t available, int64_t low_stock)
{
    return low_stock > 0 && available <= low_stock;
}

/* Records that never change a SKU's settings (low_stock): the hot ones. */
static bool settings_kept(const allot_event_t *event)
{
    switch (event->type) {
    case ALLOT_EVENT_RESERVATION_CREATE:
    case ALLOT_EVENT_RESERVATION_REPLACE:
    case ALLOT_EVENT_RESERVATION_RELEASE:
    case ALLOT_EVENT_STOCK_SET:
    case ALLOT_EVENT_STOCK_ADJUST:
    case ALLOT_EVENT_ORDER_CREATE:
        return true;
    default:
        return false;
    }
}

/* stock.low / stock.restored when the record took the SKU (index, the touched SKU s) across its
 * low_stock: from its before and after totals and settings alone, never from memory. */
static void low_changes(allot_state_t *state, const allot_event_t *event, uint32_t s,
                        uint32_t index, int64_t before, int64_t after)
{
    stream_state_t *stream = state->stream;
    int64_t low_stock_before = stream->low_stock_before[s];
    if (low_stock_before < 0)
        return; /* nothing captured to compare with */
    int64_t low_stock = settings_kept(event) && stream->sku_indices[s] != ALLOT_SKU_NONE
                            ? low_stock_before
                            : sale_sku_low_stock(state, index);
    bool was_low = sku_low(before, low_stock_before);
    bool is_low = sku_low(after, low_stock);
    if (was_low == is_low)
        return;
    allot_change_t change = {.type = is_low ? ALLOT_CHANGE_STOCK_LOW : ALLOT_CHANGE_STOCK_RESTORED};
    change.sku = allot_sku_id(allot_sku_at(state, index));
    change.available = after;
    change.low_stock = low_stock;
    change.reason = stock_reason(event);
    change_give(stream, &change);
}

/* supply.changed: the supply after its record. */
static void supply_change(allot_state_t *state, const allot_event_t *event)
{
    allot_supply_view_t v;
    allot_error_detail_t detail;
    if (allot_supply_get(state, event->u.supply.id, &v, &detail) != 0)
        return;
    allot_change_t change = {.type = ALLOT_CHANGE_SUPPLY_CHANGED, .id = v.id};
    change.sku = v.sku;
    change.location = v.location;
    change.qty = v.qty;
    change.received = v.received;
    change.held = v.held;
    change.eta_ms = v.eta_ms;
    change.state = allot_supply_state_names[v.state];
    change.cause = allot_event_type_name(event->type);
    int64_t eta_before = state->stream->supply_eta_before;
    if (event->type == ALLOT_EVENT_SUPPLY_PUT && eta_before != INT64_MIN && v.eta_ms > eta_before)
        change.cause = "supply.delayed";
    change_give(state->stream, &change);
}

void stream_record_after(allot_state_t *state, const allot_event_t *event)
{
    stream_state_t *stream = state->stream;
    if (stream->cb == NULL)
        return;
    if (event->type == ALLOT_EVENT_ORDER_CREATE ||
        (event->type >= ALLOT_EVENT_ORDER_PAY && event->type <= ALLOT_EVENT_RETURN_RECEIVE))
        order_changes(state, event);
    else if (event->type == ALLOT_EVENT_SUPPLY_PUT || event->type == ALLOT_EVENT_SUPPLY_RECEIVE ||
             event->type == ALLOT_EVENT_SUPPLY_CANCEL) {
        supply_change(state, event);
        receipt_changes(state, event);
    } else
        hold_changes(state, event);
    uint32_t indices[sizeof(stream->skus) / sizeof(stream->skus[0])];
    int64_t before[sizeof(stream->skus) / sizeof(stream->skus[0])];
    int64_t after[sizeof(stream->skus) / sizeof(stream->skus[0])];
    for (uint32_t s = 0; s < stream->sku_count; s++) {
        indices[s] = stream->sku_indices[s] != ALLOT_SKU_NONE
                         ? stream->sku_indices[s]
                         : allot_sku_index_find(state, stream->skus[s]); /* new with the record */
        if (indices[s] != ALLOT_SKU_NONE)
            sku_changes(state, event, indices[s], &before[s], &after[s]);
    }
    for (uint32_t s = 0; s < stream->sku_count; s++)
        if (indices[s] != ALLOT_SKU_NONE)
            avail_changed(state, indices[s], before[s], after[s]);
    owed_flush(state);
    for (uint32_t s = 0; s < stream->sku_count; s++)
        if (indices[s] != ALLOT_SKU_NONE)
            low_changes(state, event, s, indices[s], before[s], after[s]);
}

/* ---- EVENTS_TICK ---------------------------------------------------------------------------- */

int stream_tick_encode(const allot_event_tick_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, 8);
    if (rc == 0)
        allot_bytes_put_i64(out, e->at_ms);
    return rc;
}

int stream_tick_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_tick_t *e)
{
    (void)s;
    e->at_ms = allot_reader_i64(r);
    return allot_event_time_ok(e->at_ms) ? 0 : ALLOT_ECORRUPT;
}

int stream_tick_prepare(allot_state_t *state, const allot_event_tick_t *e)
{
    (void)state;
    (void)e;
    return 0;
}

/* Time passing is all a tick does: the owed avail.changed come due in stream_record_after. */
void stream_tick_commit(allot_state_t *state, const allot_event_tick_t *e)
{
    if (e->at_ms > state->stream->clock_ms)
        state->stream->clock_ms = e->at_ms;
}
