/* common.c - error detail helpers, UTF-8 validation for ids and the echo of client bytes. */
#include "core/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int allot_error_set(allot_error_detail_t *detail, int error, const char *field, const char *fmt,
                    ...)
{
    if (detail == NULL)
        return error;
    detail->field = field;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(detail->message, sizeof(detail->message), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(detail->message)) {
        size_t kept = allot_utf8_prefix_bytes(detail->message, sizeof(detail->message) - 1);
        detail->message[kept] = '\0';
    }
    return error;
}

static size_t utf8_sequence_length(unsigned char lead)
{
    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF)
        return 2;
    if (lead >= 0xE0 && lead <= 0xEF)
        return 3;
    if (lead >= 0xF0 && lead <= 0xF4)
        return 4;
    return 0;
}

/* The length of the valid UTF-8 sequence that starts p[0..len) (len >= 1), or 0 when none does
 * (a bad lead byte, a sequence cut short, an overlong form, a surrogate, above U+10FFFF). */
static inline size_t utf8_sequence_valid_length(const unsigned char *p, size_t len)
{
    size_t n = utf8_sequence_length(p[0]);
    if (n == 0 || n > len)
        return 0;
    for (size_t k = 1; k < n; k++)
        if ((p[k] & 0xC0) != 0x80)
            return 0;
    if (n == 3) {
        unsigned cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6);
        if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0; /* overlong or surrogate */
    } else if (n == 4) {
        unsigned cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12);
        if (cp < 0x10000 || cp > 0x10FFFF)
            return 0;
    }
    return n;
}

bool allot_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    /* ids are nearly always ASCII: eight bytes at a time while no byte has its top bit set */
    for (uint64_t word; i + 8 <= len; i += 8) {
        memcpy(&word, p + i, 8);
        if ((word & 0x8080808080808080ull) != 0)
            break;
    }
    while (i < len && p[i] < 0x80)
        i++;
    while (i < len) {
        size_t n = utf8_sequence_valid_length(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t allot_utf8_prefix_bytes(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t continuation = 0; /* continuation bytes at the end */
    while (continuation < 3 && continuation < len && (p[len - 1 - continuation] & 0xC0) == 0x80)
        continuation++;
    if (continuation == len)
        return 0;
    size_t lead = len - 1 - continuation;
    if (p[lead] < 0x80)
        return continuation == 0 ? len : lead + 1; /* ASCII, then stray continuation bytes */
    return utf8_sequence_length(p[lead]) == continuation + 1 ? len : lead;
}

/* One piece of an echo: `\xNN` for a byte, `\\` for a backslash, else the character itself.
 * Returns the bytes written to piece (room for 4); *consumed is the input bytes it stands for. */
static size_t echo_piece(const unsigned char *p, size_t len, char piece[4], size_t *consumed)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = utf8_sequence_valid_length(p, len);
    if (n == 0 || (n == 1 && (p[0] < 0x20 || p[0] == 0x7F))) {
        piece[0] = '\\';
        piece[1] = 'x';
        piece[2] = hex[p[0] >> 4];
        piece[3] = hex[p[0] & 0x0F];
        *consumed = 1;
        return 4;
    }
    *consumed = n;
    if (p[0] == '\\') {
        piece[0] = piece[1] = '\\';
        return 2;
    }
    memcpy(piece, p, n);
    return n;
}

const char *allot_str_echo(allot_str_t s, allot_echo_t *echo)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t used = 0;
    size_t i = 0;
    while (i < s.len) {
        char piece[4];
        size_t consumed;
        size_t n = echo_piece(p + i, s.len - i, piece, &consumed);
        if (used + n > ALLOT_ECHO_BYTES_MAX)
            break;
        memcpy(echo->text + used, piece, n);
        used += n;
        i += consumed;
    }
    if (i < s.len) {
        memcpy(echo->text + used, "...", 3);
        used += 3;
    }
    echo->text[used] = '\0';
    return echo->text;
}

bool allot_id_valid(allot_str_t s)
{
    return s.len >= 1 && s.len <= ALLOT_ID_BYTES_MAX && allot_utf8_valid(s.ptr, s.len);
}
