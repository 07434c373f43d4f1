/* inventory_private.h - what the files of core/inventory/ share: SKU interning, mutable positions,
 * adjust-key records, the apply's helpers.
 *
 * Contract: included by the files of core/inventory/, by the apply code of the rooms above it
 * (core/reservation/, core/order/), which change positions, by core/stream/ (which reads
 * locations on every record) and by core/state/ (life cycle, dump); never outside core/. Everything
 * here assumes the caller already validated its input. Functions named *_reserve (and the
 * interning ones, which make room as they go) may fail with ALLOT_ENOMEM and make the matching
 * infallible ones safe; the rest cannot fail.
 */
#ifndef ALLOT_CORE_INVENTORY_PRIVATE_H
#define ALLOT_CORE_INVENTORY_PRIVATE_H

#include "core/inventory.h"
#include "core/state_private.h"

/* One stock.adjust key remembered for idempotency (adjust_key.c): the adjustment and the position
 * it produced, which a repeat returns unchanged. */
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
    uint8_t dirty; /* checkpoint marks (STATE_MARK_*) */
} allot_adjust_key_t;

/* ---- dirty set: mark before changing (core/state_private.h) -------------------------------- */
/* allot_location_at, inline for core's own hot paths (the change stream reads several a record). */
static inline const allot_location_t *inventory_location_at(const allot_state_t *state,
                                                            uint32_t index)
{
    assert(index < state->location_count);
    return &state->locations[index];
}

static inline void inventory_location_dirty(allot_state_t *state, uint32_t index)
{
    state_dirty_mark(state, STATE_KEY_LOCATION, index, &state->locations[index].dirty);
}

static inline void inventory_sku_dirty(allot_state_t *state, uint32_t index)
{
    state_dirty_mark(state, STATE_KEY_SKU, index, &state->skus[index].dirty);
}

static inline void adjust_key_dirty(allot_state_t *state, uint32_t slot)
{
    state_dirty_mark(state, STATE_KEY_ADJUST_KEY, slot, &state->adjust_keys[slot].dirty);
}

/* ---- checkpoint records of locations, SKUs, adjust keys (inventory_snapshot.c) ------------- */
uint32_t location_snapshot_slots(const allot_state_t *state);
uint8_t *location_snapshot_marks(allot_state_t *state, uint32_t index);
int location_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                           allot_str_t *id);
uint32_t sku_snapshot_slots(const allot_state_t *state);
uint8_t *sku_snapshot_marks(allot_state_t *state, uint32_t index);
int sku_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                      allot_str_t *id);
uint32_t adjust_key_snapshot_slots(const allot_state_t *state);
uint8_t *adjust_key_snapshot_marks(allot_state_t *state, uint32_t index);
int adjust_key_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                             allot_str_t *id);

/* ---- SKUs and positions (sku.c) ------------------------------------------------------------ */
/* The SKU with this id, interned (created with no positions) if missing. */
int inventory_sku_intern(allot_state_t *state, allot_str_t id, uint32_t *index);
/* The same, for an id whose allot_hash_bytes() is known. */
int inventory_sku_intern_hashed(allot_state_t *state, allot_str_t id, uint32_t hash,
                                uint32_t *index);
uint32_t inventory_sku_find_hashed(const allot_state_t *state, allot_str_t sku, uint32_t hash);
/* allot_sku_index_find for a writer about to use the SKU: a found SKU becomes the one later finds
 * of the same id answer without the index (state->sku_recent). */
uint32_t inventory_sku_resolve(allot_state_t *state, allot_str_t sku);
allot_sku_t *inventory_sku_mut(allot_state_t *state, uint32_t index);
/* Make room so that a position of sku at location can be inserted. */
int inventory_position_reserve(allot_state_t *state, uint32_t sku, uint32_t location);
/* The position (inserted zeroed if missing; room must have been reserved). */
allot_position_t *inventory_position_upsert(allot_state_t *state, uint32_t sku, uint32_t location);
allot_position_t *inventory_position_mut(allot_state_t *state, uint32_t sku, uint32_t location);
void inventory_position_view(const allot_state_t *state, uint32_t sku,
                             const allot_position_t *position, allot_position_view_t *view);

/* ---- adjust keys (adjust_key.c) ------------------------------------------------------------ */
int adjust_key_init(allot_state_t *state);
void adjust_key_free_all(allot_state_t *state);
/* The key's slot, or ALLOT_SLOT_NONE. */
uint32_t adjust_key_find(const allot_state_t *state, allot_str_t key);
/* Room to insert one key (slot, hash, heap, dirty marks and the deletions eviction records). */
int adjust_key_reserve(allot_state_t *state);
/* Remember (or, for snapshots, overwrite) a key: the SKU and location the prepare found
 * (state->prepared_sku, prepared_location), the other fields from `values`. Infallible after
 * the prepare of stock.adjust or adjust_key.snapshot. */
void adjust_key_store(allot_state_t *state, allot_str_t key, const allot_adjust_key_t *values);

/* ---- event records (inventory_codec.c, inventory_apply.c): the rows of core/events.def ---- */
ALLOT_EVENTS_INVENTORY(ALLOT_EVENT_DECLARE)

/* ---- apply (inventory_apply.c) ------------------------------------------------------------- */
/* The positions of a decoded SKU snapshot, sorted by location (NULL when it has none). Reads only
 * the state's locations (memo: the location found per position ordinal last time). */
int sku_snapshot_positions(const allot_state_t *state, uint32_t *memo,
                           const allot_event_sku_snapshot_t *e, allot_position_t **out);
/* Intern the SKU and make room to mark it: from here on, sku_positions_install cannot fail. */
int sku_snapshot_make_room(allot_state_t *state, allot_str_t id, uint32_t hash, uint32_t *sku);
/* The prepared positions (state->pending_positions) become those of the SKU at sku_index. */
void sku_positions_install(allot_state_t *state, uint32_t sku_index, uint32_t position_count);

#endif
