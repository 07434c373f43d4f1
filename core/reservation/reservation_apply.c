/* reservation_apply.c - the one apply of reservation events (prepare may fail and changes
 * nothing; commit cannot fail), holds on positions and daily capacity, and the consumption of a
 * hold by order.create. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory/inventory_private.h"
#include "core/reservation/reservation_private.h"
#include "core/sale/sale_private.h"
#include "core/supply/supply_private.h"

/* ---- holds on positions and daily capacity ----------------------------------------------------
 */

/* The customer's units of each SKU (core/sale/): room made by the prepare (sale_holding_reserve).
 */
static void hold_holdings(allot_state_t *state, const allot_reservation_t *r, int sign)
{
    allot_str_t customer = allot_reservation_customer(r);
    const allot_reservation_line_t *lines = allot_reservation_lines(r);
    for (uint32_t i = 0; customer.len > 0 && i < r->line_count; i++)
        sale_holding_add(state, lines[i].sku, customer, sign * lines[i].qty_held);
}

/* A backorder allocation adds to (or gives back from) its supply's held; room made by the
 * prepare (backorders_prepare, release_prepare). */
static void hold_supply(allot_state_t *state, const allot_reservation_t *r,
                        const allot_reservation_allocation_t *a, int sign)
{
    uint32_t slot = supply_find(state, allot_reservation_allocation_supply(r, a));
    if (slot == ALLOT_SLOT_NONE)
        return;                /* only after an inconsistent snapshot; never live */
    supply_dirty(state, slot); /* before the change (checkpoint pre-image) */
    supply_t *x = &state->supply->supplies[slot];
    x->held += sign * a->qty;
    if (x->held < 0)
        x->held = 0;
}

static void hold_positions(allot_state_t *state, const allot_reservation_t *r, int sign)
{
    hold_holdings(state, r, sign);
    const allot_reservation_line_t *lines = allot_reservation_lines(r);
    const allot_reservation_allocation_t *allocations = allot_reservation_allocations(r);
    for (uint32_t i = 0; i < r->line_count; i++) {
        const allot_reservation_line_t *line = &lines[i];
        inventory_sku_dirty(state, line->sku); /* before the change (checkpoint pre-image) */
        for (uint32_t k = 0; k < line->allocation_count; k++) {
            const allot_reservation_allocation_t *a = &allocations[line->allocation_first + k];
            if (a->location == ALLOT_LOCATION_SUPPLY) {
                hold_supply(state, r, a, sign);
                continue;
            }
            allot_position_t *p = inventory_position_mut(state, line->sku, a->location);
            if (p == NULL)
                continue; /* only after an inconsistent SKU snapshot; never live */
            p->reserved += sign * a->qty;
            if (p->reserved < 0)
                p->reserved = 0;
        }
    }
}

/* Count (+1) or give back (-1) one shipment per distinct location on the day of created_ms. */
static void hold_capacity(allot_state_t *state, const allot_reservation_t *r, int sign,
                          int64_t at_ms)
{
    int64_t day = allot_day_from_ms(r->created_ms);
    if (sign < 0 && allot_day_from_ms(at_ms) != day)
        return;
    if (++state->stamp_generation == 0)
        state->stamp_generation = 1;
    const allot_reservation_allocation_t *allocations = allot_reservation_allocations(r);
    for (uint32_t k = 0; k < r->allocation_count; k++) {
        uint32_t l = allocations[k].location;
        if (l == ALLOT_LOCATION_SUPPLY || state->location_stamp[l] == state->stamp_generation)
            continue;
        state->location_stamp[l] = state->stamp_generation;
        allot_location_t *location = &state->locations[l];
        if (sign < 0 && (location->capacity_day != day || location->capacity_count == 0))
            continue;
        inventory_location_dirty(state, l); /* before the change (checkpoint pre-image) */
        if (sign > 0 && location->capacity_day != day) {
            location->capacity_day = day;
            location->capacity_count = 0;
        }
        location->capacity_count += sign;
    }
}

/* ---- apply: prepare ------------------------------------------------------------------------- */

/* A hold's lines are followed by its allocations (in its block or its record); an ended hold
 * has none (NULL). */
static allot_reservation_allocation_t *block_allocations(allot_reservation_line_t *lines,
                                                         uint32_t line_count)
{
    return lines == NULL ? NULL : (allot_reservation_allocation_t *)(lines + line_count);
}

