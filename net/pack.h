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

/* msgpack_sbuffer_write for packers that write replies: msgpack-c hands over a reply in pieces
 * of 1-9 bytes (headers, integers, keys), and a memcpy call per piece was a tenth of a listing
 * page's cost. Pieces up to 16 bytes are copied inline with overlapping fixed-size copies;
 * anything else, and growing the buffer, goes to msgpack_sbuffer_write. */
static inline int pack_sbuffer_write(void *data, const char *buf, size_t len)
{
    msgpack_sbuffer *sbuf = data;
    if (len == 0 || len > 16 || sbuf->alloc - sbuf->size < len)
        return msgpack_sbuffer_write(data, buf, len);
    char *dst = sbuf->data + sbuf->size;
    if (len >= 8) {
        memcpy(dst, buf, 8);
        memcpy(dst + len - 8, buf + len - 8, 8);
    } else if (len >= 4) {
        memcpy(dst, buf, 4);
        memcpy(dst + len - 4, buf + len - 4, 4);
    } else {
        dst[0] = buf[0];
        dst[len / 2] = buf[len / 2];
        dst[len - 1] = buf[len - 1];
    }
    sbuf->size += len;
    return 0;
}

/* A string; a short one (MessagePack fixstr, under 32 bytes: every key, most ids) goes to the
 * buffer in one piece, header and body together. */
static inline void pack_str_bytes(msgpack_packer *pk, const char *s, size_t n)
{
    if (n < 32) {
        char piece[32];
        piece[0] = (char)(0xa0u | n);
        memcpy(piece + 1, s, n);
        pk->callback(pk->data, piece, n + 1);
        return;
    }
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static inline void pack_cstr(msgpack_packer *pk, const char *s)
{
    pack_str_bytes(pk, s, strlen(s));
}

static inline void pack_str(msgpack_packer *pk, allot_str_t s)
{
    pack_str_bytes(pk, s.ptr, s.len);
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
