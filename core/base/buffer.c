/* buffer.c - growable buffers and bounds-checked little-endian readers. */
#include "core/base/buffer.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

void allot_bytes_free(allot_bytes_t *bytes)
{
    free(bytes->data);
    bytes->data = NULL;
    bytes->len = bytes->capacity = 0;
}

int allot_bytes_grow(allot_bytes_t *bytes, size_t extra)
{
    size_t capacity = bytes->capacity ? bytes->capacity : 256;
    while (capacity < bytes->len + extra)
        capacity *= 2;
    uint8_t *data = realloc(bytes->data, capacity);
    if (data == NULL)
        return ALLOT_ENOMEM;
    bytes->data = data;
    bytes->capacity = capacity;
    return 0;
}

void allot_u32_vec_free(allot_u32_vec_t *vec)
{
    free(vec->items);
    vec->items = NULL;
    vec->count = vec->capacity = 0;
}

int allot_u32_vec_reserve(allot_u32_vec_t *vec, uint32_t extra)
{
    uint64_t needed = (uint64_t)vec->count + extra;
    if (needed <= vec->capacity)
        return 0;
    uint64_t capacity = vec->capacity ? vec->capacity : 16;
    while (capacity < needed)
        capacity *= 2;
    if (capacity > UINT32_MAX)
        return ALLOT_ENOMEM;
    uint32_t *items = realloc(vec->items, capacity * sizeof(*items));
    if (items == NULL)
        return ALLOT_ENOMEM;
    vec->items = items;
    vec->capacity = (uint32_t)capacity;
    return 0;
}

void allot_u32_vec_push(allot_u32_vec_t *vec, uint32_t value)
{
    assert(vec->count < vec->capacity);
    vec->items[vec->count++] = value;
}

void allot_reader_init(allot_reader_t *reader, const uint8_t *data, size_t len)
{
    reader->data = data;
    reader->len = data == NULL ? 0 : len;
    reader->offset = 0;
    reader->failed = false;
}

bool allot_reader_done(const allot_reader_t *reader)
{
    return !reader->failed && reader->offset == reader->len;
}

int allot_array_grow(void **array, uint32_t *capacity, uint32_t need, size_t item_bytes,
                     uint32_t initial)
{
    if (need <= *capacity)
        return 0;
    uint32_t n = *capacity ? *capacity : initial;
    while (n < need)
        n *= 2;
    void *p = realloc(*array, (size_t)n * item_bytes);
    if (p == NULL)
        return ALLOT_ENOMEM;
    *array = p;
    *capacity = n;
    return 0;
}
