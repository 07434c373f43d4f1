/* pack.h - small helpers for packing replies with msgpack-c.
 *
 * Contract: thin wrappers over msgpack_pack_* for the shapes replies use again and again
 * (string keys, string views, key/value pairs). They never fail: the packer writes to a
 * growable in-memory buffer.
 */
#ifndef ALLOT_NET_PACK_H
#define ALLOT_NET_PACK_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/common.h"

static inline void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static inline void pack_str(msgpack_packer *pk, allot_str_t s)
{
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.ptr, s.len);
}

static inline void pack_key_cstr(msgpack_packer *pk, const char *key, const char *value)
{
    pack_cstr(pk, key);
    pack_cstr(pk, value);
}

static inline void pack_key_str(msgpack_packer *pk, const char *key, allot_str_t value)
{
    pack_cstr(pk, key);
    pack_str(pk, value);
}

static inline void pack_key_int(msgpack_packer *pk, const char *key, int64_t value)
{
    pack_cstr(pk, key);
    msgpack_pack_int64(pk, value);
}

static inline void pack_key_double(msgpack_packer *pk, const char *key, double value)
{
    pack_cstr(pk, key);
    msgpack_pack_double(pk, value);
}

static inline void pack_key_bool(msgpack_packer *pk, const char *key, bool value)
{
    pack_cstr(pk, key);
    if (value)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

#endif
