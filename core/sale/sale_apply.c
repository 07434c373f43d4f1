/* sale_apply.c - the one apply of the SKU settings' and queues' records (prepare may fail and
 * changes nothing but SKU interning; commit cannot fail), and the use of a ticket by a hold. */
#include <assert.h>
#include <string.h>

#include "core/inventory/inventory_private.h"
#include "core/sale/sale_private.h"

/* The settings slot of a queued SKU named by a record, or ALLOT_SLOT_NONE. */
static uint32_t queued_owner(const allot_state_t *state, allot_str_t sku)
{
    uint32_t index = allot_sku_index_find(state, sku);
    if (index == ALLOT_SKU_NONE)
        return ALLOT_SLOT_NONE;
    uint32_t owner = sale_sku_find(state, index);
    if (owner == ALLOT_SLOT_NONE || !state->sale->skus[owner].settings.has_queue)
        return ALLOT_SLOT_NONE;
    return owner;
}

/* Past tickets whose tokens can no longer be live (used, expired). */
static void expire_cursor_advance(allot_state_t *state, sale_sku_t *k)
{
    while (k->expire_cursor < k->admit_cursor) {
        uint8_t s = state->sale->tickets[k->queue.items[k->expire_cursor]].state;
        if (s != ALLOT_TICKET_USED && s != ALLOT_TICKET_EXPIRED)
            break;
        k->expire_cursor++;
    }
}

/* ---- settings ---------------------------------------------------------------------------- */

static int settings_prepare(allot_state_t *state, const allot_event_sku_settings_t *e)
{
    uint32_t index;
    int rc = inventory_sku_intern(state, e->sku, &index);
    if (rc != 0)
        return rc;
    sale_store_t *s = state->sale;
    uint32_t owner = sale_sku_find(state, index);
    bool had_queue = owner != ALLOT_SLOT_NONE && s->skus[owner].settings.has_queue;
    if (owner == ALLOT_SLOT_NONE && s->sku_count >= ALLOT_SKU_SETTINGS_MAX)
        return ALLOT_ECORRUPT;
    if (e->has_queue && !had_queue && s->queued_count >= ALLOT_QUEUED_SKUS_MAX)
        return ALLOT_ECORRUPT;
    rc = sale_sku_reserve(state);
    if (rc == 0 && had_queue && !e->has_queue)
        rc = sale_queue_clear_reserve(state, owner);
    return rc;
}

static void settings_commit(allot_state_t *state, const allot_event_sku_settings_t *e,
                            int64_t admitted_upto_ms, uint64_t admitted_total)
{
    sale_store_t *s = state->sale;
    uint32_t index = allot_sku_index_find(state, e->sku);
    assert(index != ALLOT_SKU_NONE);
    uint32_t owner = sale_sku_find(state, index);
    if (owner == ALLOT_SLOT_NONE)
        owner = sale_sku_add(state, index);
    sale_sku_dirty(state, owner);
    sale_sku_t *k = &s->skus[owner];
    bool had_queue = k->settings.has_queue;
    k->settings = (allot_sku_settings_t){e->low_stock, e->max_per_customer, e->has_queue,
                                         e->rate_per_s, e->token_ttl_s};
    if (e->has_queue && !had_queue) {
        s->queued[s->queued_count++] = owner;
        k->admitted_upto_ms = admitted_upto_ms;
        k->admitted_total = admitted_total;
    } else if (e->has_queue && had_queue && k->admitted_upto_ms < admitted_upto_ms) {
        k->admitted_upto_ms = admitted_upto_ms; /* a new rate counts from now: no burst of the
                                                   time before at the new rate */
    } else if (!e->has_queue && had_queue) {
        sale_queue_clear(state, owner);
        for (uint32_t i = 0; i < s->queued_count; i++)
            if (s->queued[i] == owner)
                s->queued[i] = s->queued[--s->queued_count];
        k->admitted_upto_ms = 0;
        k->admitted_total = 0;
    }
}

int sku_put_prepare(allot_state_t *state, const allot_event_sku_settings_t *e)
{
    return settings_prepare(state, e);
}

void sku_put_commit(allot_state_t *state, const allot_event_sku_settings_t *e)
{
    settings_commit(state, e, e->at_ms, 0);
}

int sku_settings_snapshot_prepare(allot_state_t *state, const allot_event_sku_settings_t *e)
{
    return settings_prepare(state, e);
}

void sku_settings_snapshot_commit(allot_state_t *state, const allot_event_sku_settings_t *e)
{
    settings_commit(state, e, e->admitted_upto_ms, e->admitted_total);
    uint32_t owner = sale_sku_find(state, allot_sku_index_find(state, e->sku));
    sale_sku_t *k = &state->sale->skus[owner];
    if (k->settings.has_queue) { /* an existing queue keeps its tickets; its accounting loads */
        k->admitted_upto_ms = e->admitted_upto_ms;
        k->admitted_total = e->admitted_total;
    }
}

/* ---- queue ------------------------------------------------------------------------------- */

int queue_join_prepare(allot_state_t *state, const allot_event_queue_join_t *e)
{
    uint32_t owner = queued_owner(state, e->sku);
    if (owner == ALLOT_SLOT_NONE || sale_ticket_find(state, e->ticket) != ALLOT_SLOT_NONE)
        return ALLOT_ECORRUPT;
    uint32_t current = sale_ticket_find_customer(state, owner, e->customer);
    if (current != ALLOT_SLOT_NONE) {
        uint8_t s = state->sale->tickets[current].state;
        if (s == ALLOT_TICKET_WAITING || s == ALLOT_TICKET_ADMITTED)
            return ALLOT_ECORRUPT; /* joining again returns that ticket: no record */
    }
    return sale_ticket_reserve(state, owner);
}

