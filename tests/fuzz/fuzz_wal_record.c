/* fuzz_wal_record.c - libFuzzer target: WAL record decoding and event apply (replay's path). */
#include <stdint.h>
#include <string.h>

#include "core/event.h"
#include "core/state.h"
#include "persist/wal.h"

static allot_state_t *fuzz_state;
static uint64_t fuzz_runs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_state == NULL || ++fuzz_runs % 4096 == 0) {
        allot_state_destroy(fuzz_state);
        fuzz_state = allot_state_create(NULL);
    }
    /* 1: the bytes as a WAL region: every record that decodes is applied, as replay would */
    size_t offset = 0;
    while (offset < size) {
        wal_record_t record;
        const char *reason = NULL;
        if (wal_record_decode(data + offset, size - offset, &record, &reason) != 1)
            break;
        allot_event_apply_encoded(fuzz_state, record.type, record.payload, record.payload_bytes);
        offset += record.record_bytes;
    }
    /* 2: the bytes as one event payload (first byte: the type), past any checksum */
    if (size >= 1)
        allot_event_apply_encoded(fuzz_state, data[0], data + 1, size - 1);
    return 0;
}
