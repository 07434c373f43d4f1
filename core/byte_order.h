/* byte_order.h - the one set of little-endian load and store helpers of the code base.
 *
 * Contract: allot_u*_load_le / allot_u*_store_le read and write one little-endian integer at any
 * address (no alignment needed; one load or store on little-endian machines). Every format Allot
 * writes uses them: core's event records and checkpoint values (core/base/buffer.h builds its
 * readers on them), the WAL and the checkpoint store in persist/. libc only.
 */
#ifndef ALLOT_CORE_BYTE_ORDER_H
#define ALLOT_CORE_BYTE_ORDER_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

/* Little-endian integers at p (any alignment): one load or store on little-endian machines. */
static inline uint16_t allot_u16_load_le(const uint8_t *p)
{
    uint16_t value;
    memcpy(&value, p, sizeof(value));
    return le16toh(value);
}

static inline uint32_t allot_u32_load_le(const uint8_t *p)
{
    uint32_t value;
    memcpy(&value, p, sizeof(value));
    return le32toh(value);
}

static inline uint64_t allot_u64_load_le(const uint8_t *p)
{
    uint64_t value;
    memcpy(&value, p, sizeof(value));
    return le64toh(value);
}

static inline void allot_u16_store_le(uint8_t *p, uint16_t value)
{
    value = htole16(value);
    memcpy(p, &value, sizeof(value));
}

static inline void allot_u32_store_le(uint8_t *p, uint32_t value)
{
    value = htole32(value);
    memcpy(p, &value, sizeof(value));
}

static inline void allot_u64_store_le(uint8_t *p, uint64_t value)
{
    value = htole64(value);
    memcpy(p, &value, sizeof(value));
}

#endif
