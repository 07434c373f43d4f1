/* replay.c - the prefetching record applier (contract in replay.h).
 *
 * A record is applied ALLOT_REPLAY_WINDOW pushes after its own. On the way its apply's
 * dependent loads are prefetched one level per stage, each stage a few pushes after the
 * previous so that the line has arrived when the next stage reads it. Age = pushes since its
 * own:
 *
 *   age  stage           SKU keys                           reservation key
 *    0   push (decode)   hash the id, prefetch slot         hash the id, prefetch slot
 *    3   records         slot -> SKU record                 slot -> reservation record
 *    6   payload         record -> position at location     record -> id, lines, allocations
 *    9   line SKUs       -                                  lines -> their SKU records
 *   12   line positions  -                                  SKU records -> positions
 *   16   apply
 *
 * Stages read the state as it is when they run (earlier records of the window are not applied
 * yet); they keep only indices, which they re-check against the current bounds before using.
 */
#include "replay.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "state_private.h"

_Static_assert((ALLOT_REPLAY_WINDOW & (ALLOT_REPLAY_WINDOW - 1)) == 0, "power of two");

/* Positions per record whose memory is prefetched (more are applied without help). */
#define REPLAY_SKUS_MAX 4

/* Ages (pushes since the record's own) at which each stage runs. */
enum {
    STAGE_RECORDS = 3,
    STAGE_PAYLOAD = 6,
    STAGE_LINE_SKUS = 9,
    STAGE_LINE_POSITIONS = 12,
};
_Static_assert(STAGE_LINE_POSITIONS < ALLOT_REPLAY_WINDOW, "every stage runs before the apply");

typedef struct replay_entry {
    uint64_t lsn;
    int status; /* of the decode */
    allot_event_t event;
    allot_event_scratch_t scratch;
    uint32_t sku_count;
    uint32_t sku_hash[REPLAY_SKUS_MAX];
    uint32_t sku[REPLAY_SKUS_MAX];      /* candidate indices, ALLOT_SKU_NONE = unknown */
    uint32_t location[REPLAY_SKUS_MAX]; /* the position's location, ALLOT_LOCATION_NONE = any */
    bool has_reservation;
    uint32_t reservation_hash;
    uint32_t reservation_slot; /* candidate, ALLOT_SLOT_NONE = unknown */
} replay_entry_t;

struct allot_replay {
    allot_state_t *state;
    uint64_t pushed;
    uint64_t applied;
    uint64_t failed_lsn;
    int failed;
    replay_entry_t ring[ALLOT_REPLAY_WINDOW];
};

allot_replay_t *allot_replay_create(allot_state_t *state)
{
    assert(state != NULL);
    allot_replay_t *replay = calloc(1, sizeof(*replay));
    if (replay != NULL)
        replay->state = state;
    return replay;
}

void allot_replay_destroy(allot_replay_t *replay)
{
    if (replay == NULL)
        return;
    for (uint32_t i = 0; i < ALLOT_REPLAY_WINDOW; i++)
        allot_event_scratch_free(&replay->ring[i].scratch);
    free(replay);
}

uint64_t allot_replay_failed_lsn(const allot_replay_t *replay)
{
    return replay->failed != 0 ? replay->failed_lsn : 0;
}

uint64_t allot_replay_applied(const allot_replay_t *replay)
{
    return replay->applied;
}

/* ---- stages ------------------------------------------------------------------------------ */

static void entry_add_sku(replay_entry_t *entry, allot_str_t id, uint32_t location)
{
    if (entry->sku_count == REPLAY_SKUS_MAX || id.len == 0)
        return;
    entry->sku_hash[entry->sku_count] = allot_hash_bytes(id.ptr, id.len);
    entry->sku[entry->sku_count] = ALLOT_SKU_NONE;
    entry->location[entry->sku_count] = location;
    entry->sku_count++;
}

/* A reservation's lines: one key per allocation (the positions its apply changes). */
static void entry_add_lines(const allot_state_t *state, replay_entry_t *entry,
                            const allot_event_reservation_t *e)
{
    for (uint32_t i = 0; i < e->line_count && entry->sku_count < REPLAY_SKUS_MAX; i++) {
        const allot_event_line_t *line = &e->lines[i];
        if (line->allocation_count == 0 ||
            (uint64_t)line->allocation_first + line->allocation_count > e->allocation_count) {
            entry_add_sku(entry, line->sku, ALLOT_LOCATION_NONE);
            continue;
        }
        for (uint32_t k = 0; k < line->allocation_count; k++) {
            allot_str_t location = e->allocations[line->allocation_first + k].location;
            entry_add_sku(entry, line->sku, allot_location_index_find(state, location));
        }
    }
}

