/* pack.h - small helpers for packing replies with msgpack-c.
 *
 * Contract: thin wrappers over msgpack_pack_* for the shapes replies use again and again
 * (string keys, string views, key/value pairs). They never fail: the packer writes to a
 * growable in-memory buffer. A reply's packer writes through pack_sbuffer_write (defined once,
 * in pack.c); the pieces handed over by pack_bytes (and the helpers built on it) are then copied
 * into the buffer inline, and through the packer's callback for any other packer.
 */
#ifndef ALLOT_NET_PACK_H
#define ALLOT_NET_PACK_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/common.h"

/* Append len bytes to sbuf, as msgpack_sbuffer_write does: msgpack-c hands over a reply in pieces
 * of 1-9 bytes (headers, integers, keys), and a memcpy call per piece was a tenth of a listing
 * page's cost. Pieces up to 16 bytes are copied inline with overlapping fixed-size copies;
 * anything else, and growing the buffer, goes to msgpack_sbuffer_write. */
static inline __attribute__((always_inline)) int pack_sbuffer_append(msgpack_sbuffer *sbuf,
                                                                     const char *buf, size_t len)
{
    if (len == 0)
        return 0; /* msgpack_sbuffer_write would memcpy into a NULL buffer */
    if (len > 16 || sbuf->alloc - sbuf->size < len)
        return msgpack_sbuffer_write(sbuf, buf, len);
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

/* The packer callback for replies (data: a msgpack_sbuffer): pack_sbuffer_append, out of line.
 * One definition (net/pack.c), so that pack_bytes can tell a packer that writes through it. */
int pack_sbuffer_write(void *data, const char *buf, size_t len);

/* Hand len bytes to the packer: inline when it writes to a buffer through pack_sbuffer_write
 * (every reply's packer; a call through the callback pointer cost some 35 instructions a piece),
 * else through its callback. */
static inline __attribute__((always_inline)) void pack_bytes(msgpack_packer *pk, const char *bytes,
                                                             size_t len)
{
    if (pk->callback == pack_sbuffer_write)
        pack_sbuffer_append(pk->data, bytes, len);
    else
        pk->callback(pk->data, bytes, len);
}

/* pack_bytes for len bytes at bytes[0, 8) (all 8 readable, len <= 8): one 8-byte copy when the
 * buffer has room for 8, whatever len is (a reply's header: 4 to 8 bytes by its msgid). */
static inline __attribute__((always_inline)) void pack_bytes_within_8(msgpack_packer *pk,
                                                                      const char *bytes, size_t len)
{
    msgpack_sbuffer *sbuf = pk->data;
    if (pk->callback != pack_sbuffer_write || sbuf->alloc - sbuf->size < 8) {
        pack_bytes(pk, bytes, len);
        return;
    }
    memcpy(sbuf->data + sbuf->size, bytes, 8);
    sbuf->size += len;
}

/* ---- writing MessagePack bytes directly, for replies built in one piece -------------------- */

static inline void pack_put_u32_be(char *out, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        out[i] = (char)(v >> (24 - 8 * i));
}

/* Header of a string of len bytes (len <= UINT32_MAX) at out, as msgpack_pack_str writes it
 * (fixstr, str8, str16, str32); returns the bytes written (1-5). */
static inline size_t pack_put_str_header(char *out, size_t len)
{
    if (len < 32) {
        out[0] = (char)(0xa0u | len);
        return 1;
    }
    if (len < 256) {
        out[0] = (char)0xd9;
        out[1] = (char)len;
        return 2;
    }
    if (len < 65536) {
        out[0] = (char)0xda;
        out[1] = (char)(len >> 8);
        out[2] = (char)len;
        return 3;
    }
    out[0] = (char)0xdb;
    pack_put_u32_be(out + 1, (uint32_t)len);
    return 5;
}

/* Header of a map (map true) or array of n entries at out, as msgpack_pack_map / _array write
 * it (fix, 16, 32); returns the bytes written (1, 3 or 5). */
static inline size_t pack_put_container_header(char *out, bool map, uint32_t n)
{
    if (n < 16) {
        out[0] = (char)((map ? 0x80u : 0x90u) | n);
        return 1;
    }
    if (n < 65536) {
        out[0] = (char)(map ? 0xde : 0xdc);
        out[1] = (char)(n >> 8);
        out[2] = (char)n;
        return 3;
    }
    out[0] = (char)(map ? 0xdf : 0xdd);
    pack_put_u32_be(out + 1, n);
    return 5;
}

/* A non-negative integer in its shortest form, as msgpack_pack_int64 writes it (1-9 bytes). */
static inline size_t pack_put_uint(char *out, uint64_t v)
{
    if (v < 128) {
        out[0] = (char)v;
        return 1;
    }
    int bytes = v <= 0xffu ? 1 : v <= 0xffffu ? 2 : v <= 0xffffffffu ? 4 : 8;
    out[0] = (char)(bytes == 1 ? 0xcc : bytes == 2 ? 0xcd : bytes == 4 ? 0xce : 0xcf);
    for (int i = 0; i < bytes; i++)
        out[1 + i] = (char)(v >> (8 * (bytes - 1 - i))); /* big-endian */
    return 1 + (size_t)bytes;
}

/* An integer in its shortest form, as msgpack_pack_int64 writes it (1-9 bytes). */
static inline size_t pack_put_int(char *out, int64_t v)
{
    if (v >= 0)
        return pack_put_uint(out, (uint64_t)v);
    if (v >= -32) {
        out[0] = (char)v; /* a negative fixint */
        return 1;
    }
    int bytes = v >= -128 ? 1 : v >= -32768 ? 2 : v >= INT32_MIN ? 4 : 8;
    out[0] = (char)(bytes == 1 ? 0xd0 : bytes == 2 ? 0xd1 : bytes == 4 ? 0xd2 : 0xd3);
    for (int i = 0; i < bytes; i++)
        out[1 + i] = (char)((uint64_t)v >> (8 * (bytes - 1 - i))); /* big-endian */
    return 1 + (size_t)bytes;
}

/* A string; a short one (MessagePack fixstr, under 32 bytes: every key, most ids) goes to the
 * buffer in one piece, header and body together. */
static inline void pack_str_bytes(msgpack_packer *pk, const char *s, size_t n)
{
    if (n < 32) {
        char piece[33]; /* 32 used; gcc's bounds check of the inlined copy cannot tell n < 32 */
        pack_put_str_header(piece, n); /* one byte for n < 32 */
        memcpy(piece + 1, s, n);
        pack_bytes(pk, piece, n + 1);
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
