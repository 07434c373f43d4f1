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

/* One flat, non-resumable walk: each header read once, open containers' remaining items on a
 * stack of ALLOT_MSGPACK_DEPTH_MAX. Same answer as frame_object_bytes (test_wire.c holds it to
 * it, every prefix included) at a fraction of its cost, which keeps its resumable state per item:
 * allot-bench sizes every reply with this. */
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
            unsigned k = t - 0xc0u, n = item_table[k].length_bytes;
            if (n == 0xff)
                return -1;
            head = 1u + n + item_table[k].extra_bytes;
            if (at + head > len)
                return 0;
            uint64_t count = n ? be_read(bytes + at + 1, (int)n) : item_table[k].body_bytes;
            if (item_table[k].count_is >= 2)
                children = count * (item_table[k].count_is - 1u);
            else
                body = count;
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

long wire_object_bytes(const uint8_t *bytes, size_t len)
{
    return object_bytes(bytes, len, ALLOT_MSGPACK_DEPTH_MAX);
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

/* A success, [1, msgid, nil, result], read in one pass: the head byte by byte, then one walk
 * over the result (one level down, so the same depth limit as a walk of the whole reply). 0 when
 * the reply is anything else or not whole yet: wire_reply_scan then takes the general way. */
static long success_scan(const uint8_t *bytes, size_t len, wire_reply_t *reply)
{
    size_t pos = 2;
    uint64_t msgid;
    if (len < 4 || bytes[0] != 0x94 || bytes[1] != 0x01 || !uint_read(bytes, len, &pos, &msgid) ||
        msgid > UINT32_MAX || pos >= len || bytes[pos] != 0xc0)
        return 0;
    pos++;
    long result = object_bytes(bytes + pos, len - pos, ALLOT_MSGPACK_DEPTH_MAX - 1);
    if (result <= 0)
        return 0;
    reply->msgid = (uint32_t)msgid;
    reply->is_error = false;
    reply->code[0] = '\0';
    reply->result = bytes + pos;
    reply->result_bytes = (size_t)result;
    return (long)pos + result;
}

long wire_reply_scan(const uint8_t *bytes, size_t len, wire_reply_t *reply, const char **why)
{
    long fast = success_scan(bytes, len, reply);
    if (fast > 0)
        return fast;
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
