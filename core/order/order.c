/* order.c - order writers: create, pay, hold, unhold, modify, release, cancel (checks + events). */
#include "core/order.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/order/order_private.h"

/* ---- shared helpers ---------------------------------------------------------------------------
 */

static int id_check(allot_str_t id, const char *field, allot_error_detail_t *detail)
{
    if (!allot_id_valid(id))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, field,
                               "%s must be 1..128 bytes of UTF-8", field);
    return 0;
}

int order_live_find(allot_state_t *state, allot_str_t id, const char *field, uint32_t *slot,
                    allot_error_detail_t *detail)
{
    int rc = id_check(id, field, detail);
    if (rc != 0)
        return rc;
    *slot = order_slot_find(state, id);
    if (*slot != ALLOT_SLOT_NONE)
        return 0;
    const allot_order_view_t *archived;
    allot_error_detail_t lookup;
    allot_error_detail_clear(&lookup);
    rc = state->archive.get_cb != NULL ? allot_order_get(state, id, &archived, &lookup)
                                       : ALLOT_ENOT_FOUND;
    if (rc == 0) {
        detail->state = allot_order_state_names[archived->state];
        return allot_error_set(detail, ALLOT_EINVALID_TRANSITION, field,
                               "order %s is archived and can no longer change",
                               allot_str_echo(id, &(allot_echo_t){0}));
    }
    if (rc != ALLOT_ENOT_FOUND) /* the archive could not be read: say so, not "not found" */
        return allot_error_set(detail, rc, NULL, "%s", lookup.message);
    return allot_error_set(detail, ALLOT_ENOT_FOUND, field, "order %s not found",
                           allot_str_echo(id, &(allot_echo_t){0}));
}

/* Events whose repetition, right after they produced the current state, is a no-op. */
static bool order_event_produces_state(uint8_t event)
{
    return event == ALLOT_ORDER_EVENT_HOLD || event == ALLOT_ORDER_EVENT_UNHOLD ||
           event == ALLOT_ORDER_EVENT_RELEASE || event == ALLOT_ORDER_EVENT_CANCEL;
}

int order_transition_check(const allot_event_order_t *v, uint8_t event,
                           allot_error_detail_t *detail)
{
    if (order_event_produces_state(event) && v->entered_by == event)
        return 1;
    if (allot_order_next_state(v->state, event) != ALLOT_ORDER_NEXT_FORBIDDEN)
        return 0;
    detail->state = allot_order_state_names[v->state];
    return allot_error_set(detail, ALLOT_EINVALID_TRANSITION, NULL, "%s is not allowed in state %s",
                           allot_order_event_names[event], allot_order_state_names[v->state]);
}

static int history_room_check(const allot_event_order_t *v, allot_error_detail_t *detail)
{
    if (v->history_count < ALLOT_ORDER_HISTORY_MAX)
        return 0;
    return allot_error_set(
        detail, ALLOT_ETOO_LARGE, NULL, "order %s has reached %u history entries",
        allot_str_echo(v->id, &(allot_echo_t){0}), (unsigned)ALLOT_ORDER_HISTORY_MAX);
}

int order_change_emit(allot_state_t *state, uint8_t type, const allot_event_order_change_t *c,
                      allot_error_detail_t *detail)
{
    allot_event_t event = {.type = type};
    event.u.change = *c;
    int rc = state_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    return 0;
}

int order_build_reserve(allot_state_t *state, uint32_t shipments, uint32_t items)
{
    if (shipments > state->build_shipment_capacity) {
        void *p = realloc(state->build_shipments, shipments * sizeof(allot_event_shipment_t));
        if (p == NULL)
            return ALLOT_ENOMEM;
        state->build_shipments = p;
        state->build_shipment_capacity = shipments;
    }
    if (items > state->build_item_capacity) {
        void *p = realloc(state->build_items, items * sizeof(allot_event_item_t));
        if (p == NULL)
            return ALLOT_ENOMEM;
        state->build_items = p;
        state->build_item_capacity = items;
    }
    return 0;
}

