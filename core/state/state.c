/* state.c - allot_state_t life cycle, counters, and the dirty set for checkpoints. */
#include "core/state.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory/inventory_private.h"
#include "core/order/order_private.h"
#include "core/reservation/reservation_private.h"
#include "core/state_private.h"

allot_state_t *allot_state_create(const allot_state_config_t *config)
{
    allot_state_t *state = calloc(1, sizeof(*state));
    if (state == NULL)
        return NULL;
    if (config != NULL)
        state->config = *config;
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
    reservation_init(state);
    adjust_key_init(state);
    order_init(state);
    return state;
}

void allot_state_destroy(allot_state_t *state)
{
    if (state == NULL)
        return;
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
    allot_u32_vec_free(&state->dirty_locations);
    allot_u32_vec_free(&state->dirty_skus);
    allot_u32_vec_free(&state->dirty_reservations);
    allot_u32_vec_free(&state->dirty_adjust_keys);
    for (uint32_t kind = 0; kind <= STATE_KEY_ORDER; kind++)
        allot_u32_vec_free(&state->checkpoint.pending[kind]);
    allot_bytes_free(&state->deleted);
    allot_bytes_free(&state->event_bytes);
    allot_bytes_free(&state->snapshot_bytes);
    allot_event_scratch_free(&state->event_scratch);
    free(state->snapshot_positions);
    free(state->build_allocations);
    free(state->pending_block);
    free(state->pending_positions);
    free(state->pending_key);
    free(state->pending_key_reservation);
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

bool state_idempotency_aged(const allot_state_t *state, int64_t at_ms, int64_t key_ms)
{
    int64_t age_ms; /* record times are bounded (ALLOT_TIME_MS_MAX); this holds for any two */
    if (__builtin_sub_overflow(at_ms, key_ms, &age_ms))
        return at_ms > key_ms;
    return age_ms > state->config.idempotency_age_ms;
}

void state_idempotency_count_evicted(allot_state_t *state, int64_t at_ms, int64_t key_ms)
{
    if (!state_idempotency_aged(state, at_ms, key_ms))
        state->idempotency_evicted_early++;
}

int state_id_compare(const char *a, uint32_t a_len, const char *b, uint32_t b_len)
{
    uint32_t n = a_len < b_len ? a_len : b_len;
    int c = memcmp(a, b, n);
    if (c != 0)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

/* ---- dirty set ------------------------------------------------------------------------------ */

#define DELETED_RECORD_BYTES_MAX (2u + ALLOT_ID_BYTES_MAX)

int state_dirty_reserve(allot_state_t *state, uint32_t locations, uint32_t skus,
                        uint32_t reservations, uint32_t adjust_keys)
{
    int rc = allot_u32_vec_reserve(&state->dirty_locations, locations);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty_skus, skus);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty_reservations, reservations);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty_adjust_keys, adjust_keys);
    /* evictions an insert may cause (the count bound and the age clean-up together) */
    uint32_t deletions = (reservations + adjust_keys) * ALLOT_EVICTIONS_PER_INSERT_MAX;
    if (rc == 0)
        rc = allot_bytes_reserve(&state->deleted, deletions * DELETED_RECORD_BYTES_MAX);
    return rc;
}

/* Set the dirty mark (and list the object) unless it is set already. */
static void dirty_mark(allot_state_t *state, uint8_t *mark, allot_u32_vec_t *list, uint32_t index)
{
    if (*mark & state->dirty_bit)
        return;
    *mark |= state->dirty_bit;
    allot_u32_vec_push(list, index);
}

void state_dirty_location(allot_state_t *state, uint32_t index)
{
    state_touch(state, STATE_KEY_LOCATION, index);
    dirty_mark(state, &state->locations[index].dirty, &state->dirty_locations, index);
}

void state_dirty_sku(allot_state_t *state, uint32_t index)
{
    state_touch(state, STATE_KEY_SKU, index);
    dirty_mark(state, &state->skus[index].dirty, &state->dirty_skus, index);
}

void state_dirty_reservation(allot_state_t *state, uint32_t index)
{
    state_touch(state, STATE_KEY_RESERVATION, index);
    dirty_mark(state, &state->reservations[index].dirty, &state->dirty_reservations, index);
}

void state_dirty_adjust_key(allot_state_t *state, uint32_t index)
{
    state_touch(state, STATE_KEY_ADJUST_KEY, index);
    dirty_mark(state, &state->adjust_keys[index].dirty, &state->dirty_adjust_keys, index);
}

void state_deleted_record(allot_state_t *state, uint8_t kind, const char *id, uint32_t len)
{
    assert(len >= 1 && len <= ALLOT_ID_BYTES_MAX);
    allot_bytes_put_u8(&state->deleted, kind);
    allot_bytes_put_u8(&state->deleted, (uint8_t)len);
    allot_bytes_put(&state->deleted, id, len);
}

size_t allot_state_dirty_count(const allot_state_t *state)
{
    size_t deleted = 0;
    for (size_t off = 0; off < state->deleted.len; off += 2u + state->deleted.data[off + 1])
        deleted++;
    return deleted + state->dirty_locations.count + state->dirty_skus.count +
           state->dirty_reservations.count + state->dirty_adjust_keys.count +
           state->dirty_orders.count + order_archived_count(state);
}

void allot_state_dirty_clear(allot_state_t *state)
{
    uint8_t keep = (uint8_t)~state->dirty_bit;
    for (uint32_t i = 0; i < state->dirty_locations.count; i++)
        state->locations[state->dirty_locations.items[i]].dirty &= keep;
    for (uint32_t i = 0; i < state->dirty_skus.count; i++)
        state->skus[state->dirty_skus.items[i]].dirty &= keep;
    for (uint32_t i = 0; i < state->dirty_reservations.count; i++)
        state->reservations[state->dirty_reservations.items[i]].dirty &= keep;
    for (uint32_t i = 0; i < state->dirty_adjust_keys.count; i++)
        state->adjust_keys[state->dirty_adjust_keys.items[i]].dirty &= keep;
    state->dirty_locations.count = 0;
    state->dirty_skus.count = 0;
    state->dirty_reservations.count = 0;
    state->dirty_adjust_keys.count = 0;
    state->deleted.len = 0;
    order_dirty_clear(state);
}
