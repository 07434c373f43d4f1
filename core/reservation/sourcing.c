/* sourcing.c - choose locations per line: fewest_splits, priority, nearest, highest_stock. */
#include "core/sourcing.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory/inventory_private.h"
#include "core/reservation.h"
#include "core/state_private.h"
#include "core/supply.h"

const char *const allot_policy_names[] = {"fewest_splits", "priority", "nearest", "highest_stock",
                                          NULL};

/* A location that may supply lines of the request being planned (state->candidates). */
typedef struct allot_candidate {
    const allot_location_t *location;
    uint32_t location_index;
    int64_t available;
    double distance_km;
    bool chosen;
} allot_candidate_t;

typedef struct sourcing {
    allot_state_t *state;
    const allot_sourcing_request_t *request;
    allot_plan_t *plan;
    int64_t day;
    uint32_t skus[ALLOT_LINES_MAX];      /* ALLOT_SKU_NONE for unknown SKUs */
    int64_t need_total[ALLOT_LINES_MAX]; /* qty of this line plus earlier lines of its SKU */
} sourcing_t;

/* Units of (sku, location) held by the hold being replaced. */
static int64_t credit_qty(const allot_reservation_t *credit, uint32_t sku, uint32_t location)
{
    int64_t qty = 0;
    if (credit == NULL || credit->status != ALLOT_RESERVATION_ACTIVE)
        return 0;
    for (uint32_t i = 0; i < credit->line_count; i++) {
        const allot_reservation_line_t *line = &allot_reservation_lines(credit)[i];
        if (line->sku != sku)
            continue;
        for (uint32_t k = 0; k < line->allocation_count; k++) {
            const allot_reservation_allocation_t *a =
                &allot_reservation_allocations(credit)[line->allocation_first + k];
            if (a->location == location)
                qty += a->qty;
        }
    }
    return qty;
}

static bool credit_counts_at(const allot_reservation_t *credit, uint32_t location, int64_t day)
{
    if (credit == NULL || credit->status != ALLOT_RESERVATION_ACTIVE ||
        allot_day_from_ms(credit->created_ms) != day)
        return false;
    for (uint32_t k = 0; k < credit->allocation_count; k++)
        if (allot_reservation_allocations(credit)[k].location == location)
            return true;
    return false;
}

static bool sourcing_location_usable(const sourcing_t *s, uint32_t index, double *distance_km)
{
    const allot_avail_query_t *query = &s->request->query;
    const allot_location_t *l = &s->state->locations[index];
    if (query->location != ALLOT_LOCATION_NONE && index != query->location)
        return false;
    if (!allot_avail_location_eligible(query, l, distance_km))
        return false;
    if (l->daily_capacity == 0 || l->capacity_day != s->day)
        return true;
    int64_t count = l->capacity_count;
    if (credit_counts_at(s->request->credit, index, s->day))
        count--;
    return count < l->daily_capacity;
}

/* Available units of a line's SKU at a location before this plan takes any. */
static int64_t sourcing_available(const sourcing_t *s, uint32_t sku, uint32_t location)
{
    if (sku == ALLOT_SKU_NONE)
        return 0;
    const allot_position_t *p = allot_sku_position_find(&s->state->skus[sku], location);
    if (p == NULL)
        return 0;
    int64_t raw = p->on_hand - p->reserved - p->allocated - p->safety_stock +
                  credit_qty(s->request->credit, sku, location);
    return raw > 0 ? raw : 0;
}

/* Units of line i's SKU at location already taken by earlier lines of this plan. */
static int64_t sourcing_taken(const sourcing_t *s, uint32_t line, uint32_t location)
{
    int64_t taken = 0;
    for (uint32_t j = 0; j < line; j++) {
        if (s->skus[j] != s->skus[line])
            continue;
        const allot_plan_line_t *pl = &s->plan->lines[j];
        for (uint32_t k = 0; k < pl->allocation_count; k++) {
            const allot_plan_allocation_t *a = &s->plan->allocations[pl->allocation_first + k];
            if (a->location == location)
                taken += a->qty;
        }
    }
    return taken;
}

