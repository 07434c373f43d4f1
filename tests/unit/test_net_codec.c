/* test_net_codec.c - the request framer and the MessagePack-RPC envelope checks. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdbool.h>
#include <string.h>

#include "core/errors.h"
#include "core/limits.h"
#include "net/dispatch.h"
#include "client/frame.h"
#include "net/pack.h"
#include "net/rpc.h"

static frame_status_t scan_all(const void *bytes, size_t len, size_t bytes_max, size_t *frame)
{
    frame_scanner_t scanner;
    frame_scanner_reset(&scanner);
    return frame_scan(&scanner, bytes, len, bytes_max, frame);
}

/* Pack [0, msgid, method, [{}]] into sbuf. */
static void pack_request(msgpack_sbuffer *sbuf, uint32_t msgid, const char *method)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint32(&pk, 0);
    msgpack_pack_uint32(&pk, msgid);
    msgpack_pack_str(&pk, strlen(method));
    msgpack_pack_str_body(&pk, method, strlen(method));
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 0);
}

Test(frame, finds_the_end_of_a_complete_request)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    pack_request(&sbuf, 7, "ping");
    size_t whole = sbuf.size;
    pack_request(&sbuf, 8, "ping"); /* a second, pipelined request follows */
    size_t frame = 0;
    cr_assert_eq(scan_all(sbuf.data, sbuf.size, 1 << 20, &frame), FRAME_COMPLETE);
    cr_assert_eq(frame, whole);
    msgpack_sbuffer_destroy(&sbuf);
}

Test(frame, every_proper_prefix_needs_more_and_resumes_byte_by_byte)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    pack_request(&sbuf, 70000, "server.info");
    for (size_t cut = 1; cut < sbuf.size; cut++) {
        size_t frame = 0;
        cr_assert_eq(scan_all(sbuf.data, cut, 1 << 20, &frame), FRAME_NEED_MORE, "cut %zu", cut);
    }
    frame_scanner_t scanner;
    frame_scanner_reset(&scanner);
    size_t frame = 0;
    frame_status_t status = FRAME_NEED_MORE;
    for (size_t len = 1; len <= sbuf.size && status == FRAME_NEED_MORE; len++)
        status = frame_scan(&scanner, (const uint8_t *)sbuf.data, len, 1 << 20, &frame);
    cr_assert_eq(status, FRAME_COMPLETE);
    cr_assert_eq(frame, sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);
}

Test(frame, huge_array_count_is_rejected_before_any_allocation)
{
    const uint8_t bytes[] = {0xdd, 0xff, 0x00, 0x00, 0x00};
    size_t frame;
    cr_assert_eq(scan_all(bytes, sizeof(bytes), 1 << 20, &frame), FRAME_INVALID);
    /* inside an envelope, the count is checked against the bytes that may still come */
    const uint8_t nested[] = {0x94, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0xdd, 0x10, 0, 0, 0};
    cr_assert_eq(scan_all(nested, sizeof(nested), 1 << 20, &frame), FRAME_TOO_LARGE);
}

Test(frame, a_nested_request_of_exactly_the_limit_fits_and_one_byte_less_is_too_large)
{
    /* [0, 1, "m", [{"a": [[[[1, 2]]]]}]]: open containers inside open containers, each of
     * which must count once toward the bytes still owed, not once more inside its parent */
    const uint8_t bytes[] = {0x94, 0x00, 0x01, 0xa1, 'm',  0x91, 0x81, 0xa1,
                             'a',  0x91, 0x91, 0x91, 0x92, 0x01, 0x02};
    for (size_t len = 1; len <= sizeof(bytes); len++) {
        size_t frame = 0;
        frame_status_t status = scan_all(bytes, len, sizeof(bytes), &frame);
        cr_assert_eq(status, len < sizeof(bytes) ? FRAME_NEED_MORE : FRAME_COMPLETE, "len %zu",
                     len);
    }
    size_t frame = 0;
    cr_assert_eq(scan_all(bytes, sizeof(bytes), sizeof(bytes) - 1, &frame), FRAME_TOO_LARGE);
}

