/* sale_private.h - what the files of core/sale/ share (the settings records, queues, tickets,
 * the customers' holdings), and what the rest of core calls on them: life cycle, checkpoint
 * records, and the holdings the reservations' and orders' apply keep counted.
 *
 * Contract: included by the files of core/sale/, by the apply code of core/reservation/ and
 * core/order/ (holds and orders change holdings; a hold uses its ticket) and by core/state/;
 * never outside core/. Functions named *_reserve may fail with ALLOT_ENOMEM and make the matching
 * infallible ones safe; the rest cannot fail. Everything assumes validated input.
 */
#ifndef ALLOT_CORE_SALE_PRIVATE_H
#define ALLOT_CORE_SALE_PRIVATE_H

#include <stdio.h>

#include "core/sale.h"
#include "core/state_private.h"

/* One SKU's settings record, and its queue when it has one. */
typedef struct sale_sku {
    allot_sku_settings_t settings;
    uint32_t sku;           /* SKU index (interned) */
    uint32_t hash;          /* of the SKU index */
    allot_u32_vec_t queue;  /* ticket slots in join order */
    uint32_t admit_cursor;  /* queue index of the first waiting ticket */
    uint32_t expire_cursor; /* queue index of the first ticket that may hold a live token */
    uint32_t live_tokens;   /* admitted tickets (not used, not expired) */
    int64_t admitted_upto_ms;
    uint64_t admitted_total;
    uint8_t dirty; /* checkpoint marks (STATE_MARK_*) */
} sale_sku_t;

typedef struct sale_ticket {
    uint64_t number;
    uint64_t secret; /* admitted and later: the token's secret */
    int64_t joined_ms;
    int64_t expires_at_ms; /* admitted and later: the token's expiry */
    uint32_t owner;        /* settings slot */
    uint32_t index;        /* in the owner's queue */
    uint32_t number_hash;
    uint32_t customer_hash; /* of (owner, customer) */
    uint8_t customer_len;
    uint8_t state; /* allot_ticket_state_t */
    uint8_t dirty;
    bool used;
    bool indexed;                     /* in the customer index (the customer's current ticket) */
    char key[ALLOT_TICKET_CHARS + 1]; /* the checkpoint key after the kind byte: its string */
    char customer[ALLOT_ID_BYTES_MAX + 1];
} sale_ticket_t;

/* Units of one SKU one customer holds (live holds plus orders in memory, not cancelled). */
typedef struct sale_holding {
    int64_t qty;
    uint32_t sku;
    uint32_t hash;
    uint8_t customer_len;
    bool used;
    char customer[ALLOT_ID_BYTES_MAX + 1];
} sale_holding_t;

typedef struct sale_store {
    sale_sku_t *skus; /* settings records by slot, never freed */
    uint32_t sku_count;
    uint32_t sku_capacity;
    allot_hash_t sku_index;                 /* hash of the SKU index -> slot */
    uint32_t queued[ALLOT_QUEUED_SKUS_MAX]; /* slots of the SKUs with a queue */
    uint32_t queued_count;

    sale_ticket_t *tickets; /* by slot */
    uint32_t ticket_slots;
    uint32_t ticket_capacity;
    allot_u32_vec_t ticket_free;
    uint32_t ticket_count;
    uint64_t ticket_next;
    allot_hash_t ticket_index;          /* number -> slot */
    allot_hash_t ticket_customer_index; /* (owner, customer) -> the current ticket's slot */

    sale_holding_t *holdings; /* by slot */
    uint32_t holding_slots;
    uint32_t holding_capacity;
    allot_u32_vec_t holding_free;
    uint32_t holding_count;
    allot_hash_t holding_index;
} sale_store_t;

/* ---- life cycle and checkpoint records (sale_store.c, sale_snapshot.c) ------------------- */
int sale_init(allot_state_t *state);
void sale_free_all(allot_state_t *state);
uint32_t sku_settings_snapshot_slots(const allot_state_t *state);
uint8_t *sku_settings_snapshot_marks(allot_state_t *state, uint32_t index);
int sku_settings_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                               allot_str_t *id);
uint32_t queue_ticket_snapshot_slots(const allot_state_t *state);
uint8_t *queue_ticket_snapshot_marks(allot_state_t *state, uint32_t index);
int queue_ticket_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                               allot_str_t *id);