static int location_rank_compare(const allot_location_t *a, double a_km, const allot_location_t *b,
                                 double b_km, bool distance_first)
{
    if (distance_first && a_km != b_km)
        return a_km < b_km ? -1 : 1;
    if (a->priority != b->priority)
        return a->priority < b->priority ? -1 : 1;
    if (!distance_first && a_km != b_km)
        return a_km < b_km ? -1 : 1;
    return state_id_compare(a->id, a->id_len, b->id, b->id_len);
}

static int candidate_compare_priority(const void *x, const void *y)
{
    const allot_candidate_t *a = x, *b = y;
    return location_rank_compare(a->location, a->distance_km, b->location, b->distance_km, false);
}

static int candidate_compare_fewest(const void *x, const void *y)
{
    const allot_candidate_t *a = x, *b = y;
    if (a->chosen != b->chosen)
        return a->chosen ? -1 : 1;
    return candidate_compare_priority(x, y);
}

static int candidate_compare_nearest(const void *x, const void *y)
{
    const allot_candidate_t *a = x, *b = y;
    return location_rank_compare(a->location, a->distance_km, b->location, b->distance_km, true);
}

static int candidate_compare_stock(const void *x, const void *y)
{
    const allot_candidate_t *a = x, *b = y;
    if (a->available != b->available)
        return a->available > b->available ? -1 : 1;
    return state_id_compare(a->location->id, a->location->id_len, b->location->id,
                            b->location->id_len);
}

static int plan_allocation_add(sourcing_t *s, uint32_t location, int64_t qty)
{
    allot_state_t *state = s->state;
    allot_plan_t *plan = s->plan;
    if (plan->allocation_count == state->plan_allocation_capacity) {
        uint32_t capacity =
            state->plan_allocation_capacity ? state->plan_allocation_capacity * 2 : 256;
        void *p = realloc(state->plan_allocations, capacity * sizeof(allot_plan_allocation_t));
        if (p == NULL)
            return ALLOT_ENOMEM;
        state->plan_allocations = p;
        state->plan_allocation_capacity = capacity;
    }
    plan->allocations = state->plan_allocations;
    plan->allocations[plan->allocation_count++] = (allot_plan_allocation_t){location, 0, qty};
    if (location != ALLOT_LOCATION_SUPPLY)
        state->location_stamp[location] = state->stamp_generation;
    return 0;
}

/* fewest_splits: the best location that can supply every line in full, or NONE. */
static uint32_t sourcing_single_location(const sourcing_t *s)
{
    uint32_t best = ALLOT_LOCATION_NONE;
    double best_km = 0;
    if (s->skus[0] == ALLOT_SKU_NONE)
        return best;
    const allot_sku_t *first = &s->state->skus[s->skus[0]];
    for (uint32_t p = 0; p < first->position_count; p++) {
        uint32_t l = first->positions[p].location;
        double km;
        if (!sourcing_location_usable(s, l, &km))
            continue;
        bool supplies_all = true;
        for (uint32_t i = 0; i < s->request->line_count && supplies_all; i++)
            supplies_all = sourcing_available(s, s->skus[i], l) >= s->need_total[i];
        if (!supplies_all)
            continue;
        const allot_location_t *candidate = &s->state->locations[l];
        if (best == ALLOT_LOCATION_NONE ||
            location_rank_compare(candidate, km, &s->state->locations[best], best_km, false) < 0) {
            best = l;
            best_km = km;
        }
    }
    return best;
}

static int sourcing_candidates_collect(sourcing_t *s, uint32_t line, uint32_t *count)
{
    allot_state_t *state = s->state;
    *count = 0;
    if (s->skus[line] == ALLOT_SKU_NONE)
        return 0;
    const allot_sku_t *sku = &state->skus[s->skus[line]];
    if (sku->position_count > state->candidate_capacity) {
        void *p = realloc(state->candidates, sku->position_count * sizeof(allot_candidate_t));
        if (p == NULL)
            return ALLOT_ENOMEM;
        state->candidates = p;
        state->candidate_capacity = sku->position_count;
    }
    for (uint32_t i = 0; i < sku->position_count; i++) {
        uint32_t l = sku->positions[i].location;
        double km;
        if (!sourcing_location_usable(s, l, &km))
            continue;
        int64_t available = sourcing_available(s, s->skus[line], l) - sourcing_taken(s, line, l);
        if (available <= 0)
            continue;
        bool chosen = state->location_stamp[l] == state->stamp_generation;
        state->candidates[(*count)++] =
            (allot_candidate_t){&state->locations[l], l, available, km, chosen};
    }
    return 0;
}

