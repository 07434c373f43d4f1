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

int allot_bytes_reserve(allot_bytes_t *bytes, size_t extra)
{
    if (bytes->len + extra <= bytes->capacity)
        return 0;
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

void allot_bytes_put(allot_bytes_t *bytes, const void *data, size_t len)
{
    assert(bytes->len + len <= bytes->capacity);
    if (len > 0)
        memcpy(bytes->data + bytes->len, data, len);
    bytes->len += len;
}

void allot_bytes_put_u8(allot_bytes_t *bytes, uint8_t value)
{
    allot_bytes_put(bytes, &value, 1);
}

void allot_bytes_put_u16(allot_bytes_t *bytes, uint16_t value)
{
    uint8_t raw[2];
    allot_u16_store_le(raw, value);
    allot_bytes_put(bytes, raw, 2);
}

void allot_bytes_put_u64(allot_bytes_t *bytes, uint64_t value)
{
    uint8_t raw[8];
    allot_u64_store_le(raw, value);
    allot_bytes_put(bytes, raw, 8);
}

void allot_bytes_put_i64(allot_bytes_t *bytes, int64_t value)
{
    allot_bytes_put_u64(bytes, (uint64_t)value);
}

void allot_bytes_put_f64(allot_bytes_t *bytes, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof(bits));
    allot_bytes_put_u64(bytes, bits);
}

void allot_bytes_put_str(allot_bytes_t *bytes, allot_str_t value)
{
    assert(value.len <= UINT16_MAX);
    allot_bytes_put_u16(bytes, (uint16_t)value.len);
    allot_bytes_put(bytes, value.ptr, value.len);
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
