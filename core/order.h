/* order.h - orders, shipments and returns: the order state machine (docs/orders.md).
 *
 * Contract: the state owns every live order (in memory) and, through an optional archive hook,
 * can read orders that left memory. Writers validate every argument and the transition first and
 * change nothing on error (negative ALLOT_E* with `detail` filled: field for INVALID_ARGUMENT /
 * TOO_LARGE / NOT_FOUND, state for INVALID_TRANSITION, shortfalls for INSUFFICIENT_STOCK); on
 * success they emit exactly one event record (types 64.., core/event.h) and apply it, and the
 * order's history gains one entry. Repeating the transition that produced the current state
 * (entered_by) is a no-op success with no event; see docs/orders.md for the whole table.
 * Pointers to views (allot_order_view_t) are valid until the next call into the state.
 *
 * Stock: an order holds its unshipped units as position.allocated at each shipment's location
 * (shipment states allocated/released). order.create from a reservation consumes it (its
 * reserved units become allocated where they were held; no re-sourcing; its daily-capacity count
 * is kept). From lines it is sourced now (core/sourcing.h, partial never) and counts one shipment
 * per distinct location on the UTC day of now_ms. shipment.ship lowers on_hand (not below 0) and
 * allocated; cancel and reject give the allocation back; return.receive restock adds to on_hand.
 *
 * Backorders: a reservation's backorder allocations (core/reservation.h) stay on the order's
 * lines as backorders (allot_event_order_t.backorders: line, supply id, qty), still counted in
 * each supply's held (core/supply.h), in no position and no shipment; a line's qty counts them
 * (so does the customer's limit). Release leaves them waiting; the state derived from the
 * shipments is never shipped or delivered while any wait (allot_order_state_from_shipments);
 * cancel gives them back to their supplies in its record.
 *
 * Memory: an order that is delivered or cancelled and has no requested return is "ended"
 * (ended_ms). allot_orders_evict_aged() emits ORDER_EVICT for ended orders older than
 * config.orders_archive_age_ms that are not dirty, so replay agrees; the next checkpoint
 * (core/state.h) then hands an ORDER_SNAPSHOT with the archived flag for each
 * evicted order (key 0x05 + id), which the checkpoint store keeps. Applying an archived snapshot
 * keeps nothing in memory (loading a checkpoint stays bounded by the live orders).
 * THE CALLER (net/server.c) MUST call allot_orders_evict_aged only from the checkpoint done
 * callback after a successful commit, while no snapshot taken since is uncommitted: then every
 * order that is not dirty is in the store in its current form, so nothing evicted is lost.
 *
 * Archive hook (implemented by persist/ over LMDB; core stays libc-only). Records are the
 * checkpoint records core hands out: key = 0x05 + order id bytes, value = 1 type byte
 * (ALLOT_EVENT_ORDER_SNAPSHOT = 80) + the payload (core/order/order_codec.c). Payload byte 0 is
 * the format version, byte 1 the snapshot flags: bit 0 = archived (value byte 2 counting the
 * type byte), so a loader may skip archived records without decoding, or apply them (a no-op).
 *   get_cb(ctx, id, &payload, &len): the stored ORDER_SNAPSHOT payload (no type byte) of order
 *     `id`, archived or not; 0, ALLOT_ENOT_FOUND, or ALLOT_EIO/ALLOT_ECORRUPT. The bytes must stay
 *     valid until the next call into the archive (core copies them at once).
 *   list_cb(ctx, customer, before_created_ms, before_id, max, each_cb, each_ctx): the stored
 *     orders (archived or not) of `customer`, newest first by (created_ms desc, id desc, ids
 *     compared bytewise, shorter first on a tie of prefixes), strictly after the cursor
 *     (before_id.len == 0: from the newest), calling each_cb(each_ctx, payload, len) for each, at
 *     most max times; stop early when each_cb returns nonzero. Returns 0 or a negative ALLOT_E*.
 *     Needs an index by customer (e.g. a second LMDB database keyed customer + inverted
 *     created_ms + id, maintained in the same transaction as the 0x05 records; LMDB keys are
 *     limited to 511 bytes, so not in the 256-byte checkpoint keys).
 * A full checkpoint (allot_state_snapshot_each) hands only live objects: the store MUST keep
 * archived 0x05 records when it drops "every stored object" (drop kinds 0x01..0x04 and 0x05
 * records whose payload is not archived), or evicted orders are lost.
 * Without an archive, evicted orders read as NOT_FOUND: leave orders_archive_age_ms at its
 * default and do not call allot_orders_evict_aged until persist/ provides the hook.
 *
 * Errors: INVALID_ARGUMENT, TOO_LARGE, NOT_FOUND, INSUFFICIENT_STOCK, CONFLICT,
 * INVALID_TRANSITION, EXPIRED (reservation), OVERLOADED, NOMEM; IO/CORRUPT from the archive.
 * Called by net/ handlers; libc only.
 */
#ifndef ALLOT_CORE_ORDER_H
#define ALLOT_CORE_ORDER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/errors.h"
#include "core/event.h"
#include "core/inventory.h"
#include "core/order/order_types.h"
#include "core/sourcing.h"

struct allot_state;

/* archive may be NULL (no archive). Copied. */
void allot_state_set_archive(struct allot_state *state, const allot_order_archive_t *archive);