/* Units a hold holds on the supply `id`. */
static int64_t held_on(const allot_reservation_t *r, allot_str_t id)
{
    int64_t qty = 0;
    for (uint32_t k = 0; r != NULL && k < r->allocation_count; k++) {
        const allot_reservation_allocation_t *a = &allot_reservation_allocations(r)[k];
        if (a->location == ALLOT_LOCATION_SUPPLY &&
            allot_str_equal(allot_reservation_allocation_supply(r, a), id))
            qty += a->qty;
    }
    return qty;
}

/* A new live hold's backorder allocations: each supply exists, is open, is of the line's SKU
 * and has room for the record's units on it (what the hold at old_slot, which a replace
 * releases first, holds on it counts as room); dirty marks for each. */
static int backorders_prepare(allot_state_t *state, const allot_event_reservation_t *e,
                              const allot_reservation_line_t *lines, uint32_t old_slot)
{
    const allot_reservation_t *old =
        old_slot == ALLOT_SLOT_NONE ? NULL : &state->reservations[old_slot];
    uint32_t supplies = old != NULL ? old->allocation_count : 0;
    for (uint32_t i = 0; i < e->line_count; i++) {
        const allot_event_line_t *line = &e->lines[i];
        for (uint32_t k = 0; k < line->allocation_count; k++) {
            const allot_event_allocation_t *a = &e->allocations[line->allocation_first + k];
            if (!a->supply)
                continue;
            supplies++;
            uint32_t slot = supply_find(state, a->location);
            if (slot == ALLOT_SLOT_NONE)
                return ALLOT_ECORRUPT;
            const supply_t *x = &state->supply->supplies[slot];
            int64_t wanted = 0;
            for (uint32_t j = 0; j < e->allocation_count; j++)
                if (e->allocations[j].supply &&
                    allot_str_equal(e->allocations[j].location, a->location))
                    wanted += e->allocations[j].qty;
            int64_t room = x->qty - x->received - x->held + held_on(old, a->location);
            if (x->state != ALLOT_SUPPLY_OPEN || x->sku != lines[i].sku || wanted > room)
                return ALLOT_ECORRUPT;
        }
    }
    return supplies > 0 ? allot_u32_vec_reserve(&state->dirty[STATE_KEY_SUPPLY], supplies) : 0;
}

/* The lines to prepare into: a hold that fits its record gets state->pending_body (no block);
 * any other a block (state->pending_block) for its long id and its parts (core/reservation.h). */
static int body_block_prepare(allot_state_t *state, const allot_event_reservation_t *e,
                              allot_reservation_line_t **lines)
{
    _Static_assert(sizeof(((allot_reservation_t *)0)->body.one) <= sizeof(state->pending_body),
                   "the prepared inline body holds a line and an allocation");
    free(state->pending_block);
    state->pending_block = NULL;
    *lines = NULL;
    if (reservation_body_fits_inline(e)) {
        *lines = (allot_reservation_line_t *)state->pending_body;
        return 0;
    }
    size_t lines_at = allot_reservation_lines_at(e->id.len);
    size_t block = lines_at + e->line_count * sizeof(allot_reservation_line_t) +
                   e->allocation_count * sizeof(allot_reservation_allocation_t) + e->customer.len;
    for (uint32_t k = 0; k < e->allocation_count; k++)
        if (e->allocations[k].supply)
            block += 1 + e->allocations[k].location.len;
    if (block == 0)
        return 0; /* a tombstone with a short id */
    state->pending_block = malloc(block);
    if (state->pending_block == NULL)
        return ALLOT_ENOMEM;
    if (e->line_count > 0)
        *lines = (allot_reservation_line_t *)(state->pending_block + lines_at);
    return 0;
}

/* Check a hold's lines against the state and prepare its body (body_block_prepare): the lines
 * and allocations with their SKU and location indices resolved; body_install fills in the
 * rest. */