Test(frame, array16_envelope_of_wrong_length_is_invalid)
{
    const uint8_t bytes[] = {0xdc, 0xff, 0xff};
    size_t frame;
    cr_assert_eq(scan_all(bytes, sizeof(bytes), 1 << 20, &frame), FRAME_INVALID);
}

Test(frame, string_longer_than_the_request_limit_is_too_large_from_its_header)
{
    /* [0, 1, <str32 of 2 MiB>...] with no body sent */
    const uint8_t bytes[] = {0x94, 0x00, 0x01, 0xdb, 0x00, 0x20, 0x00, 0x00};
    size_t frame;
    cr_assert_eq(scan_all(bytes, sizeof(bytes), 1 << 20, &frame), FRAME_TOO_LARGE);
}

Test(frame, nesting_deeper_than_the_limit_is_refused)
{
    uint8_t bytes[64];
    size_t n = 0;
    bytes[n++] = 0x94;
    bytes[n++] = 0x00;
    bytes[n++] = 0x01;
    for (int i = 0; i < ALLOT_REQUEST_DEPTH_MAX + 2; i++)
        bytes[n++] = 0x91; /* [[[[... */
    size_t frame;
    cr_assert_eq(scan_all(bytes, n, 1 << 20, &frame), FRAME_TOO_DEEP);
}

Test(frame, the_never_used_byte_is_invalid)
{
    const uint8_t bytes[] = {0x94, 0x00, 0x01, 0xc1};
    size_t frame;
    cr_assert_eq(scan_all(bytes, sizeof(bytes), 1 << 20, &frame), FRAME_INVALID);
}

Test(frame, a_top_level_scalar_or_map_is_not_an_envelope)
{
    const uint8_t scalar[] = {0x01};
    const uint8_t map[] = {0x80};
    size_t frame;
    cr_assert_eq(scan_all(scalar, 1, 1 << 20, &frame), FRAME_INVALID);
    cr_assert_eq(scan_all(map, 1, 1 << 20, &frame), FRAME_INVALID);
}

/* ---- envelope ----------------------------------------------------------------------------- */

static int parse_bytes(const void *bytes, size_t len, rpc_envelope_t *envelope,
                       allot_error_detail_t *error, msgpack_zone *zone, msgpack_object *object)
{
    size_t offset = 0;
    cr_assert_eq(msgpack_unpack(bytes, len, &offset, zone, object), MSGPACK_UNPACK_SUCCESS);
    allot_error_detail_clear(error);
    int rc = rpc_envelope_parse(object, envelope, error);
    if (rc == 0)
        rc = rpc_params_check(object, envelope, error);
    return rc;
}

typedef struct envelope_case {
    const char *name;
    uint8_t bytes[24];
    size_t len;
    int expected;
    bool has_msgid;
} envelope_case_t;

