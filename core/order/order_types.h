/* order_types.h - the order's vocabulary: states, shipments, payments, returns and their names,
 * the state and payment tables, the archive hook.
 *
 * Contract: part of core/order.h's contract (read that first), split out because the state's
 * layout (core/state_private.h) holds the archive hook and the order codec and apply need the
 * vocabulary without the order writers. The functions declared here are pure (order_table.c).
 * libc only.
 */
#ifndef ALLOT_CORE_ORDER_TYPES_H
#define ALLOT_CORE_ORDER_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "core/event/event_types.h"
#include "core/limits.h"

/* The bounds of one order, of order.list pages, of eviction and the archive age:
 * ALLOT_ORDER*_ in core/limits.h. */

typedef enum allot_order_state {
    ALLOT_ORDER_CREATED = 0,
    ALLOT_ORDER_ON_HOLD,
    ALLOT_ORDER_RELEASED,
    ALLOT_ORDER_PARTIALLY_SHIPPED,
    ALLOT_ORDER_SHIPPED,
    ALLOT_ORDER_DELIVERED,
    ALLOT_ORDER_CANCELLED,
    ALLOT_ORDER_STATE_COUNT
} allot_order_state_t;

typedef enum allot_shipment_state {
    ALLOT_SHIPMENT_ALLOCATED = 0,
    ALLOT_SHIPMENT_RELEASED,
    ALLOT_SHIPMENT_SHIPPED,
    ALLOT_SHIPMENT_DELIVERED,
    ALLOT_SHIPMENT_REJECTED,  /* its location refused it; its lines moved to new shipments */
    ALLOT_SHIPMENT_CANCELLED, /* the order was cancelled */
    ALLOT_SHIPMENT_STATE_COUNT
} allot_shipment_state_t;

typedef enum allot_payment {
    ALLOT_PAYMENT_NONE = 0,
    ALLOT_PAYMENT_AUTHORIZED,
    ALLOT_PAYMENT_CAPTURED,
    ALLOT_PAYMENT_FAILED,
    ALLOT_PAYMENT_COUNT
} allot_payment_t;

/* What happened to an order: the columns of the state table and the history's "event". */
typedef enum allot_order_event {
    ALLOT_ORDER_EVENT_CREATE = 0,
    ALLOT_ORDER_EVENT_PAY,
    ALLOT_ORDER_EVENT_HOLD,
    ALLOT_ORDER_EVENT_UNHOLD,
    ALLOT_ORDER_EVENT_MODIFY,
    ALLOT_ORDER_EVENT_RELEASE,
    ALLOT_ORDER_EVENT_CANCEL,
    ALLOT_ORDER_EVENT_REJECT,
    ALLOT_ORDER_EVENT_SHIP,
    ALLOT_ORDER_EVENT_DELIVER,
    ALLOT_ORDER_EVENT_RETURN_CREATE,
    ALLOT_ORDER_EVENT_RETURN_RECEIVE,
    ALLOT_ORDER_EVENT_RECEIVE, /* supply.receive: backordered units arrived (a new shipment) */
    ALLOT_ORDER_EVENT_COUNT
} allot_order_event_t;

typedef enum allot_return_state {
    ALLOT_RETURN_REQUESTED = 0,
    ALLOT_RETURN_RECEIVED,
    ALLOT_RETURN_STATE_COUNT
} allot_return_state_t;

typedef enum allot_disposition {
    ALLOT_DISPOSITION_NONE = 0, /* not received yet */
    ALLOT_DISPOSITION_RESTOCK,
    ALLOT_DISPOSITION_DAMAGED,
    ALLOT_DISPOSITION_COUNT
} allot_disposition_t;

/* order.modify field mask (history arg, ORDER_MODIFY arg). */
#define ALLOT_ORDER_MODIFY_ADDRESS      1u
#define ALLOT_ORDER_MODIFY_INSTRUCTIONS 2u
#define ALLOT_ORDER_MODIFY_METHOD       4u

/* NULL-terminated wire names indexed by the enums above. */
extern const char *const allot_order_state_names[];
extern const char *const allot_shipment_state_names[];
extern const char *const allot_payment_names[];
extern const char *const allot_order_event_names[]; /* "order.create", "shipment.ship", ... */
extern const char *const allot_return_state_names[];
extern const char *const allot_disposition_names[]; /* "none", "restock", "damaged" */

/* The state table (data): next state of an order in `state` on `event`, or one of these. */
#define ALLOT_ORDER_NEXT_FORBIDDEN 0xFFu /* INVALID_TRANSITION */
#define ALLOT_ORDER_NEXT_SAME      0xFEu /* allowed; the state does not change */
#define ALLOT_ORDER_NEXT_DERIVED   0xFDu /* allowed; the state follows from the shipments */
uint8_t allot_order_next_state(uint8_t state, uint8_t event);
/* Payment table: may `from` become `to`? (equal: the no-op repeat, true) */
bool allot_payment_transition_allowed(uint8_t from, uint8_t to);
/* Order state implied by its shipments once released (released .. delivered); while units are
 * backordered it is never shipped or delivered (partially_shipped once anything shipped). */
uint8_t allot_order_state_from_shipments(const allot_event_order_t *order);

/* A read-only order: what net/ packs and the archive decodes to. */
typedef allot_event_order_t allot_order_view_t;

/* Callbacks of the archive hook; see the contract above. */
typedef int (*allot_order_archive_each_cb)(void *each_ctx, const uint8_t *payload, size_t len);
typedef int (*allot_order_archive_get_cb)(void *ctx, allot_str_t id, const uint8_t **payload,
                                          size_t *len);
typedef int (*allot_order_archive_list_cb)(void *ctx, allot_str_t customer,
                                           int64_t before_created_ms, allot_str_t before_id,
                                           uint32_t max, allot_order_archive_each_cb each_cb,
                                           void *each_ctx);
typedef struct allot_order_archive {
    allot_order_archive_get_cb get_cb;
    allot_order_archive_list_cb list_cb;
    void *ctx;
} allot_order_archive_t;

#endif
