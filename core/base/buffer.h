/* buffer.h - growable byte buffers and u32 vectors, with little-endian put/get helpers.
 *
 * Contract: allot_bytes_t and allot_u32_vec_t own their memory (free with *_free). Appends
 * return ALLOT_ENOMEM when memory runs out and leave the buffer unchanged; *_reserve makes the
 * next appends of that size infallible. allot_reader_t reads little-endian values from a
 * bounded span and never reads past its end: the first failed read sets `failed` and every
 * later read returns zeros. Its readers and writers are little-endian through core/byte_order.h.
 * libc only.
 */
#ifndef ALLOT_CORE_BUFFER_H
#define ALLOT_CORE_BUFFER_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/byte_order.h"
#include "core/common.h"

typedef struct allot_bytes {
    uint8_t *data;
    size_t len;
    size_t capacity;
} allot_bytes_t;

typedef struct allot_u32_vec {
    uint32_t *items;
    uint32_t count;
    uint32_t capacity;
} allot_u32_vec_t;

void allot_bytes_free(allot_bytes_t *bytes);
int allot_bytes_grow(allot_bytes_t *bytes, size_t extra);
static inline int allot_bytes_reserve(allot_bytes_t *bytes, size_t extra)
{
    return bytes->len + extra <= bytes->capacity ? 0 : allot_bytes_grow(bytes, extra);
}

/* The writers are inline, like the readers: every event record is encoded through them, a
 * handful of fixed-size stores each. Infallible after a sufficient allot_bytes_reserve();
 * assert capacity. */
static inline void allot_bytes_put(allot_bytes_t *bytes, const void *data, size_t len)
{
    assert(bytes->len + len <= bytes->capacity);
    if (len > 0)
        memcpy(bytes->data + bytes->len, data, len);
    bytes->len += len;
}

static inline void allot_bytes_put_u8(allot_bytes_t *bytes, uint8_t value)
{
    assert(bytes->len + 1 <= bytes->capacity);
    bytes->data[bytes->len++] = value;
}

static inline void allot_bytes_put_u16(allot_bytes_t *bytes, uint16_t value)
{
    assert(bytes->len + 2 <= bytes->capacity);
    allot_u16_store_le(bytes->data + bytes->len, value);
    bytes->len += 2;
}

static inline void allot_bytes_put_u64(allot_bytes_t *bytes, uint64_t value)
{
    assert(bytes->len + 8 <= bytes->capacity);
    allot_u64_store_le(bytes->data + bytes->len, value);
    bytes->len += 8;
}

static inline void allot_bytes_put_i64(allot_bytes_t *bytes, int64_t value)
{
    allot_bytes_put_u64(bytes, (uint64_t)value);
}

static inline void allot_bytes_put_f64(allot_bytes_t *bytes, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof(bits));
    allot_bytes_put_u64(bytes, bits);
}

/* u16 length then the bytes; len <= UINT16_MAX. */
static inline void allot_bytes_put_str(allot_bytes_t *bytes, allot_str_t value)
{
    assert(value.len <= UINT16_MAX);
    allot_bytes_put_u16(bytes, (uint16_t)value.len);
    allot_bytes_put(bytes, value.ptr, value.len);
}

void allot_u32_vec_free(allot_u32_vec_t *vec);
int allot_u32_vec_reserve(allot_u32_vec_t *vec, uint32_t extra);
/* Infallible after a sufficient allot_u32_vec_reserve(). */
void allot_u32_vec_push(allot_u32_vec_t *vec, uint32_t value);

typedef struct allot_reader {
    const uint8_t *data;
    size_t len;
    size_t offset;
    bool failed;
} allot_reader_t;

void allot_reader_init(allot_reader_t *reader, const uint8_t *data, size_t len);

/* The readers are inline: recovery decodes tens of millions of fields through them. A read past
 * the end marks the reader failed and returns 0 (or an empty string). */
static inline const uint8_t *allot_reader_take(allot_reader_t *reader, size_t n)
{
    if (reader->failed || reader->len - reader->offset < n) {
        reader->failed = true;
        return NULL;
    }
    const uint8_t *p = reader->data + reader->offset;
    reader->offset += n;
    return p;
}

static inline uint8_t allot_reader_u8(allot_reader_t *reader)
{
    const uint8_t *p = allot_reader_take(reader, 1);
    return p ? p[0] : 0;
}

static inline uint16_t allot_reader_u16(allot_reader_t *reader)
{
    const uint8_t *p = allot_reader_take(reader, 2);
    return p ? allot_u16_load_le(p) : 0;
}

static inline uint64_t allot_reader_u64(allot_reader_t *reader)
{
    const uint8_t *p = allot_reader_take(reader, 8);
    return p ? allot_u64_load_le(p) : 0;
}

static inline int64_t allot_reader_i64(allot_reader_t *reader)
{
    return (int64_t)allot_reader_u64(reader);
}

static inline double allot_reader_f64(allot_reader_t *reader)
{
    uint64_t bits = allot_reader_u64(reader);
    double value;
    memcpy(&value, &bits, sizeof(value));
    return value;
}

/* A u16-length-prefixed string view into the reader's span. */
static inline allot_str_t allot_reader_str(allot_reader_t *reader)
{
    uint16_t len = allot_reader_u16(reader);
    const uint8_t *p = allot_reader_take(reader, len);
    if (p == NULL)
        return (allot_str_t){"", 0};
    return (allot_str_t){(const char *)p, len};
}
/* True when every read succeeded and every byte was consumed. */
bool allot_reader_done(const allot_reader_t *reader);

/* Make *array (of *capacity items of item_bytes each) hold at least `need` items: capacity
 * starts at `initial` and doubles. 0, or ALLOT_ENOMEM with the array unchanged. */
int allot_array_grow(void **array, uint32_t *capacity, uint32_t need, size_t item_bytes,
                     uint32_t initial);

#endif