Test(rpc, every_malformed_envelope_shape_is_refused_with_a_clear_error)
{
    const envelope_case_t cases[] = {
        {"valid request", {0x94, 0x00, 0x05, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80}, 10, 0, true},
        {"valid notification", {0x93, 0x02, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80}, 9, 0, false},
        {"wrong length",
         {0x93, 0x00, 0x05, 0xa4, 'p', 'i', 'n', 'g'},
         8,
         ALLOT_EINVALID_ARGUMENT,
         false},
        {"response sent to the server",
         {0x94, 0x01, 0x05, 0xc0, 0xc0},
         5,
         ALLOT_EINVALID_ARGUMENT,
         false},
        {"type is a string",
         {0x94, 0xa1, '0', 0x05, 0xa1, 'p', 0x91, 0x80},
         8,
         ALLOT_EINVALID_ARGUMENT,
         false},
        {"method not a string",
         {0x94, 0x00, 0x05, 0x07, 0x91, 0x80},
         6,
         ALLOT_EINVALID_ARGUMENT,
         true},
        {"empty method", {0x94, 0x00, 0x05, 0xa0, 0x91, 0x80}, 6, ALLOT_EINVALID_ARGUMENT, true},
        {"negative msgid",
         {0x94, 0x00, 0xff, 0xa1, 'p', 0x91, 0x80},
         7,
         ALLOT_EINVALID_ARGUMENT,
         false},
        {"msgid over uint32",
         {0x94, 0x00, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0xa1, 'p', 0x91, 0x80},
         15,
         ALLOT_EINVALID_ARGUMENT,
         false},
        {"params not an array",
         {0x94, 0x00, 0x05, 0xa1, 'p', 0x80},
         6,
         ALLOT_EINVALID_ARGUMENT,
         true},
        /* generic clients send [] for a call without arguments: taken as [{}] */
        {"params empty array", {0x94, 0x00, 0x05, 0xa1, 'p', 0x90}, 6, 0, true},
        {"params holds a non-map",
         {0x94, 0x00, 0x05, 0xa1, 'p', 0x91, 0x01},
         7,
         ALLOT_EINVALID_ARGUMENT,
         true},
        {"params two maps",
         {0x94, 0x00, 0x05, 0xa1, 'p', 0x92, 0x80, 0x80},
         8,
         ALLOT_EINVALID_ARGUMENT,
         true},
        {"map key not a string",
         {0x94, 0x00, 0x05, 0xa1, 'p', 0x91, 0x81, 0x01, 0x02},
         9,
         ALLOT_EINVALID_ARGUMENT,
         true},
    };
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rpc_envelope_t envelope;
        allot_error_detail_t error;
        msgpack_object object;
        int rc = parse_bytes(cases[i].bytes, cases[i].len, &envelope, &error, &zone, &object);
        cr_expect_eq(rc, cases[i].expected, "%s: got %d", cases[i].name, rc);
        cr_expect_eq(envelope.has_msgid, cases[i].has_msgid, "%s: has_msgid", cases[i].name);
        if (rc != 0)
            cr_expect_neq(error.message[0], '\0', "%s: message", cases[i].name);
        msgpack_zone_clear(&zone);
    }
    msgpack_zone_destroy(&zone);
}

Test(rpc, error_reply_carries_code_message_and_field)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    dispatch_pack_error(&sbuf, 42, ALLOT_ETOO_LARGE, "lines", "too many lines");
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    cr_assert_eq(msgpack_unpack_next(&unpacked, sbuf.data, sbuf.size, NULL),
                 MSGPACK_UNPACK_SUCCESS);
    msgpack_object o = unpacked.data;
    cr_assert_eq(o.type, MSGPACK_OBJECT_ARRAY);
    cr_assert_eq(o.via.array.size, 4);
    cr_assert_eq(o.via.array.ptr[0].via.u64, 1);
    cr_assert_eq(o.via.array.ptr[1].via.u64, 42);
    msgpack_object error = o.via.array.ptr[2];
    cr_assert_eq(error.type, MSGPACK_OBJECT_MAP);
    cr_assert_eq(error.via.map.size, 3);
    cr_assert_eq(o.via.array.ptr[3].type, MSGPACK_OBJECT_NIL);
    const msgpack_object_str *code = &error.via.map.ptr[0].val.via.str;
    cr_assert_eq(code->size, strlen("TOO_LARGE"));
    cr_assert(memcmp(code->ptr, "TOO_LARGE", code->size) == 0);
    msgpack_unpacked_destroy(&unpacked);
    msgpack_sbuffer_destroy(&sbuf);
}

Test(rpc, result_header_is_byte_for_byte_what_msgpack_c_packs_for_every_msgid_width)
{
    const uint32_t msgids[] = {0,     1,     127,   128,        255,        256,
                               65535, 65536, 70000, 0x7fffffff, 0x80000000, UINT32_MAX};
    for (size_t i = 0; i < sizeof(msgids) / sizeof(msgids[0]); i++) {
        msgpack_sbuffer ours, theirs;
        msgpack_sbuffer_init(&ours);
        msgpack_sbuffer_init(&theirs);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &ours, pack_sbuffer_write);
        msgpack_pack_str(&pk, 1); /* a reply starts anywhere in the buffer */
        msgpack_pack_str_body(&pk, "x", 1);
        rpc_pack_result_header(&pk, msgids[i]);
        msgpack_packer_init(&pk, &theirs, msgpack_sbuffer_write);
        msgpack_pack_str(&pk, 1);
        msgpack_pack_str_body(&pk, "x", 1);
        msgpack_pack_array(&pk, 4);
        msgpack_pack_uint32(&pk, RPC_RESPONSE);
        msgpack_pack_uint32(&pk, msgids[i]);
        msgpack_pack_nil(&pk);
        cr_assert_eq(ours.size, theirs.size, "msgid %u: %zu bytes, msgpack-c %zu", msgids[i],
                     ours.size, theirs.size);
        cr_assert(memcmp(ours.data, theirs.data, ours.size) == 0, "msgid %u", msgids[i]);
        msgpack_sbuffer_destroy(&ours);
        msgpack_sbuffer_destroy(&theirs);
    }
}