void queue_join_commit(allot_state_t *state, const allot_event_queue_join_t *e)
{
    uint32_t owner = queued_owner(state, e->sku);
    sale_sku_t *k = &state->sale->skus[owner];
    uint32_t current = sale_ticket_find_customer(state, owner, e->customer);
    if (current != ALLOT_SLOT_NONE)
        sale_ticket_unindex(state, current);
    if (k->admit_cursor == k->queue.count && k->admitted_upto_ms < e->at_ms) {
        sale_sku_dirty(state, owner); /* nobody waited: admission accounts from now */
        k->admitted_upto_ms = e->at_ms;
    }
    sale_ticket_add(state, owner, e->ticket, e->customer, e->at_ms);
}

int queue_admit_prepare(allot_state_t *state, const allot_event_queue_admit_t *e)
{
    uint32_t owner = queued_owner(state, e->sku);
    if (owner == ALLOT_SLOT_NONE)
        return ALLOT_ECORRUPT;
    const sale_sku_t *k = &state->sale->skus[owner];
    if (k->queue.count - k->admit_cursor < e->count)
        return ALLOT_ECORRUPT;
    int rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_QUEUE_TICKET], e->count);
    return rc != 0 ? rc : allot_u32_vec_reserve(&state->dirty[STATE_KEY_SKU_SETTINGS], 1);
}

void queue_admit_commit(allot_state_t *state, const allot_event_queue_admit_t *e)
{
    uint32_t owner = queued_owner(state, e->sku);
    sale_sku_dirty(state, owner);
    sale_sku_t *k = &state->sale->skus[owner];
    for (uint32_t i = 0; i < e->count; i++) {
        uint32_t slot = k->queue.items[k->admit_cursor++];
        sale_ticket_dirty(state, slot);
        sale_ticket_t *t = &state->sale->tickets[slot];
        t->state = ALLOT_TICKET_ADMITTED;
        t->secret = sale_token_secret(e->seed, t->number);
        t->expires_at_ms = e->expires_at_ms;
    }
    k->live_tokens += e->count;
    k->admitted_total += e->count;
    k->admitted_upto_ms = e->admitted_upto_ms;
}

/* An admitted ticket by number (CORRUPT otherwise), with room to mark it. */
static int admitted_prepare(allot_state_t *state, uint64_t number)
{
    uint32_t slot = sale_ticket_find(state, number);
    if (slot == ALLOT_SLOT_NONE || state->sale->tickets[slot].state != ALLOT_TICKET_ADMITTED)
        return ALLOT_ECORRUPT;
    return allot_u32_vec_reserve(&state->dirty[STATE_KEY_QUEUE_TICKET], 1);
}

static void admitted_end(allot_state_t *state, uint64_t number, uint8_t ticket_state)
{
    uint32_t slot = sale_ticket_find(state, number);
    assert(slot != ALLOT_SLOT_NONE);
    sale_ticket_dirty(state, slot);
    sale_ticket_t *t = &state->sale->tickets[slot];
    t->state = ticket_state;
    sale_sku_t *k = &state->sale->skus[t->owner];
    k->live_tokens--;
    expire_cursor_advance(state, k);
}

int queue_expire_prepare(allot_state_t *state, const allot_event_queue_expire_t *e)
{
    return admitted_prepare(state, e->ticket);
}

void queue_expire_commit(allot_state_t *state, const allot_event_queue_expire_t *e)
{
    admitted_end(state, e->ticket, ALLOT_TICKET_EXPIRED);
}

int sale_ticket_use_prepare(allot_state_t *state, uint64_t number)
{
    return admitted_prepare(state, number);
}

void sale_ticket_use_commit(allot_state_t *state, uint64_t number)
{
    admitted_end(state, number, ALLOT_TICKET_USED);
}

/* ---- ticket snapshots: loaded in number order, so each queue is rebuilt in join order ----- */

int queue_ticket_snapshot_prepare(allot_state_t *state, const allot_event_queue_ticket_t *e)
{
    uint32_t owner = queued_owner(state, e->sku);
    if (owner == ALLOT_SLOT_NONE || sale_ticket_find(state, e->ticket) != ALLOT_SLOT_NONE)
        return ALLOT_ECORRUPT;
    const sale_sku_t *k = &state->sale->skus[owner];
    if (e->state != ALLOT_TICKET_WAITING && k->admit_cursor != k->queue.count)
        return ALLOT_ECORRUPT; /* admitted after one still waiting: not first come first served */
    return sale_ticket_reserve(state, owner);
}

void queue_ticket_snapshot_commit(allot_state_t *state, const allot_event_queue_ticket_t *e)
{
    uint32_t owner = queued_owner(state, e->sku);
    sale_sku_t *k = &state->sale->skus[owner];
    uint32_t current = sale_ticket_find_customer(state, owner, e->customer);
    if (current != ALLOT_SLOT_NONE)
        sale_ticket_unindex(state, current);
    uint32_t slot = sale_ticket_add(state, owner, e->ticket, e->customer, e->joined_ms);
    sale_ticket_t *t = &state->sale->tickets[slot];
    t->state = e->state;
    t->secret = e->secret;
    t->expires_at_ms = e->expires_at_ms;
    if (e->state != ALLOT_TICKET_WAITING)
        k->admit_cursor++;
    if (e->state == ALLOT_TICKET_ADMITTED)
        k->live_tokens++;
    expire_cursor_advance(state, k);
}
