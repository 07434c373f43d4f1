/* sourcing.h - choose the locations that supply each line of a request (docs/sourcing.md).
 *
 * Contract: allot_sourcing_plan() is a pure decision over the current state: it changes
 * nothing. Candidates are the locations eligible for the method (as for avail.get; pickup uses
 * only `location`), skipping locations at daily_capacity on the UTC day of now_ms. Policies:
 *   fewest_splits (default): one location that can supply every line in full, best by
 *     priority, distance to ship_to, id; otherwise fill lines in request order, taking
 *     locations already chosen for this request first, then by priority, distance, id.
 *   priority: each line by priority, distance, id.
 *   nearest: each line by distance, priority, id.
 *   highest_stock: each line by (remaining) available descending, then id.
 * Without ship_to every distance is equal. `credit` (replace) is an existing hold whose units
 * count as available and whose capacity count is given back. The plan is written into the
 * state's sourcing scratch and is valid until the next call.
 * Backorder lines (request->backorder[i] true): the units no location can supply are then held
 * against the SKU's open supply, earliest eta first (then supply id), never more than a supply's
 * free qty (qty - received - held, plus what `credit` holds on it, less what earlier lines of this
 * plan took): allocations at ALLOT_LOCATION_SUPPLY with the supply's slot in `supply`. Errors:
 * INSUFFICIENT_STOCK (shortfalls in detail: every short line, with what it could get), NOMEM.
 * Internal to core/.
 */
#ifndef ALLOT_CORE_SOURCING_H
#define ALLOT_CORE_SOURCING_H

#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/inventory.h"

struct allot_state;
struct allot_reservation;

typedef enum allot_policy {
    ALLOT_POLICY_FEWEST_SPLITS = 0,
    ALLOT_POLICY_PRIORITY = 1,
    ALLOT_POLICY_NEAREST = 2,
    ALLOT_POLICY_HIGHEST_STOCK = 3,
    ALLOT_POLICY_COUNT
} allot_policy_t;

/* NULL-terminated wire names indexed by allot_policy_t. */
extern const char *const allot_policy_names[];

typedef struct allot_line_input {
    allot_str_t sku;
    int64_t qty;
} allot_line_input_t;

typedef struct allot_plan_allocation {
    uint32_t location; /* ALLOT_LOCATION_SUPPLY: a backorder hold on the supply `supply` */
    uint32_t supply;   /* supply slot (backorder holds only) */
    int64_t qty;
} allot_plan_allocation_t;

typedef struct allot_plan_line {
    uint32_t sku; /* ALLOT_HASH_NONE-like UINT32_MAX for unknown SKUs */
    uint32_t allocation_first;
    uint32_t allocation_count;
    int64_t qty_requested;
    int64_t qty_held;
} allot_plan_line_t;

typedef struct allot_plan {
    uint32_t line_count;
    allot_plan_line_t lines[ALLOT_LINES_MAX];
    uint32_t allocation_count;
    allot_plan_allocation_t *allocations; /* state-owned scratch */
} allot_plan_t;

typedef struct allot_sourcing_request {
    const allot_line_input_t *lines;
    uint32_t line_count;
    allot_avail_query_t query; /* method, ship_to, location (pickup: required) */
    allot_policy_t policy;
    bool partial;
    const struct allot_reservation *credit; /* NULL, or the hold being replaced */
    int64_t now_ms;
    const bool *backorder; /* NULL, or per line: hold what locations cannot supply from supply */
} allot_sourcing_request_t;

/* Check request lines: at most ALLOT_LINES_MAX, every sku an id, every qty 1..QUANTITY_MAX.
 * 0, or INVALID_ARGUMENT / TOO_LARGE naming the field and line. An empty list is fine here
 * (callers that need lines check that first). */
int allot_lines_check(const allot_line_input_t *lines, uint32_t count,
                      allot_error_detail_t *detail);

int allot_sourcing_plan(struct allot_state *state, const allot_sourcing_request_t *request,
                        allot_plan_t *plan, allot_error_detail_t *detail);

#endif