/* A header at the very end of the buffer's room (under 8 bytes left: the copy of 8 cannot be
 * made there) is the same bytes, the buffer grown. */
Test(rpc, result_header_at_the_end_of_the_buffer_is_what_msgpack_c_packs)
{
    static char filler[MSGPACK_SBUFFER_INIT_SIZE];
    memset(filler, 'x', sizeof(filler));
    const uint32_t msgids[] = {5, 200, 65535, UINT32_MAX};
    for (size_t i = 0; i < sizeof(msgids) / sizeof(msgids[0]); i++)
        for (size_t left = 0; left <= 9; left++) {
            msgpack_sbuffer ours, theirs;
            msgpack_sbuffer_init(&ours);
            msgpack_sbuffer_init(&theirs);
            msgpack_sbuffer_write(&ours, filler, sizeof(filler) - left);
            msgpack_sbuffer_write(&theirs, filler, sizeof(filler) - left);
            cr_assert_eq(ours.alloc - ours.size, left);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &ours, pack_sbuffer_write);
            rpc_pack_result_header(&pk, msgids[i]);
            msgpack_packer_init(&pk, &theirs, msgpack_sbuffer_write);
            msgpack_pack_array(&pk, 4);
            msgpack_pack_uint32(&pk, RPC_RESPONSE);
            msgpack_pack_uint32(&pk, msgids[i]);
            msgpack_pack_nil(&pk);
            cr_assert_eq(ours.size, theirs.size, "msgid %u, %zu left", msgids[i], left);
            cr_assert(memcmp(ours.data, theirs.data, ours.size) == 0, "msgid %u", msgids[i]);
            msgpack_sbuffer_destroy(&ours);
            msgpack_sbuffer_destroy(&theirs);
        }
}

Test(dispatch, a_method_name_with_a_nul_byte_is_unknown_not_a_prefix_match)
{
    /* found by fuzzing: "reserve\0\0put" once matched "reserve" and read past its name */
    cr_assert_null(command_lookup("reserve\0\0put", 12));
    cr_assert_null(command_lookup("ping\0", 5));
    cr_assert_null(command_lookup("pin", 3));
    cr_assert_not_null(command_lookup("ping", 4));
}

/* The table's own scan, as command_lookup was: what the lookup must agree with. */
static const command_t *lookup_by_scan(const char *name, size_t name_len)
{
    for (size_t i = 0; i < command_count(); i++) {
        const command_t *c = command_at(i);
        if (c->name_len == name_len && memcmp(c->name, name, name_len) == 0)
            return c;
    }
    return NULL;
}

Test(dispatch, every_method_is_found_by_its_name_and_no_other_name_is)
{
    char name[ALLOT_METHOD_BYTES_MAX + 1];
    for (size_t i = 0; i < command_count(); i++) {
        const command_t *c = command_at(i);
        memcpy(name, c->name, c->name_len); /* not the table's own pointer */
        cr_assert_eq(command_lookup(name, c->name_len), c, "%s", c->name);
        cr_assert_eq(command_index(command_lookup(name, c->name_len)), i);
        /* one byte more, one less, the last one changed: unknown */
        name[c->name_len] = 'x';
        cr_assert_null(command_lookup(name, c->name_len + 1), "%s + x", c->name);
        cr_assert_null(command_lookup(name, c->name_len - 1), "%s - 1", c->name);
        name[c->name_len - 1] ^= 0x20;
        cr_assert_null(command_lookup(name, c->name_len), "%s changed", c->name);
        name[c->name_len - 1] ^= 0x20;
        /* any one byte changed, one bit of it at a time (the comparison reads a name in two
         * overlapping pieces): unknown */
        for (size_t j = 0; j < c->name_len; j++)
            for (int bit = 0; bit < 8; bit++) {
                name[j] ^= (char)(1u << bit);
                cr_assert_null(command_lookup(name, c->name_len), "%s, byte %zu bit %d", c->name, j,
                               bit);
                name[j] ^= (char)(1u << bit);
            }
    }
    cr_assert_null(command_lookup("", 0));
    /* names made of the methods' own letters, every length: as the scan says */
    static const char letters[] = "abcdegiklmnoprstuv.";
    uint64_t state = UINT64_C(0x9e3779b97f4a7c15);
    for (int round = 0; round < 200000; round++) {
        state = state * UINT64_C(6364136223846793005) + 1;
        size_t len = 1 + (size_t)(state >> 58) % 20;
        for (size_t j = 0; j < len; j++) {
            state = state * UINT64_C(6364136223846793005) + 1;
            name[j] = letters[(state >> 40) % (sizeof(letters) - 1)];
        }
        cr_assert_eq(command_lookup(name, len), lookup_by_scan(name, len), "%.*s", (int)len, name);
    }
}

