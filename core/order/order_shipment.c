/* order_shipment.c - shipment.reject (re-source elsewhere), shipment.ship, shipment.deliver. */
#include <string.h>

#include "core/order.h"
#include "core/order/order_private.h"

/* Index of shipment "S<n>" in the order, or NOT_FOUND. */
static int shipment_find(const allot_event_order_t *v, allot_str_t shipment, uint32_t *index,
                         allot_error_detail_t *detail)
{
    char buf[8];
    for (uint32_t i = 0; i < v->shipment_count; i++) {
        uint32_t len = allot_shipment_id_format(i, buf);
        if (allot_str_equal(shipment, (allot_str_t){buf, len})) {
            *index = i;
            return 0;
        }
    }
    return allot_error_set(detail, ALLOT_ENOT_FOUND, "shipment", "order %s has no shipment %s",
                           allot_str_echo(v->id, &(allot_echo_t){0}),
                           allot_str_echo(shipment, &(allot_echo_t){0}));
}

static int shipment_state_refuse(const allot_event_shipment_t *s, const char *what,
                                 allot_error_detail_t *detail)
{
    detail->state = allot_shipment_state_names[s->state];
    return allot_error_set(detail, ALLOT_EINVALID_TRANSITION, "shipment",
                           "%s is not allowed for a shipment in state %s", what,
                           allot_shipment_state_names[s->state]);
}

/* Find order and shipment; check the order's table and history room. 1: no-op repeat (the
 * shipment is already in `done`). */
static int shipment_begin(allot_state_t *state, allot_str_t order, allot_str_t shipment,
                          uint8_t event, uint8_t done, uint32_t *slot, uint32_t *index,
                          allot_error_detail_t *detail)
{
    int rc = order_live_find(state, order, "order", slot, detail);
    if (rc != 0)
        return rc;
    const allot_event_order_t *v = &state->orders[*slot]->v;
    rc = shipment_find(v, shipment, index, detail);
    if (rc != 0)
        return rc;
    if (v->shipments[*index].state == done)
        return 1;
    rc = order_transition_check(v, event, detail);
    if (rc != 0)
        return rc;
    if (v->history_count >= ALLOT_ORDER_HISTORY_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, NULL, "order history is full");
    return 0;
}

static allot_event_order_change_t shipment_change(const allot_event_order_t *v, uint32_t index,
                                                  allot_str_t text, int64_t now_ms)
{
    allot_event_order_change_t c;
    memset(&c, 0, sizeof(c));
    c.id = v->id;
    c.at_ms = now_ms;
    c.shipment = (uint16_t)index;
    c.text = text;
    c.address = c.instructions = c.location = (allot_str_t){"", 0};
    return c;
}

/* Plan the shipment's items elsewhere: every location that rejected a shipment of this order is
 * left out (sourcing sees it inactive for the duration of the plan; nothing else changes). */
static int reject_plan(allot_state_t *state, const allot_event_order_t *v, uint32_t index,
                       int64_t now_ms, allot_event_order_t *e, allot_error_detail_t *detail)
{
    static allot_line_input_t lines[ALLOT_LINES_MAX];
    const allot_event_shipment_t *s = &v->shipments[index];
    if (s->item_count > ALLOT_LINES_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, "shipment", "shipment too large");
    for (uint32_t i = 0; i < s->item_count; i++)
        lines[i] =
            (allot_line_input_t){v->items[s->item_first + i].sku, v->items[s->item_first + i].qty};
    allot_avail_request_t avail = {v->method, v->has_ship_to, v->lat, v->lon, 0, v->location};
    allot_avail_query_t query;
    int rc = allot_avail_prepare(state, &avail, &query, detail);
    if (rc != 0)
        return rc;
    uint32_t excluded[ALLOT_ORDER_SHIPMENTS_MAX];
    bool was_active[ALLOT_ORDER_SHIPMENTS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->shipment_count; i++) {
        if (i != index && v->shipments[i].state != ALLOT_SHIPMENT_REJECTED)
            continue;
        excluded[n] = allot_location_index_find(state, v->shipments[i].location);
        was_active[n] = state->locations[excluded[n]].active;
        state->locations[excluded[n++]].active = false;
    }
    allot_sourcing_request_t sourcing = {lines, s->item_count, query,  (allot_policy_t)v->policy,
                                         false, NULL,          now_ms, NULL};
    allot_plan_t plan;
    rc = allot_sourcing_plan(state, &sourcing, &plan, detail);
    while (n > 0) {
        n--;
        state->locations[excluded[n]].active = was_active[n];
    }
    if (rc != 0)
        return rc;
    detail->shortfall_count = 0;
    static order_alloc_t allocs[ALLOT_ORDER_ITEMS_MAX];
    if (plan.allocation_count > ALLOT_ORDER_ITEMS_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, "shipment", "too many allocations");
    for (uint32_t k = 0; k < plan.allocation_count; k++) {
        uint32_t line = 0;
        while (k >= plan.lines[line].allocation_first + plan.lines[line].allocation_count)
            line++;
        allocs[k] = (order_alloc_t){plan.lines[line].sku, plan.allocations[k].location,
                                    plan.allocations[k].qty};
    }
    return order_shipments_build(state, allocs, plan.allocation_count, e, detail);
}

