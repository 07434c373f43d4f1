/* replay.h - apply a stream of event records fast: WAL replay at start-up.
 *
 * Contract: the result is exactly that of calling allot_event_apply_encoded on each record in
 * order. The difference is speed. Recovery is bound by memory latency: each record looks up a
 * SKU or a reservation by id (hash slot -> record -> positions or lines -> SKUs -> positions),
 * and applied one at a time those cache misses queue up one after another. The replayer keeps a
 * window of ALLOT_REPLAY_WINDOW records: a record is decoded when pushed, and while it travels
 * through the window the memory its apply will touch is loaded one dependent step at a time,
 * for groups of records at once, so that the misses of many records overlap. Prefetching only reads
 * the state (indices are re-checked against the current bounds; a stale hint costs a wasted
 * prefetch, never a wrong result) and never changes it.
 *
 * Lifetime of payloads: a pushed record is applied later, so its payload must stay valid until
 * it has been applied: until allot_replay_applied() counts it (at most ALLOT_REPLAY_WINDOW
 * pushes later), or until allot_replay_finish. The WAL calls its segment_done_cb before freeing
 * a segment: the server finishes there.
 *
 * Errors: the first record that fails (ALLOT_ECORRUPT for garbage or a record that does not fit
 * the state, ALLOT_ENOMEM) stops the replayer: push and finish return that error from then on,
 * allot_replay_failed_lsn says which record (the lsn given to push), the state holds every record
 * before it and nothing of it or after it.
 * Threads: the replayer is used by one thread at a time, like the state. core/ only; libc only.
 */
#ifndef ALLOT_CORE_REPLAY_H
#define ALLOT_CORE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

struct allot_state;

/* Records in flight between push and apply. */
#define ALLOT_REPLAY_WINDOW 128

typedef struct allot_replay allot_replay_t;

/* NULL when out of memory. */
allot_replay_t *allot_replay_create(struct allot_state *state);
/* Records still queued are dropped, not applied: call allot_replay_finish first. */
void allot_replay_destroy(allot_replay_t *replay);

/* Queue one record (lsn: for error reports, and set as the record's LSN when it is applied:
 * allot_state_record_set, core/stream.h); may apply the oldest queued one. */
int allot_replay_push(allot_replay_t *replay, uint64_t lsn, uint8_t type, const uint8_t *payload,
                      size_t len);
/* The same with the time of the record's log entry (allot_state_record_set, core/stream.h). */
int allot_replay_push_at(allot_replay_t *replay, uint64_t lsn, int64_t at_ms, uint8_t type,
                         const uint8_t *payload, size_t len);
/* Apply everything queued. */
int allot_replay_finish(allot_replay_t *replay);
/* The lsn of the record that failed, 0 when none has. */
uint64_t allot_replay_failed_lsn(const allot_replay_t *replay);
/* Records applied so far. */
uint64_t allot_replay_applied(const allot_replay_t *replay);

#endif