Test(dispatch, a_call_without_keys_and_one_with_keys_are_checked_alike)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    /* a group's follower that has applied index 3 */
    dispatch_env_t env = {.writes_allowed = true, .applied_index = 3};
    const uint8_t no_params[] = {0x94, 0x00, 0x05, 0xa4, 'p', 'i', 'n', 'g', 0x90};
    const uint8_t empty_map[] = {0x94, 0x00, 0x06, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80};
    const uint8_t min_index[] = {0x94, 0x00, 0x07, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x81, 0xa9,
                                 'm',  'i',  'n',  '_',  'i', 'n', 'd', 'e', 'x',  0x05};
    const uint8_t unknown_key[] = {0x94, 0x00, 0x08, 0xa4, 'p', 'i', 'n',
                                   'g',  0x91, 0x81, 0xa1, 'x', 0x01};
    const uint8_t avail_no_params[] = {0x94, 0x00, 0x09, 0xa9, 'a', 'v', 'a',
                                       'i',  'l',  '.',  'g',  'e', 't', 0x90};
    const struct {
        const uint8_t *bytes;
        size_t len;
        int error;
        bool wait;
    } cases[] = {{no_params, sizeof(no_params), 0, false},
                 {empty_map, sizeof(empty_map), 0, false},
                 {min_index, sizeof(min_index), 0, true}, /* index 5 is not applied yet */
                 {unknown_key, sizeof(unknown_key), ALLOT_EINVALID_ARGUMENT, false},
                 {avail_no_params, sizeof(avail_no_params), ALLOT_EINVALID_ARGUMENT, false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgpack_object object;
        size_t offset = 0;
        cr_assert_eq(
            msgpack_unpack((const char *)cases[i].bytes, cases[i].len, &offset, &zone, &object),
            MSGPACK_UNPACK_SUCCESS);
        dispatch_outcome_t outcome;
        out.size = 0;
        dispatch_object(&env, &object, &out, &outcome);
        cr_expect_eq(outcome.error, cases[i].error, "case %zu: error %d", i, outcome.error);
        cr_expect_eq(outcome.wait, cases[i].wait, "case %zu", i);
        cr_expect_eq(outcome.replied, !cases[i].wait, "case %zu", i);
        if (cases[i].error == 0 && !cases[i].wait) /* [1, msgid, nil, "pong"] */
            cr_expect(out.size == 9 && memcmp(out.data + 3, "\xc0\xa4pong", 6) == 0, "case %zu", i);
    }
    msgpack_sbuffer_destroy(&out);
    msgpack_zone_destroy(&zone);
}

