/* state_private.h - the layout of allot_state_t and helpers shared by core/ modules only.
 *
 * Contract: included only by the .c files of core/. Everything here assumes the caller already
 * validated its input; helpers whose names end in "reserve" may fail with ALLOT_ENOMEM and make the
 * matching infallible helpers safe; the rest cannot fail. Not for net/ or persist/ (use state.h).
 */
#ifndef ALLOT_CORE_STATE_PRIVATE_H
#define ALLOT_CORE_STATE_PRIVATE_H

#include "buffer.h"
#include "event.h"
#include "hash.h"
#include "heap.h"
#include "inventory.h"
#include "reservation.h"
#include "sourcing.h"
#include "state.h"

#define ALLOT_SKU_NONE  UINT32_MAX
#define ALLOT_SLOT_NONE UINT32_MAX
/* Tombstones / adjust keys evicted for age per insert (amortized clean-up). */
#define ALLOT_AGE_EVICTIONS_PER_INSERT 2

/* Checkpoint key kinds (first key byte). */
enum {
    STATE_KEY_LOCATION = 1,
    STATE_KEY_SKU = 2,
    STATE_KEY_RESERVATION = 3,
    STATE_KEY_ADJUST_KEY = 4,
};

typedef struct allot_adjust_key {
    int64_t delta;
    int64_t at_ms;
    int64_t on_hand;
    int64_t reserved;
    int64_t allocated;
    int64_t safety_stock;
    int64_t available;
    char *key;
    uint32_t key_len;
    uint32_t hash;
    uint32_t sku;
    uint32_t location;
    uint32_t heap_position; /* free-list link when unused */
    bool used;
    bool dirty;
} allot_adjust_key_t;

typedef struct allot_candidate {
    const allot_location_t *location;
    uint32_t location_index;
    int64_t available;
    double distance_km;
    bool chosen;
} allot_candidate_t;

struct allot_state {
    allot_state_config_t config;
    allot_event_sink_cb sink;
    void *sink_ctx;

    allot_location_t *locations;
    uint32_t location_count;
    uint32_t location_capacity;
    allot_hash_t location_index;

    allot_sku_t *skus;
    uint32_t sku_count;
    uint32_t sku_capacity;
    allot_hash_t sku_index;
    allot_arena_t sku_ids;
    uint64_t skus_stocked;
    uint64_t position_count;

    allot_reservation_t *reservations;
    uint32_t reservation_slots; /* high-water mark of used slots */
    uint32_t reservation_capacity;
    uint32_t reservation_free;
    allot_hash_t reservation_index;
    allot_heap_t expiry_heap;
    allot_heap_t tombstone_heap;
    uint32_t reservation_live;
    uint32_t reservation_tombstones;

    allot_adjust_key_t *adjust_keys;
    uint32_t adjust_key_slots;
    uint32_t adjust_key_capacity;
    uint32_t adjust_key_free;
    allot_hash_t adjust_key_index;
    allot_heap_t adjust_key_heap;
    uint32_t adjust_key_count;

    allot_u32_vec_t dirty_locations;
    allot_u32_vec_t dirty_skus;
    allot_u32_vec_t dirty_reservations;
    allot_u32_vec_t dirty_adjust_keys;
    allot_bytes_t deleted; /* [u8 kind][u8 len][id] per deleted object */

    allot_bytes_t event_bytes;                   /* live emission */
    allot_event_scratch_t event_scratch;         /* decoding */
    allot_event_allocation_t *build_allocations; /* building live reservation events */
    uint32_t build_allocation_capacity;
    allot_reservation_line_t *pending_block; /* prepared line block for the next commit */
    allot_position_t *pending_positions;     /* prepared SKU snapshot positions */
    char *pending_key;                       /* prepared adjust-key copy */
    char *pending_key_reservation;           /* prepared reservation-id copy */

    /* checkpoint scratch */
    allot_bytes_t snapshot_bytes;
    allot_event_position_t *snapshot_positions;
    uint32_t snapshot_position_capacity;

    /* sourcing scratch */
    allot_candidate_t *candidates;
    uint32_t candidate_capacity;
    allot_plan_allocation_t *plan_allocations;
    uint32_t plan_allocation_capacity;
    uint32_t *location_stamp; /* per location: request generation when chosen */
    uint32_t stamp_generation;
};

/* ---- dirty set (state.c) ----------------------------------------------------------------- */
/* Make room to mark this many objects of each kind and record deletions. */
int state_dirty_reserve(allot_state_t *state, uint32_t locations, uint32_t skus,
                        uint32_t reservations, uint32_t adjust_keys);
void state_dirty_location(allot_state_t *state, uint32_t index);
void state_dirty_sku(allot_state_t *state, uint32_t index);
void state_dirty_reservation(allot_state_t *state, uint32_t index);
void state_dirty_adjust_key(allot_state_t *state, uint32_t index);
/* Record a deleted object (infallible after state_dirty_reserve). */
void state_deleted_record(allot_state_t *state, uint8_t kind, const char *id, uint32_t len);
int state_id_compare(const char *a, uint32_t a_len, const char *b, uint32_t b_len);

/* ---- inventory internals (inventory.c, stock.c) ------------------------------------------- */
int inventory_sku_intern(allot_state_t *state, allot_str_t id, uint32_t *index);
allot_sku_t *inventory_sku_mut(allot_state_t *state, uint32_t index);
/* Make room so that a position of sku at location can be inserted. */
int inventory_position_reserve(allot_state_t *state, uint32_t sku, uint32_t location);
/* The position (inserted zeroed if missing; room must have been reserved). */
allot_position_t *inventory_position_upsert(allot_state_t *state, uint32_t sku, uint32_t location);
allot_position_t *inventory_position_mut(allot_state_t *state, uint32_t sku, uint32_t location);
void inventory_position_view(const allot_state_t *state, uint32_t sku,
                             const allot_position_t *position, allot_position_view_t *view);
int inventory_apply_prepare(allot_state_t *state, const allot_event_t *event);
void inventory_apply_commit(allot_state_t *state, const allot_event_t *event);
int stock_apply_prepare(allot_state_t *state, const allot_event_t *event);
void stock_apply_commit(allot_state_t *state, const allot_event_t *event);
void adjust_key_free_all(allot_state_t *state);
int adjust_key_init(allot_state_t *state);

/* ---- reservation internals (reservation.c, reservation_apply.c) --------------------------- */
int reservation_init(allot_state_t *state);
void reservation_free_all(allot_state_t *state);
uint32_t reservation_slot_find(const allot_state_t *state, allot_str_t id);
int reservation_apply_prepare(allot_state_t *state, const allot_event_t *event);
void reservation_apply_commit(allot_state_t *state, const allot_event_t *event);
/* Encode a reservation record as an EVENT_RESERVATION_SNAPSHOT payload. */
int reservation_snapshot_encode(allot_state_t *state, uint32_t slot, allot_bytes_t *out);
/* Make room for building a live reservation event with this many allocations. */
int reservation_build_reserve(allot_state_t *state, uint32_t allocations);

#endif