static void entry_set_reservation(replay_entry_t *entry, allot_str_t id)
{
    entry->has_reservation = true;
    entry->reservation_hash = allot_hash_bytes(id.ptr, id.len);
    entry->reservation_slot = ALLOT_SLOT_NONE;
}

/* The ids the record's apply looks up. */
static void entry_keys(const allot_state_t *state, replay_entry_t *entry)
{
    const allot_event_t *e = &entry->event;
    entry->sku_count = 0;
    entry->has_reservation = false;
    switch (e->type) {
    case ALLOT_EVENT_STOCK_SET:
        entry_add_sku(entry, e->u.stock_set.sku,
                      allot_location_index_find(state, e->u.stock_set.location));
        break;
    case ALLOT_EVENT_STOCK_ADJUST:
        entry_add_sku(entry, e->u.stock_adjust.sku,
                      allot_location_index_find(state, e->u.stock_adjust.location));
        break;
    case ALLOT_EVENT_SKU_SNAPSHOT:
        entry_add_sku(entry, e->u.sku_snapshot.sku, ALLOT_LOCATION_NONE);
        break;
    case ALLOT_EVENT_RESERVATION_CREATE:
    case ALLOT_EVENT_RESERVATION_REPLACE:
    case ALLOT_EVENT_RESERVATION_SNAPSHOT:
        entry_set_reservation(entry, e->u.reservation.id);
        entry_add_lines(state, entry, &e->u.reservation);
        break;
    case ALLOT_EVENT_RESERVATION_RELEASE:
        entry_set_reservation(entry, e->u.release.id);
        break;
    case ALLOT_EVENT_RESERVATION_EXTEND:
        entry_set_reservation(entry, e->u.extend.id);
        break;
    default:
        break; /* locations, adjust keys, orders: applied without help */
    }
}

static void stage_push(const allot_state_t *state, replay_entry_t *entry)
{
    if (entry->status != 0)
        return;
    entry_keys(state, entry);
    for (uint32_t i = 0; i < entry->sku_count; i++)
        allot_hash_prefetch(&state->sku_index, entry->sku_hash[i]);
    if (entry->has_reservation)
        allot_hash_prefetch(&state->reservation_index, entry->reservation_hash);
}

static void stage_records(const allot_state_t *state, replay_entry_t *entry)
{
    for (uint32_t i = 0; i < entry->sku_count; i++) {
        uint32_t index = allot_hash_first(&state->sku_index, entry->sku_hash[i]);
        entry->sku[i] = index < state->sku_count ? index : ALLOT_SKU_NONE;
        if (entry->sku[i] != ALLOT_SKU_NONE)
            __builtin_prefetch(&state->skus[entry->sku[i]]);
    }
    if (entry->has_reservation) {
        uint32_t slot = allot_hash_first(&state->reservation_index, entry->reservation_hash);
        entry->reservation_slot = slot < state->reservation_slots ? slot : ALLOT_SLOT_NONE;
        if (entry->reservation_slot != ALLOT_SLOT_NONE)
            __builtin_prefetch(&state->reservations[slot]);
    }
}

/* A live hold whose lines may be read now (the block is freed when it ends). */
static const allot_reservation_t *entry_live_reservation(const allot_state_t *state,
                                                         const replay_entry_t *entry)
{
    if (!entry->has_reservation || entry->reservation_slot >= state->reservation_slots)
        return NULL;
    const allot_reservation_t *r = &state->reservations[entry->reservation_slot];
    if (!r->used || r->status != ALLOT_RESERVATION_ACTIVE || r->lines == NULL)
        return NULL;
    return r;
}

/* Load the position of the SKU at the location where the apply will look first (a SKU stocked at
 * every location holds location i at index i; see position_lower_bound in inventory.c).
 * A real load, not a prefetch: positions are small blocks spread over the whole heap, and on
 * the benchmark VM prefetches of them did nothing measurable (most likely dropped on a TLB
 * miss), while this load, left to complete out of order, cut replay time by about a fifth
 * (docs/benchmarks-recovery.md). */
static void prefetch_position(const allot_state_t *state, uint32_t sku_index, uint32_t location)
{
    if (sku_index >= state->sku_count)
        return;
    const allot_sku_t *sku = &state->skus[sku_index];
    if (sku->position_count == 0)
        return;
    uint32_t last = (uint32_t)sku->position_count - 1;
    uint32_t guess = location < last ? location : last;
    (void)*(const volatile uint32_t *)&sku->positions[guess].location;
}

