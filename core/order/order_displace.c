/* order_displace.c - the apply of supply.cancel and of a supply.put that delays a supply: the
 * supply's backorders move to other open supply of its SKU (earliest eta first, within each
 * one's free qty; for a delay only supply due before the new eta), orders oldest first, then
 * live holds oldest first; what cannot move is released (cancel) or stays (delay). */
#include <assert.h>
#include <stdlib.h>

#include "core/order/order_private.h"
#include "core/reservation/reservation_private.h"
#include "core/sale/sale_private.h"
#include "core/supply.h"
#include "core/supply/supply_private.h"

/* The reason a supply cancel gives the orders it cancels (their history). */
#define DISPLACE_CANCEL_REASON "supply.cancelled"

/* How the backorders on a supply are displaced. */
typedef struct displace_mode {
    int64_t eta_before_ms; /* targets: open supplies due before this (INT64_MAX: any) */
    bool keep;             /* what cannot move stays on the supply (a delay) */
} displace_mode_t;

/* The other open supplies of the supply's SKU with free units due before eta_before_ms, earliest
 * eta first (then id), and those units (free_qty). */
static void targets_collect(const allot_state_t *state, uint32_t slot, int64_t eta_before_ms,
                            reservation_targets_t *t, int64_t *free_qty)
{
    static allot_supply_incoming_t open[ALLOT_SUPPLIES_PER_SKU_MAX]; /* single-threaded core */
    const supply_t *x = &state->supply->supplies[slot];
    uint32_t n = allot_supply_open(state, x->sku, open, ALLOT_SUPPLIES_PER_SKU_MAX);
    t->count = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (open[i].supply == slot || open[i].qty <= 0 || open[i].eta_ms >= eta_before_ms)
            continue;
        t->ids[t->count] = allot_supply_id_at(state, open[i].supply);
        free_qty[t->count++] = open[i].qty;
    }
}

/* Add qty of line to `supply` in out (merged into an entry of the same line and supply), unless
 * that takes a new entry past ALLOT_ORDER_BACKORDERS_MAX; whether it did. */
static bool backorder_put(allot_event_backorder_t *out, uint32_t *count, uint32_t line,
                          allot_str_t supply, int64_t qty)
{
    for (uint32_t k = 0; k < *count; k++)
        if (out[k].line == line && allot_str_equal(out[k].supply, supply)) {
            out[k].qty += qty;
            return true;
        }
    if (*count == ALLOT_ORDER_BACKORDERS_MAX)
        return false;
    out[(*count)++] = (allot_event_backorder_t){supply, qty, line};
    return true;
}

/* The order's backorders with those on `supply` moved to the targets in turn (free_qty
 * consumed) into out; returns how many; *released: the units that could not move (with keep
 * they stay on `supply`, in the entry's place, and *released is 0). */
static uint32_t order_backorders_move(const allot_event_order_t *v, allot_str_t supply,
                                      const reservation_targets_t *t, int64_t *free_qty, bool keep,
                                      allot_event_backorder_t *out, int64_t *released)
{
    uint32_t count = 0;
    *released = 0;
    for (uint32_t i = 0; i < v->backorder_count; i++) {
        const allot_event_backorder_t *b = &v->backorders[i];
        if (!allot_str_equal(b->supply, supply)) {
            out[count++] = *b;
            continue;
        }
        uint32_t stay = count;
        if (keep)
            out[count++] = *b; /* stays in place with what does not move */
        int64_t left = b->qty;
        for (uint32_t k = 0; k < t->count && left > 0; k++) {
            int64_t take = free_qty[k] < left ? free_qty[k] : left;
            if (take > 0 && backorder_put(out, &count, b->line, t->ids[k], take)) {
                free_qty[k] -= take;
                left -= take;
            }
        }
        if (keep)
            out[stay].qty = left;
        else
            *released += left;
    }
    uint32_t kept = 0; /* a delay: entries left with no units go */
    for (uint32_t i = 0; i < count; i++)
        if (out[i].qty > 0)
            out[kept++] = out[i];
    return kept;
}

/* The order's new backorders (the entry's block, supply ids copied into the order) and the
 * reason its history takes if it ends cancelled. */
static int order_displace_build(allot_state_t *state, receipt_served_t *s, allot_str_t supply,
                                const reservation_targets_t *t, int64_t *free_qty, bool keep)
{
    static allot_event_backorder_t out[ALLOT_ORDER_BACKORDERS_MAX]; /* single-threaded core */
    allot_order_t *o = state->orders[s->slot];
    uint32_t count = order_backorders_move(&o->v, supply, t, free_qty, keep, out, &s->qty);
    for (uint32_t i = 0; i < count; i++) /* ids of the targets: into the order's text */
        for (uint32_t k = 0; k < t->count; k++)
            if (out[i].supply.ptr == t->ids[k].ptr &&
                (out[i].supply = order_text_copy(o, out[i].supply)).ptr == NULL)
                return ALLOT_ENOMEM;
    s->allocation_count = count;
    s->block = count > 0 ? malloc(count * sizeof(*out)) : NULL;
    if (count > 0 && s->block == NULL)
        return ALLOT_ENOMEM;
    for (uint32_t i = 0; i < count; i++)
        ((allot_event_backorder_t *)s->block)[i] = out[i];
    if (keep) /* a delay cancels nothing: no reason, no history */
        return 0;
    s->supply = order_text_copy(
        o, (allot_str_t){DISPLACE_CANCEL_REASON, sizeof(DISPLACE_CANCEL_REASON) - 1});
    if (s->supply.ptr == NULL)
        return ALLOT_ENOMEM;
    bool history = o->v.history_count < ALLOT_ORDER_HISTORY_MAX;
    return order_room(o, 0, 0, 0, history ? 1 : 0);
}

