/* test_core_byte_order.c - the one set of little-endian helpers (core/buffer.h) that core's
 * records, the WAL and the checkpoint store are written with. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "core/base/buffer.h"

Test(byte_order, stores_least_significant_byte_first_at_any_alignment)
{
    uint8_t raw[32];
    for (size_t at = 0; at < 8; at++) {
        memset(raw, 0xAA, sizeof(raw));
        allot_u64_store_le(raw + at, 0x0807060504030201ull);
        for (size_t i = 0; i < 8; i++)
            cr_assert_eq(raw[at + i], i + 1, "u64 at offset %zu, byte %zu", at, i);
        cr_assert_eq(raw[at + 8], 0xAA, "nothing written past the value");
        if (at > 0)
            cr_assert_eq(raw[at - 1], 0xAA, "nothing written before the value");
        allot_u32_store_le(raw + at, 0x0D0C0B0Au);
        cr_assert(memcmp(raw + at, "\x0A\x0B\x0C\x0D\x05", 5) == 0, "u32 at offset %zu", at);
        allot_u16_store_le(raw + at, 0xBEEF);
        cr_assert(memcmp(raw + at, "\xEF\xBE\x0C", 3) == 0, "u16 at offset %zu", at);
    }
}

Test(byte_order, loads_what_was_stored_for_every_width_and_alignment)
{
    const uint64_t values[] = {
        0, 1, 0x80, 0xFF00, 0x12345678u, 0x8000000000000000ull, UINT64_MAX, 0x0123456789ABCDEFull};
    uint8_t raw[24];
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++)
        for (size_t at = 0; at < 8; at++) {
            allot_u64_store_le(raw + at, values[v]);
            cr_assert_eq(allot_u64_load_le(raw + at), values[v]);
            allot_u32_store_le(raw + at, (uint32_t)values[v]);
            cr_assert_eq(allot_u32_load_le(raw + at), (uint32_t)values[v]);
            allot_u16_store_le(raw + at, (uint16_t)values[v]);
            cr_assert_eq(allot_u16_load_le(raw + at), (uint16_t)values[v]);
        }
}

Test(byte_order, reader_and_bytes_agree_with_the_helpers)
{
    allot_bytes_t bytes = {0};
    cr_assert_eq(allot_bytes_reserve(&bytes, 10), 0);
    allot_bytes_put_u16(&bytes, 0xCAFE);
    allot_bytes_put_u64(&bytes, 0x1122334455667788ull);
    cr_assert_eq(bytes.len, 10u);
    cr_assert_eq(allot_u16_load_le(bytes.data), 0xCAFE);
    cr_assert_eq(allot_u64_load_le(bytes.data + 2), 0x1122334455667788ull);
    cr_assert_eq(bytes.data[2], 0x88, "least significant byte first");

    allot_reader_t reader;
    allot_reader_init(&reader, bytes.data, bytes.len);
    cr_assert_eq(allot_reader_u16(&reader), 0xCAFE);
    cr_assert_eq(allot_reader_u64(&reader), 0x1122334455667788ull);
    cr_assert(allot_reader_done(&reader));
    cr_assert_eq(allot_reader_u16(&reader), 0, "a read past the end gives zero");
    cr_assert(reader.failed);
    allot_bytes_free(&bytes);
}