static void stage_payload(const allot_state_t *state, replay_entry_t *entry)
{
    for (uint32_t i = 0; i < entry->sku_count; i++)
        prefetch_position(state, entry->sku[i], entry->location[i]);
    const allot_reservation_t *r = entry_live_reservation(state, entry);
    if (r != NULL) {
        __builtin_prefetch(r->id);
        __builtin_prefetch(r->lines);
        __builtin_prefetch(r->allocations);
    }
}

/* Releases and extensions: the SKUs of the hold's lines take the place of the (empty) keys. */
static void stage_line_skus(const allot_state_t *state, replay_entry_t *entry)
{
    if (entry->sku_count != 0)
        return;
    const allot_reservation_t *r = entry_live_reservation(state, entry);
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->line_count && entry->sku_count < REPLAY_SKUS_MAX; i++) {
        const allot_reservation_line_t *line = &r->lines[i];
        if (line->sku >= state->sku_count)
            continue;
        __builtin_prefetch(&state->skus[line->sku]);
        for (uint32_t k = 0; k < line->allocation_count && entry->sku_count < REPLAY_SKUS_MAX;
             k++) {
            entry->sku[entry->sku_count] = line->sku;
            entry->location[entry->sku_count] = r->allocations[line->allocation_first + k].location;
            entry->sku_count++;
        }
    }
}

static void stage_line_positions(const allot_state_t *state, replay_entry_t *entry)
{
    if (entry->event.type != ALLOT_EVENT_RESERVATION_RELEASE &&
        entry->event.type != ALLOT_EVENT_RESERVATION_EXTEND)
        return;
    for (uint32_t i = 0; i < entry->sku_count; i++)
        prefetch_position(state, entry->sku[i], entry->location[i]);
}

/* ---- window ------------------------------------------------------------------------------ */

/* The record pushed `age` pushes ago (0 = the newest), if still queued. */
static replay_entry_t *entry_at_age(allot_replay_t *replay, uint64_t age)
{
    if (replay->pushed - replay->applied <= age)
        return NULL;
    return &replay->ring[(replay->pushed - 1 - age) & (ALLOT_REPLAY_WINDOW - 1)];
}

static void run_stages(allot_replay_t *replay)
{
    const allot_state_t *state = replay->state;
    replay_entry_t *e;
    if ((e = entry_at_age(replay, STAGE_RECORDS)) != NULL && e->status == 0)
        stage_records(state, e);
    if ((e = entry_at_age(replay, STAGE_PAYLOAD)) != NULL && e->status == 0)
        stage_payload(state, e);
    if ((e = entry_at_age(replay, STAGE_LINE_SKUS)) != NULL && e->status == 0)
        stage_line_skus(state, e);
    if ((e = entry_at_age(replay, STAGE_LINE_POSITIONS)) != NULL && e->status == 0)
        stage_line_positions(state, e);
}

static int apply_oldest(allot_replay_t *replay)
{
    replay_entry_t *entry = &replay->ring[replay->applied & (ALLOT_REPLAY_WINDOW - 1)];
    int rc = entry->status != 0 ? entry->status : allot_event_apply(replay->state, &entry->event);
    if (rc != 0) {
        replay->failed = rc;
        replay->failed_lsn = entry->lsn;
        return rc;
    }
    replay->applied++;
    return 0;
}

int allot_replay_push(allot_replay_t *replay, uint64_t lsn, uint8_t type, const uint8_t *payload,
                      size_t len)
{
    assert(replay != NULL);
    if (replay->failed != 0)
        return replay->failed;
    if (replay->pushed - replay->applied == ALLOT_REPLAY_WINDOW) {
        int rc = apply_oldest(replay);
        if (rc != 0)
            return rc;
    }
    replay_entry_t *entry = &replay->ring[replay->pushed & (ALLOT_REPLAY_WINDOW - 1)];
    entry->lsn = lsn;
    entry->status = allot_event_decode(type, payload, len, &entry->scratch, &entry->event);
    replay->pushed++;
    stage_push(replay->state, entry);
    run_stages(replay);
    return 0;
}

int allot_replay_finish(allot_replay_t *replay)
{
    assert(replay != NULL);
    while (replay->failed == 0 && replay->applied < replay->pushed) {
        int rc = apply_oldest(replay); /* the rest were prefetched as far as they got */
        if (rc != 0)
            return rc;
    }
    return replay->failed;
}