/* Room for the marks and counts the commit changes: the orders, the holds (a released one's SKU
 * marks and tombstone), the customers' units of their lines, the supplies' held. */
static int displace_room(allot_state_t *state, const order_receipt_t *plan, uint32_t targets)
{
    uint32_t lines = 0;
    for (uint32_t i = 0; i < plan->order_count; i++)
        lines += state->orders[plan->orders[i].slot]->v.line_count;
    uint32_t hold_lines = 0;
    for (uint32_t i = 0; i < plan->hold_count; i++)
        hold_lines += state->reservations[plan->holds[i].slot].line_count;
    int rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_ORDER], plan->order_count);
    if (rc == 0)
        rc = allot_heap_reserve(&state->order_heap, plan->order_count);
    if (rc == 0)
        rc = state_dirty_reserve(state, 0, hold_lines, plan->hold_count, 0);
    if (rc == 0)
        rc = sale_holding_reserve(state, 2 * (lines + hold_lines));
    if (rc == 0)
        rc = allot_heap_reserve(&state->tombstone_heap, plan->hold_count);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_SUPPLY], targets + 1);
    return rc;
}

/* The plan (state->receipt) of displacing the backorders on the supply with this id. */
static int displace_plan(allot_state_t *state, allot_str_t id, displace_mode_t mode)
{
    if (state->receipt == NULL && (state->receipt = calloc(1, sizeof(order_receipt_t))) == NULL)
        return ALLOT_ENOMEM;
    order_receipt_t *plan = state->receipt;
    order_receipt_reset(plan);
    static reservation_targets_t targets; /* single-threaded core */
    int64_t free_qty[ALLOT_SUPPLIES_PER_SKU_MAX];
    uint32_t slot = supply_find(state, id);
    const supply_t *x = &state->supply->supplies[slot];
    allot_str_t supply = {x->id, x->id_len};
    targets_collect(state, slot, mode.eta_before_ms, &targets, free_qty);
    int rc = order_receipt_collect(state, plan, supply);
    for (uint32_t i = 0; rc == 0 && i < plan->order_count; i++)
        rc = order_displace_build(state, &plan->orders[i], supply, &targets, free_qty, mode.keep);
    for (uint32_t i = 0; rc == 0 && i < plan->hold_count; i++) {
        receipt_served_t *s = &plan->holds[i];
        rc = reservation_displace_prepare(state, s->slot, supply, &targets, free_qty, &s->block,
                                          &s->allocation_count, mode.keep ? NULL : &s->qty);
    }
    return rc != 0 ? rc : displace_room(state, plan, targets.count);
}

/* Install the plan: the orders and the holds take their new backorders. */
static void displace_apply(allot_state_t *state, int64_t at_ms)
{
    order_receipt_t *plan = state->receipt;
    for (uint32_t i = 0; i < plan->order_count; i++)
        order_displace_apply(state, &plan->orders[i], at_ms);
    for (uint32_t i = 0; i < plan->hold_count; i++) {
        receipt_served_t *s = &plan->holds[i];
        reservation_displace_commit(state, s->slot, s->block, s->allocation_count, at_ms);
        s->block = NULL; /* the hold owns it (or freed it) */
    }
    plan->hold_count = 0;
}

int order_displace_prepare(allot_state_t *state, const allot_event_supply_t *e)
{
    int rc = supply_cancel_prepare(state, e);
    if (rc != 0 || !e->serves)
        return rc;
    return displace_plan(state, e->id, (displace_mode_t){INT64_MAX, false});
}

void order_displace_commit(allot_state_t *state, const allot_event_supply_t *e)
{
    if (e->serves)
        displace_apply(state, e->at_ms);
    supply_cancel_commit(state, e);
    assert(state->supply->supplies[supply_find(state, e->id)].held == 0);
}

int order_delay_prepare(allot_state_t *state, const allot_event_supply_t *e)
{
    int rc = supply_put_prepare(state, e);
    if (rc != 0 || !e->serves)
        return rc;
    uint32_t slot = supply_find(state, e->id); /* open and of the SKU: checked by the put's */
    if (slot == ALLOT_SLOT_NONE || e->eta_ms <= state->supply->supplies[slot].eta_ms)
        return ALLOT_ECORRUPT; /* a version 2 put delays an existing supply */
    return displace_plan(state, e->id, (displace_mode_t){e->eta_ms, true});
}

void order_delay_commit(allot_state_t *state, const allot_event_supply_t *e)
{
    if (e->serves)
        displace_apply(state, e->at_ms);
    supply_put_commit(state, e);
}
