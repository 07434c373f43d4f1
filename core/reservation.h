/* reservation.h - checkout holds: reserve, get, extend, release, TTL expiry, idempotency.
 *
 * Contract: a reservation holds units (position.reserved) at the locations chosen by sourcing
 * (core/sourcing.h) until it is released, expires, or is replaced. The state owns every
 * reservation: live ones (at most reservations_max) and tombstones of ended ones (at most
 * idempotency_entries_max, each kept at least idempotency_age_ms unless the count bound forces
 * the oldest out first). Writers validate everything first, change nothing on error, and on
 * success emit one event record and apply it.
 *
 * Idempotency: the same id with the same normalized request (lines, ttl_s, method, ship_to,
 * location, policy, partial, customer; not replace, not token) returns the existing reservation
 * unchanged. A different request -> CONFLICT unless replace, which releases the old hold and
 * creates the new one in one event (the old hold's units count as available; on failure the old
 * stays). An id that expired -> EXPIRED; an id that was released -> CONFLICT (ids are not reused).
 *
 * Reads: a live reservation whose expires_at_ms <= now_ms reads as EXPIRED even before the
 * expiry timer released it. get/extend of a released id -> NOT_FOUND ("... was released");
 * release of an ended reservation is an idempotent success (the result says its state).
 *
 * daily_capacity: a reservation counts one shipment at each distinct location it allocates at,
 * on the UTC day of created_ms; releasing/expiring it on that same UTC day gives the count back.
 *
 * Fairness (core/sale.h): a hold with a customer counts toward the customer's units of each SKU;
 * a SKU with max_per_customer refuses a hold past it (LIMIT_EXCEEDED; customer required), and a
 * queued SKU needs the customer's admitted token (QUEUED), which the hold's record uses up. A
 * replace keeps a queued SKU the hold already had for the same customer without a new token.
 *
 * Backorders: a line with backorder true (request->backorder[i]) holds what no location can supply
 * against the SKU's open supply (core/sourcing.h, core/supply.h): an allocation at
 * ALLOT_LOCATION_SUPPLY whose supply id allot_reservation_allocation_supply gives; its units count
 * in the supply's held (not in any position) until the hold ends, and in the line's qty_held. The
 * flag is part of the request (a line without it hashes as it always did).
 *
 * Errors: INVALID_ARGUMENT, TOO_LARGE (lines), NOT_FOUND, INSUFFICIENT_STOCK (shortfalls),
 * CONFLICT, EXPIRED, OVERLOADED (reservations_max live holds), LIMIT_EXCEEDED, QUEUED, NOMEM.
 * libc only.
 */
#ifndef ALLOT_CORE_RESERVATION_H
#define ALLOT_CORE_RESERVATION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/errors.h"
#include "core/inventory.h"
#include "core/limits.h"
#include "core/sourcing.h"

struct allot_state;

typedef enum allot_reservation_status {
    ALLOT_RESERVATION_ACTIVE = 0,
    ALLOT_RESERVATION_RELEASED = 1,
    ALLOT_RESERVATION_EXPIRED = 2,
    ALLOT_RESERVATION_STATUS_COUNT
} allot_reservation_status_t;

/* Release reasons carried by events. */
typedef enum allot_release_reason {
    ALLOT_RELEASE_RELEASED = 1,
    ALLOT_RELEASE_EXPIRED = 2,
    ALLOT_RELEASE_REPLACED = 3,
} allot_release_reason_t;

/* "active", "released", "expired" */
extern const char *const allot_reservation_status_names[];

typedef struct allot_reservation_allocation {
    uint32_t location; /* location index, or ALLOT_LOCATION_SUPPLY (a backorder hold) */
    uint32_t unused;   /* backorder holds: where the supply id is in the block (below) */
    int64_t qty;
} allot_reservation_allocation_t;

typedef struct allot_reservation_line {
    uint32_t sku;
    uint32_t allocation_first;
    uint32_t allocation_count;
    uint32_t unused;
    int64_t qty_requested;
    int64_t qty_held; /* sum of the line's allocations */
} allot_reservation_line_t;

/* A record is 120 bytes. A one-line hold with one allocation at a location, no customer and an id
 * of at most ALLOT_RESERVATION_ID_INLINE_BYTES keeps everything in it (body_inline: body.one);
 * any other keeps its id inline (short) or at the start of its block (long, NUL-terminated,
 * padded to 8 bytes), and its block (body.other.block) holds the rest: lines, allocations,
 * customer, the supply ids of backorder holds (u8 len, bytes). A tombstone keeps only its id
 * (block NULL or the long id) and its ended_ms (body.other). Read the parts with the accessors
 * below (they point into the record or its block: valid until the record changes or the slab
 * grows). */
typedef struct allot_reservation {
    uint64_t request_hash;
    int64_t created_ms;
    int64_t expires_at_ms;
    uint32_t allocation_count;
    uint32_t heap_position; /* expiry heap (active) or tombstone heap (ended); free-list link */
    uint16_t line_count;
    uint8_t id_len;
    uint8_t customer_len;
    uint8_t status; /* allot_reservation_status_t */
    bool used;
    uint8_t dirty;    /* checkpoint marks (core/state_private.h) */
    bool body_inline; /* body.one, not body.other */
    char id_inline[ALLOT_RESERVATION_ID_INLINE_BYTES + 1]; /* a short id, NUL-terminated */
    union {
        struct {
            allot_reservation_line_t line;
            allot_reservation_allocation_t allocation;
        } one;
        struct {
            char *block;
            int64_t ended_ms; /* tombstones: when it was released or expired; live: 0 */
        } other;
    } body;
} allot_reservation_t;