static allot_event_order_change_t change_of(const allot_event_order_t *v, int64_t now_ms)
{
    allot_event_order_change_t c;
    memset(&c, 0, sizeof(c));
    c.id = v->id;
    c.at_ms = now_ms;
    c.shipment = ALLOT_EVENT_SHIPMENT_NONE;
    c.text = (allot_str_t){"", 0};
    c.address = c.instructions = c.location = c.text;
    return c;
}

/* Find the order, check the table (and history room); 1 = no-op repeat. */
static int order_change_begin(allot_state_t *state, allot_str_t id, uint8_t event, uint32_t *slot,
                              allot_error_detail_t *detail)
{
    int rc = order_live_find(state, id, "id", slot, detail);
    if (rc != 0)
        return rc;
    const allot_event_order_t *v = &state->orders[*slot]->v;
    rc = order_transition_check(v, event, detail);
    if (rc != 0)
        return rc;
    return history_room_check(v, detail);
}

int order_text_check(allot_str_t s, const char *field, allot_error_detail_t *detail)
{
    if (s.len > ALLOT_TEXT_BYTES_MAX || !allot_utf8_valid(s.ptr, s.len))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, field,
                               "%s must be at most %u bytes of UTF-8", field,
                               (unsigned)ALLOT_TEXT_BYTES_MAX);
    return 0;
}

/* Run one simple transition: find, check, emit (unless a no-op repeat), point *out at it. */
static int order_transition_run(allot_state_t *state, allot_str_t id, uint8_t event, uint8_t type,
                                allot_str_t text, int64_t now_ms, const allot_order_view_t **out,
                                allot_error_detail_t *detail)
{
    uint32_t slot = UINT32_MAX;
    int rc = order_text_check(text, "reason", detail);
    if (rc == 0)
        rc = order_change_begin(state, id, event, &slot, detail);
    if (rc < 0)
        return rc;
    const allot_event_order_t *v = &state->orders[slot]->v;
    if (rc == 0 && event == ALLOT_ORDER_EVENT_RELEASE && v->payment != ALLOT_PAYMENT_AUTHORIZED &&
        v->payment != ALLOT_PAYMENT_CAPTURED) {
        detail->state = allot_order_state_names[v->state];
        return allot_error_set(detail, ALLOT_EINVALID_TRANSITION, NULL,
                               "order.release needs payment authorized or captured (it is %s)",
                               allot_payment_names[v->payment]);
    }
    if (rc == 0) {
        allot_event_order_change_t c = change_of(v, now_ms);
        c.text = text;
        rc = order_change_emit(state, type, &c, detail);
        if (rc != 0)
            return rc;
    }
    *out = &state->orders[slot]->v;
    return 0;
}

/* ---- simple transitions -----------------------------------------------------------------------
 */

int allot_order_pay(allot_state_t *state, allot_str_t id, allot_payment_t payment, int64_t now_ms,
                    const allot_order_view_t **out, allot_error_detail_t *detail)
{
    uint32_t slot;
    if ((unsigned)payment >= ALLOT_PAYMENT_COUNT)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "status",
                               "status must be none, authorized, captured or failed");
    int rc = order_live_find(state, id, "id", &slot, detail);
    if (rc != 0)
        return rc;
    const allot_event_order_t *v = &state->orders[slot]->v;
    if (v->payment != payment) {
        rc = order_transition_check(v, ALLOT_ORDER_EVENT_PAY, detail);
        if (rc == 0 && !allot_payment_transition_allowed(v->payment, payment)) {
            detail->state = allot_order_state_names[v->state];
            rc = allot_error_set(detail, ALLOT_EINVALID_TRANSITION, "status",
                                 "payment %s cannot become %s", allot_payment_names[v->payment],
                                 allot_payment_names[payment]);
        }
        if (rc == 0)
            rc = history_room_check(v, detail);
        allot_event_order_change_t c = change_of(v, now_ms);
        c.arg = (uint8_t)payment;
        if (rc == 0)
            rc = order_change_emit(state, ALLOT_EVENT_ORDER_PAY, &c, detail);
        if (rc != 0)
            return rc;
    }
    *out = &state->orders[slot]->v;
    return 0;
}

int allot_order_hold(allot_state_t *state, allot_str_t id, allot_str_t reason, int64_t now_ms,
                     const allot_order_view_t **out, allot_error_detail_t *detail)
{
    return order_transition_run(state, id, ALLOT_ORDER_EVENT_HOLD, ALLOT_EVENT_ORDER_HOLD, reason,
                                now_ms, out, detail);
}

