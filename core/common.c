/* common.c - error detail helpers and UTF-8 validation for ids. */
#include "common.h"

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
    vsnprintf(detail->message, sizeof(detail->message), fmt, ap);
    va_end(ap);
    return error;
}

void allot_error_detail_clear(allot_error_detail_t *detail)
{
    detail->message[0] = '\0';
    detail->field = NULL;
    detail->state = NULL;
    detail->shortfall_count = 0;
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
        size_t n = utf8_sequence_length(p[i]);
        if (n == 0 || i + n > len)
            return false;
        for (size_t k = 1; k < n; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
        if (n == 3) {
            unsigned cp = ((p[i] & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6);
            if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))
                return false; /* overlong or surrogate */
        } else if (n == 4) {
            unsigned cp = ((p[i] & 0x07u) << 18) | ((p[i + 1] & 0x3Fu) << 12);
            if (cp < 0x10000 || cp > 0x10FFFF)
                return false;
        }
        i += n;
    }
    return true;
}

bool allot_id_valid(allot_str_t s)
{
    return s.len >= 1 && s.len <= ALLOT_ID_BYTES_MAX && allot_utf8_valid(s.ptr, s.len);
}
