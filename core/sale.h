/* sale.h - SKU settings (sku.put / sku.get) and flash-sale fairness: per-customer limits and the
 * waiting room (queue.join / queue.status, admission, tokens).
 *
 * Contract: the state owns one settings record per SKU that was given settings (at most
 * ALLOT_SKU_SETTINGS_MAX; never deleted: sku.put with zeros and no queue clears it), and for the
 * SKUs with a queue (at most ALLOT_QUEUED_SKUS_MAX) their tickets in join order (at most
 * ALLOT_QUEUE_TICKETS_PER_SKU_MAX each, ALLOT_QUEUE_TICKETS_MAX in all). Writers validate
 * everything first, change nothing on error, and on success emit one event record and apply it.
 *
 * Limits: with max_per_customer > 0, the units one customer holds of the SKU in live
 * reservations plus non-cancelled orders in memory may not exceed it. The state counts them per
 * (SKU, customer) as holds and orders with a customer are applied (every SKU, whether limited or
 * not, so a limit set later counts what is already held; one count per pair of SKU and customer
 * with units, so at most one per line of the live holds and of the orders in memory, which
 * reservations_max and the orders' own bounds limit). reserve and order.create check the
 * count and hold in one step (core/reservation.h, core/order.h): LIMIT_EXCEEDED with detail
 * limit_sku, limit and held. Releases, expiry, cancellations and orders archived from memory
 * give the allowance back.
 *
 * Queue: a ticket is one customer's place in one SKU's queue (one per customer and SKU: joining
 * again returns it, unless it expired or was used, which puts the customer at the back with a new
 * ticket). Tickets are admitted first come, first served at rate_per_s: the server decides on
 * its own clock (allot_queue_admit_due, from housekeeping) and emits queue.admit records, which
 * every node applies alike; each admitted ticket carries a token (a secret derived from the
 * record's seed, which the caller draws at random) good for token_ttl_s; queue.expire records end
 * the tokens not used in time (allot_queue_expire_due). A reserve of a queued SKU needs a token
 * bound to its customer and that SKU, admitted and unexpired (QUEUED with detail retry_after_ms
 * otherwise); the reservation record names the ticket, and applying it uses the token.
 *
 * Tickets and tokens on the wire are strings: a ticket is 16 lowercase hex digits (its number),
 * a token 32 (the ticket's number, then its secret).
 *
 * Errors: INVALID_ARGUMENT, NOT_FOUND, TOO_LARGE (settings or queued SKUs over their bounds),
 * OVERLOADED (a queue full), QUEUED, LIMIT_EXCEEDED, NOMEM. Called by net/ handlers and by the
 * writers of core/reservation/ and core/order/; libc only.
 */
#ifndef ALLOT_CORE_SALE_H
#define ALLOT_CORE_SALE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/errors.h"

struct allot_state;

/* Ticket and token strings (without the NUL). */
#define ALLOT_TICKET_CHARS 16
#define ALLOT_TOKEN_CHARS  32

typedef enum allot_ticket_state {
    ALLOT_TICKET_WAITING = 0,
    ALLOT_TICKET_ADMITTED = 1,
    ALLOT_TICKET_USED = 2,
    ALLOT_TICKET_EXPIRED = 3,
    ALLOT_TICKET_STATE_COUNT
} allot_ticket_state_t;

/* "waiting", "admitted", "used", "expired" */
extern const char *const allot_ticket_state_names[];

/* One SKU's settings: sku.put's arguments, sku.get's reply. */
typedef struct allot_sku_settings {
    int64_t low_stock;        /* 0..ALLOT_QUANTITY_MAX; 0 = none */
    int64_t max_per_customer; /* 0..ALLOT_QUANTITY_MAX; 0 = none */
    bool has_queue;
    int64_t queue_rate_per_s;  /* 1..ALLOT_QUEUE_RATE_PER_S_MAX */
    int64_t queue_token_ttl_s; /* ALLOT_QUEUE_TOKEN_TTL_S_MIN..MAX */
} allot_sku_settings_t;

/* A queue as metrics and the CLI show it. */
typedef struct allot_queue_view {
    allot_str_t sku;
    int64_t rate_per_s;
    int64_t token_ttl_s;
    uint32_t waiting;         /* tickets not admitted yet */
    uint32_t admitted;        /* tickets holding a live token */
    uint32_t tickets;         /* every ticket the queue holds */
    uint64_t admitted_total;  /* tickets admitted since the queue was set */
    int64_t admitted_upto_ms; /* admission accounted up to here */
} allot_queue_view_t;

