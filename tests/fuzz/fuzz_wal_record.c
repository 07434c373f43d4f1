/* fuzz_wal_record.c - libFuzzer target: WAL record decoding, event apply (replay's path) and the
 * checkpoint records of the state the input built.
 *
 * Every input starts from an empty state, so that a crash reproduces from its input alone. The
 * bytes are read three ways, one after the other on that state:
 *   1. a WAL region: every record that decodes (length, LSN, CRC) is applied, as replay would;
 *   2. a series of events without checksums, each [u8 type][u16 length, little-endian][payload]:
 *      what lets one input build the state its later records act on (a location, then stock,
 *      then holds on it ...);
 *   3. one event payload, the first byte its type.
 * Then the state is written as checkpoint records (allot_state_snapshot_each), which are loaded
 * into a second empty state. */
#include <stdint.h>
#include <string.h>

#include "core/event.h"
#include "core/state.h"
#include "persist/wal.h"

#define FUZZ_EVENT_HEADER_BYTES 3

static void apply_wal_region(allot_state_t *state, const uint8_t *data, size_t size)
{
    size_t offset = 0;
    while (offset < size) {
        wal_record_t record;
        const char *reason = NULL;
        if (wal_record_decode(data + offset, size - offset, &record, &reason) != 1)
            break;
        allot_event_apply_encoded(state, record.type, record.payload, record.payload_bytes);
        offset += record.record_bytes;
    }
}

static void apply_event_series(allot_state_t *state, const uint8_t *data, size_t size)
{
    size_t offset = 0;
    while (size - offset >= FUZZ_EVENT_HEADER_BYTES) {
        uint8_t type = data[offset];
        size_t len = (size_t)data[offset + 1] | (size_t)data[offset + 2] << 8;
        offset += FUZZ_EVENT_HEADER_BYTES;
        if (len > size - offset)
            break;
        allot_event_apply_encoded(state, type, data + offset, len);
        offset += len;
    }
}

static void load_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                    const uint8_t *payload, size_t len, bool deleted)
{
    (void)key;
    (void)key_len;
    if (!deleted)
        allot_event_apply_encoded(ctx, type, payload, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    allot_state_t *state = allot_state_create(NULL);
    if (state == NULL)
        return 0;
    apply_wal_region(state, data, size);
    apply_event_series(state, data, size);
    if (size >= 1)
        allot_event_apply_encoded(state, data[0], data + 1, size - 1);
    allot_state_t *loaded = allot_state_create(NULL);
    if (loaded != NULL)
        allot_state_snapshot_each(state, load_cb, loaded);
    allot_state_destroy(loaded);
    allot_state_destroy(state);
    return 0;
}
