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

#include "core/limits.h"

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
    const char *field;                           /* INVALID_ARGUMENT/TOO_LARGE: the field named */
    const char *state;                           /* INVALID_TRANSITION: the current state */
    const char *leader;                          /* NOT_LEADER: the leader's client address */
    uint32_t shortfall_count;                    /* INSUFFICIENT_STOCK */
    allot_shortfall_t shortfalls[ALLOT_LINES_MAX];
    bool has_oldest; /* EXPIRED (events.read): the oldest seq still retained */
    uint64_t oldest;
    allot_str_t limit_sku;  /* LIMIT_EXCEEDED: the SKU (state-owned, valid until the reply), */
    int64_t limit;          /* its max_per_customer */
    int64_t held;           /* and what the customer holds */
    int64_t retry_after_ms; /* QUEUED: when to ask again */
} allot_error_detail_t;

/* Fill detail->message printf-style and return `error` (convenience for early returns). A message
 * longer than the buffer is cut at the last whole UTF-8 character that fits. Bytes that came
 * from a client go in through allot_str_echo, never raw. */
int allot_error_set(allot_error_detail_t *detail, int error, const char *field, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

/* Reset a detail before reuse: every field a failure may set, not the message's bytes past the
 * first nor the shortfalls past shortfall_count. Inline: the dispatcher clears one for every
 * request, and the call into core/ cost as much as the clearing. */
static inline void allot_error_detail_clear(allot_error_detail_t *detail)
{
    detail->message[0] = '\0';
    detail->field = NULL;
    detail->state = NULL;
    detail->leader = NULL;
    detail->shortfall_count = 0;
    detail->has_oldest = false;
    detail->limit_sku = (allot_str_t){0};
    detail->limit = 0;
    detail->held = 0;
    detail->retry_after_ms = 0;
}

/* True when s is 1..ALLOT_ID_BYTES_MAX bytes of valid UTF-8. */
bool allot_id_valid(allot_str_t s);

/* True when s is valid UTF-8 (any length). */
bool allot_utf8_valid(const char *s, size_t len);

/* The length of the longest prefix of s[0..len) that does not end inside a UTF-8 character
 * (for valid text cut at len, e.g. by snprintf). */
size_t allot_utf8_prefix_bytes(const char *s, size_t len);

/* Client-provided bytes rendered for an error message (see allot_str_echo). */
typedef struct allot_echo {
    char text[ALLOT_ECHO_BYTES_MAX + sizeof("...")];
} allot_echo_t;

/* Render s (an unknown method or key, an id: any bytes) into echo->text and return it. Valid
 * UTF-8 characters are kept as they are, except that control characters (U+0000..U+001F, U+007F)
 * and every byte that is not part of a valid UTF-8 sequence (stray continuation bytes, sequences
 * cut short, overlong forms, surrogates, above U+10FFFF) become `\xNN` (lowercase hex, one
 * escape per byte), and a backslash becomes `\\`, so `\xNN` always stands for one raw byte.
 * The rendering is at most ALLOT_ECHO_BYTES_MAX bytes, cut only between characters or escapes;
 * a cut is marked by "...". The result is always valid UTF-8, NUL-terminated. */
const char *allot_str_echo(allot_str_t s, allot_echo_t *echo);

#endif
