/* test_net_peek.c - the look-ahead's peek reads the hot arguments of whole requests, finds the
 * length the framer finds, never reads outside what it is given, and gives up on anything else;
 * the group's loads ahead change nothing. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/frame.h"
#include "core/inventory.h"
#include "core/limits.h"
#include "core/state.h"
#include "net/peek.h"
#include "tests/msgpack_request.h"

#define PEEK_TEST_BYTES_MAX (64u * 1024)

static void pack_avail(msgpack_packer *pk, uint32_t msgid, const char *const *skus, uint32_t n)
{
    test_pack_head(pk, msgid, "avail.get", 2);
    test_pack_str(pk, "method");
    test_pack_str(pk, "ship");
    test_pack_str(pk, "skus");
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        test_pack_str(pk, skus[i]);
}

/* lines before id, the line's sku after its qty, a second line: the order does not matter. */
static void pack_reserve(msgpack_packer *pk, uint32_t msgid, const char *id, const char *sku)
{
    test_pack_head(pk, msgid, "reserve", 3);
    test_pack_str(pk, "lines");
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 2);
    test_pack_str(pk, "qty");
    msgpack_pack_uint8(pk, 1);
    test_pack_str(pk, "sku");
    test_pack_str(pk, sku);
    msgpack_pack_map(pk, 2);
    test_pack_str(pk, "sku");
    test_pack_str(pk, "SECOND");
    test_pack_str(pk, "qty");
    msgpack_pack_uint8(pk, 2);
    test_pack_str(pk, "ttl_s");
    msgpack_pack_uint16(pk, 600);
    test_pack_str(pk, "id");
    test_pack_str(pk, id);
}

static void pack_order_create(msgpack_packer *pk, uint32_t msgid)
{
    test_pack_head(pk, msgid, "order.create", 3);
    test_pack_str(pk, "id");
    test_pack_str(pk, "order-1");
    test_pack_str(pk, "reservation");
    test_pack_str(pk, "cart-9");
    test_pack_str(pk, "customer");
    test_pack_str(pk, "c-1");
}

static void pack_ping(msgpack_packer *pk, uint32_t msgid)
{
    test_pack_head(pk, msgid, "ping", 0);
}

static bool str_equals(allot_str_t s, const char *literal)
{
    return s.len == strlen(literal) && memcmp(s.ptr, literal, s.len) == 0;
}

/* The framer's length of the whole request at data[0, len), 0 if it is not complete. */
static size_t framed_bytes(const uint8_t *data, size_t len)
{
    frame_scanner_t scanner;
    frame_scanner_reset(&scanner);
    size_t bytes = 0;
    if (frame_scan(&scanner, data, len, PEEK_TEST_BYTES_MAX, &bytes) != FRAME_COMPLETE)
        return 0;
    return bytes;
}

/* Peek data[0, len) from an allocation of exactly len bytes (ASan sees a read past it) and check
 * what the contract promises whatever the input; returns whether it peeked. */
static bool peek_checked(const uint8_t *data, size_t len, peek_request_t *request)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, data, len);
    bool peeked = peek_request(copy, len, request);
    if (!peeked) {
        cr_assert_eq(request->bytes, 0u);
        cr_assert_eq(request->sku_count, 0u);
        cr_assert_eq(request->id.len, 0u);
        free(copy);
        return false;
    }
    cr_assert_gt(request->bytes, 0u);
    cr_assert_leq(request->bytes, len);
    cr_assert_leq(request->bytes, ALLOT_PEEK_REQUEST_BYTES_MAX);
    size_t framed = framed_bytes(copy, len);
    if (framed != 0)
        cr_assert_eq(request->bytes, framed, "the peek says %zu bytes, the framer %zu",
                     request->bytes, framed);
    cr_assert_leq(request->sku_count, ALLOT_PEEK_SKUS_MAX);
    for (uint32_t i = 0; i < request->sku_count; i++)
        cr_assert((const uint8_t *)request->skus[i].ptr >= copy &&
                  (const uint8_t *)request->skus[i].ptr + request->skus[i].len <= copy + len);
    if (request->id.len > 0)
        cr_assert((const uint8_t *)request->id.ptr >= copy &&
                  (const uint8_t *)request->id.ptr + request->id.len <= copy + len);
    /* the strings point into the copy: move them to data's bytes before it goes */
    for (uint32_t i = 0; i < request->sku_count; i++)
        request->skus[i].ptr = (const char *)data + (request->skus[i].ptr - (const char *)copy);
    if (request->id.len > 0)
        request->id.ptr = (const char *)data + (request->id.ptr - (const char *)copy);
    free(copy);
    return true;
}

Test(peek, avail_get_gives_its_skus_and_its_length)
{
    static const char *const skus[] = {"SKU-1", "SKU-22", "SKU-333", "SKU-4444", "SKU-5"};
    _Static_assert(sizeof(skus) / sizeof(skus[0]) > ALLOT_PEEK_SKUS_MAX, "one more than peeked");
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
    pack_avail(&pk, 70000, skus, ALLOT_PEEK_SKUS_MAX);
    peek_request_t request;
    cr_assert(peek_checked((const uint8_t *)buffer.data, buffer.size, &request));
    cr_assert_eq(request.bytes, buffer.size);
    cr_assert_eq(request.sku_count, ALLOT_PEEK_SKUS_MAX);
    for (uint32_t i = 0; i < request.sku_count; i++)
        cr_assert(str_equals(request.skus[i], skus[i]), "sku %u", i);
    cr_assert_eq(request.id.len, 0u);
    msgpack_sbuffer_destroy(&buffer);
}

