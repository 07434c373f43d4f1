/* test_net_decode.c - the one-pass request decoder agrees with the framer and msgpack-c: what it
 * decodes, frame_scan finds complete at the same length and msgpack_unpack decodes to the same
 * object; everything else it leaves to them. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "client/frame.h"
#include "core/limits.h"
#include "core/common.h"
#include "net/decode.h"
#include "net/rpc.h"
#include "tests/msgpack_same.h"

#define DECODE_TEST_BYTES_MAX (64u * 1024)

/* Requests whose envelope the decoder checked (decode_request_envelope), counted by
 * check_agrees. */
static size_t envelopes_checked;

/* What the decoder checked of object's envelope is what the dispatcher's check (rpc.h) gives. */
static void check_envelope_agrees(const msgpack_object *object, rpc_envelope_t *checked)
{
    rpc_envelope_t read;
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    int params_rc;
    cr_assert_eq(rpc_request_read(object, &read, &params_rc, &error), 0,
                 "the decoder checked an envelope rpc.h refuses: %s", error.message);
    cr_assert_eq(checked->type, read.type);
    cr_assert_eq(checked->has_msgid, read.has_msgid);
    cr_assert_eq(checked->msgid, read.msgid);
    cr_assert_eq(checked->method.ptr, read.method.ptr);
    cr_assert_eq(checked->method.len, read.method.len);
    cr_assert_null(checked->msgid_out_of_range);
    if (checked->params != NULL) {
        cr_assert_eq(params_rc, 0, "the decoder checked params rpc.h refuses: %s", error.message);
        cr_assert_eq(checked->params, read.params);
    } else {
        allot_error_detail_t params_error;
        allot_error_detail_clear(&params_error);
        cr_assert_eq(rpc_params_check(object, checked, &params_error), params_rc);
        cr_assert_eq(checked->params, params_rc == 0 ? read.params : NULL);
    }
    envelopes_checked++;
}

/* decode_request on data[0, len) says what frame_scan and msgpack_unpack say, and what it
 * checked of the envelope what rpc.h says; returns the decoder's status. */
