/* state.c - allot_state_t life cycle and counters; wires each checkpoint kind to its room. */
#include "core/state.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory/inventory_private.h"
#include "core/order/order_private.h"
#include "core/promise/promise_private.h"
#include "core/reservation/reservation_private.h"
#include "core/sale/sale_private.h"
#include "core/state_private.h"
#include "core/stream/stream_private.h"
#include "core/supply/supply_private.h"

_Static_assert(sizeof(state_config_t) == sizeof(allot_state_config_t),
               "allot_state_create copies every setting into state_config_t");

/* Each kind's functions (ALLOT_SNAPSHOT_KINDS of core/events.def; the rooms define them). */
#define STATE_KIND_ROW(kind, NAME, TYPE, slots, marks, take)                                       \
    [kind] = {ALLOT_EVENT_##TYPE, slots, marks, take},
static const state_kind_t state_kinds[STATE_KEY_LIMIT] = {ALLOT_SNAPSHOT_KINDS(STATE_KIND_ROW)};

allot_state_t *allot_state_create(const allot_state_config_t *config)
{
    allot_state_t *state = calloc(1, sizeof(*state));
    if (state == NULL)
        return NULL;
    if (config != NULL)
        state->config =
            (state_config_t){config->reservations_max, config->idempotency_age_ms,
                             config->idempotency_entries_max, config->orders_archive_age_ms};
    if (state->config.reservations_max == 0)
        state->config.reservations_max = ALLOT_RESERVATIONS_MAX_DEFAULT;
    if (state->config.idempotency_age_ms <= 0)
        state->config.idempotency_age_ms = ALLOT_IDEMPOTENCY_AGE_MS_DEFAULT;
    if (state->config.idempotency_entries_max == 0)
        state->config.idempotency_entries_max = ALLOT_IDEMPOTENCY_ENTRIES_MAX_DEFAULT;
    if (state->config.orders_archive_age_ms <= 0)
        state->config.orders_archive_age_ms = ALLOT_ORDERS_ARCHIVE_AGE_MS_DEFAULT;
    allot_hash_init(&state->location_index);
    allot_hash_init(&state->sku_index);
    allot_hash_init(&state->reservation_index);
    allot_hash_init(&state->adjust_key_index);
    allot_arena_init(&state->sku_ids);
    state->dirty_bit = STATE_MARK_GENERATION_A;
    state->kinds = state_kinds;
    reservation_init(state);
    adjust_key_init(state);
    order_init(state);
    if (stream_init(state) != 0 || sale_init(state) != 0 || transit_init(state) != 0 ||
        supply_init(state) != 0) {
        allot_state_destroy(state);
        return NULL;
    }
    return state;
}

void allot_state_destroy(allot_state_t *state)
{
    if (state == NULL)
        return;
    stream_free_all(state);
    supply_free_all(state);
    sale_free_all(state);
    transit_free_all(state);
    order_free_all(state);
    reservation_free_all(state);
    adjust_key_free_all(state);
    for (uint32_t i = 0; i < state->sku_count; i++)
        free(state->skus[i].positions);
    free(state->skus);
    allot_hash_free(&state->sku_index);
    allot_arena_free(&state->sku_ids);
    free(state->locations);
    free(state->location_stamp);
    allot_hash_free(&state->location_index);
    for (uint32_t kind = 0; kind < STATE_KEY_LIMIT; kind++) {
        allot_u32_vec_free(&state->dirty[kind]);
        allot_u32_vec_free(&state->checkpoint.pending[kind]);
    }
    allot_bytes_free(&state->deleted);
    allot_bytes_free(&state->event_bytes);
    allot_bytes_free(&state->snapshot_bytes);
    allot_event_scratch_free(&state->event_scratch);
    free(state->snapshot_positions);
    free(state->build_allocations);
    free(state->pending_block);
    free(state->pending_positions);
    free(state->pending_key);
    free(state->candidates);
    free(state->plan_allocations);
    free(state);
}

void allot_state_set_event_sink(allot_state_t *state, allot_event_sink_cb sink_cb, void *ctx)
{
    state->sink = sink_cb;
    state->sink_ctx = ctx;
}

void allot_state_counters_get(const allot_state_t *state, allot_state_counters_t *out)
{
    out->skus = state->skus_stocked;
    out->positions = state->position_count;
    out->locations = state->location_count;
    out->reservations = state->reservation_live;
    out->tombstones = state->reservation_tombstones;
    out->adjust_keys = state->adjust_key_count;
    out->orders = state->order_live;
    out->idempotency_evicted_early = state->idempotency_evicted_early;
}
