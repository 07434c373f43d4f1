/* event.h - event records: every change to the state, as facts that replay re-applies.
 *
 * Contract: a write in core/ decides, then emits event records; replay (persist/) hands the
 * same bytes to allot_event_apply_encoded(), which decodes them and runs the ONE apply function
 * used live. Apply never re-decides (sourcing results are inside the event). The types are the
 * rows of one table, core/events.def: number, name, payload, and the owner's encode, decode,
 * prepare and commit. The byte format is documented in core/event/codec.c (every payload starts
 * with ALLOT_EVENT_FORMAT_VERSION) and, type by type, in the owner's codec file it names.
 * Decoding bounds-checks everything: a payload that does not decode exactly (wrong version,
 * unknown type, truncated, trailing bytes, bad id, out-of-range value, unknown
 * location/reservation it refers to) -> ALLOT_ECORRUPT with nothing changed. Apply is two-phase
 * internally: a prepare step that may fail (CORRUPT/NOMEM, nothing changed) and an infallible
 * commit, so that live emission calls the event sink only for events that will be applied.
 * Snapshot types describe one whole object (checkpoints): applying them replaces the object.
 * Types 64..127 are orders and returns (core/order.h). The types, payloads, codec and names are
 * declared in core/event/event_types.h, which this header includes. libc only.
 */
#ifndef ALLOT_CORE_EVENT_H
#define ALLOT_CORE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event/event_types.h"

struct allot_state;

/* Replay: decode and apply one record. ALLOT_ECORRUPT (nothing changed) for garbage. */
int allot_event_apply_encoded(struct allot_state *state, uint8_t type, const uint8_t *payload,
                              size_t len);

/* Replay: apply one decoded record (what allot_event_apply_encoded does after decoding). */
int allot_event_apply(struct allot_state *state, const allot_event_t *event);

/* ---- SKU snapshots applied in two halves (a checkpoint load on two threads) ----------------
 * allot_sku_snapshot_build and allot_sku_snapshot_install split the apply of one SKU_SNAPSHOT
 * record so that another thread can decode records and build their positions (the bulk of a
 * checkpoint load) while the state's thread applies others:
 *  - build decodes the record and allocates its positions; of the state it reads only the
 *    locations, which must not change until the build returns (a checkpoint holds its location
 *    snapshots before its SKU snapshots), and it writes only *builder and *out. One builder per
 *    thread.
 *  - install, on the state's thread, makes the built positions the SKU's (creating the SKU).
 * Building then installing a record changes the state exactly as allot_event_apply_encoded of
 * it would. Errors: build -> ALLOT_ECORRUPT (a record that is not a valid SKU snapshot of known
 * locations) or ALLOT_ENOMEM, nothing built; install -> ALLOT_ENOMEM, nothing changed. Either
 * way (and for a build that will not be installed: allot_sku_snapshot_discard) the build's
 * memory is released. out->sku points into the payload. */
void allot_sku_builder_init(allot_sku_builder_t *builder);
void allot_sku_builder_free(allot_sku_builder_t *builder);
int allot_sku_snapshot_build(const struct allot_state *state, allot_sku_builder_t *builder,
                             uint8_t type, const uint8_t *payload, size_t len,
                             allot_sku_build_t *out);
int allot_sku_snapshot_install(struct allot_state *state, allot_sku_build_t *build);
/* Start loading what installing `build` will touch (call a dozen installs ahead). */
void allot_sku_snapshot_prefetch(const struct allot_state *state, const allot_sku_build_t *build);
void allot_sku_snapshot_discard(allot_sku_build_t *build);

#endif