Test(peek, a_listing_of_more_skus_than_peeked_is_left_to_its_handler)
{
    static const char *const skus[] = {"SKU-1", "SKU-22", "SKU-333", "SKU-4444", "SKU-5"};
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
    pack_avail(&pk, 1, skus, ALLOT_PEEK_SKUS_MAX + 1);
    peek_request_t request;
    cr_assert_not(peek_checked((const uint8_t *)buffer.data, buffer.size, &request));
    msgpack_sbuffer_destroy(&buffer);
}

Test(peek, reserve_gives_its_id_and_its_first_lines_sku)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
    pack_reserve(&pk, 3, "cart-42", "SKU-9");
    peek_request_t request;
    cr_assert(peek_checked((const uint8_t *)buffer.data, buffer.size, &request));
    cr_assert_eq(request.bytes, buffer.size);
    cr_assert(str_equals(request.id, "cart-42"));
    cr_assert_eq(request.sku_count, 1u);
    cr_assert(str_equals(request.skus[0], "SKU-9"));
    msgpack_sbuffer_destroy(&buffer);
}

Test(peek, order_create_gives_the_reservation_it_converts)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
    pack_order_create(&pk, 4);
    peek_request_t request;
    cr_assert(peek_checked((const uint8_t *)buffer.data, buffer.size, &request));
    cr_assert_eq(request.bytes, buffer.size);
    cr_assert(str_equals(request.id, "cart-9"));
    cr_assert_eq(request.sku_count, 0u);
    msgpack_sbuffer_destroy(&buffer);
}

Test(peek, another_method_gives_its_length_and_nothing_to_load)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
    test_pack_head(&pk, 5, "stock.get", 1); /* its sku is not a lookup the look-ahead serves */
    test_pack_str(&pk, "sku");
    test_pack_str(&pk, "SKU-1");
    peek_request_t request;
    cr_assert(peek_checked((const uint8_t *)buffer.data, buffer.size, &request));
    cr_assert_eq(request.bytes, buffer.size);
    cr_assert_eq(request.sku_count, 0u);
    cr_assert_eq(request.id.len, 0u);
    msgpack_sbuffer_destroy(&buffer);
}

Test(peek, every_proper_prefix_is_not_peeked)
{
    static const char *const skus[] = {"SKU-1", "SKU-2"};
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
    pack_avail(&pk, 1, skus, 2);
    pack_reserve(&pk, 2, "cart-1", "SKU-1");
    pack_order_create(&pk, 3);
    size_t first = framed_bytes((const uint8_t *)buffer.data, buffer.size);
    for (size_t start = 0; start < buffer.size;) {
        size_t whole = framed_bytes((const uint8_t *)buffer.data + start, buffer.size - start);
        cr_assert_gt(whole, 0u);
        peek_request_t request;
        for (size_t len = 0; len < whole; len++)
            cr_assert_not(peek_checked((const uint8_t *)buffer.data + start, len, &request),
                          "a prefix of %zu of %zu bytes was peeked", len, whole);
        cr_assert(peek_checked((const uint8_t *)buffer.data + start, whole, &request));
        start += whole;
    }
    cr_assert_gt(first, 0u);
    msgpack_sbuffer_destroy(&buffer);
}