static decode_status_t check_agrees(const uint8_t *data, size_t len, size_t bytes_max)
{
    frame_scanner_t scanner;
    frame_scanner_reset(&scanner);
    size_t frame_bytes = 0, decoded_bytes = 0;
    frame_status_t framed = frame_scan(&scanner, data, len, bytes_max, &frame_bytes);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object decoded;
    decode_result_t result;
    decode_status_t status =
        decode_request_envelope(data, len, bytes_max, &zone, &decoded, &result);
    decoded_bytes = status == DECODE_COMPLETE ? result.frame_bytes : 0;
    /* near the limit the framer decides (decode.h) */
    bool near_limit = frame_bytes + ALLOT_REQUEST_DEPTH_MAX > bytes_max;
    if (framed != FRAME_COMPLETE || near_limit) {
        cr_assert_eq(status, DECODE_UNDECIDED, "the framer says %d, the decoder decoded %zu bytes",
                     framed, decoded_bytes);
        msgpack_zone_destroy(&zone);
        return status;
    }
    cr_assert_eq(status, DECODE_COMPLETE, "the framer found %zu bytes, the decoder none",
                 frame_bytes);
    cr_assert_eq(decoded_bytes, frame_bytes);
    msgpack_zone unpack_zone;
    msgpack_zone_init(&unpack_zone, 4096);
    msgpack_object unpacked;
    size_t offset = 0;
    cr_assert_eq(msgpack_unpack((const char *)data, frame_bytes, &offset, &unpack_zone, &unpacked),
                 MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq(offset, frame_bytes);
    cr_assert(msgpack_same_object(&decoded, &unpacked),
              "the decoded object differs from msgpack-c's");
    if (result.checked)
        check_envelope_agrees(&decoded, &result.envelope);
    msgpack_zone_destroy(&unpack_zone);
    msgpack_zone_destroy(&zone);
    return status;
}

/* A request whose params map holds one value of every MessagePack format, each width written out
 * (msgpack-c's packer would pick the smallest). */
static size_t every_format_request(uint8_t *out)
{
    static const uint8_t head[] = {0x94, 0x00, 0xce, 0x00, 0x01, 0x00, 0x00, 0xa4,
                                   'e',  'c',  'h',  'o',  0x91, 0xde, 0x00, 0x23};
    static const uint8_t values[] = {
        0xa1, 'a',  0xc0,                                              /* nil */
        0xa1, 'b',  0xc3, 0xa1, 'c',  0xc2,                            /* true, false */
        0xa1, 'd',  0x7f, 0xa1, 'e',  0xe0,                            /* fixints */
        0xa1, 'f',  0xcc, 0xff, 0xa1, 'g',  0xcd, 0x01, 0x00,          /* uint 8, 16 */
        0xa1, 'h',  0xce, 0x00, 0x01, 0x00, 0x00,                      /* uint 32 */
        0xa1, 'i',  0xcf, 0x80, 0,    0,    0,    0,    0,    0,    0, /* uint 64 above INT64_MAX */
        0xa1, 'j',  0xd0, 0x80, 0xa1, 'k',  0xd0, 0x05,                /* int 8 < 0 and >= 0 */
        0xa1, 'l',  0xd1, 0xff, 0x00, 0xa1, 'm',  0xd2, 0x00, 0x00, 0x00, 0x07, /* int 16, 32 */
        0xa1, 'n',  0xd3, 0x80, 0,    0,    0,    0,    0,    0,    0,          /* INT64_MIN */
        0xa1, 'o',  0xca, 0x3f, 0xc0, 0x00, 0x00,                               /* float 1.5 */
        0xa1, 'p',  0xcb, 0x7f, 0xf8, 0,    0,    0,    0,    0,    1,          /* a NaN */
        0xa1, 'q',  0xd9, 0x02, 'h',  'i',  0xa1, 'r',  0xda, 0x00, 0x01, 'x',  /* str 8, 16 */
        0xa1, 's',  0xdb, 0x00, 0x00, 0x00, 0x00,                               /* str 32, empty */
        0xa1, 't',  0xc4, 0x01, 0x00, 0xa1, 'u',  0xc5, 0x00, 0x00,             /* bin 8, 16 */
        0xa1, 'v',  0xc6, 0x00, 0x00, 0x00, 0x02, 0xde, 0xad,                   /* bin 32 */
        0xa1, 'w',  0xc7, 0x01, 0xff, 0x42, 0xa1, 'x',  0xc8, 0x00, 0x00, 0x05, /* ext 8, 16 */
        0xa1, 'y',  0xc9, 0x00, 0x00, 0x00, 0x01, 0x01, 0x07,                   /* ext 32 */
        0xa1, 'z',  0xd4, 0x01, 0x02, 0xa1, 'A',  0xd5, 0x01, 0x02, 0x03,       /* fixext 1, 2 */
        0xa1, 'B',  0xd6, 0x01, 1,    2,    3,    4,    0xa1, 'C',  0xd7, 0x01, 1,
        2,    3,    4,    5,    6,    7,    8,    0xa1, 'D',  0xd8, 0x01, 1,    2,
        3,    4,    5,    6,    7,    8,    9,    10,   11,   12,   13,   14,   15,
        16,   0xa1, 'E',  0x90, 0xa1, 'F',  0x80,                         /* empty */
        0xa1, 'G',  0xdc, 0x00, 0x02, 0x01, 0x92, 0x02, 0x81, 0x03, 0x04, /* array 16 */
        0xa1, 'H',  0xdd, 0x00, 0x00, 0x00, 0x01, 0xdf, 0x00, 0x00, 0x00, 0x01, 0xc0,
        0xc0, 0xa1, 'I',  0xd3, 0x00, 0,    0,    0,    0,    0,    0,    0x09, /* int 64 >= 0 */
    };
    memcpy(out, head, sizeof(head));
    memcpy(out + sizeof(head), values, sizeof(values));
    return sizeof(head) + sizeof(values);
}

Test(decode, every_format_decodes_as_msgpack_c_decodes_it)
{
    uint8_t request[512];
    size_t len = every_format_request(request);
    cr_assert_eq(check_agrees(request, len, DECODE_TEST_BYTES_MAX), DECODE_COMPLETE);
    /* and with bytes after it: only the first request is taken */
    uint8_t two[1024];
    memcpy(two, request, len);
    memcpy(two + len, request, len);
    cr_assert_eq(check_agrees(two, 2 * len, DECODE_TEST_BYTES_MAX), DECODE_COMPLETE);
}

Test(decode, every_proper_prefix_is_left_to_the_framer)
{
    uint8_t request[512];
    size_t len = every_format_request(request);
    for (size_t cut = 0; cut < len; cut++)
        cr_assert_eq(check_agrees(request, cut, DECODE_TEST_BYTES_MAX), DECODE_UNDECIDED,
                     "prefix of %zu bytes", cut);
}

Test(decode, a_request_at_or_near_the_size_limit_is_left_to_the_framer)
{
    uint8_t request[512];
    size_t len = every_format_request(request);
    cr_assert_eq(check_agrees(request, len, len + ALLOT_REQUEST_DEPTH_MAX), DECODE_COMPLETE);
    for (size_t max = len - 2; max < len + ALLOT_REQUEST_DEPTH_MAX; max++)
        cr_assert_eq(check_agrees(request, len, max), DECODE_UNDECIDED, "bytes_max %zu", max);
}

/* [0, 1, "m", [x]] with x nested `levels` arrays deep. */
static size_t nested_request(uint8_t *out, int levels)
{
    size_t n = 0;
    static const uint8_t head[] = {0x94, 0x00, 0x01, 0xa1, 'm'};
    memcpy(out, head, sizeof(head));
    n = sizeof(head);
    for (int i = 0; i < levels; i++)
        out[n++] = 0x91;
    out[n++] = 0x01;
    return n;
}

Test(decode, nesting_up_to_the_request_depth_limit_and_no_deeper)
{
    uint8_t request[64];
    /* the envelope is one level: ALLOT_REQUEST_DEPTH_MAX - 1 more fit */
    size_t len = nested_request(request, ALLOT_REQUEST_DEPTH_MAX - 1);
    cr_assert_eq(check_agrees(request, len, DECODE_TEST_BYTES_MAX), DECODE_COMPLETE);
    len = nested_request(request, ALLOT_REQUEST_DEPTH_MAX);
    cr_assert_eq(check_agrees(request, len, DECODE_TEST_BYTES_MAX), DECODE_UNDECIDED);
}

Test(decode, an_envelope_in_every_array_format_and_only_of_3_or_4_elements)
{
    /* [0, 1, "m", [{}]] and [2, "m", [{}]] in fixarray, array 16 and array 32; then 2 and 5 */
    static const uint8_t body4[] = {0x00, 0x01, 0xa1, 'm', 0x91, 0x80};
    static const uint8_t body3[] = {0x02, 0xa1, 'm', 0x91, 0x80};
    static const uint8_t headers[][5] = {{0x94},
                                         {0xdc, 0x00, 0x04},
                                         {0xdd, 0x00, 0x00, 0x00, 0x04},
                                         {0x93},
                                         {0xdc, 0x00, 0x03},
                                         {0xdd, 0x00, 0x00, 0x00, 0x03},
                                         {0x92},
                                         {0xdc, 0x00, 0x02},
                                         {0xdd, 0x00, 0x00, 0x00, 0x05},
                                         {0xdd, 0x00, 0x00, 0x01, 0x04}};
    static const size_t header_lengths[] = {1, 3, 5, 1, 3, 5, 1, 3, 5, 5};
    for (size_t i = 0; i < sizeof(header_lengths) / sizeof(header_lengths[0]); i++) {
        uint8_t request[32];
        size_t len = header_lengths[i];
        memcpy(request, headers[i], len);
        bool three = i == 3 || i == 4 || i == 5;
        memcpy(request + len, three ? body3 : body4, three ? sizeof(body3) : sizeof(body4));
        len += three ? sizeof(body3) : sizeof(body4);
        cr_assert_eq(check_agrees(request, len, DECODE_TEST_BYTES_MAX),
                     i < 6 ? DECODE_COMPLETE : DECODE_UNDECIDED, "header %zu", i);
    }
}

/* The head [type, msgid, method, ... read straight (decode.c, request_head_read): every msgid
 * width and method format, a type that is not a fixint, a method that is not a fixstr, each
 * with its params, whole and cut after every byte. */
Test(decode, a_request_head_of_every_msgid_width_and_method_format_decodes_as_msgpack_c_does)
{
    static const uint8_t types[][1] = {{0x00}, {0x02}, {0x7f}};
    static const uint8_t msgids[][9] = {{0x00},
                                        {0x7f},
                                        {0xcc, 0x80},
                                        {0xcd, 0x01, 0x00},
                                        {0xce, 0xff, 0xff, 0xff, 0xff},
                                        {0xcf, 0, 0, 0, 0, 0, 0, 0, 0x05},
                                        {0xd0, 0x05},
                                        {0xa1, 'x'},
                                        {0xc0}};
    static const size_t msgid_lengths[] = {1, 1, 2, 3, 5, 9, 2, 2, 1};
    static const uint8_t methods[][6] = {
        {0xa4, 'p', 'i', 'n', 'g'}, {0xa0}, {0xd9, 0x01, 'm'}, {0x05}, {0x91, 0xa1, 'm'}};
    static const size_t method_lengths[] = {5, 1, 3, 1, 3};
    static const uint8_t params[][3] = {{0x90}, {0x91, 0x80}, {0x91, 0x81}};
    static const size_t params_lengths[] = {1, 2, 2};
    size_t complete = 0;
    envelopes_checked = 0;
    for (size_t t = 0; t < 3; t++)
        for (size_t i = 0; i < sizeof(msgid_lengths) / sizeof(msgid_lengths[0]); i++)
            for (size_t m = 0; m < sizeof(method_lengths) / sizeof(method_lengths[0]); m++)
                for (size_t k = 0; k < 3; k++) {
                    uint8_t request[32] = {0x94};
                    size_t len = 1;
                    memcpy(request + len, types[t], 1);
                    len += 1;
                    memcpy(request + len, msgids[i], msgid_lengths[i]);
                    len += msgid_lengths[i];
                    memcpy(request + len, methods[m], method_lengths[m]);
                    len += method_lengths[m];
                    memcpy(request + len, params[k], params_lengths[k]);
                    len += params_lengths[k];
                    for (size_t cut = 0; cut <= len; cut++)
                        check_agrees(request, cut, DECODE_TEST_BYTES_MAX);
                    complete +=
                        check_agrees(request, len, DECODE_TEST_BYTES_MAX) == DECODE_COMPLETE;
                }
    /* every one whose last params are not cut short ({0x91, 0x81} misses its pair) */
    cr_assert_eq(complete, 3 * 9 * 5 * 2);
    /* the decoder checked the envelope of every request (type 0) of a uint msgid of at most 32
     * bits and a method of a fixstr, not empty: "ping" with [] or [{}], each twice (the last
     * cut is the whole request) */
    cr_assert_eq(envelopes_checked, 5 * 1 * 2 * 2);
}

/* A call without arguments, params [] or [{}] (read straight, decode.c params_empty_read), and
 * params that only start like them: whole, cut after every byte, with the next request behind it,
 * and at every size limit from the framer's edge to past it. */
Test(decode, a_call_without_arguments_decodes_as_msgpack_c_does_whole_cut_and_at_the_limit)
{
    /* [], [{}], then what only starts like them: [{"a": ...}], [[]], [{}, {}], {} (the last
     * three are the dispatcher's to refuse) */
    static const uint8_t params[][5] = {
        {0x90},       {0x91, 0x80},       {0x91, 0x81, 0xa1, 'a', 0x01},
        {0x91, 0x90}, {0x92, 0x80, 0x80}, {0x80}};
    static const size_t params_lengths[] = {1, 2, 5, 2, 3, 1};
    static const uint8_t heads[][8] = {{0x94, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g'},
                                       {0x94, 0x00, 0xce, 0x00, 0x01, 0x00, 0x00, 0xa0}};
    static const size_t head_lengths[] = {8, 8};
    size_t complete = 0;
    envelopes_checked = 0;
    for (size_t h = 0; h < 2; h++)
        for (size_t k = 0; k < sizeof(params_lengths) / sizeof(params_lengths[0]); k++) {
            uint8_t request[32];
            memcpy(request, heads[h], head_lengths[h]);
            size_t len = head_lengths[h];
            memcpy(request + len, params[k], params_lengths[k]);
            len += params_lengths[k];
            for (size_t cut = 0; cut < len; cut++)
                cr_assert_eq(check_agrees(request, cut, DECODE_TEST_BYTES_MAX), DECODE_UNDECIDED,
                             "head %zu params %zu cut at %zu", h, k, cut);
            complete += check_agrees(request, len, DECODE_TEST_BYTES_MAX) == DECODE_COMPLETE;
            /* the next request right behind: this one ends where its params end */
            memcpy(request + len, request, len);
            cr_assert_eq(check_agrees(request, 2 * len, DECODE_TEST_BYTES_MAX), DECODE_COMPLETE);
            for (size_t max = 1; max < len + ALLOT_REQUEST_DEPTH_MAX + 2; max++)
                check_agrees(request, len, max);
        }
    cr_assert_eq(complete, 2 * 6);
    /* "ping"'s with each params (the other head's method is empty), whole, with the next request
     * behind it and at the two largest limits: params read ([] and [{}]) or left to check */
    cr_assert_eq(envelopes_checked, 6 * 4);
}

Test(decode, containers_that_end_together_and_empty_ones_end_where_msgpack_c_ends_them)
{
    /* several levels closed by one item, empty containers last and inside, a map's last value a
     * container, a second request right after, a container that is not the envelope's last */
    static const uint8_t requests[][32] = {
        {0x94, 0x00, 0x01, 0xa1, 'm', 0x91, 0x81, 0xa1, 'a', 0x91, 0x91, 0x91, 0x01},
        {0x94, 0x00, 0x01, 0xa1, 'm', 0x90},
        {0x94, 0x00, 0x01, 0xa1, 'm', 0x91, 0x82, 0xa1, 'a', 0x90, 0xa1, 'b', 0x80},
        {0x94, 0x00, 0x01, 0xa1, 'm', 0x92, 0x80, 0x91, 0x90},
        {0x94, 0x00, 0x01, 0xa1, 'm', 0x91, 0x81, 0xa1, 'a', 0x92, 0x81, 0x01, 0x90, 0xc0, 0x94},
        {0x93, 0x02, 0xa0, 0x91, 0x81, 0xc0, 0xc0, 0x93, 0x02, 0xa0, 0x90},
        {0x94, 0x00, 0x91, 0x91, 0x01, 0xa1, 'm', 0x90}, /* a container before the last element */
    };
    static const size_t lengths[] = {13, 6, 13, 9, 15, 11, 8};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
        cr_assert_eq(check_agrees(requests[i], lengths[i], DECODE_TEST_BYTES_MAX), DECODE_COMPLETE,
                     "request %zu", i);
}

Test(decode, a_huge_declared_count_allocates_nothing)
{
    /* [0, 1, "m", array32 of 4 billion elements] and a few bytes */
    static const uint8_t request[] = {0x94, 0x00, 0x01, 0xa1, 'm',  0xdd, 0xff,
                                      0xff, 0xff, 0xff, 0x01, 0x02, 0x03};
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object object;
    size_t bytes = 0;
    cr_assert_eq(
        decode_request(request, sizeof(request), DECODE_TEST_BYTES_MAX, &zone, &object, &bytes),
        DECODE_UNDECIDED);
    /* only the envelope's four elements were allocated */
    cr_assert_leq(4096 - zone.chunk_list.free, 4 * sizeof(msgpack_object));
    msgpack_zone_destroy(&zone);
    check_agrees(request, sizeof(request), DECODE_TEST_BYTES_MAX);
}

Test(decode, what_is_not_an_envelope_or_not_msgpack_is_left_to_the_framer)
{
    static const uint8_t not_envelopes[][6] = {
        {0x92, 0x00, 0x01},                   /* an array of 2 */
        {0x95, 0x00, 0x01, 0x02, 0x03, 0x04}, /* of 5 */
        {0x81, 0xa1, 'a', 0x01},              /* a map */
        {0x01},                               /* a scalar */
        {0x94, 0x00, 0x01, 0xc1, 0x90, 0x90}, /* the never-used byte */
    };
    static const size_t lengths[] = {3, 6, 4, 1, 6};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
        cr_assert_eq(check_agrees(not_envelopes[i], lengths[i], DECODE_TEST_BYTES_MAX),
                     DECODE_UNDECIDED, "input %zu", i);
}

/* xorshift64*: the same inputs on every run */
static uint64_t random_next(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * UINT64_C(2685821657736338717);
}

Test(decode, random_mutations_agree_with_the_framer_and_msgpack_c)
{
    uint8_t seed[512], input[600];
    size_t seed_len = every_format_request(seed);
    uint64_t state = UINT64_C(0x9e3779b97f4a7c15);
    unsigned complete = 0;
    for (int round = 0; round < 200000; round++) {
        size_t len = seed_len;
        memcpy(input, seed, len);
        int edits = 1 + (int)(random_next(&state) % 4);
        for (int e = 0; e < edits; e++) {
            uint64_t r = random_next(&state);
            size_t at = (size_t)(r >> 8) % len;
            if (r % 3 == 0)
                input[at] = (uint8_t)(r >> 40); /* a byte changed */
            else if (r % 3 == 1)
                len = at + 1; /* cut */
            else if (len < sizeof(input))
                memmove(input + at + 1, input + at, len++ - at); /* a byte doubled */
        }
        size_t bytes_max = random_next(&state) % 8 == 0 ? len / 2 + 1 : DECODE_TEST_BYTES_MAX;
        complete += check_agrees(input, len, bytes_max) == DECODE_COMPLETE;
    }
    cr_expect_gt(complete, 1000, "only %u of the mutated inputs were whole requests", complete);
}