/* ---- event records (sale_codec.c, sale_apply.c): the rows of core/events.def -------------- */
ALLOT_EVENTS_SALE(ALLOT_EVENT_DECLARE)

/* ---- the store (sale_store.c) ------------------------------------------------------------ */
/* The settings slot of the SKU (index), or ALLOT_SLOT_NONE. */
uint32_t sale_sku_find(const allot_state_t *state, uint32_t sku);
/* The SKU's (index) low_stock setting, 0 when it has none (ALLOT_SKU_NONE: 0). For the change
 * stream's stock.low / stock.restored (core/stream/). */
int64_t sale_sku_low_stock(const allot_state_t *state, uint32_t sku);
/* Room for one more settings record; then sale_sku_add is infallible. */
int sale_sku_reserve(allot_state_t *state);
uint32_t sale_sku_add(allot_state_t *state, uint32_t sku);
/* The ticket's slot by number, or ALLOT_SLOT_NONE. */
uint32_t sale_ticket_find(const allot_state_t *state, uint64_t number);
/* The current ticket of customer in the queue of settings slot owner, or ALLOT_SLOT_NONE. */
uint32_t sale_ticket_find_customer(const allot_state_t *state, uint32_t owner,
                                   allot_str_t customer);
/* Room for one more ticket in owner's queue (slot, indexes, queue, dirty mark); then
 * sale_ticket_add is infallible. */
int sale_ticket_reserve(allot_state_t *state, uint32_t owner);
uint32_t sale_ticket_add(allot_state_t *state, uint32_t owner, uint64_t number,
                         allot_str_t customer, int64_t joined_ms);
/* The ticket is no longer the customer's current one. */
void sale_ticket_unindex(allot_state_t *state, uint32_t slot);
/* Drop every ticket of owner's queue (each recorded as deleted for the checkpoint). */
int sale_queue_clear_reserve(allot_state_t *state, uint32_t owner);
void sale_queue_clear(allot_state_t *state, uint32_t owner);
/* Mark before changing (core/state_private.h). */
static inline void sale_sku_dirty(allot_state_t *state, uint32_t slot)
{
    state_dirty_mark(state, STATE_KEY_SKU_SETTINGS, slot, &state->sale->skus[slot].dirty);
}
static inline void sale_ticket_dirty(allot_state_t *state, uint32_t slot)
{
    state_dirty_mark(state, STATE_KEY_QUEUE_TICKET, slot, &state->sale->tickets[slot].dirty);
}
/* The token's secret of ticket `number` admitted by a record with this seed. */
uint64_t sale_token_secret(uint64_t seed, uint64_t number);

/* ---- holdings (sale_store.c): called by the apply of holds and orders -------------------- */
/* Room for `lines` more (SKU, customer) pairs; then sale_holding_add is infallible. */
int sale_holding_reserve(allot_state_t *state, uint32_t lines);
/* The slot counting customer's units of the SKU (index), or ALLOT_SLOT_NONE. */
uint32_t sale_holding_find(const allot_state_t *state, uint32_t sku, allot_str_t customer);
/* Add (sign +1) or take away (-1) qty units of the SKU (index) held by customer (len 0: no-op). */
void sale_holding_add(allot_state_t *state, uint32_t sku, allot_str_t customer, int64_t qty);

/* ---- text dump (sale_dump.c): settings by SKU id, each queue's tickets, holdings ---------- */
int sale_dump(const allot_state_t *state, FILE *out);

/* ---- tickets used by holds (sale_apply.c): the reservation's apply -------------------------- */
/* The ticket a hold record names: it must be admitted (CORRUPT otherwise); room for its mark. */
int sale_ticket_use_prepare(allot_state_t *state, uint64_t number);
void sale_ticket_use_commit(allot_state_t *state, uint64_t number);

#endif