Test(peek, what_is_not_a_request_or_too_large_is_not_peeked)
{
    static const uint8_t inputs[][8] = {
        {0x93, 0x02, 0xa4, 'p', 'i', 'n', 'g', 0x90},    /* a notification */
        {0x94, 0x01, 0x01, 0xc0, 0xc0, 0xc0},            /* a response */
        {0x94, 0x00, 0x01, 0x07, 0x91, 0x80},            /* the method not a str */
        {0x94, 0x00, 0x01, 0xa1, 'x', 0xc1},             /* 0xc1 is not MessagePack */
        {0x81, 0xa1, 'a', 0x01},                         /* not an array */
        {0xdc, 0x00, 0x04, 0x00, 0x01, 0xa1, 'x', 0x90}, /* an envelope not in a fixarray */
    };
    static const size_t lens[] = {8, 6, 6, 6, 4, 8};
    peek_request_t request;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        cr_assert_not(peek_checked(inputs[i], lens[i], &request), "input %zu", i);
    cr_assert_not(peek_checked(inputs[0], 0, &request));

    /* a huge declared count or length claims nothing and reads nothing past the bytes */
    static const uint8_t huge[] = {0x94, 0x00, 0x01, 0xa4, 'p',  'i',  'n',  'g',  0xdd,
                                   0xff, 0xff, 0xff, 0xff, 0xdb, 0xff, 0xff, 0xff, 0xf0};
    cr_assert_not(peek_checked(huge, sizeof(huge), &request));

    /* a whole avail.get over ALLOT_PEEK_REQUEST_BYTES_MAX: left alone */
    enum { SKUS = ALLOT_PEEK_REQUEST_BYTES_MAX / 8 };
    static char names[SKUS][16];
    const char *skus[SKUS];
    for (int i = 0; i < SKUS; i++) {
        snprintf(names[i], sizeof(names[i]), "SKU-%05d", i);
        skus[i] = names[i];
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
    pack_avail(&pk, 1, skus, SKUS);
    cr_assert_gt(buffer.size, ALLOT_PEEK_REQUEST_BYTES_MAX);
    cr_assert_not(peek_checked((const uint8_t *)buffer.data, buffer.size, &request));
    msgpack_sbuffer_destroy(&buffer);
}

static uint64_t random_next(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* Mutated pipelines (bytes changed, cut, doubled) under the same checks: within the bytes given
 * (each input in an allocation of its exact size), the framer's length when both find a request,
 * nothing claimed when not peeked. */
Test(peek, random_mutations_stay_within_their_bytes_and_agree_with_the_framer)
{
    static const char *const skus[] = {"SKU-1", "SKU-22", "SKU-333", "SKU-4444", "SKU-5"};
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
    pack_avail(&pk, 1, skus, ALLOT_PEEK_SKUS_MAX);
    pack_reserve(&pk, 70000, "cart-1", "SKU-1");
    pack_order_create(&pk, 3);
    pack_ping(&pk, 4);
    uint8_t input[512];
    cr_assert_lt(buffer.size, sizeof(input) - 64);
    uint64_t state = UINT64_C(0x9e3779b97f4a7c15);
    unsigned peeked = 0;
    for (int round = 0; round < 100000; round++) {
        size_t len = buffer.size;
        memcpy(input, buffer.data, len);
        int edits = 1 + (int)(random_next(&state) % 4);
        for (int e = 0; e < edits; e++) {
            uint64_t r = random_next(&state);
            size_t at = (size_t)(r >> 8) % len;
            if (r % 3 == 0)
                input[at] = (uint8_t)(r >> 40);
            else if (r % 3 == 1)
                len = at + 1;
            else if (len < sizeof(input))
                memmove(input + at + 1, input + at, len++ - at);
        }
        for (size_t start = 0; start < len;) {
            peek_request_t request;
            if (!peek_checked(input + start, len - start, &request))
                break;
            peeked++;
            start += request.bytes;
        }
    }
    cr_expect_gt(peeked, 10000u, "only %u requests of the mutated inputs were peeked", peeked);
    msgpack_sbuffer_destroy(&buffer);
}

static char *state_dump(const allot_state_t *state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    cr_assert_eq(allot_state_dump(state, f), 0);
    fclose(f);
    return text;
}

/* The group peeks up to ALLOT_PEEK_GROUP_REQUESTS whole requests and stops at a partial one or at
 * one it cannot read; loading ahead leaves the state as it was. */
Test(peek, the_group_covers_whole_requests_up_to_its_size_and_changes_nothing)
{
    allot_state_t *state = allot_state_create(NULL);
    cr_assert_not_null(state);
    allot_error_detail_t error;
    allot_location_input_t location;
    allot_location_input_defaults(&location);
    location.id = ALLOT_STR_LITERAL("W1");
    cr_assert_eq(allot_location_put(state, &location, NULL, &error), 0, "%s", error.message);
    allot_stock_set_input_t stock = {
        ALLOT_STR_LITERAL("SKU-1"), ALLOT_STR_LITERAL("W1"), 5, true, 0, false, 0};
    cr_assert_eq(allot_stock_set(state, &stock, NULL, &error), 0, "%s", error.message);
    char *before = state_dump(state);

    static const char *const skus[] = {"SKU-1", "SKU-2"};
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
    size_t ends[ALLOT_PEEK_GROUP_REQUESTS + 2];
    for (uint32_t i = 0; i < ALLOT_PEEK_GROUP_REQUESTS + 2; i++) {
        if (i % 3 == 0)
            pack_avail(&pk, i, skus, 2);
        else if (i % 3 == 1)
            pack_reserve(&pk, i, "cart-1", "SKU-1");
        else
            pack_ping(&pk, i);
        ends[i] = buffer.size;
    }
    const uint8_t *data = (const uint8_t *)buffer.data;
    cr_assert_eq(peek_requests_prefetch(state, data, buffer.size),
                 ends[ALLOT_PEEK_GROUP_REQUESTS - 1]);
    cr_assert_eq(peek_requests_prefetch(state, data, ends[2] + 3), ends[2]); /* then a partial */
    cr_assert_eq(peek_requests_prefetch(state, data, ends[0]), ends[0]);     /* one alone */
    cr_assert_eq(peek_requests_prefetch(state, data, ends[0] - 1), 0u);
    cr_assert_eq(peek_requests_prefetch(state, data, 0), 0u);
    char *after = state_dump(state);
    cr_assert_str_eq(after, before);
    free(before);
    free(after);
    msgpack_sbuffer_destroy(&buffer);
    allot_state_destroy(state);
}
