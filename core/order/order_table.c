/* order_table.c - the order state table, the payment table and the wire names (data only). */
#include <stdio.h>

#include "core/order/order_types.h"

const char *const allot_order_state_names[] = {"created",           "on_hold", "released",
                                               "partially_shipped", "shipped", "delivered",
                                               "cancelled",         NULL};
const char *const allot_shipment_state_names[] = {"allocated", "released",  "shipped", "delivered",
                                                  "rejected",  "cancelled", NULL};
const char *const allot_payment_names[] = {"none", "authorized", "captured", "failed", NULL};
const char *const allot_order_event_names[] = {"order.create",   "order.pay",
                                               "order.hold",     "order.unhold",
                                               "order.modify",   "order.release",
                                               "order.cancel",   "shipment.reject",
                                               "shipment.ship",  "shipment.deliver",
                                               "return.create",  "return.receive",
                                               "supply.receive", NULL};
const char *const allot_return_state_names[] = {"requested", "received", NULL};
const char *const allot_disposition_names[] = {"none", "restock", "damaged", NULL};

#define NO        ALLOT_ORDER_NEXT_FORBIDDEN
#define SAME      ALLOT_ORDER_NEXT_SAME
#define DERIVED   ALLOT_ORDER_NEXT_DERIVED
#define CREATED   ALLOT_ORDER_CREATED
#define ON_HOLD   ALLOT_ORDER_ON_HOLD
#define RELEASED  ALLOT_ORDER_RELEASED
#define CANCELLED ALLOT_ORDER_CANCELLED

/* state x event -> next state. Columns: create, pay, hold, unhold, modify, release, cancel,
 * reject, ship, deliver, return.create, return.receive, supply.receive (never a transition: a
 * receipt adds a shipment to an order, core/order/order_receipt.c). "create" is never a transition
 * (it makes the order). The no-op repeat of the event that produced the current state (entered_by)
 * is checked before this table; a cell that is NO here is still refused when it is not a repeat. */
static const uint8_t order_table[ALLOT_ORDER_STATE_COUNT][ALLOT_ORDER_EVENT_COUNT] = {
    /* created */
    {NO, SAME, ON_HOLD, NO, SAME, RELEASED, CANCELLED, SAME, NO, NO, NO, NO, NO},
    /* on_hold */
    {NO, SAME, NO, CREATED, SAME, NO, CANCELLED, SAME, NO, NO, NO, NO, NO},
    /* released */
    {NO, SAME, NO, NO, NO, NO, CANCELLED, SAME, DERIVED, NO, NO, NO, NO},
    /* partially_shipped */
    {NO, SAME, NO, NO, NO, NO, NO, SAME, DERIVED, DERIVED, SAME, SAME, NO},
    /* shipped */
    {NO, SAME, NO, NO, NO, NO, NO, NO, NO, DERIVED, SAME, SAME, NO},
    /* delivered */
    {NO, SAME, NO, NO, NO, NO, NO, NO, NO, NO, SAME, SAME, NO},
    /* cancelled */
    {NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO},
};

/* from x to: may the payment status change? (the diagonal is the no-op repeat) */
static const bool payment_table[ALLOT_PAYMENT_COUNT][ALLOT_PAYMENT_COUNT] = {
    /*              none   authorized captured failed */
    /* none */ {true, true, true, true},
    /* authorized */ {true, true, true, true},
    /* captured */ {false, false, true, false},
    /* failed */ {true, true, true, true},
};

uint8_t allot_order_next_state(uint8_t state, uint8_t event)
{
    if (state >= ALLOT_ORDER_STATE_COUNT || event >= ALLOT_ORDER_EVENT_COUNT)
        return NO;
    return order_table[state][event];
}

bool allot_payment_transition_allowed(uint8_t from, uint8_t to)
{
    return from < ALLOT_PAYMENT_COUNT && to < ALLOT_PAYMENT_COUNT && payment_table[from][to];
}

uint8_t allot_order_state_from_shipments(const allot_event_order_t *order)
{
    uint32_t active = 0, shipped = 0, delivered = 0;
    for (uint32_t i = 0; i < order->shipment_count; i++) {
        uint8_t s = order->shipments[i].state;
        if (s == ALLOT_SHIPMENT_REJECTED || s == ALLOT_SHIPMENT_CANCELLED)
            continue;
        active++;
        shipped += s == ALLOT_SHIPMENT_SHIPPED || s == ALLOT_SHIPMENT_DELIVERED;
        delivered += s == ALLOT_SHIPMENT_DELIVERED;
    }
    bool waiting = order->backorder_count > 0; /* backordered units still to come */
    if (!waiting && active > 0 && delivered == active)
        return ALLOT_ORDER_DELIVERED;
    if (!waiting && active > 0 && shipped == active)
        return ALLOT_ORDER_SHIPPED;
    return shipped > 0 ? ALLOT_ORDER_PARTIALLY_SHIPPED : ALLOT_ORDER_RELEASED;
}

uint32_t allot_shipment_id_format(uint32_t index, char *buf)
{
    return (uint32_t)snprintf(buf, 8, "S%u", (unsigned)(index + 1));
}