static int body_prepare(allot_state_t *state, const allot_event_reservation_t *e,
                        bool needs_positions, uint32_t old_slot)
{
    allot_reservation_line_t *lines;
    int rc = body_block_prepare(state, e, &lines);
    if (rc != 0)
        return rc;
    allot_reservation_allocation_t *allocations = block_allocations(lines, e->line_count);
    uint64_t total = 0;
    for (uint32_t i = 0; i < e->line_count; i++) {
        const allot_event_line_t *line = &e->lines[i];
        rc = inventory_sku_intern(state, line->sku, &lines[i].sku);
        if (rc != 0)
            return rc;
        for (uint32_t k = 0; k < line->allocation_count; k++) {
            uint32_t at = line->allocation_first + k;
            const allot_event_allocation_t *a = &e->allocations[at];
            total += (uint64_t)a->qty;
            if (a->supply) { /* checked against the supply by backorders_prepare */
                allocations[at].location = ALLOT_LOCATION_SUPPLY;
                continue;
            }
            uint32_t l = allot_location_index_find(state, a->location);
            if (l == ALLOT_LOCATION_NONE)
                return ALLOT_ECORRUPT;
            allocations[at].location = l;
            const allot_position_t *p = inventory_position_mut(state, lines[i].sku, l);
            if (needs_positions && (p == NULL || p->reserved > ALLOT_QUANTITY_MAX))
                return ALLOT_ECORRUPT;
        }
    }
    if (total > (uint64_t)ALLOT_QUANTITY_MAX * ALLOT_LINES_MAX)
        return ALLOT_ECORRUPT;
    rc = state_dirty_reserve(state, e->allocation_count, e->line_count, 1, 0);
    if (rc == 0)
        rc = reservation_slot_reserve(state);
    if (rc == 0 && e->customer.len > 0)
        rc = sale_holding_reserve(state, e->line_count);
    if (rc == 0 && e->ticket != 0)
        rc = sale_ticket_use_prepare(state, e->ticket);
    if (rc == 0 && needs_positions)
        rc = backorders_prepare(state, e, lines, old_slot); /* the slab may have moved */
    return rc;
}

/* A live hold to release (release, replace): its slot is kept for the commit. */
static int release_prepare(allot_state_t *state, allot_str_t id)
{
    uint32_t slot = reservation_slot_find(state, id);
    if (slot == ALLOT_SLOT_NONE || state->reservations[slot].status != ALLOT_RESERVATION_ACTIVE)
        return ALLOT_ECORRUPT;
    state->prepared_reservation = slot;
    const allot_reservation_t *r = &state->reservations[slot];
    int rc = state_dirty_reserve(state, r->allocation_count, r->line_count, 1, 0);
    if (rc == 0 && r->customer_len > 0)
        rc = sale_holding_reserve(state, r->line_count);
    if (rc == 0) /* backorder holds give back to their supplies */
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_SUPPLY], r->allocation_count);
    return rc != 0 ? rc : allot_heap_reserve(&state->tombstone_heap, 1);
}

int reservation_create_prepare(allot_state_t *state, const allot_event_reservation_t *e)
{
    uint32_t hash = allot_hash_bytes(e->id.ptr, e->id.len);
    if (reservation_slot_find_hashed(state, e->id, hash) != ALLOT_SLOT_NONE)
        return ALLOT_ECORRUPT;
    state->prepared_id_hash = hash; /* the commit's new slot goes into the index under it */
    return body_prepare(state, e, true, ALLOT_SLOT_NONE);
}

int reservation_replace_prepare(allot_state_t *state, const allot_event_reservation_t *e)
{
    int rc = release_prepare(state, e->id);
    return rc != 0 ? rc : body_prepare(state, e, true, state->prepared_reservation);
}

int reservation_snapshot_prepare(allot_state_t *state, const allot_event_reservation_t *e)
{
    uint32_t slot = reservation_slot_find(state, e->id);
    if (slot != ALLOT_SLOT_NONE && state->reservations[slot].customer_len > 0) {
        int rc = sale_holding_reserve(state, state->reservations[slot].line_count);
        if (rc != 0)
            return rc;
    }
    return body_prepare(state, e, false, ALLOT_SLOT_NONE);
}

int reservation_extend_prepare(allot_state_t *state, const allot_event_extend_t *e)
{
    uint32_t slot = reservation_slot_find(state, e->id);
    if (slot == ALLOT_SLOT_NONE || state->reservations[slot].status != ALLOT_RESERVATION_ACTIVE)
        return ALLOT_ECORRUPT;
    state->prepared_reservation = slot;
    return state_dirty_reserve(state, 0, 0, 1, 0);
}

int reservation_release_prepare(allot_state_t *state, const allot_event_release_t *e)
{
    return release_prepare(state, e->id);
}

/* ---- apply: commit -------------------------------------------------------------------------- */

/* Move the prepared body into r (its record or the block, with a long id at the block's
 * start); r has no body (a new record, or one hold_release ended). */
