/* decode.c - framing and decoding of a request in one pass over its bytes (see decode.h). */
#include "decode.h"

#include <assert.h>
#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "core/limits.h"

typedef struct decode_cursor {
    const uint8_t *p;   /* the next byte to read */
    const uint8_t *end; /* the end of what may be read: min(len, bytes_max) */
    msgpack_zone *zone;
} decode_cursor_t;

/* One open container: its elements are written one after the other, an array's in order and a
 * map's as key, value, key, value (a msgpack_object_kv is a key and a value, nothing between). */
typedef struct decode_level {
    msgpack_object *next; /* where the next element goes */
    msgpack_object *end;  /* one past the last */
} decode_level_t;

_Static_assert(sizeof(msgpack_object_kv) == 2 * sizeof(msgpack_object) &&
                   offsetof(msgpack_object_kv, val) == sizeof(msgpack_object),
               "a map's pairs are read as a run of key and value objects");

/* A big-endian unsigned integer of `bytes` (1, 2, 4 or 8) at the cursor; false when cut off. */
static bool take_be(decode_cursor_t *c, unsigned bytes, uint64_t *out)
{
    if ((size_t)(c->end - c->p) < bytes)
        return false;
    if (bytes == 1) {
        *out = c->p[0];
    } else if (bytes == 2) {
        uint16_t v;
        memcpy(&v, c->p, sizeof(v));
        *out = be16toh(v);
    } else if (bytes == 4) {
        uint32_t v;
        memcpy(&v, c->p, sizeof(v));
        *out = be32toh(v);
    } else {
        uint64_t v;
        memcpy(&v, c->p, sizeof(v));
        *out = be64toh(v);
    }
    c->p += bytes;
    return true;
}

/* The next `size` bytes (a str, bin or ext body), or NULL when they are not all there. */
static const char *take_body(decode_cursor_t *c, uint64_t size)
{
    if ((uint64_t)(c->end - c->p) < size)
        return NULL;
    const char *body = (const char *)c->p;
    c->p += size;
    return body;
}

/* A str or bin of `size` bytes (msgpack_object_str and _bin have the same layout). */
static int take_bytes(decode_cursor_t *c, msgpack_object *o, msgpack_object_type type,
                      uint64_t size)
{
    const char *body = take_body(c, size);
    if (body == NULL)
        return -1;
    o->type = type;
    if (type == MSGPACK_OBJECT_STR)
        o->via.str = (msgpack_object_str){(uint32_t)size, body};
    else
        o->via.bin = (msgpack_object_bin){(uint32_t)size, body};
    return 0;
}

/* An ext: its type byte, then `size` bytes of data. */
static int take_ext(decode_cursor_t *c, msgpack_object *o, uint64_t size)
{
    const char *body = take_body(c, size + 1);
    if (body == NULL)
        return -1;
    o->type = MSGPACK_OBJECT_EXT;
    o->via.ext.type = (int8_t)body[0];
    o->via.ext.size = (uint32_t)size;
    o->via.ext.ptr = body + 1;
    return 0;
}

/* An array or map of `count` elements (pairs for a map), its elements in the zone; only when each
 * element, at least one byte, still fits in what may be read. *slots: elements to read. */
static int take_container(decode_cursor_t *c, msgpack_object *o, uint64_t count, bool map,
                          uint64_t *slots)
{
    uint64_t elements = map ? 2 * count : count;
    if (elements > (uint64_t)(c->end - c->p))
        return -1;
    o->type = map ? MSGPACK_OBJECT_MAP : MSGPACK_OBJECT_ARRAY;
    /* an empty container points somewhere valid, as msgpack-c's do (memcpy of 0 elements) */
    static msgpack_object_kv no_elements[1];
    void *ptr = no_elements;
    if (count > 0) {
        ptr = msgpack_zone_malloc(
            c->zone, count * (map ? sizeof(msgpack_object_kv) : sizeof(msgpack_object)));
        if (ptr == NULL)
            return -1;
    }
    if (map)
        o->via.map = (msgpack_object_map){(uint32_t)count, ptr};
    else
        o->via.array = (msgpack_object_array){(uint32_t)count, ptr};
    *slots = elements;
    return 0;
}

/* An int of `bytes` big-endian bytes, signed or not, as msgpack-c types it: a signed value below
 * zero is NEGATIVE_INTEGER, everything else POSITIVE_INTEGER. */
static int take_int(decode_cursor_t *c, msgpack_object *o, unsigned bytes, bool is_signed)
{
    uint64_t v;
    if (!take_be(c, bytes, &v))
        return -1;
    int64_t s = bytes == 1   ? (int8_t)v
                : bytes == 2 ? (int16_t)v
                : bytes == 4 ? (int32_t)v
                             : (int64_t)v;
    if (is_signed && s < 0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = s;
    } else {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = v;
    }
    return 0;
}

static int take_float(decode_cursor_t *c, msgpack_object *o, bool is_double)
{
    uint64_t bits;
    if (!take_be(c, is_double ? 8 : 4, &bits))
        return -1;
    if (is_double) {
        o->type = MSGPACK_OBJECT_FLOAT64;
        memcpy(&o->via.f64, &bits, sizeof(double));
    } else {
        uint32_t narrow = (uint32_t)bits;
        float f;
        memcpy(&f, &narrow, sizeof(f));
        o->type = MSGPACK_OBJECT_FLOAT32;
        o->via.f64 = f;
    }
    return 0;
}

