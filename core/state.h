/* state.h - the whole domain state of one Allot server (allot_state_t) and its life cycle.
 *
 * Contract: one allot_state_t is owned by one thread (the libuv loop); nothing here locks.
 * Every change goes through event records (core/event.h): writers in core/inventory.h and
 * core/reservation.h emit them; the event sink (persist/'s WAL append) receives each record
 * before it is applied; allot_event_apply_encoded() replays them.
 * Checkpoints: every location, SKU (all its positions as one record), reservation, stock.adjust
 * key and order changed since the last checkpoint began is remembered (the dirty set), with the
 * objects deleted and the orders evicted since. A checkpoint hands them to a callback as snapshot
 * event records (or deletions) and is CONSISTENT AS OF ONE MOMENT: the state when it began (the
 * server: the WAL's last LSN then), although it is serialized in bounded slices between which
 * writes keep changing the state:
 *  - allot_state_checkpoint_begin() hands the deletions and the evicted orders at once (bytes)
 *    and turns the dirty set into the pending set in O(1) (a new, empty dirty set starts); a
 *    full checkpoint makes every object pending, also in O(1) (its steps walk every slot).
 *    No work proportional to the state or the dirty set is done outside the steps.
 *  - allot_state_checkpoint_step() serializes up to objects_max pending objects; true once none
 *    is left. Copy-on-write: every writer (and replay) hands a pending object's pre-image (its
 *    content when the checkpoint began) to the callback before the first change or deletion of
 *    it, so each object is handed exactly once, as it was. The callback thus runs inside
 *    writers too: it must not call into the state, and it cannot fail (a callback that runs out
 *    of memory marks its own output failed). One branch per change when no checkpoint runs.
 *  - allot_state_checkpoint_end() after step returned true: 0, or ALLOT_ENOMEM when a record
 *    could not be encoded (the records handed are incomplete: discard them and take a full
 *    checkpoint next; the dirty set is gone).
 *   Objects created or changed after begin are in the new dirty set (the next checkpoint).
 *   Loading = allot_event_apply_encoded() of every stored record (in key order) followed by
 *   allot_state_dirty_clear(); then replaying the events after the checkpoint's moment gives
 *   the live state. One checkpoint at a time; begin with none active.
 * allot_state_snapshot_each_dirty() is begin + every step + end in one call (tools, tests).
 * Checkpoint keys: 1 byte kind then the object's id bytes; kinds sort so that loading in key
 * order meets locations first: 0x01 location, 0x02 SKU, 0x03 reservation, 0x04 adjust key,
 * 0x05 order (returns live inside their order; see core/order.h for archived orders); the
 * kinds and their snapshot types are ALLOT_SNAPSHOT_KINDS in core/events.def.
 * Errors: ALLOT_ENOMEM; allot_state_create returns NULL when out of memory. libc only.
 */
#ifndef ALLOT_CORE_STATE_H
#define ALLOT_CORE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/common.h"
#include "core/event/event_types.h"

typedef struct allot_state allot_state_t;

typedef struct allot_state_config {
    uint32_t reservations_max;        /* 0: ALLOT_RESERVATIONS_MAX_DEFAULT */
    int64_t idempotency_age_ms;       /* 0: ALLOT_IDEMPOTENCY_AGE_MS_DEFAULT */
    uint32_t idempotency_entries_max; /* 0: ALLOT_IDEMPOTENCY_ENTRIES_MAX_DEFAULT */
    int64_t orders_archive_age_ms;    /* 0: ALLOT_ORDERS_ARCHIVE_AGE_MS_DEFAULT (core/order.h) */
} allot_state_config_t; /* a new setting: also in state_config_t (core/state_private.h) */

/* The event sink (allot_event_sink_cb) and the checkpoint callback (allot_snapshot_cb) are
 * declared with the event records, core/event/event_types.h. */
/* The event type of the snapshots stored under a checkpoint key of `kind` (0: no such kind). */
uint8_t allot_snapshot_type_of_kind(uint8_t kind);

typedef struct allot_state_counters {
    uint64_t skus; /* SKUs with at least one position */
    uint64_t positions;
    uint64_t locations;
    uint64_t reservations; /* live holds */
    uint64_t tombstones;   /* ended reservations remembered for idempotency */
    uint64_t adjust_keys;
    uint64_t orders; /* orders in memory (evicted ones are not counted) */
    /* ended reservation ids and stock.adjust keys the count bound (idempotency_entries_max)
     * evicted while they were still inside the idempotency window (idempotency_age_ms): a
     * repeat of one of them is no longer recognized. Counts every apply, replay included. */
    uint64_t idempotency_evicted_early;
} allot_state_counters_t;

/* config may be NULL (all defaults). */
allot_state_t *allot_state_create(const allot_state_config_t *config);
void allot_state_destroy(allot_state_t *state);
void allot_state_set_event_sink(allot_state_t *state, allot_event_sink_cb sink_cb, void *ctx);
void allot_state_counters_get(const allot_state_t *state, allot_state_counters_t *out);

/* Canonical text of the whole state, sorted by ids; equal states print equal bytes.
 * 0, or ALLOT_EIO when writing fails, ALLOT_ENOMEM. */
int allot_state_dump(const allot_state_t *state, FILE *out);

/* Number of objects in the dirty set (deletions included). */
size_t allot_state_dirty_count(const allot_state_t *state);
/* A checkpoint serialized in slices (see the contract above). begin: full hands every object
 * (SKUs without positions excepted) and no deletions (the store drops what it does not get),
 * incremental hands the dirty set: deletions first, then the archived snapshots of orders evicted
 * since the last checkpoint, then per step locations, SKUs, reservations, adjust keys, orders. */
void allot_state_checkpoint_begin(allot_state_t *state, bool full, allot_snapshot_cb snapshot_cb,
                                  void *ctx);
bool allot_state_checkpoint_step(allot_state_t *state, uint32_t objects_max);
int allot_state_checkpoint_end(allot_state_t *state);
bool allot_state_checkpoint_active(const allot_state_t *state);
/* Hand every dirty object to snapshot_cb (an incremental checkpoint in one go) and clear the
 * dirty set. ALLOT_ENOMEM: some records are missing and the set is gone (take a full one). */
int allot_state_snapshot_each_dirty(allot_state_t *state, allot_snapshot_cb snapshot_cb, void *ctx);
/* Hand every object (a full checkpoint in one go, O(state size)) and the archived snapshots of
 * orders evicted since the last take; the dirty set is left alone. Evicted orders handed earlier
 * are not repeated: the store must keep them (see core/order.h). Not while a checkpoint begun
 * with allot_state_checkpoint_begin is active. */
int allot_state_snapshot_each(allot_state_t *state, allot_snapshot_cb snapshot_cb, void *ctx);
void allot_state_dirty_clear(allot_state_t *state);

/* Cross-check the counts: every position has on_hand >= 0, reserved == the sum of live
 * reservation holds there, allocated == the sum of unshipped (allocated/released) shipment items
 * of orders in memory there. 0 when they hold, else ALLOT_ECORRUPT with the first violation
 * written to msg (NUL-terminated, truncated to msg_bytes); ALLOT_ENOMEM. O(state size). */
int allot_state_check_invariants(const allot_state_t *state, char *msg, size_t msg_bytes);

#endif