static int sourcing_fill_line(sourcing_t *s, uint32_t line)
{
    static int (*const compare[ALLOT_POLICY_COUNT])(const void *, const void *) = {
        candidate_compare_fewest, candidate_compare_priority, candidate_compare_nearest,
        candidate_compare_stock};
    allot_plan_line_t *pl = &s->plan->lines[line];
    uint32_t count;
    int rc = sourcing_candidates_collect(s, line, &count);
    if (rc != 0)
        return rc;
    if (count > 1)
        qsort(s->state->candidates, count, sizeof(allot_candidate_t), compare[s->request->policy]);
    int64_t remaining = pl->qty_requested;
    for (uint32_t c = 0; c < count && remaining > 0; c++) {
        const allot_candidate_t *candidate = &s->state->candidates[c];
        int64_t take = candidate->available < remaining ? candidate->available : remaining;
        rc = plan_allocation_add(s, candidate->location_index, take);
        if (rc != 0)
            return rc;
        pl->allocation_count++;
        remaining -= take;
    }
    pl->qty_held = pl->qty_requested - remaining;
    return 0;
}

/* Units the hold being replaced holds on a supply (id), which count as free again. */
static int64_t credit_supply_qty(const allot_reservation_t *credit, allot_str_t supply)
{
    int64_t qty = 0;
    if (credit == NULL || credit->status != ALLOT_RESERVATION_ACTIVE)
        return 0;
    for (uint32_t k = 0; k < credit->allocation_count; k++) {
        const allot_reservation_allocation_t *a = &allot_reservation_allocations(credit)[k];
        if (a->location == ALLOT_LOCATION_SUPPLY &&
            allot_str_equal(allot_reservation_allocation_supply(credit, a), supply))
            qty += a->qty;
    }
    return qty;
}

/* Units of a supply (slot) earlier allocations of this plan took. */
static int64_t supply_taken(const sourcing_t *s, uint32_t supply)
{
    int64_t taken = 0;
    for (uint32_t k = 0; k < s->plan->allocation_count; k++) {
        const allot_plan_allocation_t *a = &s->plan->allocations[k];
        if (a->location == ALLOT_LOCATION_SUPPLY && a->supply == supply)
            taken += a->qty;
    }
    return taken;
}

/* A backorder line: what locations could not supply, from the SKU's open supply, earliest
 * first. */
static int sourcing_fill_supply(sourcing_t *s, uint32_t line)
{
    static allot_supply_incoming_t open[ALLOT_SUPPLIES_PER_SKU_MAX];
    allot_plan_line_t *pl = &s->plan->lines[line];
    if (s->skus[line] == ALLOT_SKU_NONE)
        return 0;
    uint32_t count = allot_supply_open(s->state, s->skus[line], open, ALLOT_SUPPLIES_PER_SKU_MAX);
    for (uint32_t i = 0; i < count && pl->qty_held < pl->qty_requested; i++) {
        allot_str_t id = allot_supply_id_at(s->state, open[i].supply);
        int64_t free_qty = open[i].qty + credit_supply_qty(s->request->credit, id) -
                           supply_taken(s, open[i].supply);
        int64_t need = pl->qty_requested - pl->qty_held;
        int64_t take = free_qty < need ? free_qty : need;
        if (take <= 0)
            continue;
        int rc = plan_allocation_add(s, ALLOT_LOCATION_SUPPLY, take);
        if (rc != 0)
            return rc;
        s->plan->allocations[s->plan->allocation_count - 1].supply = open[i].supply;
        pl->allocation_count++;
        pl->qty_held += take;
    }
    return 0;
}

