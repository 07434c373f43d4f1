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

/* The bench's flat walk answers as the server's scanner (client/frame.h) does: the same size for
 * every object and prefix, and the same depth limit. */
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

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* One random object, item by item (no recursion): every scalar width, str/bin/ext of every
 * length encoding, arrays and maps of up to 20 elements (array16/map16 past 15), nesting as it
 * comes; containers stop opening after `items_max` items. */
static void pack_random_object(uint64_t *rng, uint32_t items_max)
{
    static const char text[300] = "abcdefghijklmnopqrstuvwxyz";
    uint64_t owed = 1;
    for (uint32_t written = 0; owed > 0; written++) {
        owed--;
        uint64_t r = rng_next(rng);
        uint32_t kind = (uint32_t)(r % (written < items_max ? 14 : 10));
        uint32_t n = (uint32_t)((r >> 8) % 4);
        size_t length = (r >> 16) % 3 == 0 ? 40 + (r >> 20) % 260 : (r >> 20) % 20;
        switch (kind) {
        case 0:
            msgpack_pack_uint64(&pk, r >> (r % 64));
            break;
        case 1:
            msgpack_pack_int64(&pk, -(int64_t)(r >> (1 + r % 63)));
            break;
        case 2:
            msgpack_pack_double(&pk, 1.5);
            break;
        case 3:
            msgpack_pack_float(&pk, 2.5f);
            break;
        case 4:
            msgpack_pack_str_with_body(&pk, text, length);
            break;
        case 5:
            msgpack_pack_bin_with_body(&pk, text, length);
            break;
        case 6:
            msgpack_pack_ext_with_body(&pk, text, (r >> 9) % 2 ? length : 1u << n, 7);
            break;
        case 7:
            msgpack_pack_nil(&pk);
            break;
        case 8:
            msgpack_pack_true(&pk);
            break;
        case 9:
            msgpack_pack_uint8(&pk, (uint8_t)r);
            break;
        case 10:
        case 11:
            n = (r >> 24) % 5 == 0 ? 16 + n : n;
            msgpack_pack_array(&pk, n);
            owed += n;
            break;
        default:
            n = (r >> 24) % 5 == 0 ? 16 + n : n;
            msgpack_pack_map(&pk, n);
            owed += 2u * n;
            break;
        }
    }
}

static long frame_verdict(const uint8_t *bytes, size_t len)
{
    long n = frame_object_bytes(bytes, len);
    return n < 0 ? -1 : n;
}

/* wire_object_bytes walks flat for speed; on every object, every prefix of it and every one-byte
 * mutation it must say what the server's resumable scanner says. */
Test(wire, flat_walk_agrees_with_the_server_scanner_on_random_objects_prefixes_and_mutations)
{
    uint64_t rng = 20;
    for (int object = 0; object < 400; object++) {
        sb.size = 0;
        pack_random_object(&rng, 1 + (uint32_t)(rng_next(&rng) % 60));
        uint8_t *bytes = (uint8_t *)sb.data;
        cr_assert_eq(wire_object_bytes(bytes, sb.size), (long)sb.size, "object %d", object);
        for (size_t len = 0; len < sb.size; len++)
            cr_assert_eq(wire_object_bytes(bytes, len), 0, "object %d prefix %zu", object, len);
        for (int mutation = 0; mutation < 20; mutation++) {
            size_t at = rng_next(&rng) % sb.size;
            uint8_t saved = bytes[at];
            bytes[at] = (uint8_t)rng_next(&rng);
            for (size_t len = at; len <= sb.size; len += 1 + len / 8)
                cr_assert_eq(wire_object_bytes(bytes, len), frame_verdict(bytes, len),
                             "object %d, byte %zu set to 0x%02x, %zu bytes", object, at, bytes[at],
                             len);
            bytes[at] = saved;
        }
    }
}

/* A success reply is read in one pass (head, then one walk over the result): the same size,
 * msgid and result as the walk of the whole reply, 0 for every prefix, and the same depth limit
 * as the whole reply's. */
