/* stream.h - the change stream's domain side: the public events ("changes") that each applied
 * event record gives, and the durable cursors of the stream's consumers.
 *
 * Contract
 *  - Changes are derived from APPLIED records, never from requests: whoever applies records
 *    (the live emit, WAL replay, a follower applying committed entries) gets them through one
 *    observer, allot_state_set_change_observer(state, cb, ctx), called once per change right
 *    after the record that caused it was committed, with the record's LSN (set by whoever
 *    applies it with allot_state_record_lsn_set: the event sink live, the replayer on replay)
 *    and the change's index within that record (0, 1, ... in order) (allot_state_record_set
 *    also gives the time of the record's log entry). A change's seq is
 *    (lsn << ALLOT_EVENT_SEQ_INDEX_BITS) | index (allot_change_seq): the same on every node
 *    that applies the same records. Views in a change (allot_str_t) are valid during the call
 *    only. Without an observer nothing is derived (one branch per record).
 *  - Which changes a record gives (docs/events.md): stock.changed per position whose on_hand,
 *    reserved, allocated or safety_stock changed (reason: the record's cause, ref: the id it
 *    acted on; on_hand_delta is the ledger's movement); avail.changed when a SKU's total
 *    available over active ship locations changed, coalesced per SKU by record time (at most
 *    one per ALLOT_AVAIL_COALESCE_MS; a change inside the window is owed and given by the first
 *    record at or after its end - the server emits an EVENTS_TICK record when one comes due
 *    and nothing else is written: allot_stream_tick_due_ms / allot_stream_tick);
 *    reservation.created / .released / .expired {id, lines}; order.created {id, customer};
 *    order.changed {id, customer, from, to, cause} for every other order record but evictions
 *    (from == to when the state did not change: payment, modify), and for each order whose
 *    backorders a supply.receive serves (cause "supply.receive"), a supply.cancel moves or
 *    cancels (cause "supply.cancelled") or a delaying supply.put moves or keeps waiting (cause
 *    "supply.delayed"), after that record's supply.changed; shipment.changed
 *    per shipment whose state changed or that is new; return.changed {id, order, state};
 *    supply.changed {id, sku, location, qty, received, held, eta_ms, state, cause} for every
 *    supply.put, supply.receive and supply.cancel record (cause: the record's type name,
 *    "supply.delayed" for a put that moved eta_ms later), before the stock.changed of a
 *    receipt; stock.low / stock.restored {sku, available, low_stock, reason} when the record
 *    took a SKU with low_stock > 0 from above it to at or below it (low) or back (restored),
 *    comparing the SKU's
 *    total available over active ship locations (avail.changed's) and its low_stock before the
 *    record with both after it (sku.put moves the threshold; turning it off while low restores):
 *    never coalesced, no memory, so every node and every replay derives the same. Snapshot
 *    records, location.put, reservation.extend, events.ack and evictions give none.
 *  - at_ms of a change: the latest of the record's own time (where its payload carries one),
 *    the time of its log entry (allot_state_record_set) and the times applied before it: every
 *    node that applies the same log derives the same.
 *  - The coalescing memory (per SKU: the last avail.changed's time and value) lives in memory:
 *    after a restart the first change of a SKU gives an avail.changed at once.
 *  - Consumers: events.ack records (type 32) hold a named cursor (the seq a consumer has
 *    processed), checkpointed as kind 6 (CONSUMER_SNAPSHOT, type 33). A cursor never moves
 *    back (an older seq is accepted and changes nothing). At most ALLOT_EVENT_CONSUMERS_MAX
 *    names (a new one beyond: TOO_LARGE).
 * Errors: INVALID_ARGUMENT (a bad name), TOO_LARGE, NOMEM, and what the sink refuses with.
 * Called by net/ handlers and by whoever applies records; libc only.
 */
#ifndef ALLOT_CORE_STREAM_H
#define ALLOT_CORE_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/limits.h"

struct allot_state;

/* Row: X(number, NAME, "name"). Numbers are the wire's type index (stable: stored in the
 * events store; issue-specific producers such as stock.low add rows). */
#define ALLOT_CHANGE_TYPES(X)                                                                      \
    X(1, STOCK_CHANGED, "stock.changed")                                                           \
    X(2, AVAIL_CHANGED, "avail.changed")                                                           \
    X(3, STOCK_LOW, "stock.low")                                                                   \
    X(4, STOCK_RESTORED, "stock.restored")                                                         \
    X(5, RESERVATION_CREATED, "reservation.created")                                               \
    X(6, RESERVATION_RELEASED, "reservation.released")                                             \
    X(7, RESERVATION_EXPIRED, "reservation.expired")                                               \
    X(8, ORDER_CREATED, "order.created")                                                           \
    X(9, ORDER_CHANGED, "order.changed")                                                           \
    X(10, SHIPMENT_CHANGED, "shipment.changed")                                                    \
    X(11, RETURN_CHANGED, "return.changed")                                                        \
    X(12, SUPPLY_CHANGED, "supply.changed")