static void body_move(allot_state_t *state, allot_reservation_t *r,
                      const allot_event_reservation_t *e)
{
    assert(!r->body_inline && r->line_count == 0 && r->id_len == e->id.len);
    free(r->body.other.block); /* NULL, or a long id's copy, which the prepared block has again */
    r->body_inline = reservation_body_fits_inline(e);
    if (r->body_inline) {
        memcpy(&r->body.one, state->pending_body, sizeof(r->body.one));
        return;
    }
    r->body.other.block = state->pending_block;
    state->pending_block = NULL;
    if (allot_reservation_lines_at(e->id.len) > 0) {
        memcpy(r->body.other.block, e->id.ptr, e->id.len);
        r->body.other.block[e->id.len] = '\0';
    }
}

/* Install the prepared body in r and fill in the rest from the event. */
static void body_install(allot_state_t *state, allot_reservation_t *r,
                         const allot_event_reservation_t *e)
{
    r->request_hash = e->request_hash;
    r->created_ms = e->created_ms;
    r->expires_at_ms = e->expires_at_ms;
    r->status = e->status;
    body_move(state, r, e);
    if (!r->body_inline)
        r->body.other.ended_ms = e->ended_ms;
    r->line_count = (uint16_t)e->line_count;
    r->allocation_count = e->allocation_count;
    r->customer_len = (uint8_t)e->customer.len;
    allot_reservation_line_t *lines = reservation_lines_mut(r);
    allot_reservation_allocation_t *allocations = reservation_allocations_mut(r);
    if (e->customer.len > 0) /* the block's tail, after the allocations */
        memcpy(allocations + e->allocation_count, e->customer.ptr, e->customer.len);
    uint32_t tail_at = 0; /* the supply ids of backorder holds, after the customer */
    for (uint32_t k = 0; k < e->allocation_count; k++) {
        allocations[k].unused = 0;
        if (!e->allocations[k].supply)
            continue;
        /* only here: a tombstone has no block (allocations NULL) and no allocations */
        char *tail = (char *)(allocations + e->allocation_count) + e->customer.len;
        allot_str_t id = e->allocations[k].location;
        allocations[k].unused = tail_at;
        tail[tail_at] = (char)(uint8_t)id.len;
        memcpy(tail + tail_at + 1, id.ptr, id.len);
        tail_at += 1 + id.len;
    }
    for (uint32_t i = 0; i < e->line_count; i++) { /* indices resolved by body_prepare */
        const allot_event_line_t *src = &e->lines[i];
        allot_reservation_line_t *line = &lines[i];
        *line = (allot_reservation_line_t){line->sku, src->allocation_first, src->allocation_count,
                                           0,         src->qty_requested,    0};
        for (uint32_t k = 0; k < src->allocation_count; k++) {
            uint32_t at = src->allocation_first + k;
            allocations[at].qty = e->allocations[at].qty;
            line->qty_held += e->allocations[at].qty;
        }
    }
}

/* The hold's units go back to its positions and it leaves the expiry heap; its daily-capacity
 * counts go back too unless an order keeps them (the shipments are real then). */
static void hold_release(allot_state_t *state, uint32_t slot, int64_t at_ms, bool keep_capacity)
{
    reservation_dirty(state, slot); /* before the change (checkpoint pre-image) */
    allot_reservation_t *r = &state->reservations[slot];
    hold_positions(state, r, -1);
    if (!keep_capacity)
        hold_capacity(state, r, -1, at_ms);
    allot_heap_remove_at(&state->expiry_heap, r->heap_position);
    state->reservation_live--;
    reservation_body_end(r);
}

/* A released hold stays as a tombstone (idempotent repeats) until age or count evicts it. */
static void hold_entomb(allot_state_t *state, uint32_t slot, uint8_t status, int64_t at_ms)
{
    allot_reservation_t *r = &state->reservations[slot];
    r->status = status;
    r->body.other.ended_ms = at_ms; /* hold_release ended its body */
    int rc = allot_heap_push(&state->tombstone_heap, slot);
    assert(rc == 0);
    (void)rc;
    state->reservation_tombstones++;
    reservation_dirty(state, slot);
}

void reservation_release_commit(allot_state_t *state, const allot_event_release_t *e)
{
    uint32_t slot = state->prepared_reservation; /* release_prepare found it */
    hold_release(state, slot, e->at_ms, false);
    reservation_tombstone_evict(state, e->at_ms);
    hold_entomb(state, slot,
                e->reason == ALLOT_RELEASE_EXPIRED ? ALLOT_RESERVATION_EXPIRED
                                                   : ALLOT_RESERVATION_RELEASED,
                e->at_ms);
}