Test(wire, success_reply_read_in_one_pass_agrees_with_the_whole_reply_s_walk)
{
    uint64_t rng = 7;
    const uint32_t msgids[] = {0, 127, 128, 255, 256, 65535, 65536, UINT32_MAX};
    for (int object = 0; object < 200; object++) {
        sb.size = 0;
        uint32_t msgid = msgids[object % 8];
        msgpack_pack_array(&pk, 4);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_uint32(&pk, msgid);
        msgpack_pack_nil(&pk);
        size_t head = sb.size;
        pack_random_object(&rng, 1 + (uint32_t)(rng_next(&rng) % 40));
        const uint8_t *bytes = (const uint8_t *)sb.data;
        wire_reply_t r;
        const char *why = "";
        cr_assert_eq(wire_reply_scan(bytes, sb.size, &r, &why), (long)sb.size, "%s", why);
        cr_assert_eq(wire_object_bytes(bytes, sb.size), (long)sb.size);
        cr_assert_eq(r.msgid, msgid);
        cr_assert(!r.is_error);
        cr_assert_eq(r.result, bytes + head);
        cr_assert_eq(r.result_bytes, sb.size - head);
        for (size_t len = 0; len < sb.size; len++)
            cr_assert_eq(wire_reply_scan(bytes, len, &r, &why), 0, "prefix %zu", len);
    }
    /* the result nested as deep as the whole reply may be, then one level more */
    uint8_t deep[8 + ALLOT_MSGPACK_DEPTH_MAX] = {0x94, 0x01, 0x05, 0xc0};
    memset(deep + 4, 0x91, ALLOT_MSGPACK_DEPTH_MAX - 1);
    deep[4 + ALLOT_MSGPACK_DEPTH_MAX - 1] = 0xc0;
    wire_reply_t r;
    const char *why = "";
    size_t deep_bytes = 4 + ALLOT_MSGPACK_DEPTH_MAX;
    cr_assert_eq(wire_reply_scan(deep, deep_bytes, &r, &why), (long)deep_bytes, "%s", why);
    deep[4 + ALLOT_MSGPACK_DEPTH_MAX - 1] = 0x91;
    deep[4 + ALLOT_MSGPACK_DEPTH_MAX] = 0xc0;
    cr_assert_eq(wire_reply_scan(deep, deep_bytes + 1, &r, &why), -1);
    cr_assert_lt(frame_object_bytes(deep, deep_bytes + 1), 0);
}

/* The walk counts the objects still owed and keeps no stack while an object has at most
 * ALLOT_MSGPACK_DEPTH_MAX non-empty containers; past that it walks again keeping the depth.
 * Either way: the server scanner's answer, on both sides of that line, shallow or deep. */
