/* supply.h - future supply: inbound purchase orders, transfers and advance shipping notices of a
 * SKU to a location (supply.put / supply.receive / supply.cancel / supply.get / supply.list), and
 * what a product page can still promise from them (allot_supply_incoming).
 *
 * Contract: the state owns the supplies it was given, in any state: open (units expected),
 * received (every unit arrived) or cancelled (the rest will not come); ended supplies stay for
 * get and list. At most ALLOT_SUPPLIES_PER_SKU_MAX of one SKU and ALLOT_SUPPLIES_MAX in all: a
 * new supply past either evicts the SKU's supply that ended first (its units stay on hand; its
 * id is free again), and when every supply of the SKU is open it is TOO_LARGE. Writers validate
 * everything first, change nothing on error, and on success emit one event record and apply it.
 *
 * A supply keeps qty (the total expected), received (units that arrived), held (units promised
 * to backorders: the backorder allocations of live reservations on it, core/reservation.h, and
 * the backordered units of orders on it, core/order.h) and eta_ms. The units it can still promise
 * are qty - received - held while it is open; held never exceeds qty - received, and only an open
 * supply is held.
 *
 * supply.put upserts: a new id needs a location that exists, qty in 1..ALLOT_QUANTITY_MAX and
 * eta_ms in the time range (core/limits.h). On an existing supply: the same values change
 * nothing (no record: a retry is free); another sku is CONFLICT; another location is CONFLICT once
 * units were received (they are on hand there); qty below received + held is INVALID_ARGUMENT,
 * qty equal to it ends the supply as received; a later eta_ms is a delay (its supply.changed says
 * "supply.delayed"): in the same record the backorders on it move to the SKU's other open
 * supplies due before the new eta, as a cancel moves them (below), but what cannot move stays on
 * it (nothing is released); a received or cancelled supply is INVALID_TRANSITION.
 * supply.receive moves units into on_hand at the supply's location (a stock movement: the ledger
 * and stock.changed with reason "supply.receive" and ref the supply id); qty defaults to the
 * rest, more than the rest or <= 0 is INVALID_ARGUMENT, on_hand past ALLOT_QUANTITY_MAX too.
 * The units serve the supply's backorders first, in the same record (its writer and apply are
 * core/order/order_receipt.c's): orders' backordered units, oldest order first (created_ms, then
 * id), become allocated at the location in a new shipment of the order (allocated, or released
 * when the order is); then live holds' backorder allocations, oldest first (created_ms, then id),
 * become held at the location (merged into the line's allocation there); held shrinks by what
 * they took, and the rest is plain stock. An order that cannot take one more shipment
 * (ALLOT_ORDER_SHIPMENTS_MAX, ALLOT_ORDER_ITEMS_MAX) is passed over (its units keep waiting),
 * and a receipt of the last unit that would leave it waiting is TOO_LARGE.
 * Receiving the last unit makes the supply received; a supply that is not open is
 * INVALID_TRANSITION (receive is not idempotent: a retry after a lost reply takes the default,
 * which a received supply refuses). supply.cancel of an open supply cancels it (units already
 * received stay on hand); in the same record (its apply is core/order/order_displace.c's) the
 * backorders on it move to the SKU's other open supplies, earliest eta first (then id), each
 * within its free qty (qty - received - held): orders' backordered units first, oldest order
 * first (created_ms, then id), then live holds' backorder allocations, oldest first. What cannot
 * move is released: a hold's line holds less (a hold left holding nothing is released as by
 * reservation.release); an order's units are cancelled from its lines (a line left with none
 * goes), and an order left with nothing to ship is cancelled as order.cancel would (history
 * reason "supply.cancelled"). Cancelling a cancelled supply changes nothing (success); a
 * received supply is INVALID_TRANSITION.
 *
 * Errors: INVALID_ARGUMENT, NOT_FOUND (supply, location), CONFLICT, INVALID_TRANSITION,
 * TOO_LARGE, NOMEM. Called by net/ handlers and by the promise (allot_supply_incoming); libc only.
 */
#ifndef ALLOT_CORE_SUPPLY_H
#define ALLOT_CORE_SUPPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/errors.h"

struct allot_state;

typedef enum allot_supply_state {
    ALLOT_SUPPLY_OPEN = 0,
    ALLOT_SUPPLY_RECEIVED = 1,
    ALLOT_SUPPLY_CANCELLED = 2,
    ALLOT_SUPPLY_STATE_COUNT
} allot_supply_state_t;

/* "open", "received", "cancelled" */
extern const char *const allot_supply_state_names[];

/* One supply as get, list and the writers answer it (views valid until the state changes). */
typedef struct allot_supply_view {
    allot_str_t id;
    allot_str_t sku;
    allot_str_t location;
    int64_t qty;
    int64_t received;
    int64_t held;
    int64_t eta_ms;
    uint8_t state; /* allot_supply_state_t */
} allot_supply_view_t;

/* supply.put's arguments. */
typedef struct allot_supply_put_input {
    allot_str_t id;
    allot_str_t sku;
    allot_str_t location;
    int64_t qty;
    int64_t eta_ms;
} allot_supply_put_input_t;

int allot_supply_put(struct allot_state *state, const allot_supply_put_input_t *input,
                     int64_t now_ms, allot_supply_view_t *out, allot_error_detail_t *detail);
/* has_qty false: the rest (qty - received). */
int allot_supply_receive(struct allot_state *state, allot_str_t id, bool has_qty, int64_t qty,
                         int64_t now_ms, allot_supply_view_t *out, allot_error_detail_t *detail);
int allot_supply_cancel(struct allot_state *state, allot_str_t id, int64_t now_ms,
                        allot_supply_view_t *out, allot_error_detail_t *detail);
int allot_supply_get(const struct allot_state *state, allot_str_t id, allot_supply_view_t *out,
                     allot_error_detail_t *detail);
/* The SKU's supplies (every state), earliest eta first, then id; up to views_max written, returns
 * how many the SKU has (0 for a SKU without supplies; INVALID_ARGUMENT never: the caller checks
 * the id). */
uint32_t allot_supply_list(const struct allot_state *state, allot_str_t sku,
                           allot_supply_view_t *views, uint32_t views_max);
/* Supplies in the state (any state). */
uint32_t allot_supply_count(const struct allot_state *state);

/* One open inbound supply of a SKU as a product page sees it. */
typedef struct allot_supply_incoming {
    int64_t eta_ms;
    int64_t qty;       /* not yet received and not held by backorders: what can still be promised */
    uint32_t location; /* location index */
    uint32_t supply;   /* supply slot (stable while the supply exists) */
} allot_supply_incoming_t;
/* The SKU's open supply with qty > 0, earliest eta first (then supply id); returns how many
 * were written (<= max). Never allocates, never changes state. */
uint32_t allot_supply_incoming(const struct allot_state *state, uint32_t sku,
                               allot_supply_incoming_t *out, uint32_t max);
/* The SKU's open supplies, free qty 0 included (backorder sourcing adds back what a replaced
 * hold had on them), earliest eta first (then supply id); returns how many were written. */
uint32_t allot_supply_open(const struct allot_state *state, uint32_t sku,
                           allot_supply_incoming_t *out, uint32_t max);
/* The id of the supply at a slot allot_supply_incoming/open returned. */
allot_str_t allot_supply_id_at(const struct allot_state *state, uint32_t supply);
/* The eta of the supply with this id, or INT64_MIN when there is none. */
int64_t allot_supply_eta_ms(const struct allot_state *state, allot_str_t id);

#endif