Test(dispatch, unknown_method_and_unknown_key_are_answered_not_fatal)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    dispatch_env_t env = {.writes_allowed = true};
    const uint8_t unknown[] = {0x94, 0x00, 0x05, 0xa3, 'n', 'o', 'p', 0x91, 0x80};
    const uint8_t bad_key[] = {0x94, 0x00, 0x06, 0xa4, 'p', 'i', 'n',
                               'g',  0x91, 0x81, 0xa1, 'x', 0x01};
    const uint8_t ping[] = {0x94, 0x00, 0x07, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80};
    const struct {
        const uint8_t *bytes;
        size_t len;
        int error;
    } cases[] = {{unknown, sizeof(unknown), ALLOT_EUNKNOWN_METHOD},
                 {bad_key, sizeof(bad_key), ALLOT_EINVALID_ARGUMENT},
                 {ping, sizeof(ping), 0}};
    for (size_t i = 0; i < 3; i++) {
        msgpack_object object;
        size_t offset = 0;
        cr_assert_eq(
            msgpack_unpack((const char *)cases[i].bytes, cases[i].len, &offset, &zone, &object),
            MSGPACK_UNPACK_SUCCESS);
        dispatch_outcome_t outcome;
        out.size = 0;
        dispatch_object(&env, &object, &out, &outcome);
        cr_expect_eq(outcome.error, cases[i].error, "case %zu", i);
        cr_expect(outcome.replied);
        cr_expect_not(outcome.close);
    }
    msgpack_sbuffer_destroy(&out);
    msgpack_zone_destroy(&zone);
}

static int writes_checks; /* calls of count_writes_check */

/* A writes_check_cb for a follower: writes go to the leader at 10.0.0.2:7411. */
static void count_writes_check(const dispatch_env_t *env, dispatch_writes_t *writes)
{
    (void)env;
    writes_checks++;
    writes->allowed = false;
    writes->refused_error = ALLOT_ENOT_LEADER;
    writes->leader_address = "10.0.0.2:7411";
}

Test(dispatch, the_write_gate_is_asked_for_writes_only_and_its_answer_refuses_them)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    /* the fields say writes run; the callback, asked, says they do not */
    dispatch_env_t env = {.writes_allowed = true, .writes_check_cb = count_writes_check};
    const uint8_t ping[] = {0x94, 0x00, 0x07, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80};
    const uint8_t release[] = {0x94, 0x00, 0x08, 0xb3, 'r',  'e',  's', 'e', 'r',  'v',
                               'a',  't',  'i',  'o',  'n',  '.',  'r', 'e', 'l',  'e',
                               'a',  's',  'e',  0x91, 0x81, 0xa2, 'i', 'd', 0xa1, 'h'};
    const struct {
        const uint8_t *bytes;
        size_t len;
        int error, checks;
    } cases[] = {{ping, sizeof(ping), 0, 0}, {release, sizeof(release), ALLOT_ENOT_LEADER, 1}};
    for (size_t i = 0; i < 2; i++) {
        msgpack_object object;
        size_t offset = 0;
        cr_assert_eq(
            msgpack_unpack((const char *)cases[i].bytes, cases[i].len, &offset, &zone, &object),
            MSGPACK_UNPACK_SUCCESS);
        dispatch_outcome_t outcome;
        out.size = 0;
        writes_checks = 0;
        dispatch_object(&env, &object, &out, &outcome);
        cr_expect_eq(outcome.error, cases[i].error, "case %zu", i);
        cr_expect_eq(writes_checks, cases[i].checks, "case %zu: the gate asked %d times", i,
                     writes_checks);
        cr_expect_not(outcome.write, "case %zu: nothing ran", i);
    }
    /* the refusal names the leader the callback gave */
    cr_expect_not_null(memmem(out.data, out.size, "10.0.0.2:7411", 13));
    msgpack_sbuffer_destroy(&out);
    msgpack_zone_destroy(&zone);
}