Test(wire, many_containers_shallow_or_deep_are_sized_as_the_server_scanner_does)
{
    const uint32_t counts[] = {ALLOT_MSGPACK_DEPTH_MAX - 1, ALLOT_MSGPACK_DEPTH_MAX,
                               ALLOT_MSGPACK_DEPTH_MAX + 1, 3 * ALLOT_MSGPACK_DEPTH_MAX};
    for (int k = 0; k < 4; k++) {
        /* shallow: an array of `n` one-element arrays, then of `n` empty maps */
        uint32_t n = counts[k];
        sb.size = 0;
        msgpack_pack_array(&pk, n);
        for (uint32_t i = 0; i < n; i++) {
            msgpack_pack_array(&pk, 1);
            msgpack_pack_uint32(&pk, i * 1000u);
        }
        size_t shallow = sb.size;
        for (size_t len = 0; len <= shallow; len++)
            cr_assert_eq(wire_object_bytes((const uint8_t *)sb.data, len),
                         frame_verdict((const uint8_t *)sb.data, len), "%u arrays, %zu bytes", n,
                         len);
        cr_assert_eq(wire_object_bytes((const uint8_t *)sb.data, shallow), (long)shallow);
        sb.size = 0;
        msgpack_pack_array(&pk, n);
        for (uint32_t i = 0; i < n; i++)
            msgpack_pack_map(&pk, 0);
        cr_assert_eq(wire_object_bytes((const uint8_t *)sb.data, sb.size), (long)sb.size);
    }
    /* deep, with siblings: nesting at the limit next to many containers, then one level more */
    for (uint32_t depth = ALLOT_MSGPACK_DEPTH_MAX - 1; depth <= ALLOT_MSGPACK_DEPTH_MAX + 1;
         depth++) {
        sb.size = 0;
        msgpack_pack_array(&pk, 2);
        msgpack_pack_array(&pk, 20);
        for (int i = 0; i < 20; i++) {
            msgpack_pack_array(&pk, 1);
            msgpack_pack_nil(&pk);
        }
        for (uint32_t d = 1; d < depth; d++)
            msgpack_pack_array(&pk, 1);
        pack_str("leaf");
        for (size_t len = 0; len <= sb.size; len++)
            cr_assert_eq(wire_object_bytes((const uint8_t *)sb.data, len),
                         frame_verdict((const uint8_t *)sb.data, len), "depth %u, %zu bytes", depth,
                         len);
        cr_assert_eq(wire_object_bytes((const uint8_t *)sb.data, sb.size),
                     depth <= ALLOT_MSGPACK_DEPTH_MAX ? (long)sb.size : -1, "depth %u", depth);
    }
}

/* A success whose result is one item sized by its first byte (nil, bool, ints, floats, fixstr,
 * fixext, empty containers) is read without a walk: the same size and result as the walk of the
 * whole reply, and 0 for every prefix. */
Test(wire, success_with_a_scalar_result_is_sized_from_its_first_byte)
{
    for (int kind = 0; kind < 14; kind++) {
        sb.size = 0;
        msgpack_pack_array(&pk, 4);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_uint32(&pk, 4096u * (uint32_t)kind + 7);
        msgpack_pack_nil(&pk);
        size_t head = sb.size;
        switch (kind) {
        case 0:
            msgpack_pack_nil(&pk);
            break;
        case 1:
            msgpack_pack_true(&pk);
            break;
        case 2:
            msgpack_pack_int64(&pk, -5);
            break;
        case 3:
            msgpack_pack_int64(&pk, -300);
            break;
        case 4:
            msgpack_pack_uint64(&pk, UINT64_MAX);
            break;
        case 5:
            msgpack_pack_uint64(&pk, 70000);
            break;
        case 6:
            msgpack_pack_double(&pk, 0.25);
            break;
        case 7:
            msgpack_pack_float(&pk, 0.5f);
            break;
        case 8:
            pack_str("pong");
            break;
        case 9:
            pack_str("a string of thirty-one bytes!!!");
            break;
        case 10:
            msgpack_pack_ext_with_body(&pk, "12345678", 8, 3);
            break;
        case 11:
            msgpack_pack_ext_with_body(&pk, "1234567812345678", 16, 3);
            break;
        case 12:
            msgpack_pack_map(&pk, 0);
            break;
        default:
            msgpack_pack_array(&pk, 0);
            break;
        }
        const uint8_t *bytes = (const uint8_t *)sb.data;
        wire_reply_t r;
        const char *why = "";
        cr_assert_eq(wire_reply_scan(bytes, sb.size, &r, &why), (long)sb.size, "kind %d", kind);
        cr_assert_eq(r.msgid, 4096u * (uint32_t)kind + 7);
        cr_assert(!r.is_error);
        cr_assert_eq(r.result, bytes + head);
        cr_assert_eq(r.result_bytes, sb.size - head, "kind %d", kind);
        for (size_t len = 0; len < sb.size; len++)
            cr_assert_eq(wire_reply_scan(bytes, len, &r, &why), 0, "kind %d prefix %zu", kind, len);
    }
}
