/* codec.c - event record payloads: the version byte, the dispatch to each type's owner through
 * core/events.def, the type names.
 *
 * Payload format, version 1. All integers little-endian, fixed width; f64 is the IEEE-754
 * binary64 bit pattern as a u64; `str` is a u16 byte length followed by that many bytes (ids:
 * 1..128 bytes of valid UTF-8). Every payload begins with:
 *     u8  version            = 1 (ALLOT_EVENT_FORMAT_VERSION)
 * and continues by type (the type byte travels beside the payload, e.g. in the WAL header), as
 * the owner of the type writes it; each owner's codec file documents its types' fields:
 *     1..3, 16, 17, 19    core/inventory/inventory_codec.c
 *     12, 21              core/promise/transit.c
 *     4..7, 18            core/reservation/reservation_codec.c
 *     64..76, 80          core/order/order_codec.c
 *
 * Every time (created_ms, expires_at_ms, ended_ms, at_ms, received_ms, a history entry's
 * at_ms) is ms since the Unix epoch in 0..ALLOT_TIME_MS_MAX (the end of year 9999; 0 also means
 * "not yet" where noted); as_of_ms is the client's version stamp (any value).
 *
 * A record is valid when its version is 1, its type is a row of core/events.def, every field is
 * in range, and decoding consumes the payload exactly. Apply additionally requires the objects
 * it refers to to exist (see each owner's codec file); otherwise it is ALLOT_ECORRUPT.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/buffer.h"
#include "core/errors.h"
#include "core/event/event_types.h"

/* The owners' functions (each room's private header declares its own rows the same way). */
ALLOT_EVENT_TABLE(ALLOT_EVENT_DECLARE)

/* The type bytes are in range and none is used twice (a repeated member would not compile). */
#define EVENT_NUMBER_CHECK(number, NAME, ...)                                                      \
    _Static_assert((number) >= 1 && (number) < ALLOT_EVENT_TYPE_LIMIT, #NAME " out of range");
ALLOT_EVENT_TABLE(EVENT_NUMBER_CHECK)
#define EVENT_NUMBER_MEMBER(number, NAME, ...) char type_##number;
struct event_numbers_are_distinct {
    ALLOT_EVENT_TABLE(EVENT_NUMBER_MEMBER)
};

typedef struct event_codec {
    int (*encode)(const allot_event_t *event, allot_bytes_t *out);
    int (*decode)(allot_reader_t *reader, allot_event_scratch_t *scratch, allot_event_t *event);
} event_codec_t;

/* Per row: adapters from the whole event to the owner's functions on its payload. */
#define EVENT_CODEC_ADAPTERS(number, NAME, name, member, payload, encode, decode, ...)             \
    static int encode_##NAME(const allot_event_t *event, allot_bytes_t *out)                       \
    {                                                                                              \
        return encode(&event->u.member, out);                                                      \
    }                                                                                              \
    static int decode_##NAME(allot_reader_t *reader, allot_event_scratch_t *scratch,               \
                             allot_event_t *event)                                                 \
    {                                                                                              \
        return decode(reader, scratch, &event->u.member);                                          \
    }
ALLOT_EVENT_TABLE(EVENT_CODEC_ADAPTERS)

#define EVENT_CODEC_ROW(number, NAME, ...) [number] = {encode_##NAME, decode_##NAME},
static const event_codec_t event_codecs[ALLOT_EVENT_TYPE_LIMIT] = {
    ALLOT_EVENT_TABLE(EVENT_CODEC_ROW)};

#define EVENT_NAME_ROW(number, NAME, name, ...) [number] = name,
static const char *const event_names[ALLOT_EVENT_TYPE_LIMIT] = {ALLOT_EVENT_TABLE(EVENT_NAME_ROW)};

const char *allot_event_type_name(uint8_t type)
{
    return type < ALLOT_EVENT_TYPE_LIMIT && event_names[type] != NULL ? event_names[type]
                                                                      : "unknown";
}

void allot_event_scratch_free(allot_event_scratch_t *scratch)
{
    free(scratch->allocations);
    free(scratch->positions);
    free(scratch->items);
    free(scratch->shipments);
    free(scratch->returns);
    free(scratch->history);
    free(scratch->backorders);
    memset(scratch, 0, sizeof(*scratch));
}

bool allot_event_time_ok(int64_t ms)
{
    return ms >= ALLOT_TIME_MS_MIN && ms <= ALLOT_TIME_MS_MAX;
}

int allot_event_encode(const allot_event_t *event, allot_bytes_t *out)
{
    assert(event->type < ALLOT_EVENT_TYPE_LIMIT && event_codecs[event->type].encode != NULL &&
           "only types of the table are encoded");
    const event_codec_t *codec = &event_codecs[event->type];
    size_t mark = out->len;
    int rc = allot_bytes_reserve(out, 1);
    if (rc != 0)
        return rc;
    allot_bytes_put_u8(out, ALLOT_EVENT_FORMAT_VERSION);
    rc = codec->encode(event, out);
    if (rc != 0)
        out->len = mark;
    return rc;
}

int allot_event_decode(uint8_t type, const uint8_t *payload, size_t len,
                       allot_event_scratch_t *scratch, allot_event_t *event)
{
    assert(scratch != NULL && event != NULL);
    allot_reader_t reader;
    allot_reader_init(&reader, payload, len);
    event->type = type;
    if (allot_reader_u8(&reader) != ALLOT_EVENT_FORMAT_VERSION)
        return ALLOT_ECORRUPT;
    const event_codec_t *codec = type < ALLOT_EVENT_TYPE_LIMIT ? &event_codecs[type] : NULL;
    if (codec == NULL || codec->decode == NULL)
        return ALLOT_ECORRUPT;
    int rc = codec->decode(&reader, scratch, event);
    if (rc != 0)
        return rc;
    return allot_reader_done(&reader) ? 0 : ALLOT_ECORRUPT;
}
