/* test_wire.c - the reply scanner sizes MessagePack exactly and reads msgid and error codes. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <string.h>

#include "bench/wire.h"
#include "core/limits.h"
#include "client/frame.h"

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void begin(void)
{
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void end(void)
{
    msgpack_sbuffer_destroy(&sb);
}

static void pack_str(const char *s)
{
    msgpack_pack_str(&pk, strlen(s));
    msgpack_pack_str_body(&pk, s, strlen(s));
}

TestSuite(wire, .init = begin, .fini = end);

Test(wire, ok_reply_with_nested_result_is_sized_and_read)
{
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint32(&pk, 0xabcdef12);
    msgpack_pack_nil(&pk);
    msgpack_pack_map(&pk, 1);
    pack_str("items");
    msgpack_pack_array(&pk, 300); /* array16 */
    for (int i = 0; i < 300; i++) {
        msgpack_pack_map(&pk, 2);
        pack_str("sku");
        pack_str("S00000001-with-a-longer-name-to-use-str8-encoding-over-thirty-one-bytes");
        pack_str("available");
        msgpack_pack_int64(&pk, i * 1000003LL);
    }
    wire_reply_t r;
    const char *why = "";
    long n = wire_reply_scan((const uint8_t *)sb.data, sb.size, &r, &why);
    cr_assert_eq(n, (long)sb.size, "%s", why);
    cr_assert_eq(r.msgid, 0xabcdef12);
    cr_assert(!r.is_error);
    /* every proper prefix is incomplete */
    for (size_t len = 0; len < sb.size; len += 97)
        cr_assert_eq(wire_object_bytes((const uint8_t *)sb.data, len), 0);
}

Test(wire, error_reply_yields_its_code)
{
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 7);
    msgpack_pack_map(&pk, 3);
    pack_str("message");
    pack_str("1 line(s) cannot be held in full");
    pack_str("shortfalls");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 1);
    pack_str("sku");
    pack_str("A");
    pack_str("code");
    pack_str("INSUFFICIENT_STOCK");
    msgpack_pack_nil(&pk);
    size_t first = sb.size;
    /* a second reply right behind it: the first is sized exactly */
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 8);
    msgpack_pack_nil(&pk);
    pack_str("pong");
    wire_reply_t r;
    const char *why = "";
    cr_assert_eq(wire_reply_scan((const uint8_t *)sb.data, sb.size, &r, &why), (long)first);
    cr_assert(r.is_error);
    cr_assert_str_eq(r.code, "INSUFFICIENT_STOCK");
    cr_assert_eq(r.msgid, 7);
    cr_assert_eq(wire_reply_scan((const uint8_t *)sb.data + first, sb.size - first, &r, &why),
                 (long)(sb.size - first));
    cr_assert_eq(r.msgid, 8);
    cr_assert(!r.is_error);
}

Test(wire, not_a_response_is_rejected)
{
    const uint8_t request[] = {0x94, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80};
    const uint8_t never_used[] = {0xc1};
    wire_reply_t r;
    const char *why = "";
    cr_assert_eq(wire_reply_scan(request, sizeof(request), &r, &why), -1);
    cr_assert_eq(wire_object_bytes(never_used, 1), -1);
}

Test(wire, all_scalar_widths_are_sized)
{
    msgpack_pack_array(&pk, 12);
    msgpack_pack_int8(&pk, -100);
    msgpack_pack_int16(&pk, -30000);
    msgpack_pack_int32(&pk, -2000000000);
    msgpack_pack_int64(&pk, -5000000000LL);
    msgpack_pack_uint64(&pk, 1ull << 60);
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_double(&pk, 2.5);
    msgpack_pack_true(&pk);
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "abc", 3);
    msgpack_pack_ext(&pk, 4, 1);
    msgpack_pack_ext_body(&pk, "abcd", 4);
    msgpack_pack_ext(&pk, 20, 2);
    msgpack_pack_ext_body(&pk, "abcdefghijabcdefghij", 20);
    msgpack_pack_map(&pk, 0);
    cr_assert_eq(wire_object_bytes((const uint8_t *)sb.data, sb.size), (long)sb.size);
}

/* The bench, the client library and the server frame MessagePack with one scanner
 * (client/frame.h): the same size for every object and prefix, and the same depth limit. */
Test(wire, sizes_objects_exactly_as_the_server_scanner_does_with_its_depth_limit)
{
    /* a reply-like object with every kind of item */
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint32(&pk, 70000);
    msgpack_pack_nil(&pk);
    msgpack_pack_map(&pk, 4);
    pack_str("bin");
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "abc", 3);
    pack_str("ext");
    msgpack_pack_ext(&pk, 5, 7);
    msgpack_pack_ext_body(&pk, "12345", 5);
    pack_str("float");
    msgpack_pack_double(&pk, 1.5);
    pack_str("ints");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int64(&pk, -1234567890123);
    msgpack_pack_uint16(&pk, 65535);
    msgpack_pack_true(&pk);
    for (size_t len = 0; len < sb.size; len++) {
        cr_assert_eq(wire_object_bytes((const uint8_t *)sb.data, len),
                     frame_object_bytes((const uint8_t *)sb.data, len), "prefix %zu", len);
        cr_assert_eq(wire_object_bytes((const uint8_t *)sb.data, len), 0, "prefix %zu", len);
    }
    cr_assert_eq(wire_object_bytes((const uint8_t *)sb.data, sb.size), (long)sb.size);

    /* nesting: ALLOT_MSGPACK_DEPTH_MAX arrays are fine, one more is refused, by both */
    uint8_t nested[ALLOT_MSGPACK_DEPTH_MAX + 2];
    memset(nested, 0x91, sizeof(nested));
    nested[ALLOT_MSGPACK_DEPTH_MAX] = 0xc0;
    cr_assert_eq(wire_object_bytes(nested, ALLOT_MSGPACK_DEPTH_MAX + 1),
                 ALLOT_MSGPACK_DEPTH_MAX + 1);
    nested[ALLOT_MSGPACK_DEPTH_MAX] = 0x91;
    nested[ALLOT_MSGPACK_DEPTH_MAX + 1] = 0xc0;
    cr_assert_eq(wire_object_bytes(nested, sizeof(nested)), -1, "deeper than the limit");
    cr_assert_lt(frame_object_bytes(nested, sizeof(nested)), 0);
}