static void commit_hold(allot_state_t *state, uint32_t slot, const allot_event_reservation_t *e)
{
    allot_reservation_t *r = &state->reservations[slot];
    body_install(state, r, e);
    hold_positions(state, r, +1);
    hold_capacity(state, r, +1, e->created_ms);
    int rc = allot_heap_push(&state->expiry_heap, slot);
    assert(rc == 0);
    (void)rc;
    state->reservation_live++;
    reservation_dirty(state, slot);
}

/* A record for id (room made by body_prepare). */
static uint32_t slot_new_from(allot_state_t *state, allot_str_t id)
{
    return reservation_slot_take(state, id);
}

void reservation_snapshot_commit(allot_state_t *state, const allot_event_reservation_t *e)
{
    uint32_t slot = reservation_slot_find(state, e->id);
    if (slot != ALLOT_SLOT_NONE) {
        allot_reservation_t *old = &state->reservations[slot];
        bool live = old->status == ALLOT_RESERVATION_ACTIVE;
        if (live)
            hold_holdings(state, old, -1);
        allot_heap_remove_at(live ? &state->expiry_heap : &state->tombstone_heap,
                             old->heap_position);
        if (live)
            state->reservation_live--;
        else
            state->reservation_tombstones--;
        reservation_slot_drop(state, slot, false);
    }
    slot = slot_new_from(state, e->id);
    allot_reservation_t *r = &state->reservations[slot];
    body_install(state, r, e);
    bool live = r->status == ALLOT_RESERVATION_ACTIVE;
    if (live)
        hold_holdings(state, r, +1); /* positions come from the SKU snapshots; holdings from here */
    int rc = allot_heap_push(live ? &state->expiry_heap : &state->tombstone_heap, slot);
    assert(rc == 0);
    (void)rc;
    if (live)
        state->reservation_live++;
    else
        state->reservation_tombstones++;
    reservation_dirty(state, slot);
}

void reservation_create_commit(allot_state_t *state, const allot_event_reservation_t *e)
{
    commit_hold(state, reservation_slot_take_hashed(state, e->id, state->prepared_id_hash), e);
    if (e->ticket != 0)
        sale_ticket_use_commit(state, e->ticket);
}

void reservation_replace_commit(allot_state_t *state, const allot_event_reservation_t *e)
{
    uint32_t slot = state->prepared_reservation; /* release_prepare found it */
    hold_release(state, slot, e->at_ms, false);
    commit_hold(state, slot, e);
    if (e->ticket != 0)
        sale_ticket_use_commit(state, e->ticket);
}

void reservation_extend_commit(allot_state_t *state, const allot_event_extend_t *e)
{
    uint32_t slot = state->prepared_reservation;
    reservation_dirty(state, slot); /* before the change (checkpoint pre-image) */
    state->reservations[slot].expires_at_ms = e->expires_at_ms;
    allot_heap_update_at(&state->expiry_heap, state->reservations[slot].heap_position);
}

/* ---- consume into an order (order.create {reservation}) ------------------------------------ */

int reservation_consume_prepare(allot_state_t *state, allot_str_t id)
{
    /* the same checks and room as a release: a live hold, dirty marks, a tombstone slot */
    return release_prepare(state, id);
}

void reservation_consume_commit(allot_state_t *state, allot_str_t id, int64_t at_ms)
{
    uint32_t slot = reservation_slot_find(state, id);
    assert(slot != ALLOT_SLOT_NONE);
    assert(state->reservations[slot].status == ALLOT_RESERVATION_ACTIVE);
    hold_release(state, slot, at_ms, true);
    reservation_tombstone_evict(state, at_ms); /* room reserved by the release prepare it shares */
    hold_entomb(state, slot, ALLOT_RESERVATION_RELEASED, at_ms);
}

/* ---- a live hold's parts rebuilt (receipts, supply cancels) --------------------------------- */

/* A new block for the parts of hold r with `allocations` allocations and `tail_bytes` of supply
 * ids (core/reservation.h): its long id, if it has one, copied at the start and its customer
 * after the allocations; *lines is where its lines go. NULL: out of memory. */
static char *hold_block_new(const allot_reservation_t *r, uint32_t allocations, uint32_t tail_bytes,
                            allot_reservation_line_t **lines)
{
    uint32_t lines_at = allot_reservation_lines_at(r->id_len);
    size_t bytes = lines_at + r->line_count * sizeof(allot_reservation_line_t) +
                   allocations * sizeof(allot_reservation_allocation_t) + r->customer_len +
                   tail_bytes;
    char *block = malloc(bytes);
    if (block == NULL)
        return NULL;
    if (lines_at > 0) { /* a long id, NUL-terminated and padded as body_move writes it */
        allot_str_t id = allot_reservation_id(r);
        memcpy(block, id.ptr, id.len);
        memset(block + id.len, 0, lines_at - id.len);
    }
    *lines = (allot_reservation_line_t *)(block + lines_at);
    if (r->customer_len > 0) /* the customer follows the allocations */
        memcpy((char *)(block_allocations(*lines, r->line_count) + allocations),
               allot_reservation_customer(r).ptr, r->customer_len);
    return block;
}

