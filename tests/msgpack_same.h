/* msgpack_same.h - whether two decoded MessagePack objects are the same object, for tests.
 *
 * Contract: msgpack_same_object(a, b) is true when a and b have the same types and values (floats
 * bit for bit) all the way down, and each non-empty string, bin and ext of one is at the same
 * address as the other's (both decoded from the same bytes, which they point into). Unlike
 * msgpack_object_equal it also tells where strings point and NaNs apart. Nesting deeper than
 * ALLOT_MSGPACK_DEPTH_MAX counts as different. Header only; used by test_net_decode.c and the
 * request fuzzer.
 */
#ifndef ALLOT_TESTS_MSGPACK_SAME_H
#define ALLOT_TESTS_MSGPACK_SAME_H

#include <msgpack.h>
#include <stdbool.h>
#include <string.h>

#include "core/limits.h"

/* a and b are the same object: types, values (floats bit for bit), and strings, bins and exts at
 * the same address (both point into the request's bytes). */
static inline bool msgpack_same_at(const msgpack_object *a, const msgpack_object *b, int depth)
{
    if (depth > ALLOT_MSGPACK_DEPTH_MAX || a->type != b->type)
        return false;
    switch (a->type) {
    case MSGPACK_OBJECT_NIL:
        return true;
    case MSGPACK_OBJECT_BOOLEAN:
        return a->via.boolean == b->via.boolean;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return a->via.u64 == b->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return a->via.i64 == b->via.i64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return memcmp(&a->via.f64, &b->via.f64, sizeof(double)) == 0;
    case MSGPACK_OBJECT_STR:
        return a->via.str.size == b->via.str.size &&
               (a->via.str.size == 0 || a->via.str.ptr == b->via.str.ptr);
    case MSGPACK_OBJECT_BIN:
        return a->via.bin.size == b->via.bin.size &&
               (a->via.bin.size == 0 || a->via.bin.ptr == b->via.bin.ptr);
    case MSGPACK_OBJECT_EXT:
        return a->via.ext.type == b->via.ext.type && a->via.ext.size == b->via.ext.size &&
               (a->via.ext.size == 0 || a->via.ext.ptr == b->via.ext.ptr);
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size || a->via.array.ptr == NULL)
            return false;
        for (uint32_t i = 0; i < a->via.array.size; i++)
            if (!msgpack_same_at(&a->via.array.ptr[i], &b->via.array.ptr[i], depth + 1))
                return false;
        return true;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size || a->via.map.ptr == NULL)
            return false;
        for (uint32_t i = 0; i < a->via.map.size; i++)
            if (!msgpack_same_at(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key, depth + 1) ||
                !msgpack_same_at(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val, depth + 1))
                return false;
        return true;
    }
    return false;
}

static inline bool msgpack_same_object(const msgpack_object *a, const msgpack_object *b)
{
    return msgpack_same_at(a, b, 0);
}

#endif
