/* state_private.h - the layout of allot_state_t, and what every room of core shares on it: the
 * dirty set, the checkpoint's copy-on-write, the one way to change the state (emit).
 *
 * Contract: included only by the files of core/ (net/ and persist/ use core/state.h). It holds
 * the fields of every room but includes no room's header: the types of the records a room owns
 * are declared in that room's headers (held here through pointers), so that including this
 * header never pulls in a room's functions. Functions here are defined in core/state/shared.c
 * and core/event/apply.c, which include nothing above this header. Everything here assumes the
 * caller already validated its input; helpers whose names end in "reserve" may fail with
 * ALLOT_ENOMEM and make the matching infallible helpers safe; the rest cannot fail unless they
 * say so.
 */
#ifndef ALLOT_CORE_STATE_PRIVATE_H
#define ALLOT_CORE_STATE_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/base/buffer.h"
#include "core/base/hash.h"
#include "core/base/heap.h"
#include "core/common.h"
#include "core/event/event_types.h"
#include "core/limits.h"
#include "core/order/order_types.h"

typedef struct allot_state allot_state_t;

#define ALLOT_SLOT_NONE UINT32_MAX
/* Tombstones / adjust keys evicted for age per insert (amortized clean-up). */
#define ALLOT_AGE_EVICTIONS_PER_INSERT 2
/* Tombstones / adjust keys evicted per insert at most, for the count bound and age together:
 * the deletions state_dirty_reserve makes room for. (After a restart with a lower
 * idempotency_entries_max the count comes down to it by this many per insert.) */
#define ALLOT_EVICTIONS_PER_INSERT_MAX (1 + ALLOT_AGE_EVICTIONS_PER_INSERT)

/* Checkpoint key kinds (the first byte of a checkpoint key): ALLOT_SNAPSHOT_KINDS of
 * core/events.def. Kinds are 1..STATE_KEY_LIMIT - 1. */
#define STATE_KEY_ENUM(kind, NAME, ...)   STATE_KEY_##NAME = (kind),
#define STATE_KEY_MEMBER(kind, NAME, ...) char kind_##NAME[kind];
/* The largest kind is the size of a union of arrays of each kind's size (kinds may leave gaps:
 * a kind without a row has no functions and no objects). */
union state_key_largest {
    ALLOT_SNAPSHOT_KINDS(STATE_KEY_MEMBER)
};
enum { ALLOT_SNAPSHOT_KINDS(STATE_KEY_ENUM) STATE_KEY_LIMIT = sizeof(union state_key_largest) + 1 };
#undef STATE_KEY_ENUM
#undef STATE_KEY_MEMBER

/* A kind's functions (see ALLOT_SNAPSHOT_KINDS), wired by allot_state_create. */
typedef struct state_kind {
    uint8_t type; /* the snapshot event type of its records */
    uint32_t (*slots)(const struct allot_state *state);
    uint8_t *(*marks)(struct allot_state *state, uint32_t index);
    int (*take)(struct allot_state *state, uint32_t index, bool full, allot_bytes_t *out,
                allot_str_t *id);
} state_kind_t;

/* Checkpoint marks: the `dirty` byte of every location, SKU, reservation, adjust key and order.
 * Two generation bits take turns as "dirty" (changed since the running or last checkpoint began:
 * state->dirty_bit) and "pending" (dirty when the running checkpoint began, not serialized yet:
 * state->checkpoint.pending_bit), so that beginning a checkpoint turns the whole dirty set into
 * the pending set in O(1). DONE: during a full checkpoint, the object needs no record from the
 * walk (its pre-image was written, or it was born after the checkpoint began). */
#define STATE_MARK_GENERATION_A 0x01u
#define STATE_MARK_GENERATION_B 0x02u
#define STATE_MARK_DONE         0x04u

/* A checkpoint being serialized in slices (core/state/checkpoint.c; contract in state.h). */
typedef struct state_checkpoint {
    allot_snapshot_cb snapshot_cb;
    void *ctx;
    bool active;
    bool full;
    bool failed;         /* a record could not be encoded (out of memory) */
    uint8_t pending_bit; /* STATE_MARK_GENERATION_A or _B while active */
    uint8_t kind;        /* the walk: kind being walked (STATE_KEY_*), past the last when done */
    uint32_t cursor;     /* the walk: next index into pending[kind] (or next slot when full) */
    uint32_t ends[STATE_KEY_LIMIT];           /* full: slots of each kind when it began */
    allot_u32_vec_t pending[STATE_KEY_LIMIT]; /* incremental: the dirty lists when it began */
} state_checkpoint_t;

/* One archived order copied out of the archive for a reply. */
typedef struct order_archived_ref {
    int64_t created_ms;
    size_t offset; /* into archive_bytes */
    size_t len;
    uint32_t id_offset; /* id bytes at offset + id_offset */
    uint32_t id_len;
} order_archived_ref_t;

/* What a prepared order event hands to its commit. */
typedef struct order_prepared {
    struct allot_order *order; /* the target (existing) or the new one (create/snapshot) */
    uint32_t slot;             /* existing order's slot (ALLOT_SLOT_NONE for new) */
    allot_str_t text;          /* copies in the order's text storage */
    allot_str_t address;
    allot_str_t instructions;
    allot_str_t location;
} order_prepared_t;