/* The live hold r (in a block: it holds backorders) takes `block` (hold_block_new) instead. */
static void hold_block_replace(allot_reservation_t *r, void *block, uint32_t allocation_count)
{
    assert(!r->body_inline);
    free(r->body.other.block);
    r->body.other.block = block;
    r->allocation_count = allocation_count;
}

/* ---- receipts: backorder allocations served by their supply (core/order/order_receipt.c) --- */

/* Whether a is a backorder allocation on `supply`. */
static bool receipt_on(const allot_reservation_t *r, const allot_reservation_allocation_t *a,
                       allot_str_t supply)
{
    return a->location == ALLOT_LOCATION_SUPPLY &&
           allot_str_equal(allot_reservation_allocation_supply(r, a), supply);
}

/* What the line's allocations on `supply` give up, in their order, out of `left`. */
static int64_t receipt_take(const allot_reservation_t *r, const allot_reservation_line_t *line,
                            allot_str_t supply, int64_t left)
{
    int64_t total = 0;
    for (uint32_t k = 0; k < line->allocation_count && left > 0; k++) {
        const allot_reservation_allocation_t *a =
            &allot_reservation_allocations(r)[line->allocation_first + k];
        int64_t t = receipt_on(r, a, supply) ? (a->qty < left ? a->qty : left) : 0;
        left -= t;
        total += t;
    }
    return total;
}

/* The allocations of line i in the new block from `at` (the moved units at location first, in
 * the line's own allocation there or a new one after the line's location allocations), written
 * to out unless it is NULL (sizing); the supply ids of its backorder allocations go to tail at
 * *tail_at. *left shrinks by what the line gives up. Returns the next `at`. */
static uint32_t receipt_line_fill(const allot_reservation_t *r, uint32_t i, allot_str_t supply,
                                  uint32_t location, int64_t *left,
                                  allot_reservation_allocation_t *out, uint32_t at, char *tail,
                                  uint32_t *tail_at)
{
    const allot_reservation_line_t *line = &allot_reservation_lines(r)[i];
    int64_t moved = receipt_take(r, line, supply, *left);
    bool merged = false;
    for (uint32_t k = 0; k < line->allocation_count; k++) {
        const allot_reservation_allocation_t *a =
            &allot_reservation_allocations(r)[line->allocation_first + k];
        if (a->location == ALLOT_LOCATION_SUPPLY)
            continue;
        bool here = moved > 0 && a->location == location;
        if (out != NULL)
            out[at] = (allot_reservation_allocation_t){a->location, 0, a->qty + (here ? moved : 0)};
        at++;
        merged = merged || here;
    }
    if (moved > 0 && !merged) {
        if (out != NULL)
            out[at] = (allot_reservation_allocation_t){location, 0, moved};
        at++;
    }
    for (uint32_t k = 0; k < line->allocation_count; k++) {
        const allot_reservation_allocation_t *a =
            &allot_reservation_allocations(r)[line->allocation_first + k];
        if (a->location != ALLOT_LOCATION_SUPPLY)
            continue;
        int64_t t = receipt_on(r, a, supply) ? (a->qty < *left ? a->qty : *left) : 0;
        *left -= t;
        if (a->qty == t)
            continue; /* served in full: the allocation goes */
        allot_str_t id = allot_reservation_allocation_supply(r, a);
        if (out != NULL) {
            out[at] = (allot_reservation_allocation_t){ALLOT_LOCATION_SUPPLY, *tail_at, a->qty - t};
            tail[*tail_at] = (char)(uint8_t)id.len;
            memcpy(tail + *tail_at + 1, id.ptr, id.len);
        }
        at++;
        *tail_at += 1 + id.len;
    }
    return at;
}

