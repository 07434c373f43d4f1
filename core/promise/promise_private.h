/* promise_private.h - what the files of core/promise/ share: the transit bands' store, its event
 * records and checkpoint records, and its life cycle.
 *
 * Contract: included by the files of core/promise/ and by core/state/ (life cycle, dump); never
 * outside core/. Everything assumes validated input; prepare functions may fail (ALLOT_ENOMEM,
 * ALLOT_ECORRUPT) and change nothing, commits cannot fail.
 */
#ifndef ALLOT_CORE_PROMISE_PRIVATE_H
#define ALLOT_CORE_PROMISE_PRIVATE_H

#include <stdio.h>

#include "core/inventory.h"
#include "core/promise.h"
#include "core/state_private.h"

/* The bands of each method, and whether transit.set ever named it (only then does the method
 * have a checkpoint record). */
typedef struct transit_store {
    allot_transit_t methods[ALLOT_METHOD_COUNT];
    bool set[ALLOT_METHOD_COUNT];
    uint8_t dirty[ALLOT_METHOD_COUNT]; /* checkpoint marks (STATE_MARK_*) */
} transit_store_t;

int transit_init(allot_state_t *state);
void transit_free_all(allot_state_t *state);
/* "transit ship bands=1:0-1,300:1-2" lines, one per method set, for state comparisons. */
int transit_dump(const allot_state_t *state, FILE *out);

/* ---- event records (transit.c): the rows of core/events.def ------------------------------- */
ALLOT_EVENTS_PROMISE(ALLOT_EVENT_DECLARE)

/* ---- checkpoint records (kind TRANSIT) ------------------------------------------------------ */
uint32_t transit_snapshot_slots(const allot_state_t *state);
uint8_t *transit_snapshot_marks(allot_state_t *state, uint32_t index);
int transit_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                          allot_str_t *id);

#endif