/* The settings in effect: allot_state_config_t (core/state.h) with every default filled in by
 * allot_state_create, which copies each field (a new setting goes into both). */
typedef struct state_config {
    uint32_t reservations_max;
    int64_t idempotency_age_ms;
    uint32_t idempotency_entries_max;
    int64_t orders_archive_age_ms;
} state_config_t;

struct allot_state {
    state_config_t config;
    allot_event_sink_cb sink;
    void *sink_ctx;
    struct stream_state *stream; /* core/stream/stream_private.h: changes and consumers */

    struct allot_location *locations; /* core/inventory.h */
    uint32_t location_count;
    uint32_t location_capacity;
    allot_hash_t location_index;
    uint32_t location_recent; /* the location a hold was last planned at: a find of its id skips
                                 the index */

    struct allot_sku *skus; /* core/inventory.h */
    uint32_t sku_count;
    uint32_t sku_capacity;
    allot_hash_t sku_index;
    uint32_t sku_recent; /* the SKU a writer resolved last: a find of its id skips the index */
    allot_arena_t sku_ids;
    uint64_t skus_stocked;
    uint64_t position_count;

    struct allot_reservation *reservations; /* core/reservation.h */
    uint32_t reservation_slots;             /* high-water mark of used slots */
    uint32_t reservation_capacity;
    uint32_t reservation_free;
    uint32_t reservation_recent;      /* the slot last taken: a find of its id skips the index */
    uint32_t reservation_recent_hash; /* allot_hash_bytes of its id */
    allot_hash_t reservation_index;
    allot_heap_t expiry_heap;
    allot_heap_t tombstone_heap;
    uint32_t reservation_live;
    uint32_t reservation_tombstones;

    struct allot_adjust_key *adjust_keys; /* core/inventory/inventory_private.h */
    uint32_t adjust_key_slots;
    uint32_t adjust_key_capacity;
    uint32_t adjust_key_free;
    allot_hash_t adjust_key_index;
    allot_heap_t adjust_key_heap;
    uint32_t adjust_key_count;
    uint64_t idempotency_evicted_early; /* allot_state_counters_t */

    const state_kind_t *kinds;              /* by kind: what each one's records are */
    allot_u32_vec_t dirty[STATE_KEY_LIMIT]; /* by kind: the objects in the dirty set */
    allot_bytes_t archived; /* [u8 id_len][id][u32 len][ORDER_SNAPSHOT payload] per eviction */
    allot_bytes_t deleted;  /* [u8 kind][u8 len][id] per deleted object */
    uint8_t dirty_bit;      /* STATE_MARK_GENERATION_A or _B: the mark of the dirty set */
    state_checkpoint_t checkpoint;

    allot_bytes_t event_bytes;                   /* live emission */
    allot_event_scratch_t event_scratch;         /* decoding */
    allot_event_allocation_t *build_allocations; /* building live reservation events */
    uint32_t build_allocation_capacity;
    char *pending_block;      /* prepared hold block for the next commit (core/reservation.h) */
    uint64_t pending_body[6]; /* or the line and allocation a record keeps inline */
    struct allot_position *pending_positions; /* prepared SKU snapshot positions */
    uint32_t prepared_sku;         /* stock events and SKU / adjust-key snapshots: the SKU and */
    uint32_t prepared_location;    /* location their prepare found, for the commit after it */
    uint32_t prepared_reservation; /* release / replace / extend: the hold's slot, likewise */
    uint32_t prepared_id_hash;     /* create: allot_hash_bytes of the new hold's id, likewise */
    char *pending_key;             /* prepared adjust-key copy */

    /* orders (order_store.c) */
    struct allot_order **orders; /* by slot; NULL = free (core/order/order_private.h) */
    uint32_t order_slots;
    uint32_t order_capacity;
    allot_u32_vec_t order_free;
    allot_hash_t order_index;
    allot_hash_t order_return_index; /* hash(return id) -> order slot */
    allot_hash_t customer_index;
    struct order_customer *customers;
    uint32_t customer_slots;
    uint32_t customer_capacity;
    allot_u32_vec_t customer_free;
    allot_heap_t order_heap; /* ended orders by (ended_ms, id) */
    uint32_t order_live;
    order_prepared_t order_prepared;
    struct order_receipt *receipt; /* a supply.receive's plan (core/order/order_receipt.c) */
    char *pending_customer_id;     /* prepared customer-index id copy */
    allot_u32_vec_t pending_customer_orders; /* prepared customer-index order list */
    allot_order_archive_t archive;
    allot_bytes_t archive_bytes; /* archived orders copied for the current reply */
    order_archived_ref_t archive_refs[2 * ALLOT_ORDER_LIST_LIMIT_MAX + 2];
    uint32_t archive_ref_count;
    allot_event_scratch_t archive_scratch;
    allot_event_order_t archive_view;
    allot_event_item_t *build_items; /* building live order events */
    uint32_t build_item_capacity;
    allot_event_shipment_t *build_shipments;
    uint32_t build_shipment_capacity;