typedef struct allot_reserve_request {
    allot_str_t id;
    const allot_line_input_t *lines;
    uint32_t line_count; /* 1..ALLOT_LINES_MAX */
    int64_t ttl_s;       /* ALLOT_RESERVATION_TTL_S_MIN..MAX (the caller applies the default) */
    allot_method_t method;
    bool has_ship_to;
    double lat;
    double lon;
    allot_str_t location; /* len 0 = none; required for pickup */
    allot_policy_t policy;
    bool partial;
    bool replace;
    allot_str_t customer;  /* len 0 = none; part of the request (a different one: CONFLICT) */
    allot_str_t token;     /* queue token (core/sale.h); len 0 = none; not part of the request */
    const bool *backorder; /* NULL (none), or per line: backorder (see Backorders above) */
} allot_reserve_request_t;

/* Create (or idempotently return, or replace) a reservation. On success *out is the live
 * reservation, and detail->shortfalls lists the lines not fully held (partial). */
int allot_reserve(struct allot_state *state, const allot_reserve_request_t *request, int64_t now_ms,
                  const allot_reservation_t **out, allot_error_detail_t *detail);
int allot_reservation_get(const struct allot_state *state, allot_str_t id, int64_t now_ms,
                          const allot_reservation_t **out, allot_error_detail_t *detail);
/* New expiry = now_ms + ttl_s * 1000 (may shorten). */
int allot_reservation_extend(struct allot_state *state, allot_str_t id, int64_t ttl_s,
                             int64_t now_ms, const allot_reservation_t **out,
                             allot_error_detail_t *detail);
int allot_reservation_release(struct allot_state *state, allot_str_t id, int64_t now_ms,
                              const allot_reservation_t **out, allot_error_detail_t *detail);
/* Lines a reservation could not fully hold (partial), as shortfalls {sku, requested, held}. */
uint32_t allot_reservation_shortfalls(const struct allot_state *state,
                                      const allot_reservation_t *reservation,
                                      allot_shortfall_t *shortfalls, uint32_t shortfalls_max);
/* Expiry time of the earliest live reservation, INT64_MAX if none. */
int64_t allot_reservation_next_expiry_ms(const struct allot_state *state);
/* Release (reason expired) up to max live reservations with expires_at_ms <= now_ms, earliest
 * first; returns how many. */
uint32_t allot_reservations_expire(struct allot_state *state, int64_t now_ms, uint32_t max);
const allot_reservation_t *allot_reservation_find(const struct allot_state *state, allot_str_t id);
/* Loading ahead for a lookup of `id` that comes later (net/peek.h), in two stages as for SKUs
 * (core/inventory.h): allot_reservation_prefetch_slot hashes the id and starts loading its slot
 * in the id index (returns the hash), allot_reservation_prefetch_record starts loading the record
 * of the slot's first candidate (a new id has none: its probe ends in the slot already loaded).
 * Loads only: nothing is changed or decided, and any id is safe. */
uint32_t allot_reservation_prefetch_slot(const struct allot_state *state, allot_str_t id);
void allot_reservation_prefetch_record(const struct allot_state *state, uint32_t hash);
/* Where a hold's lines start in its block: after the id when the id is long. */
static inline uint32_t allot_reservation_lines_at(uint32_t id_len)
{
    return id_len <= ALLOT_RESERVATION_ID_INLINE_BYTES ? 0 : (id_len + 8) & ~7u;
}

static inline allot_str_t allot_reservation_id(const allot_reservation_t *r)
{
    bool inline_id = r->id_len <= ALLOT_RESERVATION_ID_INLINE_BYTES;
    return (allot_str_t){inline_id ? r->id_inline : r->body.other.block, r->id_len};
}

/* When a tombstone was released or expired; 0 for a live hold. */
static inline int64_t allot_reservation_ended_ms(const allot_reservation_t *r)
{
    return r->body_inline ? 0 : r->body.other.ended_ms;
}

/* The hold's line_count lines; NULL for a tombstone. */
static inline const allot_reservation_line_t *allot_reservation_lines(const allot_reservation_t *r)
{
    if (r->body_inline)
        return &r->body.one.line;
    if (r->line_count == 0)
        return NULL;
    return (const allot_reservation_line_t *)(r->body.other.block +
                                              allot_reservation_lines_at(r->id_len));
}

/* The hold's allocation_count allocations (the lines index them); NULL for a tombstone. */
static inline const allot_reservation_allocation_t *
allot_reservation_allocations(const allot_reservation_t *r)
{
    if (r->body_inline)
        return &r->body.one.allocation;
    const allot_reservation_line_t *lines = allot_reservation_lines(r);
    return lines == NULL ? NULL : (const allot_reservation_allocation_t *)(lines + r->line_count);
}

/* The hold's customer (len 0: none). */
static inline allot_str_t allot_reservation_customer(const allot_reservation_t *r)
{
    if (r->customer_len == 0)
        return (allot_str_t){NULL, 0};
    const allot_reservation_allocation_t *allocations = allot_reservation_allocations(r);
    return (allot_str_t){(const char *)(allocations + r->allocation_count), r->customer_len};
}

/* The supply id of a backorder allocation (location ALLOT_LOCATION_SUPPLY) of r. */
static inline allot_str_t
allot_reservation_allocation_supply(const allot_reservation_t *r,
                                    const allot_reservation_allocation_t *a)
{
    const allot_reservation_allocation_t *allocations = allot_reservation_allocations(r);
    const char *tail = (const char *)(allocations + r->allocation_count) + r->customer_len;
    return (allot_str_t){tail + a->unused + 1, (uint8_t)tail[a->unused]};
}

#endif
