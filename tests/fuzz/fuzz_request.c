/* fuzz_request.c - libFuzzer target: a whole byte stream through the one-pass request decoder
 * (net/decode.h), checked against the request framer and msgpack-c (the same verdict, the same
 * length, the same object, or the input aborts), the look-ahead's peek (net/peek.h: within the
 * bytes, the framer's length) and its loads ahead, and the dispatcher, against a live in-memory
 * state (no disk, no sockets). Every input starts from an empty state (its requests build what
 * later ones act on), so that a crash reproduces from its input alone; the clock advances one
 * second per request. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/reservation.h"
#include "core/state.h"
#include "net/decode.h"
#include "net/dispatch.h"
#include "net/peek.h"
#include "client/frame.h"
#include "net/rpc.h"
#include "tests/args_differential.h"
#include "tests/msgpack_same.h"

#define FUZZ_REQUEST_BYTES_MAX (64u * 1024)

#define FUZZ_T0_MS 1700000000000LL

static allot_state_t *fuzz_state;

/* server.* methods and auth (its per-connection and per-address state) need the running
 * server; everything else is dispatched as allotd would. */
static bool needs_server(const msgpack_object *object)
{
    rpc_envelope_t envelope;
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    if (rpc_envelope_parse(object, &envelope, &error) != 0)
        return false;
    if (envelope.method.len == 4 && memcmp(envelope.method.ptr, "auth", 4) == 0)
        return true;
    return envelope.method.len >= 7 && memcmp(envelope.method.ptr, "server.", 7) == 0;
}

/* For reserve, avail.get and order.create: the one-pass scan and the generic path read the same
 * arguments or refuse the same requests (args_differential.h), or abort. */
static void args_check(const msgpack_object *object)
{
    static const char *const hot[] = {"reserve", "avail.get", "order.create"};
    rpc_envelope_t envelope;
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    if (rpc_envelope_parse(object, &envelope, &error) != 0 ||
        rpc_params_check(object, &envelope, &error) != 0)
        return;
    for (size_t i = 0; i < sizeof(hot) / sizeof(hot[0]); i++)
        if (envelope.method.len == strlen(hot[i]) &&
            memcmp(envelope.method.ptr, hot[i], envelope.method.len) == 0 &&
            args_differential(hot[i], envelope.params, NULL) != NULL)
            abort();
}

/* Every string of an error reply is valid UTF-8, whatever the request echoed (docs/protocol.md);
 * a reply that breaks this aborts, so the fuzzer reports it. */
static void reply_error_check(const msgpack_sbuffer *out, msgpack_zone *zone)
{
    msgpack_object reply;
    size_t offset = 0;
    if (out->size == 0 ||
        msgpack_unpack(out->data, out->size, &offset, zone, &reply) != MSGPACK_UNPACK_SUCCESS)
        return;
    if (reply.type != MSGPACK_OBJECT_ARRAY || reply.via.array.size != 4 ||
        reply.via.array.ptr[2].type != MSGPACK_OBJECT_MAP)
        return;
    const msgpack_object_map *error = &reply.via.array.ptr[2].via.map;
    for (uint32_t i = 0; i < error->size; i++) {
        const msgpack_object *v = &error->ptr[i].val;
        if (v->type == MSGPACK_OBJECT_STR && !allot_utf8_valid(v->via.str.ptr, v->via.str.size))
            abort();
    }
}

/* What the decoder checked of a request's envelope (decode_request_envelope) is what rpc.h's
 * check gives, or abort. */
static void envelope_check(const msgpack_object *object, rpc_envelope_t *checked)
{
    rpc_envelope_t read;
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    int params_rc;
    if (rpc_request_read(object, &read, &params_rc, &error) != 0 || checked->type != read.type ||
        checked->has_msgid != read.has_msgid || checked->msgid != read.msgid ||
        checked->method.ptr != read.method.ptr || checked->method.len != read.method.len ||
        checked->msgid_out_of_range != NULL)
        abort();
    if (checked->params != NULL ? params_rc != 0 || checked->params != read.params
                                : rpc_params_check(object, checked, &error) != params_rc)
        abort();
}

/* The one-pass decoder says what the framer (status, frame) and msgpack-c say of data[0, len),
 * or abort: it decodes a whole request the framer finds complete at the same length, to the
 * object msgpack_unpack gives, unless within ALLOT_REQUEST_DEPTH_MAX bytes of the limit
 * (decode.h), and nothing else. Returns the decoded object's status; its containers are in zone. */