    /* checkpoint load: the location index found at each position ordinal of the previous SKU
     * snapshot (core/inventory/inventory_apply.c), checked by comparing ids before hashing */
    uint32_t snapshot_location_memo[ALLOT_SKU_BUILDER_MEMO];
    /* checkpoint scratch */
    allot_bytes_t snapshot_bytes;
    allot_event_position_t *snapshot_positions;
    uint32_t snapshot_position_capacity;

    struct sale_store *sale;       /* SKU settings, queues, customers' holdings (core/sale/) */
    struct transit_store *transit; /* transit bands per method (core/promise/) */
    struct supply_store *supply;   /* future supply (core/supply/) */

    /* sourcing scratch */
    struct allot_candidate *candidates; /* core/reservation/sourcing.c */
    uint32_t candidate_capacity;
    struct allot_plan_allocation *plan_allocations; /* core/sourcing.h */
    uint32_t plan_allocation_capacity;
    uint32_t *location_stamp; /* per location: request generation when chosen */
    uint32_t stamp_generation;
};

/* ---- dirty set (core/state/shared.c) ------------------------------------------------------ */
/* Make room to mark this many objects of each kind and record deletions. */
int state_dirty_reserve(allot_state_t *state, uint32_t locations, uint32_t skus,
                        uint32_t reservations, uint32_t adjust_keys);
/* Record a deleted object (infallible after state_dirty_reserve). state_touch it first. */
void state_deleted_record(allot_state_t *state, uint8_t kind, const char *id, uint32_t len);
/* Idempotency memory (tombstones, adjust keys): is an entry stamped key_ms past the window
 * (config.idempotency_age_ms) at at_ms, so that age evicts it? */
bool state_idempotency_aged(const allot_state_t *state, int64_t at_ms, int64_t key_ms);
/* The count bound (config.idempotency_entries_max) evicts an entry stamped key_ms to make room
 * for one stamped at_ms: counted in idempotency_evicted_early unless it was aged anyway. */
void state_idempotency_count_evicted(allot_state_t *state, int64_t at_ms, int64_t key_ms);

/* Copy-on-write for the checkpoint being serialized (core/state/shared.c): before an object of
 * `kind` at `index` (location/SKU index, reservation/adjust-key/order slot) changes or is deleted,
 * write its pre-image (its content as of the checkpoint's LSN) if the checkpoint still owes it. One
 * branch when no checkpoint is running. Infallible: an encoding failure fails the checkpoint. */
void state_checkpoint_preimage(allot_state_t *state, uint8_t kind, uint32_t index);
static inline void state_touch(allot_state_t *state, uint8_t kind, uint32_t index)
{
    if (state->checkpoint.active)
        state_checkpoint_preimage(state, kind, index);
}
/* A slot was (re)filled by a new object: a full checkpoint that has not walked past the slot yet
 * must not serialize it (it did not exist at the checkpoint's LSN). */
void state_checkpoint_born(allot_state_t *state, uint8_t kind, uint32_t index);
/* Mark an object changed: `marks` is its checkpoint marks byte (kind and index as for
 * state_touch). Call BEFORE changing it: while a checkpoint is being serialized the mark first
 * hands the object's pre-image to it. Infallible after state_dirty_reserve. Each room wraps it
 * for its objects (inventory_sku_dirty, reservation_dirty, order_dirty_mark, ...). */
static inline void state_dirty_mark(allot_state_t *state, uint8_t kind, uint32_t index,
                                    uint8_t *marks)
{
    state_touch(state, kind, index);
    if (*marks & state->dirty_bit)
        return;
    *marks |= state->dirty_bit;
    allot_u32_vec_push(&state->dirty[kind], index);
}
/* Does the running checkpoint still owe a record of this object (its content when it began)? */
bool state_checkpoint_owes(const state_checkpoint_t *cp, uint8_t kind, uint32_t index,
                           uint8_t marks);
/* Hand one object to the running checkpoint (a failure fails the checkpoint). */
void state_checkpoint_record(allot_state_t *state, uint8_t kind, uint32_t index);
/* Hand the object of `kind` at `index` to cb as a checkpoint record (its key, type and snapshot
 * payload, encoded into state->snapshot_bytes; nothing for what a full checkpoint leaves out).
 * 0 or ALLOT_ENOMEM. */
int state_snapshot_hand(allot_state_t *state, uint8_t kind, uint32_t index, bool full,
                        allot_snapshot_cb cb, void *ctx);
int state_id_compare(const char *a, uint32_t a_len, const char *b, uint32_t b_len);

/* ---- changing the state (core/event/apply.c) ----------------------------------------------- */
/* The live path of every writer: encode the event, decode it back, prepare, hand the bytes to
 * the sink, commit. 0, or the prepare's or the sink's error with nothing changed (ALLOT_ENOMEM,
 * or what the sink refused with). */
int state_event_emit(allot_state_t *state, const allot_event_t *event);
/* Apply one decoded record: its owner's prepare, then commit (what replay does). */
int state_event_apply(allot_state_t *state, const allot_event_t *event);

#endif
