/* replay.c - the prefetching record applier (contract in core/replay.h).
 *
 * A record is applied at most ALLOT_REPLAY_WINDOW pushes after its own. On the way its apply's
 * dependent loads are prefetched one level per stage. Records go through the stages in groups
 * of REPLAY_GROUP, back to back, so that a group's loads are in flight together (the load of a
 * position is a real load, and a lone one would hold up everything behind it); each stage runs
 * a group or two after the previous so that the lines have arrived. Age = groups pushed since
 * the record's own group:
 *
 *   age  stage           SKU keys                           reservation key
 *    0   push (decode)   hash the id, prefetch slot         hash the id, prefetch slot
 *    2   records         slot -> SKU record                 slot -> reservation record
 *    4   payload         record -> position at location     record -> id, lines, allocations
 *    5   line SKUs       -                                  lines -> their SKU records
 *    6   line positions  -                                  SKU records -> positions
 *    7   apply (the oldest group, when the window is full)
 *
 * Stages read the state as it is when they run (earlier records of the window are not applied
 * yet); they keep only indices, which they re-check against the current bounds before using.
 * Which keys a record has comes from its type's lookup column in core/events.def (one table
 * lookup per record, at push).
 */
#include "core/replay.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory.h"
#include "core/reservation.h"
#include "core/state_private.h"
#include "core/stream.h"

_Static_assert((ALLOT_REPLAY_WINDOW & (ALLOT_REPLAY_WINDOW - 1)) == 0, "power of two");

/* Positions per record whose memory is prefetched (more are applied without help). */
#define REPLAY_SKUS_MAX 4

/* Records that go through each stage together. */
#define REPLAY_GROUP 16
_Static_assert(ALLOT_REPLAY_WINDOW % REPLAY_GROUP == 0, "whole groups");

/* Ages, in groups (REPLAY_GROUP pushes), at which each stage runs. */
enum {
    STAGE_RECORDS = 2,
    STAGE_PAYLOAD = 4,
    STAGE_LINE_SKUS = 5,
    STAGE_LINE_POSITIONS = 6,
};
_Static_assert((STAGE_LINE_POSITIONS + 1) * REPLAY_GROUP < ALLOT_REPLAY_WINDOW,
               "every stage runs before the apply");

/* One record on its way to apply. The decode fills the ids' hashes and location ids; stage_push
 * resolves the location ids against the state. Small fields first: a short record spans few
 * cache lines. */
typedef struct replay_entry {
    uint64_t lsn;
    int64_t at_ms; /* of the log entry (0: unknown) */
    int status;    /* of the decode */
    uint32_t sku_count;
    uint32_t sku_hash[REPLAY_SKUS_MAX];
    uint32_t sku[REPLAY_SKUS_MAX];      /* candidate indices, ALLOT_SKU_NONE = unknown */
    uint32_t location[REPLAY_SKUS_MAX]; /* the position's location, ALLOT_LOCATION_NONE = any */
    allot_str_t location_id[REPLAY_SKUS_MAX]; /* len 0 = any (resolved into location[]) */
    bool has_reservation;
    bool live_hold; /* the reservation is a live hold whose lines' positions apply changes */
    uint32_t reservation_hash;
    uint32_t reservation_slot; /* candidate, ALLOT_SLOT_NONE = unknown */
    allot_event_t event;
    allot_event_scratch_t scratch;
} replay_entry_t;