/* Every type byte from 0xc0 to 0xdf (the fixed-format ones are handled by decode_item). */
static int decode_typed(decode_cursor_t *c, msgpack_object *o, uint8_t t, uint64_t *slots)
{
    uint64_t n;
    if (t == 0xc0) {
        o->type = MSGPACK_OBJECT_NIL;
        return 0;
    }
    if (t == 0xc2 || t == 0xc3) {
        o->type = MSGPACK_OBJECT_BOOLEAN;
        o->via.boolean = t == 0xc3;
        return 0;
    }
    if (t >= 0xc4 && t <= 0xc6) /* bin 8, 16, 32 */
        return take_be(c, 1u << (t - 0xc4), &n) ? take_bytes(c, o, MSGPACK_OBJECT_BIN, n) : -1;
    if (t >= 0xc7 && t <= 0xc9) /* ext 8, 16, 32 */
        return take_be(c, 1u << (t - 0xc7), &n) ? take_ext(c, o, n) : -1;
    if (t == 0xca || t == 0xcb)
        return take_float(c, o, t == 0xcb);
    if (t >= 0xcc && t <= 0xcf) /* uint 8..64 */
        return take_int(c, o, 1u << (t - 0xcc), false);
    if (t >= 0xd0 && t <= 0xd3) /* int 8..64 */
        return take_int(c, o, 1u << (t - 0xd0), true);
    if (t >= 0xd4 && t <= 0xd8) /* fixext 1..16 */
        return take_ext(c, o, 1u << (t - 0xd4));
    if (t >= 0xd9 && t <= 0xdb) /* str 8, 16, 32 */
        return take_be(c, 1u << (t - 0xd9), &n) ? take_bytes(c, o, MSGPACK_OBJECT_STR, n) : -1;
    if (t == 0xdc || t == 0xdd) /* array 16, 32 */
        return take_be(c, 2u << (t - 0xdc), &n) ? take_container(c, o, n, false, slots) : -1;
    if (t == 0xde || t == 0xdf) /* map 16, 32 */
        return take_be(c, 2u << (t - 0xde), &n) ? take_container(c, o, n, true, slots) : -1;
    return -1; /* 0xc1: never used */
}

/* One item's header (and a scalar's body) into *o; *slots: the elements a container opens (0 for
 * a scalar or an empty container). -1: cut off or not MessagePack. */
static int decode_item(decode_cursor_t *c, msgpack_object *o, uint64_t *slots)
{
    assert(c->p < c->end);
    *slots = 0;
    uint8_t t = *c->p++;
    if (t <= 0x7f) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = t;
        return 0;
    }
    if (t >= 0xe0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (int8_t)t;
        return 0;
    }
    if (t >= 0xa0 && t <= 0xbf)
        return take_bytes(c, o, MSGPACK_OBJECT_STR, t & 0x1f);
    if (t >= 0x90 && t <= 0x9f)
        return take_container(c, o, t & 0x0f, false, slots);
    if (t >= 0x80 && t <= 0x8f)
        return take_container(c, o, t & 0x0f, true, slots);
    return decode_typed(c, o, t, slots);
}

decode_status_t decode_request(const uint8_t *data, size_t len, size_t bytes_max,
                               msgpack_zone *zone, msgpack_object *object, size_t *frame_bytes)
{
    /* a request near bytes_max (within ALLOT_REQUEST_DEPTH_MAX bytes of it) is left to
     * frame_scan, the one judge of the limit, so that the two cannot disagree at its edge */
    if (bytes_max <= ALLOT_REQUEST_DEPTH_MAX)
        return DECODE_UNDECIDED;
    size_t readable = bytes_max - ALLOT_REQUEST_DEPTH_MAX;
    decode_cursor_t c = {data, data + (len < readable ? len : readable), zone};
    decode_level_t stack[ALLOT_REQUEST_DEPTH_MAX];
    uint32_t depth = 0;
    msgpack_object *slot = object;
    for (;;) {
        uint64_t slots;
        if (c.p == c.end || decode_item(&c, slot, &slots) != 0)
            return DECODE_UNDECIDED;
        /* only an array of 3 (notification) or 4 (request) can be an envelope (frame.h) */
        if (depth == 0 && (slot->type != MSGPACK_OBJECT_ARRAY ||
                           (slot->via.array.size != 3 && slot->via.array.size != 4)))
            return DECODE_UNDECIDED;
        if (slots > 0) {
            if (depth == ALLOT_REQUEST_DEPTH_MAX)
                return DECODE_UNDECIDED;
            /* an array's elements, or a map's pairs read as key and value objects */
            msgpack_object *first = slot->type == MSGPACK_OBJECT_ARRAY
                                        ? slot->via.array.ptr
                                        : (msgpack_object *)slot->via.map.ptr;
            stack[depth++] = (decode_level_t){first + 1, first + slots};
            slot = first;
            continue;
        }
        /* the item is whole: so is every container it was the last element of */
        while (depth > 0 && stack[depth - 1].next == stack[depth - 1].end)
            depth--;
        if (depth == 0) {
            *frame_bytes = (size_t)(c.p - data);
            return DECODE_COMPLETE;
        }
        slot = stack[depth - 1].next++;
    }
}