#define ALLOT_CHANGE_ENUM(number, NAME, name) ALLOT_CHANGE_##NAME = (number),
typedef enum allot_change_type { ALLOT_CHANGE_TYPES(ALLOT_CHANGE_ENUM) } allot_change_type_t;
#undef ALLOT_CHANGE_ENUM
/* Type numbers are 1..ALLOT_CHANGE_TYPE_LIMIT - 1. */
#define ALLOT_CHANGE_TYPE_LIMIT 32

/* "stock.changed", ...; NULL for a number that is no type. */
const char *allot_change_type_name(uint8_t type);
/* The type named `name`, 0 when none. */
uint8_t allot_change_type_find(allot_str_t name);

typedef struct allot_change_line {
    allot_str_t sku;
    int64_t qty;
} allot_change_line_t;

/* One change; fields a type does not use are empty (len 0) / zero / NULL. */
typedef struct allot_change {
    uint8_t type;
    int64_t at_ms;
    allot_str_t sku;      /* stock.*, avail.changed */
    allot_str_t location; /* stock.changed, shipment.changed */
    int64_t on_hand, reserved, allocated, safety_stock, available;
    int64_t on_hand_delta; /* stock.changed: the movement of on_hand (the ledger's) */
    int64_t low_stock;     /* stock.low, stock.restored: the SKU's low_stock after the record */
    const char *reason;    /* stock.*: what moved it ("stock.set", "shipment", "sku.put", ...) */
    allot_str_t ref;       /* stock.changed: the reservation, order, return or adjust key */
    allot_str_t id;        /* reservation, order (order.*), return id */
    allot_str_t order;     /* shipment.changed, return.changed, reservation.released by order */
    allot_str_t customer;  /* order.*, shipment.changed, return.changed (len 0: none) */
    uint32_t shipment;     /* shipment.changed: index (allot_shipment_id_format) */
    allot_str_t tracking;  /* shipment.changed (len 0: none) */
    const char *from;      /* order.changed / shipment.changed; NULL: new */
    const char *to;
    const char *state;                   /* return.changed, supply.changed */
    const char *cause;                   /* order.changed: the record's type name; supply.changed */
    int64_t qty, received, held, eta_ms; /* supply.changed */
    const allot_change_line_t *lines;    /* reservation.* */
    uint32_t line_count;
} allot_change_t;

typedef void (*allot_change_cb)(void *ctx, uint64_t lsn, uint32_t index,
                                const allot_change_t *change);

static inline uint64_t allot_change_seq(uint64_t lsn, uint32_t index)
{
    return (lsn << ALLOT_EVENT_SEQ_INDEX_BITS) | index;
}

/* cb NULL: derive nothing. */
void allot_state_set_change_observer(struct allot_state *state, allot_change_cb cb, void *ctx);
/* The LSN of the record about to be applied and the time its log entry carries (0: unknown);
 * see the contract. */
void allot_state_record_set(struct allot_state *state, uint64_t lsn, int64_t at_ms);
/* Changes a record would have given beyond ALLOT_CHANGES_PER_RECORD_MAX (left out). */
uint64_t allot_stream_changes_dropped(const struct allot_state *state);

/* When an owed avail.changed comes due (record time), INT64_MAX when none is owed. */
int64_t allot_stream_tick_due_ms(const struct allot_state *state);
/* Emit an EVENTS_TICK record at now_ms (gives the owed avail.changed that are due). */
int allot_stream_tick(struct allot_state *state, int64_t now_ms);

/* ---- consumers ------------------------------------------------------------------------------ */
/* The cursor of `name`: true and *seq set, false when no such consumer acknowledged anything. */
bool allot_consumer_get(const struct allot_state *state, allot_str_t name, uint64_t *seq);
/* Acknowledge: the cursor of `name` becomes seq (if higher). Emits one EVENTS_ACK record
 * unless nothing would change. *cursor: the cursor after. INVALID_ARGUMENT (name), TOO_LARGE. */
int allot_consumer_ack(struct allot_state *state, allot_str_t name, uint64_t seq, int64_t now_ms,
                       uint64_t *cursor, allot_error_detail_t *detail);
uint32_t allot_consumer_count(const struct allot_state *state);

#endif