int reservation_receipt_prepare(allot_state_t *state, uint32_t slot, allot_str_t supply,
                                uint32_t location, int64_t qty, void **block,
                                uint32_t *allocation_count)
{
    const allot_reservation_t *r = &state->reservations[slot];
    assert(r->status == ALLOT_RESERVATION_ACTIVE && allot_reservation_lines(r) != NULL);
    int64_t left = qty; /* a first pass sizes the block */
    uint32_t count = 0, tail_bytes = 0;
    for (uint32_t i = 0; i < r->line_count; i++)
        count = receipt_line_fill(r, i, supply, location, &left, NULL, count, NULL, &tail_bytes);
    allot_reservation_line_t *lines;
    char *new_block = hold_block_new(r, count, tail_bytes, &lines);
    if (new_block == NULL)
        return ALLOT_ENOMEM;
    allot_reservation_allocation_t *allocations = block_allocations(lines, r->line_count);
    char *tail = (char *)(allocations + count) + r->customer_len; /* the supply ids */
    left = qty;
    uint32_t at = 0, tail_at = 0;
    for (uint32_t i = 0; i < r->line_count; i++) {
        lines[i] = allot_reservation_lines(r)[i];
        lines[i].allocation_first = at;
        at = receipt_line_fill(r, i, supply, location, &left, allocations, at, tail, &tail_at);
        lines[i].allocation_count = at - lines[i].allocation_first;
    }
    assert(at == count && left == 0);
    *block = new_block;
    *allocation_count = count;
    return 0;
}

void reservation_receipt_commit(allot_state_t *state, uint32_t slot, void *block,
                                uint32_t allocation_count, uint32_t sku, uint32_t location,
                                int64_t qty, int64_t at_ms)
{
    reservation_dirty(state, slot); /* before the change (checkpoint pre-image) */
    allot_reservation_t *r = &state->reservations[slot];
    bool held_there = false;
    for (uint32_t k = 0; k < r->allocation_count; k++)
        held_there = held_there || allot_reservation_allocations(r)[k].location == location;
    hold_block_replace(r, block, allocation_count);
    inventory_sku_dirty(state, sku); /* before the change (checkpoint pre-image) */
    allot_position_t *p = inventory_position_mut(state, sku, location);
    assert(p != NULL);
    p->reserved += qty;
    int64_t day = allot_day_from_ms(r->created_ms);
    if (held_there || allot_day_from_ms(at_ms) != day)
        return;
    allot_location_t *l = &state->locations[location];
    inventory_location_dirty(state, location); /* before the change (checkpoint pre-image) */
    if (l->capacity_day != day) {
        l->capacity_day = day;
        l->capacity_count = 0;
    }
    l->capacity_count++;
}

/* ---- supply cancels: backorder allocations move to other supply (order_displace.c) -------- */

/* One backorder allocation written to out[at] (unless out is NULL) with its supply id in the
 * tail at *tail_at. */
static void displace_put(allot_reservation_allocation_t *out, uint32_t at, char *tail,
                         uint32_t *tail_at, allot_str_t id, int64_t qty)
{
    if (out != NULL) {
        out[at] = (allot_reservation_allocation_t){ALLOT_LOCATION_SUPPLY, *tail_at, qty};
        tail[*tail_at] = (char)(uint8_t)id.len;
        memcpy(tail + *tail_at + 1, id.ptr, id.len);
    }
    *tail_at += 1 + id.len;
}

/* The allocations of line i in the new block from `at`: its units on `supply` go to the targets
 * in turn within free[] (consumed), merged into the line's allocation on a target if it has
 * one, else appended; the rest of them is released (*released), or, when released is NULL (a
 * delay), stays on `supply` in one allocation. Writes unless out is NULL. */
static uint32_t displace_line_fill(const allot_reservation_t *r, uint32_t i, allot_str_t supply,
                                   const reservation_targets_t *t, int64_t *free_qty,
                                   allot_reservation_allocation_t *out, uint32_t at, char *tail,
                                   uint32_t *tail_at, int64_t *released)
{
    const allot_reservation_line_t *line = &allot_reservation_lines(r)[i];
    int64_t moved[ALLOT_SUPPLIES_PER_SKU_MAX] = {0};
    int64_t left = receipt_take(r, line, supply, INT64_MAX);
    for (uint32_t k = 0; k < t->count && left > 0; k++) {
        moved[k] = free_qty[k] < left ? free_qty[k] : left;
        free_qty[k] -= moved[k];
        left -= moved[k];
    }
    if (released != NULL)
        *released += left;
    for (uint32_t k = 0; k < line->allocation_count; k++) {
        const allot_reservation_allocation_t *a =
            &allot_reservation_allocations(r)[line->allocation_first + k];
        if (a->location != ALLOT_LOCATION_SUPPLY) {
            if (out != NULL)
                out[at] = *a;
            at++;
            continue;
        }
        allot_str_t id = allot_reservation_allocation_supply(r, a);
        if (allot_str_equal(id, supply)) {
            if (released == NULL && left > 0) /* a delay: what cannot move stays */
                displace_put(out, at++, tail, tail_at, id, left);
            left = 0;
            continue;
        }
        int64_t qty = a->qty;
        for (uint32_t m = 0; m < t->count; m++)
            if (moved[m] > 0 && allot_str_equal(t->ids[m], id)) {
                qty += moved[m];
                moved[m] = 0; /* merged */
            }
        displace_put(out, at++, tail, tail_at, id, qty);
    }
    for (uint32_t m = 0; m < t->count; m++)
        if (moved[m] > 0)
            displace_put(out, at++, tail, tail_at, t->ids[m], moved[m]);
    return at;
}

