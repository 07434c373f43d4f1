/* common.h - small value types shared by every room: string views and error details.
 *
 * Contract: allot_str_t is a non-owning view (pointer + length, not NUL-terminated), the shape
 * in which MessagePack strings arrive. allot_error_detail_t is filled by any function that
 * returns a negative ALLOT_E* so that the reply can name the field, the state or the shortfalls.
 * libc only.
 */
#ifndef ALLOT_CORE_COMMON_H
#define ALLOT_CORE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

typedef struct allot_str {
    const char *ptr;
    uint32_t len;
} allot_str_t;

#define ALLOT_STR_LITERAL(s) ((allot_str_t){(s), (uint32_t)(sizeof(s) - 1)})

static inline allot_str_t allot_str_from_cstr(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0')
        n++;
    return (allot_str_t){s, (uint32_t)n};
}

static inline bool allot_str_equal(allot_str_t a, allot_str_t b)
{
    if (a.len != b.len)
        return false;
    for (uint32_t i = 0; i < a.len; i++)
        if (a.ptr[i] != b.ptr[i])
            return false;
    return true;
}

/* One line that could not be fully served (INSUFFICIENT_STOCK details). */
typedef struct allot_shortfall {
    allot_str_t sku; /* points into state-owned or request-owned memory valid until the reply */
    int64_t requested;
    int64_t available;
} allot_shortfall_t;

#define ALLOT_ERROR_MESSAGE_BYTES_MAX 256

typedef struct allot_error_detail {
    char message[ALLOT_ERROR_MESSAGE_BYTES_MAX]; /* empty: use allot_error_message() */
    const char *field;                          /* INVALID_ARGUMENT/TOO_LARGE: the field named */
    const char *state;                          /* INVALID_TRANSITION: the current state */
    uint32_t shortfall_count;                   /* INSUFFICIENT_STOCK */
    allot_shortfall_t shortfalls[ALLOT_LINES_MAX];
} allot_error_detail_t;

/* Fill detail->message printf-style and return `error` (convenience for early returns). */
int allot_error_set(allot_error_detail_t *detail, int error, const char *field, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

/* Reset a detail before reuse. */
void allot_error_detail_clear(allot_error_detail_t *detail);

/* True when s is 1..ALLOT_ID_BYTES_MAX bytes of valid UTF-8. */
bool allot_id_valid(allot_str_t s);

/* True when s is valid UTF-8 (any length). */
bool allot_utf8_valid(const char *s, size_t len);

#endif