struct allot_replay {
    allot_state_t *state;
    uint64_t pushed;
    uint64_t applied;
    uint64_t failed_lsn;
    int failed;
    replay_entry_t ring[ALLOT_REPLAY_WINDOW]; /* the queued records, by push number */
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

/* ---- decode --------------------------------------------------------------------------------- */

static void entry_add_sku(replay_entry_t *entry, allot_str_t id, allot_str_t location)
{
    if (entry->sku_count == REPLAY_SKUS_MAX || id.len == 0)
        return;
    entry->sku_hash[entry->sku_count] = allot_hash_bytes(id.ptr, id.len);
    entry->sku[entry->sku_count] = ALLOT_SKU_NONE;
    entry->location_id[entry->sku_count] = location;
    entry->sku_count++;
}

/* A reservation's lines: one key per allocation (the positions its apply changes). */
static void entry_add_lines(replay_entry_t *entry, const allot_event_reservation_t *e)
{
    static const allot_str_t any = {0};
    for (uint32_t i = 0; i < e->line_count && entry->sku_count < REPLAY_SKUS_MAX; i++) {
        const allot_event_line_t *line = &e->lines[i];
        if (line->allocation_count == 0 ||
            (uint64_t)line->allocation_first + line->allocation_count > e->allocation_count) {
            entry_add_sku(entry, line->sku, any);
            continue;
        }
        for (uint32_t k = 0; k < line->allocation_count; k++) {
            const allot_event_allocation_t *a = &e->allocations[line->allocation_first + k];
            entry_add_sku(entry, line->sku,
                          a->supply ? any : a->location); /* supply: no position */
        }
    }
}

static void entry_set_reservation(replay_entry_t *entry, allot_str_t id)
{
    entry->has_reservation = true;
    entry->reservation_hash = allot_hash_bytes(id.ptr, id.len);
    entry->reservation_slot = ALLOT_SLOT_NONE;
}

/* The ids each type's apply looks up: the lookup column of core/events.def, as entry keys. e is
 * the record's payload. */
static const allot_str_t any_location = {0};
#define LOOKUP_NONE
#define LOOKUP_POSITION(sku, location) entry_add_sku(entry, e->sku, e->location)
#define LOOKUP_SKU(sku)                entry_add_sku(entry, e->sku, any_location)
#define LOOKUP_NEW_HOLD(id)                                                                        \
    entry_set_reservation(entry, e->id);                                                           \
    entry_add_lines(entry, e)
#define LOOKUP_LIVE_HOLD(id)                                                                       \
    entry_set_reservation(entry, e->id);                                                           \
    entry->live_hold = true

#define REPLAY_KEYS(number, NAME, name, member, payload, encode, decode, prepare, commit, lookup)  \
    static void keys_##NAME(replay_entry_t *entry)                                                 \
    {                                                                                              \
        const payload *e = &entry->event.u.member;                                                 \
        (void)e;                                                                                   \
        lookup;                                                                                    \
    }
ALLOT_EVENT_TABLE(REPLAY_KEYS)

typedef void (*replay_keys_fn)(replay_entry_t *entry);
#define REPLAY_KEYS_ROW(number, NAME, ...) [number] = keys_##NAME,
static const replay_keys_fn replay_keys[ALLOT_EVENT_TYPE_LIMIT] = {
    ALLOT_EVENT_TABLE(REPLAY_KEYS_ROW)};

static void entry_decode(replay_entry_t *record, uint64_t lsn, uint8_t type, const uint8_t *payload,
                         size_t len)
{
    record->lsn = lsn;
    record->status = allot_event_decode(type, payload, len, &record->scratch, &record->event);
    record->sku_count = 0;
    record->has_reservation = false;
    record->live_hold = false;
    if (record->status == 0) /* decoded: a type of the table */
        replay_keys[record->event.type](record);
}

/* ---- stages (read the state, change nothing) ----------------------------------------------- */

static void stage_push(const allot_state_t *state, replay_entry_t *entry)
{
    for (uint32_t i = 0; i < entry->sku_count; i++) {
        entry->location[i] = entry->location_id[i].len == 0
                                 ? ALLOT_LOCATION_NONE
                                 : allot_location_index_find(state, entry->location_id[i]);
        allot_hash_prefetch(&state->sku_index, entry->sku_hash[i]);
    }
    if (entry->has_reservation)
        allot_hash_prefetch(&state->reservation_index, entry->reservation_hash);
}

static void stage_records(const allot_state_t *state, replay_entry_t *entry)
{
    for (uint32_t i = 0; i < entry->sku_count; i++) {
        uint32_t index = allot_hash_first(&state->sku_index, entry->sku_hash[i]);
        entry->sku[i] = index < state->sku_count ? index : ALLOT_SKU_NONE;
    }
    if (entry->has_reservation) {
        uint32_t slot = allot_hash_first(&state->reservation_index, entry->reservation_hash);
        entry->reservation_slot = slot < state->reservation_slots ? slot : ALLOT_SLOT_NONE;
        if (entry->reservation_slot != ALLOT_SLOT_NONE)
            __builtin_prefetch(&state->reservations[slot]);
    }
}

/* The SKU records found by stage_records, loaded (not prefetched: see prefetch_position) in a
 * pass of their own over the group, so that the group's loads are in flight together. */
static void stage_sku_records(const allot_state_t *state, replay_entry_t *entry)
{
    for (uint32_t i = 0; i < entry->sku_count; i++)
        if (entry->sku[i] < state->sku_count)
            (void)*(const volatile uint16_t *)&state->skus[entry->sku[i]].position_count;
}

/* A live hold whose lines may be read now (the block is freed when it ends). */
static const allot_reservation_t *entry_live_reservation(const allot_state_t *state,
                                                         const replay_entry_t *entry)
{
    if (!entry->has_reservation || entry->reservation_slot >= state->reservation_slots)
        return NULL;
    const allot_reservation_t *r = &state->reservations[entry->reservation_slot];
    if (!r->used || r->status != ALLOT_RESERVATION_ACTIVE || allot_reservation_lines(r) == NULL)
        return NULL;
    return r;
}

/* Load the position of the SKU at the location where the apply will look first (a SKU stocked at
 * every location holds location i at index i; see position_lower_bound in core/inventory/sku.c).
 * A real load, not a prefetch, and so is the SKU record's in stage_records: on the benchmark VM
 * prefetches of these lines, spread over a gigabyte of heap, did nothing measurable (most likely
 * dropped on a TLB miss), while loads issued back to back for a group of records overlap their
 * misses (docs/benchmarks-recovery.md). Hash slots and reservation records are prefetched:
 * loading those measured no better. */
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

static void stage_positions(const allot_state_t *state, replay_entry_t *entry)
{
    for (uint32_t i = 0; i < entry->sku_count; i++)
        prefetch_position(state, entry->sku[i], entry->location[i]);
}

static void stage_payload(const allot_state_t *state, replay_entry_t *entry)
{
    const allot_reservation_t *r = entry_live_reservation(state, entry);
    if (r != NULL) {
        __builtin_prefetch(allot_reservation_id(r).ptr);
        __builtin_prefetch(allot_reservation_lines(r));
        __builtin_prefetch(allot_reservation_allocations(r));
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
        const allot_reservation_line_t *line = &allot_reservation_lines(r)[i];
        if (line->sku >= state->sku_count)
            continue;
        __builtin_prefetch(&state->skus[line->sku]);
        for (uint32_t k = 0; k < line->allocation_count && entry->sku_count < REPLAY_SKUS_MAX;
             k++) {
            uint32_t location =
                allot_reservation_allocations(r)[line->allocation_first + k].location;
            if (location == ALLOT_LOCATION_SUPPLY)
                continue; /* a backorder hold: no position */
            entry->sku[entry->sku_count] = line->sku;
            entry->location[entry->sku_count] = location;
            entry->sku_count++;
        }
    }
}

static void stage_line_positions(const allot_state_t *state, replay_entry_t *entry)
{
    if (!entry->live_hold)
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

typedef void (*replay_stage_fn)(const allot_state_t *state, replay_entry_t *entry);

/* Run one stage for the group of records that has just reached its age. The records of a group
 * go through a stage back to back so that their loads are in flight together. */
static void run_stage(allot_replay_t *replay, uint32_t group_age, replay_stage_fn stage)
{
    for (uint32_t i = 0; i < REPLAY_GROUP; i++) {
        replay_entry_t *e = entry_at_age(replay, (uint64_t)group_age * REPLAY_GROUP + i);
        if (e != NULL && e->status == 0)
            stage(replay->state, e);
    }
}

static void run_stages(allot_replay_t *replay)
{
    run_stage(replay, 0, stage_push);
    run_stage(replay, STAGE_RECORDS, stage_records);
    run_stage(replay, STAGE_RECORDS, stage_sku_records);
    run_stage(replay, STAGE_PAYLOAD, stage_positions);
    run_stage(replay, STAGE_PAYLOAD, stage_payload);
    run_stage(replay, STAGE_LINE_SKUS, stage_line_skus);
    run_stage(replay, STAGE_LINE_POSITIONS, stage_line_positions);
}

static int apply_oldest(allot_replay_t *replay)
{
    replay_entry_t *entry = &replay->ring[replay->applied & (ALLOT_REPLAY_WINDOW - 1)];
    allot_state_record_set(replay->state, entry->lsn, entry->at_ms); /* its changes' seq, time */
    int rc = entry->status != 0 ? entry->status : state_event_apply(replay->state, &entry->event);
    if (rc != 0) {
        replay->failed = rc;
        replay->failed_lsn = entry->lsn;
        return rc;
    }
    replay->applied++;
    return 0;
}

/* A full window applies its oldest group. */
static int window_make_room(allot_replay_t *replay)
{
    if (replay->failed != 0)
        return replay->failed;
    if (replay->pushed - replay->applied < ALLOT_REPLAY_WINDOW)
        return 0;
    for (uint32_t i = 0; i < REPLAY_GROUP; i++) {
        int rc = apply_oldest(replay);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int allot_replay_push(allot_replay_t *replay, uint64_t lsn, uint8_t type, const uint8_t *payload,
                      size_t len)
{
    return allot_replay_push_at(replay, lsn, 0, type, payload, len);
}

int allot_replay_push_at(allot_replay_t *replay, uint64_t lsn, int64_t at_ms, uint8_t type,
                         const uint8_t *payload, size_t len)
{
    assert(replay != NULL);
    int rc = window_make_room(replay); /* frees the slot of the record pushed a window ago */
    if (rc != 0)
        return rc;
    replay_entry_t *entry = &replay->ring[replay->pushed & (ALLOT_REPLAY_WINDOW - 1)];
    entry_decode(entry, lsn, type, payload, len);
    entry->at_ms = at_ms;
    replay->pushed++;
    if (replay->pushed % REPLAY_GROUP == 0)
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
