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

/* An enclosing container, while one of its elements is being read: where its next element goes
 * and one past its last. Elements are written one after the other, an array's in order and a
 * map's as key, value, key, value (a msgpack_object_kv is a key and a value, nothing between). */
typedef struct decode_level {
    msgpack_object *next;
    msgpack_object *end;
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

/* What decode_other read: a whole scalar, or a container's header (its elements follow). The
 * take_* helpers' 0 and -1 are ITEM_SCALAR and ITEM_FAILED. */
enum { ITEM_FAILED = -1, ITEM_SCALAR = 0, ITEM_CONTAINER = 1 };

/* A container header of `bytes` (2 or 4) count bytes: its count into *count. */
static int take_container_header(decode_cursor_t *c, unsigned bytes, uint64_t *count)
{
    return take_be(c, bytes, count) ? ITEM_CONTAINER : ITEM_FAILED;
}

/* Every type byte the loop of decode_request does not read itself: from 0xc0 to 0xdf and the
 * negative fixints. A scalar is written to *o; for an array or map 16/32 only its count and kind
 * (*count, *map). */
static int decode_other(decode_cursor_t *c, msgpack_object *o, uint8_t t, uint64_t *count,
                        bool *map)
{
    uint64_t n;
    if (t >= 0xe0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (int8_t)t;
        return ITEM_SCALAR;
    }
    if (t == 0xc0) {
        o->type = MSGPACK_OBJECT_NIL;
        return ITEM_SCALAR;
    }
    if (t == 0xc2 || t == 0xc3) {
        o->type = MSGPACK_OBJECT_BOOLEAN;
        o->via.boolean = t == 0xc3;
        return ITEM_SCALAR;
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
    *map = t == 0xde || t == 0xdf;
    if (t == 0xdc || t == 0xdd) /* array 16, 32 */
        return take_container_header(c, 2u << (t - 0xdc), count);
    if (t == 0xde || t == 0xdf) /* map 16, 32 */
        return take_container_header(c, 2u << (t - 0xde), count);
    return ITEM_FAILED; /* 0xc1: never used */
}

/* The container just read into *o: `count` elements (pairs for a map), in the zone; only when
 * each element, at least one byte, still fits in what may be read. *elements: the objects to
 * read into *first (a map's pairs as key and value objects; none: an empty container). */
static inline bool container_open(decode_cursor_t *c, msgpack_object *o, uint64_t count, bool map,
                                  msgpack_object **first, uint64_t *elements)
{
    *elements = map ? 2 * count : count;
    if (*elements > (uint64_t)(c->end - c->p))
        return false;
    /* an empty container points somewhere valid, as msgpack-c's do (memcpy of 0 elements) */
    static msgpack_object_kv no_elements[1];
    void *ptr = no_elements;
    if (count > 0) {
        ptr = msgpack_zone_malloc(c->zone, *elements * sizeof(msgpack_object));
        if (ptr == NULL)
            return false;
    }
    o->type = map ? MSGPACK_OBJECT_MAP : MSGPACK_OBJECT_ARRAY;
    if (map)
        o->via.map = (msgpack_object_map){(uint32_t)count, ptr};
    else
        o->via.array = (msgpack_object_array){(uint32_t)count, ptr};
    *first = ptr;
    return true;
}

/* The envelope's header: an array of 3 (notification) or 4 (request) (frame.h), in any array
 * format, its elements in the zone; false for anything else. */
static bool envelope_open(decode_cursor_t *c, msgpack_object *object, msgpack_object **first)
{
    if (c->p == c->end)
        return false;
    uint8_t t = *c->p++;
    uint64_t count = t & 0x0f, elements;
    if ((t == 0xdc || t == 0xdd) && !take_be(c, 2u << (t - 0xdc), &count))
        return false;
    if (t != 0x93 && t != 0x94 && t != 0xdc && t != 0xdd)
        return false;
    if (count != 3 && count != 4)
        return false;
    return container_open(c, object, count, false, first, &elements);
}

/* The head of almost every request, [0, msgid, method, ...: the type a positive fixint, the msgid
 * a positive fixint or a uint 8, 16 or 32, the method a fixstr, read straight into slot[0..2]
 * without the loop's per-item dispatch (three items of a ping's four). Returns the bytes read, or
 * 0 (nothing written that the loop will not write again) for any other head: the loop reads it.
 * The objects are the ones the loop writes for those formats. */
static size_t request_head_read(const uint8_t *p, const uint8_t *end, msgpack_object *slot)
{
    const uint8_t *start = p;
    if (end - p < 3 || p[0] > 0x7f)
        return 0;
    slot[0].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    slot[0].via.u64 = *p++;
    uint8_t t = *p++;
    uint64_t msgid = t;
    if (t >= 0xcc && t <= 0xce) { /* uint 8, 16, 32 */
        size_t bytes = (size_t)1 << (t - 0xcc);
        if ((size_t)(end - p) < bytes + 1)
            return 0;
        if (bytes == 1) {
            msgid = p[0];
        } else if (bytes == 2) {
            msgid = (uint64_t)p[0] << 8 | p[1];
        } else {
            uint32_t v;
            memcpy(&v, p, sizeof(v));
            msgid = be32toh(v);
        }
        p += bytes;
    } else if (t > 0x7f) {
        return 0;
    }
    slot[1].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    slot[1].via.u64 = msgid;
    t = *p++; /* p < end: checked above for either msgid */
    size_t method_bytes = t & 0x1fu;
    if (t < 0xa0 || t > 0xbf || (size_t)(end - p) < method_bytes)
        return 0;
    slot[2].type = MSGPACK_OBJECT_STR;
    slot[2].via.str = (msgpack_object_str){(uint32_t)method_bytes, (const char *)p};
    return (size_t)(p + method_bytes - start);
}

/* The params of a call without arguments, [{}] or [] (what clients send for ping, server.info
 * and the like), at the cursor: read into *slot without the loop, which took some 80
 * instructions for the two containers of [{}]. 1: read (the cursor past them); 0: other params,
 * nothing read; -1: the zone could not allocate. The objects are the ones the loop writes. */
static inline int params_empty_read(decode_cursor_t *c, msgpack_object *slot)
{
    msgpack_object *first;
    uint64_t elements;
    if (c->p < c->end && c->p[0] == 0x90) {
        c->p++;
        return container_open(c, slot, 0, false, &first, &elements) ? 1 : -1;
    }
    if (c->end - c->p < 2 || c->p[0] != 0x91 || c->p[1] != 0x80)
        return 0;
    c->p++;
    if (!container_open(c, slot, 1, false, &first, &elements))
        return -1;
    c->p++;
    return container_open(c, first, 0, true, &first, &elements) ? 1 : -1;
}

/* The envelope of a head request_head_read has read into head[0..2], when rpc.h's check passes
 * it: the type 0 (a request), the method not empty (its msgid, a uint of at most 32 bits, and
 * its method, a fixstr of at most 31 bytes, pass by their formats). Params are left to check. */
static inline bool request_head_check(const msgpack_object *head, rpc_envelope_t *envelope)
{
    _Static_assert(ALLOT_METHOD_BYTES_MAX >= 31, "a fixstr method is never too long");
    if (head[0].via.u64 != RPC_REQUEST || head[2].via.str.size == 0)
        return false;
    *envelope = (rpc_envelope_t){
        .type = RPC_REQUEST,
        .has_msgid = true,
        .msgid = (uint32_t)head[1].via.u64,
        .method = {head[2].via.str.ptr, head[2].via.str.size},
    };
    return true;
}

decode_status_t decode_request(const uint8_t *data, size_t len, size_t bytes_max,
                               msgpack_zone *zone, msgpack_object *object, size_t *frame_bytes)
{
    decode_result_t result;
    decode_status_t status = decode_request_envelope(data, len, bytes_max, zone, object, &result);
    if (status == DECODE_COMPLETE)
        *frame_bytes = result.frame_bytes;
    return status;
}

decode_status_t decode_request_envelope(const uint8_t *data, size_t len, size_t bytes_max,
                                        msgpack_zone *zone, msgpack_object *object,
                                        decode_result_t *result)
{
    result->checked = false;
    /* a request near bytes_max (within ALLOT_REQUEST_DEPTH_MAX bytes of it) is left to
     * frame_scan, the one judge of the limit, so that the two cannot disagree at its edge */
    if (bytes_max <= ALLOT_REQUEST_DEPTH_MAX)
        return DECODE_UNDECIDED;
    size_t readable = bytes_max - ALLOT_REQUEST_DEPTH_MAX;
    decode_cursor_t c = {data, data + (len < readable ? len : readable), zone};
    msgpack_object *slot; /* where the next element goes */
    if (!envelope_open(&c, object, &slot))
        return DECODE_UNDECIDED;
    msgpack_object *end = slot + object->via.array.size; /* one past the open container's last */
    size_t head_bytes = object->via.array.size == 4 ? request_head_read(c.p, c.end, slot) : 0;
    if (head_bytes > 0) { /* the params (the fourth element) are still to be read */
        c.p += head_bytes;
        result->checked = request_head_check(slot, &result->envelope);
        slot += 3;
        int params = params_empty_read(&c, slot);
        if (params < 0)
            return DECODE_UNDECIDED;
        if (params > 0) {
            result->envelope.params = rpc_params_without_arguments(slot);
            result->frame_bytes = (size_t)(c.p - data);
            return DECODE_COMPLETE;
        }
    }
    decode_level_t stack[ALLOT_REQUEST_DEPTH_MAX]; /* [d]: where the container at depth d resumes */
    uint32_t depth = 1;                            /* containers open, the envelope's included */
    for (;;) {
        if (c.p == c.end)
            return DECODE_UNDECIDED;
        uint8_t t = *c.p++;
        /* the fixed formats most of a request is made of here, the others in decode_other */
        if (t <= 0x7f) {
            slot->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            slot->via.u64 = t;
        } else if (t >= 0xa0 && t <= 0xbf) {
            if (take_bytes(&c, slot, MSGPACK_OBJECT_STR, t & 0x1f) != 0)
                return DECODE_UNDECIDED;
        } else {
            uint64_t count = t & 0x0f, elements;
            bool map = t <= 0x8f;
            int kind = t <= 0x9f ? ITEM_CONTAINER : decode_other(&c, slot, t, &count, &map);
            if (kind == ITEM_FAILED)
                return DECODE_UNDECIDED;
            msgpack_object *first;
            if (kind == ITEM_CONTAINER) {
                if (!container_open(&c, slot, count, map, &first, &elements))
                    return DECODE_UNDECIDED;
                if (elements > 0) {
                    if (depth == ALLOT_REQUEST_DEPTH_MAX)
                        return DECODE_UNDECIDED;
                    stack[depth++] = (decode_level_t){slot + 1, end};
                    slot = first;
                    end = first + elements;
                    continue;
                }
            }
        }
        /* the item is whole: so is every container it was the last element of */
        slot++;
        while (slot == end) {
            if (depth == 1) {
                result->frame_bytes = (size_t)(c.p - data);
                return DECODE_COMPLETE;
            }
            depth--;
            slot = stack[depth].next;
            end = stack[depth].end;
        }
    }
}
