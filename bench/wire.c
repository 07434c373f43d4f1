/* wire.c - MessagePack object sizing and MessagePack-RPC reply scanning (see wire.h). */
#include "wire.h"

#include <string.h>

static uint64_t be_read(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The header of one object: its own bytes (header + payload) and how many child objects follow.
 * 0 when the header itself is incomplete, -1 for the never-used byte 0xc1. */
static int header_read(const uint8_t *p, size_t len, uint64_t *own, uint64_t *children)
{
    uint8_t b = p[0];
    *children = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        *own = 1;
        return 1;
    }
    if (b >= 0x80 && b <= 0x8f) {
        *own = 1, *children = 2u * (b & 0x0f);
        return 1;
    }
    if (b >= 0x90 && b <= 0x9f) {
        *own = 1, *children = b & 0x0f;
        return 1;
    }
    if (b >= 0xa0 && b <= 0xbf) {
        *own = 1u + (b & 0x1f);
        return 1;
    }
    /* fixed-size scalars: bytes including the type byte */
    static const uint8_t fixed[256] = {
        [0xca] = 5, [0xcb] = 9, [0xcc] = 2, [0xcd] = 3,  [0xce] = 5,
        [0xcf] = 9, [0xd0] = 2, [0xd1] = 3, [0xd2] = 5,  [0xd3] = 9,
        [0xd4] = 3, [0xd5] = 4, [0xd6] = 6, [0xd7] = 10, [0xd8] = 18,
    };
    if (fixed[b] != 0) {
        *own = fixed[b];
        return 1;
    }
    int size_bytes = 0, extra = 0; /* length field width; bytes after it before the payload */
    uint64_t per_child = 0;        /* containers: children per length unit */
    switch (b) {
    case 0xc4:
    case 0xd9:
        size_bytes = 1;
        break;
    case 0xc5:
    case 0xda:
        size_bytes = 2;
        break;
    case 0xc6:
    case 0xdb:
        size_bytes = 4;
        break;
    case 0xc7:
        size_bytes = 1, extra = 1;
        break;
    case 0xc8:
        size_bytes = 2, extra = 1;
        break;
    case 0xc9:
        size_bytes = 4, extra = 1;
        break;
    case 0xdc:
        size_bytes = 2, per_child = 1;
        break;
    case 0xdd:
        size_bytes = 4, per_child = 1;
        break;
    case 0xde:
        size_bytes = 2, per_child = 2;
        break;
    case 0xdf:
        size_bytes = 4, per_child = 2;
        break;
    default:
        return -1; /* 0xc1 */
    }
    if (len < (size_t)(1 + size_bytes))
        return 0;
    uint64_t n = be_read(p + 1, size_bytes);
    if (per_child != 0) {
        *own = 1u + (uint64_t)size_bytes;
        *children = n * per_child;
    } else {
        *own = 1u + (uint64_t)size_bytes + (uint64_t)extra + n;
    }
    return 1;
}

long wire_object_bytes(const uint8_t *bytes, size_t len)
{
    /* pending[d]: objects still to read at open container depth d. */
    uint64_t pending[WIRE_DEPTH_MAX];
    int depth = 0;
    pending[0] = 1;
    size_t pos = 0;
    while (depth >= 0) {
        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        if (pos >= len)
            return 0;
        uint64_t own, children;
        int rc = header_read(bytes + pos, len - pos, &own, &children);
        if (rc <= 0)
            return rc;
        if (own > len - pos)
            return 0;
        pos += own;
        pending[depth]--;
        if (children > 0) {
            if (depth + 1 >= WIRE_DEPTH_MAX)
                return -1;
            pending[++depth] = children;
        }
    }
    return (long)pos;
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

long wire_reply_scan(const uint8_t *bytes, size_t len, wire_reply_t *reply, const char **why)
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