typedef struct allot_order_create_request {
    allot_str_t id;
    allot_str_t customer;    /* len 0 = none */
    allot_str_t reservation; /* exactly one of reservation / lines */
    const allot_line_input_t *lines;
    uint32_t line_count;
    allot_method_t method;
    bool has_ship_to;
    double lat;
    double lon;
    allot_str_t location; /* len 0 = none; required for pickup when from lines */
    allot_policy_t policy;
    allot_str_t address;      /* raw MessagePack map bytes; len 0 = none */
    allot_str_t instructions; /* len 0 = none */
} allot_order_create_request_t;

typedef struct allot_order_modify_request {
    allot_str_t id;
    bool has_address;
    allot_str_t address;
    bool has_instructions;
    allot_str_t instructions;
    bool has_method;
    allot_method_t method;
} allot_order_modify_request_t;

typedef struct allot_return_request {
    allot_str_t id;
    allot_str_t order;
    const allot_line_input_t *lines;
    uint32_t line_count;
    allot_str_t reason; /* len 0 = none */
} allot_return_request_t;

/* Writers: *out is the order after the change (for returns: the order holding the return, and
 * *return_index its position in out->returns). */
int allot_order_create(struct allot_state *state, const allot_order_create_request_t *request,
                       int64_t now_ms, const allot_order_view_t **out,
                       allot_error_detail_t *detail);
int allot_order_pay(struct allot_state *state, allot_str_t id, allot_payment_t payment,
                    int64_t now_ms, const allot_order_view_t **out, allot_error_detail_t *detail);
int allot_order_hold(struct allot_state *state, allot_str_t id, allot_str_t reason, int64_t now_ms,
                     const allot_order_view_t **out, allot_error_detail_t *detail);
int allot_order_unhold(struct allot_state *state, allot_str_t id, int64_t now_ms,
                       const allot_order_view_t **out, allot_error_detail_t *detail);
int allot_order_modify(struct allot_state *state, const allot_order_modify_request_t *request,
                       int64_t now_ms, const allot_order_view_t **out,
                       allot_error_detail_t *detail);
int allot_order_release(struct allot_state *state, allot_str_t id, int64_t now_ms,
                        const allot_order_view_t **out, allot_error_detail_t *detail);
int allot_order_cancel(struct allot_state *state, allot_str_t id, allot_str_t reason,
                       int64_t now_ms, const allot_order_view_t **out,
                       allot_error_detail_t *detail);
/* Shipments are named "S1", "S2", ... in creation order. */
int allot_shipment_reject(struct allot_state *state, allot_str_t order, allot_str_t shipment,
                          allot_str_t reason, int64_t now_ms, const allot_order_view_t **out,
                          allot_error_detail_t *detail);
int allot_shipment_ship(struct allot_state *state, allot_str_t order, allot_str_t shipment,
                        allot_str_t tracking, int64_t now_ms, const allot_order_view_t **out,
                        allot_error_detail_t *detail);
int allot_shipment_deliver(struct allot_state *state, allot_str_t order, allot_str_t shipment,
                           int64_t now_ms, const allot_order_view_t **out,
                           allot_error_detail_t *detail);
int allot_return_create(struct allot_state *state, const allot_return_request_t *request,
                        int64_t now_ms, const allot_order_view_t **out, uint32_t *return_index,
                        allot_error_detail_t *detail);
int allot_return_receive(struct allot_state *state, allot_str_t id, allot_str_t location,
                         allot_disposition_t disposition, int64_t now_ms,
                         const allot_order_view_t **out, uint32_t *return_index,
                         allot_error_detail_t *detail);

/* Readers. get: memory, then the archive. */
int allot_order_get(struct allot_state *state, allot_str_t id, const allot_order_view_t **out,
                    allot_error_detail_t *detail);

typedef struct allot_order_page {
    uint32_t count;
    bool more; /* another page follows; its cursor is the last order's id */
    uint32_t refs[ALLOT_ORDER_LIST_LIMIT_MAX]; /* internal: live slot or archived entry */
} allot_order_page_t;

/* Orders of a customer newest first (created_ms desc, then id desc), strictly after the order
 * `after` (len 0: from the newest; unknown or another customer's -> INVALID_ARGUMENT). limit
 * 1..ALLOT_ORDER_LIST_LIMIT_MAX. Live and archived orders are merged. */
int allot_order_list(struct allot_state *state, allot_str_t customer, uint32_t limit,
                     allot_str_t after, allot_order_page_t *page, allot_error_detail_t *detail);
/* Every order held in memory (not archived: all that have not ended, and ended ones until they
 * are archived), newest first as above, strictly after the order `after` (len 0: from the newest;
 * unknown -> INVALID_ARGUMENT), only those in state `order_state` and with payment `payment`
 * (-1: any). O(orders in memory) per page, no allocation. limit 1..ALLOT_ORDER_LIST_LIMIT_MAX. */
int allot_order_list_all(struct allot_state *state, int order_state, int payment, uint32_t limit,
                         allot_str_t after, allot_order_page_t *page, allot_error_detail_t *detail);
/* The i-th order of the last page (valid until the next call into the state). */
const allot_order_view_t *allot_order_page_at(struct allot_state *state,
                                              const allot_order_page_t *page, uint32_t i);

/* Emit ORDER_EVICT for up to max ended orders whose ended_ms + orders_archive_age_ms <= now_ms
 * and that are not dirty, oldest first; returns how many. See the contract above for when the
 * server may call it. */
uint32_t allot_orders_evict_aged(struct allot_state *state, int64_t now_ms, uint32_t max);

/* Shipment id "S<n>" of index i into buf (>= 8 bytes); returns its length. */
uint32_t allot_shipment_id_format(uint32_t index, char *buf);

#endif