/* A ticket as queue.join and queue.status show it. */
typedef struct allot_ticket_view {
    uint64_t ticket;
    allot_str_t sku;
    allot_str_t customer;
    uint8_t state;     /* allot_ticket_state_t */
    uint32_t position; /* waiting: 1 = next; otherwise 0 */
    int64_t estimated_wait_ms;
    int64_t expires_at_ms; /* admitted: when its token expires */
    uint64_t secret;       /* admitted: the token's secret */
} allot_ticket_view_t;

/* ---- settings ---------------------------------------------------------------------------- */
/* The whole record (absent fields of the request are zeros / no queue). A queue that is
 * removed drops its tickets; a queue whose rate or TTL changes keeps them. */
int allot_sku_put(struct allot_state *state, allot_str_t sku, const allot_sku_settings_t *settings,
                  int64_t now_ms, allot_error_detail_t *detail);
/* The SKU's settings (zeros when it has none; NOT_FOUND only for an invalid id). */
int allot_sku_get(const struct allot_state *state, allot_str_t sku, allot_sku_settings_t *out,
                  allot_error_detail_t *detail);

/* ---- queue ------------------------------------------------------------------------------- */
int allot_queue_join(struct allot_state *state, allot_str_t sku, allot_str_t customer,
                     int64_t now_ms, allot_ticket_view_t *out, allot_error_detail_t *detail);
/* The ticket named by its string (INVALID_ARGUMENT when malformed, NOT_FOUND when unknown). A
 * token past its expiry reads as expired even before the server's queue.expire record. */
int allot_queue_status(const struct allot_state *state, allot_str_t ticket, int64_t now_ms,
                       allot_ticket_view_t *out, allot_error_detail_t *detail);
/* Admit what is due at now_ms: at most records_max queue.admit records (seed: random bits drawn
 * by the caller, one per call; the tokens' secrets derive from it). Returns the tickets admitted.
 * The caller is the only node that decides (the leader); others apply the records. */
uint32_t allot_queue_admit_due(struct allot_state *state, int64_t now_ms, uint64_t seed,
                               uint32_t records_max);
/* Expire up to max tokens whose expires_at_ms <= now_ms (one queue.expire record each). */
uint32_t allot_queue_expire_due(struct allot_state *state, int64_t now_ms, uint32_t max);
/* Queues, for metrics: fills up to views_max, returns how many queues there are. */
uint32_t allot_queue_list(const struct allot_state *state, allot_queue_view_t *views,
                          uint32_t views_max);

/* Ticket and token strings: format (out holds ALLOT_TOKEN_CHARS + 1 bytes) and parse. */
void allot_ticket_format(uint64_t ticket, char *out);
void allot_token_format(uint64_t ticket, uint64_t secret, char *out);
bool allot_ticket_parse(allot_str_t s, uint64_t *ticket);
bool allot_token_parse(allot_str_t s, uint64_t *ticket, uint64_t *secret);

/* ---- checks for reserve and order.create (core/reservation/, core/order/) ---------------- */
/* How many SKUs have settings: 0 lets a writer skip every check below. */
uint32_t allot_sku_settings_count(const struct allot_state *state);
/* The units `customer` holds of the SKU (index), 0 without a customer. */
int64_t allot_customer_held(const struct allot_state *state, uint32_t sku, allot_str_t customer);
/* LIMIT_EXCEEDED when holding `extra` more units of the SKU (index) would take the customer past
 * the SKU's max_per_customer; `given_back` are units of it the same step releases. */
int allot_customer_limit_check(const struct allot_state *state, uint32_t sku, allot_str_t customer,
                               int64_t extra, int64_t given_back, allot_error_detail_t *detail);
/* Does the SKU (index) have a queue? */
bool allot_sku_queued(const struct allot_state *state, uint32_t sku);
/* A reserve of a queued SKU: the token must be admitted, unexpired at now_ms, and bound to
 * customer and the SKU; *ticket is its number. QUEUED otherwise (detail retry_after_ms). */
int allot_queue_token_check(const struct allot_state *state, uint32_t sku, allot_str_t customer,
                            allot_str_t token, int64_t now_ms, uint64_t *ticket,
                            allot_error_detail_t *detail);

#endif