int reservation_displace_prepare(allot_state_t *state, uint32_t slot, allot_str_t supply,
                                 const reservation_targets_t *targets, int64_t *free_qty,
                                 void **block, uint32_t *allocation_count, int64_t *released)
{
    const allot_reservation_t *r = &state->reservations[slot];
    assert(r->status == ALLOT_RESERVATION_ACTIVE && allot_reservation_lines(r) != NULL);
    int64_t sizing[ALLOT_SUPPLIES_PER_SKU_MAX]; /* a first pass sizes the block */
    memcpy(sizing, free_qty, targets->count * sizeof(*sizing));
    uint32_t count = 0, tail_bytes = 0;
    int64_t dropped = 0;
    for (uint32_t i = 0; i < r->line_count; i++)
        count = displace_line_fill(r, i, supply, targets, sizing, NULL, count, NULL, &tail_bytes,
                                   released != NULL ? &dropped : NULL);
    allot_reservation_line_t *lines;
    char *new_block = hold_block_new(r, count, tail_bytes, &lines);
    if (new_block == NULL)
        return ALLOT_ENOMEM;
    allot_reservation_allocation_t *allocations = block_allocations(lines, r->line_count);
    char *tail = (char *)(allocations + count) + r->customer_len; /* the supply ids */
    uint32_t at = 0, tail_at = 0;
    dropped = 0;
    for (uint32_t i = 0; i < r->line_count; i++) {
        int64_t line_released = 0;
        lines[i] = allot_reservation_lines(r)[i];
        lines[i].allocation_first = at;
        at = displace_line_fill(r, i, supply, targets, free_qty, allocations, at, tail, &tail_at,
                                released != NULL ? &line_released : NULL);
        lines[i].allocation_count = at - lines[i].allocation_first;
        lines[i].qty_held -= line_released;
        dropped += line_released;
    }
    if (released != NULL)
        *released = dropped;
    assert(at == count && tail_at == tail_bytes);
    *block = new_block;
    *allocation_count = count;
    int rc = state_dirty_reserve(state, count, r->line_count, 1, 0);
    if (rc == 0 && r->customer_len > 0)
        rc = sale_holding_reserve(state, r->line_count);
    if (rc == 0)
        rc = allot_heap_reserve(&state->tombstone_heap, 1);
    return rc;
}

/* The hold's backorder allocations give back to (-1) or take on (+1) their supplies, and the
 * customer's units with them. */
static void displace_hold(allot_state_t *state, const allot_reservation_t *r, int sign)
{
    hold_holdings(state, r, sign);
    for (uint32_t k = 0; k < r->allocation_count; k++)
        if (allot_reservation_allocations(r)[k].location == ALLOT_LOCATION_SUPPLY)
            hold_supply(state, r, &allot_reservation_allocations(r)[k], sign);
}

void reservation_displace_commit(allot_state_t *state, uint32_t slot, void *block,
                                 uint32_t allocation_count, int64_t at_ms)
{
    allot_reservation_t *r = &state->reservations[slot];
    const allot_reservation_line_t *lines =
        (const allot_reservation_line_t *)((char *)block + allot_reservation_lines_at(r->id_len));
    int64_t held = 0;
    for (uint32_t i = 0; i < r->line_count; i++)
        held += lines[i].qty_held;
    if (held == 0) { /* holding nothing: released as by reservation.release */
        free(block);
        hold_release(state, slot, at_ms, false);
        reservation_tombstone_evict(state, at_ms);
        hold_entomb(state, slot, ALLOT_RESERVATION_RELEASED, at_ms);
        return;
    }
    reservation_dirty(state, slot); /* before the change (checkpoint pre-image) */
    displace_hold(state, r, -1);
    hold_block_replace(r, block, allocation_count);
    displace_hold(state, r, +1);
}