int allot_order_unhold(allot_state_t *state, allot_str_t id, int64_t now_ms,
                       const allot_order_view_t **out, allot_error_detail_t *detail)
{
    return order_transition_run(state, id, ALLOT_ORDER_EVENT_UNHOLD, ALLOT_EVENT_ORDER_UNHOLD,
                                (allot_str_t){"", 0}, now_ms, out, detail);
}

int allot_order_release(allot_state_t *state, allot_str_t id, int64_t now_ms,
                        const allot_order_view_t **out, allot_error_detail_t *detail)
{
    return order_transition_run(state, id, ALLOT_ORDER_EVENT_RELEASE, ALLOT_EVENT_ORDER_RELEASE,
                                (allot_str_t){"", 0}, now_ms, out, detail);
}

int allot_order_cancel(allot_state_t *state, allot_str_t id, allot_str_t reason, int64_t now_ms,
                       const allot_order_view_t **out, allot_error_detail_t *detail)
{
    return order_transition_run(state, id, ALLOT_ORDER_EVENT_CANCEL, ALLOT_EVENT_ORDER_CANCEL,
                                reason, now_ms, out, detail);
}

static int modify_check(const allot_order_modify_request_t *req, allot_error_detail_t *detail)
{
    if (req->has_address && req->address.len > ALLOT_ORDER_ADDRESS_BYTES_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "address",
                               "address must encode in at most %u bytes",
                               (unsigned)ALLOT_ORDER_ADDRESS_BYTES_MAX);
    if (req->has_instructions) {
        int rc = order_text_check(req->instructions, "instructions", detail);
        if (rc != 0)
            return rc;
    }
    if (req->has_method && (unsigned)req->method >= ALLOT_METHOD_COUNT)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "method",
                               "method must be ship, same_day or pickup");
    return 0;
}

int allot_order_modify(allot_state_t *state, const allot_order_modify_request_t *req,
                       int64_t now_ms, const allot_order_view_t **out, allot_error_detail_t *detail)
{
    uint32_t slot;
    int rc = modify_check(req, detail);
    if (rc == 0)
        rc = order_change_begin(state, req->id, ALLOT_ORDER_EVENT_MODIFY, &slot, detail);
    if (rc < 0)
        return rc;
    const allot_event_order_t *v = &state->orders[slot]->v;
    allot_event_order_change_t c = change_of(v, now_ms);
    if (req->has_address && !allot_str_equal(req->address, v->address)) {
        c.arg |= ALLOT_ORDER_MODIFY_ADDRESS;
        c.address = req->address;
    }
    if (req->has_instructions && !allot_str_equal(req->instructions, v->instructions)) {
        c.arg |= ALLOT_ORDER_MODIFY_INSTRUCTIONS;
        c.instructions = req->instructions;
    }
    if (req->has_method && (uint8_t)req->method != v->method) {
        c.arg |= ALLOT_ORDER_MODIFY_METHOD;
        c.method = (uint8_t)req->method;
    }
    if (c.arg != 0 && (rc = order_change_emit(state, ALLOT_EVENT_ORDER_MODIFY, &c, detail)) != 0)
        return rc;
    *out = &state->orders[slot]->v;
    return 0;
}

/* ---- eviction ---------------------------------------------------------------------------------
 */

uint32_t allot_orders_evict_aged(allot_state_t *state, int64_t now_ms, uint32_t max)
{
    uint32_t evicted = 0;
    while (evicted < max && state->order_heap.count > 0) {
        const allot_order_t *o = state->orders[allot_heap_top(&state->order_heap)];
        if (o->v.ended_ms > now_ms - state->config.orders_archive_age_ms || o->dirty)
            break; /* too young, or changed since the last checkpoint: after the next one */
        allot_event_order_change_t c = change_of(&o->v, now_ms);
        allot_event_t event = {.type = ALLOT_EVENT_ORDER_EVICT};
        event.u.change = c;
        if (state_event_emit(state, &event) != 0)
            break; /* out of memory: the next checkpoint retries */
        evicted++;
    }
    return evicted;
}