/* The direct writers (pack.h) produce the bytes msgpack-c would. */
Test(pack, direct_writers_match_msgpack_c)
{
    static const uint64_t ints[] = {0,     1,          127,      128,         255,
                                    256,   65535,      65536,    4294967295u, 4294967296u,
                                    12345, 1000000007, INT64_MAX};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, pack_sbuffer_write);
        msgpack_pack_int64(&pk, (int64_t)ints[i]);
        char out[9];
        size_t n = pack_put_uint(out, ints[i]);
        cr_assert_eq(n, sb.size, "length of %llu", (unsigned long long)ints[i]);
        cr_assert_eq(memcmp(out, sb.data, n), 0, "bytes of %llu", (unsigned long long)ints[i]);
        msgpack_sbuffer_destroy(&sb);
    }
    static const int64_t signed_ints[] = {-1,     -32,    -33,       -128,          -129,
                                          -32768, -32769, INT32_MIN, -2147483649LL, INT64_MIN,
                                          0,      127,    128,       INT64_MAX};
    for (size_t i = 0; i < sizeof(signed_ints) / sizeof(signed_ints[0]); i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, pack_sbuffer_write);
        msgpack_pack_int64(&pk, signed_ints[i]);
        char out[9];
        size_t n = pack_put_int(out, signed_ints[i]);
        cr_assert_eq(n, sb.size, "length of %lld", (long long)signed_ints[i]);
        cr_assert_eq(memcmp(out, sb.data, n), 0, "bytes of %lld", (long long)signed_ints[i]);
        msgpack_sbuffer_destroy(&sb);
    }
    static const uint32_t counts[] = {0, 1, 15, 16, 65535, 65536, UINT32_MAX};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        for (int map = 0; map <= 1; map++) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, pack_sbuffer_write);
            if (map)
                msgpack_pack_map(&pk, counts[i]);
            else
                msgpack_pack_array(&pk, counts[i]);
            char out[5];
            size_t n = pack_put_container_header(out, map, counts[i]);
            cr_assert_eq(n, sb.size, "%s header length for %u", map ? "map" : "array", counts[i]);
            cr_assert_eq(memcmp(out, sb.data, n), 0, "%s header bytes for %u",
                         map ? "map" : "array", counts[i]);
            msgpack_sbuffer_destroy(&sb);
        }
    }
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 1000, 65535, 65536, UINT32_MAX};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, pack_sbuffer_write);
        msgpack_pack_str(&pk, lens[i]);
        char out[5];
        size_t n = pack_put_str_header(out, lens[i]);
        cr_assert_eq(n, sb.size, "header length for %zu", lens[i]);
        cr_assert_eq(memcmp(out, sb.data, n), 0, "header bytes for %zu", lens[i]);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* Small pieces copied inline and large ones through msgpack_sbuffer_write give the same buffer. */
Test(pack, sbuffer_write_handles_every_piece_size)
{
    char data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7 + 1);
    msgpack_sbuffer a, b;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&b);
    cr_assert_eq(pack_sbuffer_write(&a, data, 0), 0); /* nothing, and no NULL memcpy */
    cr_assert_eq(a.size, 0);
    for (size_t len = 1; len <= 40; len++) {
        cr_assert_eq(pack_sbuffer_write(&a, data, len), 0);
        cr_assert_eq(msgpack_sbuffer_write(&b, data, len), 0);
    }
    cr_assert_eq(a.size, b.size);
    cr_assert_eq(memcmp(a.data, b.data, a.size), 0);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
}

/* pack_bytes writes inline through a pack_sbuffer_write packer and through the callback of any
 * other; both give the bytes msgpack_sbuffer_write gives, a growing buffer included. */
Test(pack, pack_bytes_gives_the_same_bytes_through_either_callback)
{
    char data[40];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 5 + 3);
    msgpack_sbuffer inline_out, callback_out, expected;
    msgpack_sbuffer_init(&inline_out);
    msgpack_sbuffer_init(&callback_out);
    msgpack_sbuffer_init(&expected);
    msgpack_packer inline_pk, callback_pk;
    msgpack_packer_init(&inline_pk, &inline_out, pack_sbuffer_write);
    msgpack_packer_init(&callback_pk, &callback_out, msgpack_sbuffer_write);
    pack_bytes(&inline_pk, data, 0); /* nothing (msgpack-c's own callback would memcpy to NULL) */
    for (int round = 0; round < 400; round++) { /* past the first 8 KiB: the buffer grows */
        size_t len = 1 + (size_t)round % sizeof(data);
        pack_bytes(&inline_pk, data, len);
        pack_bytes(&callback_pk, data, len);
        msgpack_sbuffer_write(&expected, data, len);
    }
    cr_assert_eq(inline_out.size, expected.size);
    cr_assert_eq(callback_out.size, expected.size);
    cr_assert_eq(memcmp(inline_out.data, expected.data, expected.size), 0);
    cr_assert_eq(memcmp(callback_out.data, expected.data, expected.size), 0);
    msgpack_sbuffer_destroy(&inline_out);
    msgpack_sbuffer_destroy(&callback_out);
    msgpack_sbuffer_destroy(&expected);
}
