/* invariants.c - allot_state_check_invariants: reserved/allocated recomputed from holds. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/inventory.h"
#include "core/order/order_private.h"
#include "core/reservation.h"
#include "core/sale/sale_private.h"
#include "core/supply/supply_private.h"
#include "core/state.h"

typedef struct check {
    const allot_state_t *state;
    uint64_t *first; /* per SKU: index of its first position in the sums */
    int64_t *reserved;
    int64_t *allocated;
} check_t;

/* Index into the sums of (sku, location); UINT64_MAX when there is no such position. */
static uint64_t check_slot(const check_t *c, uint32_t sku, uint32_t location)
{
    if (sku == ALLOT_SKU_NONE || location == ALLOT_LOCATION_NONE)
        return UINT64_MAX;
    const allot_sku_t *s = &c->state->skus[sku];
    const allot_position_t *p = allot_sku_position_find(s, location);
    return p == NULL ? UINT64_MAX : c->first[sku] + (uint64_t)(p - s->positions);
}

/* The violation as a message (ids through allot_str_echo; a cut keeps whole characters). */
static int check_fail(char *msg, size_t msg_bytes, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int check_fail(char *msg, size_t msg_bytes, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int n = msg_bytes > 0 ? vsnprintf(msg, msg_bytes, fmt, args) : 0;
    va_end(args);
    if (n >= (int)msg_bytes && msg_bytes > 0)
        msg[allot_utf8_prefix_bytes(msg, msg_bytes - 1)] = '\0';
    return ALLOT_ECORRUPT;
}

static int check_sum_holds(check_t *c, char *msg, size_t msg_bytes)
{
    const allot_state_t *state = c->state;
    for (uint32_t i = 0; i < state->reservation_slots; i++) {
        const allot_reservation_t *r = &state->reservations[i];
        if (!r->used || r->status != ALLOT_RESERVATION_ACTIVE)
            continue;
        for (uint32_t k = 0; k < r->line_count; k++) {
            const allot_reservation_line_t *line = &allot_reservation_lines(r)[k];
            for (uint32_t a = 0; a < line->allocation_count; a++) {
                const allot_reservation_allocation_t *x =
                    &allot_reservation_allocations(r)[line->allocation_first + a];
                if (x->location == ALLOT_LOCATION_SUPPLY)
                    continue; /* a backorder hold: the supply's held (supply_check_invariants) */
                uint64_t at = check_slot(c, line->sku, x->location);
                if (at == UINT64_MAX)
                    return check_fail(msg, msg_bytes, "reservation %s holds at a missing position",
                                      allot_str_echo(allot_reservation_id(r), &(allot_echo_t){0}));
                c->reserved[at] += x->qty;
            }
        }
    }
    for (uint32_t i = 0; i < state->order_slots; i++) {
        const allot_order_t *o = state->orders[i];
        for (uint32_t k = 0; o != NULL && k < o->v.shipment_count; k++) {
            const allot_event_shipment_t *s = &o->v.shipments[k];
            if (s->state != ALLOT_SHIPMENT_ALLOCATED && s->state != ALLOT_SHIPMENT_RELEASED)
                continue;
            uint32_t l = allot_location_index_find(state, s->location);
            for (uint32_t t = 0; t < s->item_count; t++) {
                const allot_event_item_t *item = &o->v.items[s->item_first + t];
                uint64_t at = check_slot(c, allot_sku_index_find(state, item->sku), l);
                if (at == UINT64_MAX)
                    return check_fail(msg, msg_bytes, "order %s allocates at a missing position",
                                      allot_str_echo(o->v.id, &(allot_echo_t){0}));
                c->allocated[at] += item->qty;
            }
        }
    }
    return 0;
}

/* "SKU@LOCATION" of a position, for a violation message. */
typedef struct position_name {
    char text[2 * sizeof(allot_echo_t)];
} position_name_t;

static const char *position_name(const allot_state_t *state, const allot_sku_t *sku,
                                 const allot_position_t *p, position_name_t *name)
{
    const allot_location_t *l = &state->locations[p->location];
    allot_echo_t sku_id, location_id;
    snprintf(name->text, sizeof(name->text), "%s@%s", allot_str_echo(allot_sku_id(sku), &sku_id),
             allot_str_echo((allot_str_t){l->id, l->id_len}, &location_id));
    return name->text;
}

static int check_compare(const check_t *c, char *msg, size_t msg_bytes)
{
    const allot_state_t *state = c->state;
    for (uint32_t s = 0; s < state->sku_count; s++) {
        const allot_sku_t *sku = &state->skus[s];
        for (uint32_t i = 0; i < sku->position_count; i++) {
            const allot_position_t *p = &sku->positions[i];
            uint64_t at = c->first[s] + i;
            if (p->on_hand < 0)
                return check_fail(msg, msg_bytes, "%s: on_hand %lld < 0",
                                  position_name(state, sku, p, &(position_name_t){0}),
                                  (long long)p->on_hand);
            if (p->reserved != c->reserved[at])
                return check_fail(msg, msg_bytes, "%s: reserved %lld, holds sum to %lld",
                                  position_name(state, sku, p, &(position_name_t){0}),
                                  (long long)p->reserved, (long long)c->reserved[at]);
            if (p->allocated != c->allocated[at])
                return check_fail(msg, msg_bytes, "%s: allocated %lld, orders sum to %lld",
                                  position_name(state, sku, p, &(position_name_t){0}),
                                  (long long)p->allocated, (long long)c->allocated[at]);
        }
    }
    return 0;
}

/* Take qty of (sku, customer) off the counted holdings (left: per holding slot). */
static int holding_take(const allot_state_t *state, int64_t *left, uint32_t sku,
                        allot_str_t customer, int64_t qty, char *msg, size_t msg_bytes)
{
    if (customer.len == 0 || qty == 0)
        return 0;
    uint32_t slot = sale_holding_find(state, sku, customer);
    if (slot == ALLOT_SLOT_NONE)
        return check_fail(msg, msg_bytes, "customer %s holds units that are not counted",
                          allot_str_echo(customer, &(allot_echo_t){0}));
    left[slot] -= qty;
    return 0;
}

/* The units each customer holds per SKU (max_per_customer) are those of the customer's live
 * holds and counted orders, exactly. */
static int check_holdings(const allot_state_t *state, char *msg, size_t msg_bytes)
{
    const sale_store_t *s = state->sale;
    int64_t *left = calloc((size_t)s->holding_slots + 1, sizeof(*left));
    if (left == NULL)
        return ALLOT_ENOMEM;
    for (uint32_t i = 0; i < s->holding_slots; i++)
        left[i] = s->holdings[i].used ? s->holdings[i].qty : 0;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < state->reservation_slots; i++) {
        const allot_reservation_t *r = &state->reservations[i];
        if (!r->used || r->status != ALLOT_RESERVATION_ACTIVE)
            continue;
        for (uint32_t k = 0; rc == 0 && k < r->line_count; k++)
            rc = holding_take(state, left, allot_reservation_lines(r)[k].sku,
                              allot_reservation_customer(r), allot_reservation_lines(r)[k].qty_held,
                              msg, msg_bytes);
    }
    for (uint32_t i = 0; rc == 0 && i < state->order_slots; i++) {
        const allot_order_t *o = state->orders[i];
        if (o == NULL || o->v.state == ALLOT_ORDER_CANCELLED)
            continue;
        for (uint32_t k = 0; rc == 0 && k < o->v.line_count; k++)
            rc = holding_take(state, left, allot_sku_index_find(state, o->v.lines[k].sku),
                              o->v.customer, o->v.lines[k].qty, msg, msg_bytes);
    }
    for (uint32_t i = 0; rc == 0 && i < s->holding_slots; i++)
        if (left[i] != 0)
            rc = check_fail(msg, msg_bytes,
                            "customer %s: %lld units counted, holds and orders "
                            "sum to %lld",
                            s->holdings[i].customer, (long long)s->holdings[i].qty,
                            (long long)(s->holdings[i].qty - left[i]));
    free(left);
    return rc;
}