static decode_status_t decode_check(const uint8_t *data, size_t len, frame_status_t status,
                                    size_t frame, msgpack_zone *zone, msgpack_object *decoded)
{
    size_t decoded_bytes = 0;
    decode_result_t result;
    decode_status_t decode =
        decode_request_envelope(data, len, FUZZ_REQUEST_BYTES_MAX, zone, decoded, &result);
    decoded_bytes = decode == DECODE_COMPLETE ? result.frame_bytes : 0;
    bool framer_decides =
        status != FRAME_COMPLETE || frame + ALLOT_REQUEST_DEPTH_MAX > FUZZ_REQUEST_BYTES_MAX;
    if (framer_decides != (decode == DECODE_UNDECIDED))
        abort();
    if (decode != DECODE_COMPLETE)
        return decode;
    if (decoded_bytes != frame)
        abort();
    msgpack_zone unpack_zone;
    msgpack_zone_init(&unpack_zone, 4096);
    msgpack_object unpacked;
    size_t offset = 0;
    if (msgpack_unpack((const char *)data, frame, &offset, &unpack_zone, &unpacked) !=
            MSGPACK_UNPACK_SUCCESS ||
        offset != frame || !msgpack_same_object(decoded, &unpacked))
        abort();
    if (result.checked)
        envelope_check(decoded, &result.envelope);
    msgpack_zone_destroy(&unpack_zone);
    return decode;
}

/* The look-ahead's peek (net/peek.h) stays within data[0, len) and, where it and the framer both
 * find a whole request, finds the same length; the group's loads ahead touch only what they may
 * (ASan) and claim no more than there is. Or abort. */
static void peek_check(const uint8_t *data, size_t len, frame_status_t status, size_t frame)
{
    peek_request_t request;
    bool peeked = peek_request(data, len, &request);
    if (peeked && (request.bytes == 0 || request.bytes > len ||
                   request.bytes > ALLOT_PEEK_REQUEST_BYTES_MAX ||
                   (status == FRAME_COMPLETE && request.bytes != frame)))
        abort();
    for (uint32_t i = 0; peeked && i < request.sku_count; i++)
        if (request.skus[i].ptr < (const char *)data ||
            request.skus[i].ptr + request.skus[i].len > (const char *)data + len)
            abort();
    if (peek_requests_prefetch(fuzz_state, data, len) > len)
        abort();
}

/* Dispatch one request, decoded (object) or, as the server does for one the decoder left to the
 * framer, unpacked from its frame. */
static void dispatch_frame(const uint8_t *data, size_t len, const msgpack_object *decoded,
                           msgpack_zone *zone, msgpack_sbuffer *out, int64_t now_ms)
{
    msgpack_object unpacked;
    const msgpack_object *object = decoded;
    size_t offset = 0;
    if (object == NULL) {
        if (msgpack_unpack((const char *)data, len, &offset, zone, &unpacked) !=
            MSGPACK_UNPACK_SUCCESS)
            return;
        object = &unpacked;
    }
    args_check(object);
    if (!needs_server(object)) {
        dispatch_env_t env = {.state = fuzz_state, .now_ms = now_ms, .writes_allowed = true};
        dispatch_outcome_t outcome;
        out->size = 0;
        dispatch_object(&env, object, out, &outcome);
        reply_error_check(out, zone);
    }
    msgpack_zone_clear(zone);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_state = allot_state_create(NULL);
    if (fuzz_state == NULL)
        return 0;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    frame_scanner_t scanner;
    size_t start = 0;
    int64_t now_ms = FUZZ_T0_MS;
    while (start < size) {
        frame_scanner_reset(&scanner);
        size_t frame = 0;
        frame_status_t status =
            frame_scan(&scanner, data + start, size - start, FUZZ_REQUEST_BYTES_MAX, &frame);
        peek_check(data + start, size - start, status, frame);
        msgpack_object decoded;
        decode_status_t decode =
            decode_check(data + start, size - start, status, frame, &zone, &decoded);
        if (status != FRAME_COMPLETE)
            break; /* the server would wait for more bytes or close the connection */
        dispatch_frame(data + start, frame, decode == DECODE_COMPLETE ? &decoded : NULL, &zone,
                       &out, now_ms);
        allot_reservations_expire(fuzz_state, now_ms + 10000000, 64);
        start += frame;
        now_ms += 1000;
    }
    msgpack_sbuffer_destroy(&out);
    msgpack_zone_destroy(&zone);
    allot_state_destroy(fuzz_state);
    fuzz_state = NULL;
    return 0;
}