int allot_shipment_reject(allot_state_t *state, allot_str_t order, allot_str_t shipment,
                          allot_str_t reason, int64_t now_ms, const allot_order_view_t **out,
                          allot_error_detail_t *detail)
{
    uint32_t slot, index;
    int rc = order_text_check(reason, "reason", detail);
    if (rc == 0)
        rc = shipment_begin(state, order, shipment, ALLOT_ORDER_EVENT_REJECT,
                            ALLOT_SHIPMENT_REJECTED, &slot, &index, detail);
    if (rc < 0)
        return rc;
    const allot_event_order_t *v = &state->orders[slot]->v;
    const allot_event_shipment_t *s = &v->shipments[index];
    if (rc == 0 && s->state != ALLOT_SHIPMENT_ALLOCATED && s->state != ALLOT_SHIPMENT_RELEASED)
        return shipment_state_refuse(s, "shipment.reject", detail);
    if (rc == 0) {
        allot_event_order_t moved;
        rc = reject_plan(state, v, index, now_ms, &moved, detail);
        if (rc != 0)
            return rc;
        if (v->shipment_count + moved.shipment_count > ALLOT_ORDER_SHIPMENTS_MAX ||
            v->item_count + moved.item_count > ALLOT_ORDER_ITEMS_MAX)
            return allot_error_set(detail, ALLOT_ETOO_LARGE, "shipment",
                                   "order %s cannot take more shipments",
                                   allot_str_echo(v->id, &(allot_echo_t){0}));
        allot_event_order_change_t c = shipment_change(v, index, reason, now_ms);
        c.shipment_count = moved.shipment_count;
        c.shipments = moved.shipments;
        c.item_count = moved.item_count;
        c.items = moved.items;
        rc = order_change_emit(state, ALLOT_EVENT_SHIPMENT_REJECT, &c, detail);
        if (rc != 0)
            return rc;
    }
    *out = &state->orders[slot]->v;
    return 0;
}

int allot_shipment_ship(allot_state_t *state, allot_str_t order, allot_str_t shipment,
                        allot_str_t tracking, int64_t now_ms, const allot_order_view_t **out,
                        allot_error_detail_t *detail)
{
    uint32_t slot, index;
    int rc = order_text_check(tracking, "tracking", detail);
    if (rc == 0)
        rc = shipment_begin(state, order, shipment, ALLOT_ORDER_EVENT_SHIP, ALLOT_SHIPMENT_SHIPPED,
                            &slot, &index, detail);
    if (rc < 0)
        return rc;
    const allot_event_order_t *v = &state->orders[slot]->v;
    if (rc == 0 && v->shipments[index].state != ALLOT_SHIPMENT_RELEASED)
        return shipment_state_refuse(&v->shipments[index], "shipment.ship", detail);
    if (rc == 0) {
        allot_event_order_change_t c = shipment_change(v, index, tracking, now_ms);
        rc = order_change_emit(state, ALLOT_EVENT_SHIPMENT_SHIP, &c, detail);
        if (rc != 0)
            return rc;
    }
    *out = &state->orders[slot]->v;
    return 0;
}

int allot_shipment_deliver(allot_state_t *state, allot_str_t order, allot_str_t shipment,
                           int64_t now_ms, const allot_order_view_t **out,
                           allot_error_detail_t *detail)
{
    uint32_t slot, index;
    int rc = shipment_begin(state, order, shipment, ALLOT_ORDER_EVENT_DELIVER,
                            ALLOT_SHIPMENT_DELIVERED, &slot, &index, detail);
    if (rc < 0)
        return rc;
    const allot_event_order_t *v = &state->orders[slot]->v;
    if (rc == 0 && v->shipments[index].state != ALLOT_SHIPMENT_SHIPPED)
        return shipment_state_refuse(&v->shipments[index], "shipment.deliver", detail);
    if (rc == 0) {
        allot_event_order_change_t c = shipment_change(v, index, (allot_str_t){"", 0}, now_ms);
        rc = order_change_emit(state, ALLOT_EVENT_SHIPMENT_DELIVER, &c, detail);
        if (rc != 0)
            return rc;
    }
    *out = &state->orders[slot]->v;
    return 0;
}