/* Each supply's held is the sum of the backorder allocations of the live holds on it and of the
 * backordered units of the orders on it, and every one of them names a supply that exists. */
static int check_supply_holds(const allot_state_t *state, char *msg, size_t msg_bytes)
{
    const supply_store_t *s = state->supply;
    int64_t *held = calloc((size_t)s->slots + 1, sizeof(*held));
    if (held == NULL)
        return ALLOT_ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; i < state->reservation_slots && rc == 0; i++) {
        const allot_reservation_t *r = &state->reservations[i];
        for (uint32_t k = 0;
             r->used && r->status == ALLOT_RESERVATION_ACTIVE && k < r->allocation_count && rc == 0;
             k++) {
            const allot_reservation_allocation_t *a = &allot_reservation_allocations(r)[k];
            if (a->location != ALLOT_LOCATION_SUPPLY)
                continue;
            uint32_t slot = supply_find(state, allot_reservation_allocation_supply(r, a));
            if (slot == ALLOT_SLOT_NONE)
                rc = check_fail(msg, msg_bytes, "reservation %s holds on a supply that is gone",
                                allot_str_echo(allot_reservation_id(r), &(allot_echo_t){0}));
            else
                held[slot] += a->qty;
        }
    }
    for (uint32_t i = 0; i < state->order_slots && rc == 0; i++) {
        const allot_order_t *o = state->orders[i];
        for (uint32_t k = 0; o != NULL && k < o->v.backorder_count && rc == 0; k++) {
            uint32_t slot = supply_find(state, o->v.backorders[k].supply);
            if (slot == ALLOT_SLOT_NONE || o->v.state == ALLOT_ORDER_CANCELLED)
                rc = check_fail(msg, msg_bytes, "order %s backorders on a supply that is gone",
                                allot_str_echo(o->v.id, &(allot_echo_t){0}));
            else
                held[slot] += o->v.backorders[k].qty;
        }
    }
    for (uint32_t i = 0; i < s->slots && rc == 0; i++) {
        const supply_t *x = &s->supplies[i];
        if (x->used && x->held != held[i])
            rc = check_fail(msg, msg_bytes,
                            "supply %s: held %lld, the holds and orders on it sum to %lld",
                            allot_str_echo((allot_str_t){x->id, x->id_len}, &(allot_echo_t){0}),
                            (long long)x->held, (long long)held[i]);
    }
    free(held);
    return rc;
}

int allot_state_check_invariants(const allot_state_t *state, char *msg, size_t msg_bytes)
{
    check_t c = {state, NULL, NULL, NULL};
    uint64_t total = 0;
    c.first = malloc(((size_t)state->sku_count + 1) * sizeof(*c.first));
    if (c.first == NULL)
        return ALLOT_ENOMEM;
    for (uint32_t s = 0; s < state->sku_count; s++) {
        c.first[s] = total;
        total += state->skus[s].position_count;
    }
    c.reserved = calloc(total + 1, sizeof(int64_t));
    c.allocated = calloc(total + 1, sizeof(int64_t));
    int rc = c.reserved && c.allocated ? check_sum_holds(&c, msg, msg_bytes) : ALLOT_ENOMEM;
    if (rc == 0)
        rc = check_compare(&c, msg, msg_bytes);
    if (rc == 0)
        rc = check_holdings(state, msg, msg_bytes);
    if (rc == 0)
        rc = supply_check_invariants(state, msg, msg_bytes);
    if (rc == 0)
        rc = check_supply_holds(state, msg, msg_bytes);
    if (rc == 0 && msg_bytes > 0)
        msg[0] = '\0';
    free(c.first);
    free(c.reserved);
    free(c.allocated);
    return rc;
}
