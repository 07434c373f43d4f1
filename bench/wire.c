/* wire.c - MessagePack object sizing and MessagePack-RPC reply scanning (see wire.h). */
#include "wire.h"

#include "core/limits.h"

#include <string.h>

static uint64_t be_read(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The items of type 0xc0..0xdf: bytes of the length field after the type byte, bytes of the ext
 * type byte, the fixed body bytes (when there is no length field), and what a length or count
 * means (0: nothing, 1: body bytes, 2: array elements, 3: map pairs). 0xc1 is marked with 0xff. */
static const struct {
    uint8_t length_bytes, extra_bytes, body_bytes, count_is;
} item_table[32] = {
    {0, 0, 0, 0},  {0xff, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, /* nil, 0xc1, false, true */
    {1, 0, 0, 1},  {2, 0, 0, 1},    {4, 0, 0, 1},               /* bin */
    {1, 1, 0, 1},  {2, 1, 0, 1},    {4, 1, 0, 1},               /* ext */
    {0, 0, 4, 0},  {0, 0, 8, 0},                                /* float */
    {0, 0, 1, 0},  {0, 0, 2, 0},    {0, 0, 4, 0}, {0, 0, 8, 0}, /* uint */
    {0, 0, 1, 0},  {0, 0, 2, 0},    {0, 0, 4, 0}, {0, 0, 8, 0}, /* int */
    {0, 1, 1, 0},  {0, 1, 2, 0},    {0, 1, 4, 0}, {0, 1, 8, 0}, /* fixext */
    {0, 1, 16, 0}, {1, 0, 0, 1},    {2, 0, 0, 1}, {4, 0, 0, 1}, /* fixext 16, str */
    {2, 0, 0, 2},  {4, 0, 0, 2},    {2, 0, 0, 3}, {4, 0, 0, 3}, /* array, map */
};

/* An item of type t (0xc0..0xdf) at bytes[at]: its header bytes, body bytes and child items.
 * 1, 0 when its header is cut short at len, -1 for 0xc1. */
static inline int item_sized(const uint8_t *bytes, size_t len, size_t at, uint8_t t, uint64_t *head,
                             uint64_t *body, uint64_t *children)
{
    unsigned k = t - 0xc0u, n = item_table[k].length_bytes;
    if (n == 0xff)
        return -1;
    *head = 1u + n + item_table[k].extra_bytes;
    if (at + *head > len)
        return 0;
    uint64_t count = n ? be_read(bytes + at + 1, (int)n) : item_table[k].body_bytes;
    if (item_table[k].count_is >= 2)
        *children = count * (item_table[k].count_is - 1u);
    else
        *body = count;
    return 1;
}

/* One flat, non-resumable walk: each header read once, open containers' remaining items on a
 * stack of ALLOT_MSGPACK_DEPTH_MAX. Same answer as frame_object_bytes (test_wire.c holds it to
 * it, every prefix included) at a fraction of its cost, which keeps its resumable state per item:
 * what object_bytes_fast falls back to for an object of many containers. */
static long object_bytes(const uint8_t *bytes, size_t len, uint32_t depth_max)
{
    uint64_t remaining[ALLOT_MSGPACK_DEPTH_MAX];
    uint32_t depth = 0;
    size_t at = 0;
    for (;;) {
        if (at >= len)
            return 0;
        uint8_t t = bytes[at];
        uint64_t head = 1, body = 0, children = 0;
        if (t <= 0x7f || t >= 0xe0)
            ;
        else if (t <= 0x8f)
            children = 2u * (t & 0x0fu);
        else if (t <= 0x9f)
            children = t & 0x0fu;
        else if (t <= 0xbf)
            body = t & 0x1fu;
        else {
            int rc = item_sized(bytes, len, at, t, &head, &body, &children);
            if (rc <= 0)
                return rc;
        }
        if (at + head + body > len)
            return 0;
        at += (size_t)(head + body);
        if (children > 0) {
            if (depth >= depth_max)
                return -1;
            remaining[depth++] = children;
            continue;
        }
        while (depth > 0 && --remaining[depth - 1] == 0)
            depth--; /* a finished container is one item of its parent */
        if (depth == 0)
            return (long)at;
    }
}

/* The whole size of an item known from its first byte alone (fixint, nil, bool, an empty fixmap
 * or fixarray, fixstr, float, int, uint, fixext), or 0: a non-empty container, a length that
 * follows (str, bin, ext, array and map 16/32), or 0xc1. */
static const uint8_t item_bytes_by_type[256] = {
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x00 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x10 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x20 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x30 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x40 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x50 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x60 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x70 */
    1,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x80 */
    1,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x90 */
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, /* 0xa0 */
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, /* 0xb0 */
    1,  0,  1,  1,  0,  0,  0,  0,  0,  0,  5,  9,  2,  3,  5,  9,  /* 0xc0 */
    2,  3,  5,  9,  3,  4,  6,  10, 18, 0,  0,  0,  0,  0,  0,  0,  /* 0xd0 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0xe0 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0xf0 */
};

/* The walk without a stack: only how many objects are still owed, plus how many non-empty
 * containers were opened. Nesting deeper than depth_max takes more than depth_max non-empty
 * containers, so up to that many this gives the stack walk's answer (the same sizes, the same 0
 * for a cut object, the same -1 for 0xc1, each at the same item) without its bookkeeping; past
 * it, -2: the caller asks object_bytes. An item whose first byte says its size costs a table
 * look-up. */
static long object_bytes_counted(const uint8_t *bytes, size_t len, uint32_t depth_max)
{
    uint64_t owed = 1;
    uint32_t containers = 0;
    size_t at = 0;
    while (owed > 0) {
        if (at >= len)
            return 0;
        uint8_t t = bytes[at];
        owed--;
        if (item_bytes_by_type[t] != 0) {
            at += item_bytes_by_type[t];
            continue;
        }
        uint64_t children = 0, body = 0, head = 1;
        if (t <= 0x8f)
            children = 2u * (t & 0x0fu);
        else if (t <= 0x9f)
            children = t & 0x0fu;
        else {
            int rc = item_sized(bytes, len, at, t, &head, &body, &children);
            if (rc <= 0)
                return rc;
        }
        if (children > 0 && ++containers > depth_max)
            return -2;
        owed += children;
        at += (size_t)(head + body);
    }
    return at <= len ? (long)at : 0;
}

/* The size of one object: the counting walk, or for an object of more than depth_max non-empty
 * containers the walk that keeps the depth. Out of line: a reply whose result is a scalar does
 * not pay for the walk's registers. */
__attribute__((noinline)) static long object_bytes_fast(const uint8_t *bytes, size_t len,
                                                        uint32_t depth_max)
{
    long n = object_bytes_counted(bytes, len, depth_max);
    return n != -2 ? n : object_bytes(bytes, len, depth_max);
}

long wire_object_bytes(const uint8_t *bytes, size_t len)
{
    return object_bytes_fast(bytes, len, ALLOT_MSGPACK_DEPTH_MAX);
}

/* Read an unsigned integer object; advances *pos. */
static bool uint_read(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    if (*pos >= len)
        return false;
    uint8_t b = p[*pos];
    int n = b == 0xcc ? 1 : b == 0xcd ? 2 : b == 0xce ? 4 : b == 0xcf ? 8 : 0;
    if (b <= 0x7f) {
        *out = b;
        *pos += 1;
        return true;
    }
    if (n == 0 || *pos + 1 + (size_t)n > len)
        return false;
    *out = be_read(p + *pos + 1, n);
    *pos += 1u + (size_t)n;
    return true;
}

/* A str object's bytes; false when the object is not a str. */
static bool str_read(const uint8_t *p, size_t len, size_t pos, const uint8_t **s, size_t *n)
{
    uint8_t b = p[pos];
    size_t header;
    if (b >= 0xa0 && b <= 0xbf)
        header = 1, *n = b & 0x1f;
    else if (b == 0xd9 && pos + 2 <= len)
        header = 2, *n = p[pos + 1];
    else if (b == 0xda && pos + 3 <= len)
        header = 3, *n = (size_t)be_read(p + pos + 1, 2);
    else
        return false;
    if (pos + header + *n > len)
        return false;
    *s = p + pos + header;
    return true;
}

/* Find "code" in the error map starting at pos (complete object guaranteed by the caller). */
static void error_code_read(const uint8_t *p, size_t len, size_t pos, char *code)
{
    strcpy(code, "ERROR");
    uint8_t b = p[pos];
    uint64_t pairs;
    if (b >= 0x80 && b <= 0x8f)
        pairs = b & 0x0f, pos += 1;
    else if (b == 0xde)
        pairs = be_read(p + pos + 1, 2), pos += 3;
    else
        return;
    for (uint64_t i = 0; i < pairs; i++) {
        const uint8_t *key;
        size_t key_len;
        bool is_code =
            str_read(p, len, pos, &key, &key_len) && key_len == 4 && memcmp(key, "code", 4) == 0;
        pos += (size_t)wire_object_bytes(p + pos, len - pos);
        const uint8_t *value;
        size_t value_len;
        if (is_code && str_read(p, len, pos, &value, &value_len)) {
            if (value_len >= WIRE_CODE_BYTES)
                value_len = WIRE_CODE_BYTES - 1;
            memcpy(code, value, value_len);
            code[value_len] = '\0';
            return;
        }
        pos += (size_t)wire_object_bytes(p + pos, len - pos);
    }
}

/* A success, [1, msgid, nil, result], read in one pass: the head byte by byte, then the result
 * (an item whose first byte gives its size, or one walk, one level down, so the same
 * depth limit as a walk of the whole reply). 0 when the reply is anything else or not whole yet:
 * wire_reply_scan then takes the general way. */
static long success_scan(const uint8_t *bytes, size_t len, wire_reply_t *reply)
{
    if (len < 5 || bytes[0] != 0x94 || bytes[1] != 0x01)
        return 0;
    uint8_t b = bytes[2];
    uint32_t msgid;
    size_t pos;
    if (b <= 0x7f)
        msgid = b, pos = 3;
    else if (b == 0xcd)
        msgid = (uint32_t)bytes[3] << 8 | bytes[4], pos = 5;
    else if (b == 0xce && len >= 8)
        msgid = (uint32_t)bytes[3] << 24 | (uint32_t)bytes[4] << 16 | (uint32_t)bytes[5] << 8 |
                bytes[6],
        pos = 7;
    else if (b == 0xcc)
        msgid = bytes[3], pos = 4;
    else
        return 0;
    if (pos + 1 >= len || bytes[pos] != 0xc0)
        return 0;
    pos++;
    long result = item_bytes_by_type[bytes[pos]]; /* a scalar: its size from its first byte */
    if (result == 0)
        result = object_bytes_fast(bytes + pos, len - pos, ALLOT_MSGPACK_DEPTH_MAX - 1);
    else if (pos + (size_t)result > len)
        return 0;
    if (result <= 0)
        return 0;
    reply->msgid = msgid;
    reply->is_error = false;
    reply->code[0] = '\0';
    reply->result = bytes + pos;
    reply->result_bytes = (size_t)result;
    return (long)pos + result;
}

/* Any other reply (an error, a msgid in 8 bytes, one not whole yet): sized first, then read. Out
 * of line, so that a success costs only success_scan. */
__attribute__((noinline)) static long reply_scan_general(const uint8_t *bytes, size_t len,
                                                         wire_reply_t *reply, const char **why)
{
    long total = wire_object_bytes(bytes, len);
    if (total <= 0) {
        *why = "malformed MessagePack";
        return total;
    }
    size_t end = (size_t)total, pos = 1;
    if (bytes[0] != 0x94) {
        *why = "a response is an array of 4";
        return -1;
    }
    uint64_t type, msgid;
    if (!uint_read(bytes, end, &pos, &type) || type != 1 || !uint_read(bytes, end, &pos, &msgid) ||
        msgid > UINT32_MAX) {
        *why = "a response starts with 1, msgid";
        return -1;
    }
    reply->msgid = (uint32_t)msgid;
    reply->is_error = bytes[pos] != 0xc0;
    reply->code[0] = '\0';
    if (reply->is_error)
        error_code_read(bytes, end, pos, reply->code);
    pos += (size_t)wire_object_bytes(bytes + pos, end - pos);
    reply->result = bytes + pos;
    reply->result_bytes = end - pos;
    return total;
}

long wire_reply_scan(const uint8_t *bytes, size_t len, wire_reply_t *reply, const char **why)
{
    long fast = success_scan(bytes, len, reply);
    return fast > 0 ? fast : reply_scan_general(bytes, len, reply, why);
}
