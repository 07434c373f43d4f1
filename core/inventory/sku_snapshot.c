/* sku_snapshot.c - SKU snapshots applied in two halves (built on any thread, installed on the
 * state's): the checkpoint load's fast path (contract in core/event.h). */
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/inventory/inventory_private.h"

void allot_sku_builder_init(allot_sku_builder_t *builder)
{
    memset(builder, 0, sizeof(*builder));
}

void allot_sku_builder_free(allot_sku_builder_t *builder)
{
    allot_event_scratch_free(&builder->scratch);
}

int allot_sku_snapshot_build(const allot_state_t *state, allot_sku_builder_t *builder, uint8_t type,
                             const uint8_t *payload, size_t len, allot_sku_build_t *out)
{
    *out = (allot_sku_build_t){0};
    if (type != ALLOT_EVENT_SKU_SNAPSHOT)
        return ALLOT_ECORRUPT;
    allot_event_t event;
    int rc = allot_event_decode(type, payload, len, &builder->scratch, &event);
    if (rc == 0)
        rc = sku_snapshot_positions(state, builder->location_memo, &event.u.sku_snapshot,
                                    &out->positions);
    if (rc != 0)
        return rc;
    out->sku = event.u.sku_snapshot.sku;
    out->sku_hash = allot_hash_bytes(out->sku.ptr, out->sku.len);
    out->position_count = event.u.sku_snapshot.position_count;
    return 0;
}

void allot_sku_snapshot_prefetch(const allot_state_t *state, const allot_sku_build_t *build)
{
    allot_hash_prefetch(&state->sku_index, build->sku_hash);
}

void allot_sku_snapshot_discard(allot_sku_build_t *build)
{
    free(build->positions);
    build->positions = NULL;
}

int allot_sku_snapshot_install(allot_state_t *state, allot_sku_build_t *build)
{
    uint32_t sku;
    int rc = sku_snapshot_make_room(state, build->sku, build->sku_hash, &sku);
    if (rc != 0) {
        allot_sku_snapshot_discard(build);
        return rc;
    }
    free(state->pending_positions);
    state->pending_positions = build->positions;
    build->positions = NULL;
    sku_positions_install(state, sku, build->position_count);
    return 0;
}