static void sourcing_setup(sourcing_t *s, allot_state_t *state,
                           const allot_sourcing_request_t *request, allot_plan_t *plan)
{
    s->state = state;
    s->request = request;
    s->plan = plan;
    s->day = allot_day_from_ms(request->now_ms);
    plan->line_count = request->line_count;
    plan->allocation_count = 0;
    plan->allocations = state->plan_allocations;
    for (uint32_t i = 0; i < request->line_count; i++) {
        s->skus[i] = inventory_sku_resolve(state, request->lines[i].sku);
        s->need_total[i] = request->lines[i].qty;
        for (uint32_t j = 0; j < i; j++)
            if (s->skus[j] == s->skus[i] && s->skus[i] != ALLOT_SKU_NONE)
                s->need_total[i] += request->lines[j].qty;
        plan->lines[i] = (allot_plan_line_t){s->skus[i], 0, 0, request->lines[i].qty, 0};
    }
    if (++state->stamp_generation == 0) {
        if (state->location_stamp != NULL)
            memset(state->location_stamp, 0, state->location_capacity * sizeof(uint32_t));
        state->stamp_generation = 1;
    }
}

static int sourcing_shortfalls(const sourcing_t *s, allot_error_detail_t *detail)
{
    const allot_sourcing_request_t *request = s->request;
    int64_t held_total = 0;
    detail->shortfall_count = 0;
    for (uint32_t i = 0; i < request->line_count; i++) {
        const allot_plan_line_t *pl = &s->plan->lines[i];
        held_total += pl->qty_held;
        if (pl->qty_held < pl->qty_requested)
            detail->shortfalls[detail->shortfall_count++] =
                (allot_shortfall_t){request->lines[i].sku, pl->qty_requested, pl->qty_held};
    }
    if (detail->shortfall_count == 0 || (request->partial && held_total > 0))
        return 0;
    return allot_error_set(detail, ALLOT_EINSUFFICIENT_STOCK, NULL,
                           "%u line(s) cannot be held in full", detail->shortfall_count);
}

int allot_sourcing_plan(allot_state_t *state, const allot_sourcing_request_t *request,
                        allot_plan_t *plan, allot_error_detail_t *detail)
{
    assert(request->line_count >= 1 && request->line_count <= ALLOT_LINES_MAX);
    assert((unsigned)request->policy < ALLOT_POLICY_COUNT);
    sourcing_t s;
    sourcing_setup(&s, state, request, plan);
    uint32_t single = ALLOT_LOCATION_NONE;
    if (request->policy == ALLOT_POLICY_FEWEST_SPLITS)
        single = sourcing_single_location(&s);
    for (uint32_t i = 0; i < request->line_count; i++) {
        allot_plan_line_t *pl = &plan->lines[i];
        pl->allocation_first = plan->allocation_count;
        int rc;
        if (single != ALLOT_LOCATION_NONE) {
            rc = plan_allocation_add(&s, single, pl->qty_requested);
            pl->allocation_count = 1;
            pl->qty_held = pl->qty_requested;
        } else {
            rc = sourcing_fill_line(&s, i);
        }
        if (rc == 0 && request->backorder != NULL && request->backorder[i])
            rc = sourcing_fill_supply(&s, i);
        if (rc != 0)
            return allot_error_set(detail, rc, NULL, "out of memory");
    }
    return sourcing_shortfalls(&s, detail);
}

int allot_lines_check(const allot_line_input_t *lines, uint32_t count, allot_error_detail_t *detail)
{
    if (count > ALLOT_LINES_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, "lines", "at most %u lines",
                               (unsigned)ALLOT_LINES_MAX);
    for (uint32_t i = 0; i < count; i++) {
        if (!allot_id_valid(lines[i].sku))
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "sku",
                                   "lines[%u].sku must be 1..128 bytes of UTF-8", i);
        if (lines[i].qty < 1 || lines[i].qty > ALLOT_QUANTITY_MAX)
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "qty",
                                   "lines[%u].qty must be 1..%lld", i,
                                   (long long)ALLOT_QUANTITY_MAX);
    }
    return 0;
}
