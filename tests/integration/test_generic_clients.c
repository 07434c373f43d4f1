/* test_generic_clients.c - what generic MessagePack-RPC clients send (msgpack-rpc-lite, pynvim):
 * params [] for a call without arguments, and msgids outside uint32, against the real allotd. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static void raw_send(int fd, const msgpack_sbuffer *sbuf)
{
    cr_assert_eq(send(fd, sbuf->data, sbuf->size, MSG_NOSIGNAL), (ssize_t)sbuf->size);
}

/* Pack [0, msgid, method, params] with params [] (an empty array). */
static void pack_request_empty_params(msgpack_sbuffer *sbuf, uint64_t msgid, const char *method)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint64(&pk, msgid);
    msgpack_pack_str_with_body(&pk, method, strlen(method));
    msgpack_pack_array(&pk, 0);
}

/* Read one whole response (5 s limit) into `result` (an unpacked object the caller destroys);
 * false when the connection closed first. */
static bool raw_response_read(int fd, msgpack_unpacked *result, msgpack_unpacker *unpacker)
{
    for (int waited_ms = 0; waited_ms < 5000;) {
        if (msgpack_unpacker_next(unpacker, result) == MSGPACK_UNPACK_SUCCESS)
            return true;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) == 0) {
            waited_ms += 100;
            continue;
        }
        msgpack_unpacker_reserve_buffer(unpacker, 4096);
        ssize_t n = recv(fd, msgpack_unpacker_buffer(unpacker), 4096, 0);
        if (n <= 0)
            return false;
        msgpack_unpacker_buffer_consumed(unpacker, (size_t)n);
    }
    return false;
}

/* The string under key in map o ("" when absent). */
static const char *map_str(const msgpack_object *o, const char *key, char *buf, size_t bytes)
{
    buf[0] = '\0';
    if (o->type != MSGPACK_OBJECT_MAP)
        return buf;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0 &&
            kv->val.type == MSGPACK_OBJECT_STR)
            snprintf(buf, bytes, "%.*s", (int)kv->val.via.str.size, kv->val.via.str.ptr);
    }
    return buf;
}

Test(generic_clients, an_empty_params_array_is_a_call_without_arguments)
{
    harness_server_t *s = harness_server_start(NULL);
    int fd = harness_socket_connect(s->port);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    pack_request_empty_params(&sbuf, 5, "ping");
    pack_request_empty_params(&sbuf, 6, "server.info");
    pack_request_empty_params(&sbuf, 7, "stock.get"); /* needs sku: as with {} */
    raw_send(fd, &sbuf);
    msgpack_unpacker unpacker;
    msgpack_unpacker_init(&unpacker, 4096);
    msgpack_unpacked reply;
    msgpack_unpacked_init(&reply);
    char text[128];

    cr_assert(raw_response_read(fd, &reply, &unpacker));
    const msgpack_object *r = reply.data.via.array.ptr;
    cr_expect_eq(r[1].via.u64, 5);
    cr_expect_eq(r[2].type, MSGPACK_OBJECT_NIL, "ping with [] succeeds");
    cr_expect(r[3].type == MSGPACK_OBJECT_STR && r[3].via.str.size == 4 &&
              memcmp(r[3].via.str.ptr, "pong", 4) == 0);

    cr_assert(raw_response_read(fd, &reply, &unpacker));
    r = reply.data.via.array.ptr;
    cr_expect_eq(r[1].via.u64, 6);
    cr_expect_eq(r[2].type, MSGPACK_OBJECT_NIL, "server.info with [] succeeds");
    cr_expect_str_eq(map_str(&r[3], "version", text, sizeof(text)), ALLOT_VERSION);

    cr_assert(raw_response_read(fd, &reply, &unpacker));
    r = reply.data.via.array.ptr;
    cr_expect_eq(r[1].via.u64, 7);
    cr_expect_str_eq(map_str(&r[2], "code", text, sizeof(text)), "INVALID_ARGUMENT");
    cr_expect(strstr(map_str(&r[2], "message", text, sizeof(text)), "sku") != NULL, "%s", text);

    msgpack_unpacked_destroy(&reply);
    msgpack_unpacker_destroy(&unpacker);
    msgpack_sbuffer_destroy(&sbuf);
    close(fd);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* A request with this msgid gets INVALID_ARGUMENT echoing it, then the connection closes. */
static void msgid_out_of_range_is_answered_then_closed(harness_server_t *s, uint64_t msgid)
{
    int fd = harness_socket_connect(s->port);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    pack_request_empty_params(&sbuf, msgid, "ping");
    raw_send(fd, &sbuf);
    msgpack_unpacker unpacker;
    msgpack_unpacker_init(&unpacker, 4096);
    msgpack_unpacked reply;
    msgpack_unpacked_init(&reply);
    cr_assert(raw_response_read(fd, &reply, &unpacker), "msgid %llu is answered before closing",
              (unsigned long long)msgid);
    const msgpack_object *r = reply.data.via.array.ptr;
    cr_expect_eq(reply.data.via.array.size, 4);
    cr_expect_eq(r[0].via.u64, 1);
    cr_expect_eq(r[1].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    cr_expect_eq(r[1].via.u64, msgid, "the reply carries the msgid as sent");
    char text[128];
    cr_expect_str_eq(map_str(&r[2], "code", text, sizeof(text)), "INVALID_ARGUMENT");
    cr_expect(strstr(map_str(&r[2], "message", text, sizeof(text)), "msgid") != NULL, "%s", text);
    cr_expect_not(raw_response_read(fd, &reply, &unpacker), "then the connection is closed");
    msgpack_unpacked_destroy(&reply);
    msgpack_unpacker_destroy(&unpacker);
    msgpack_sbuffer_destroy(&sbuf);
    close(fd);
}

Test(generic_clients, a_msgid_above_uint32_gets_an_error_reply_before_the_close)
{
    harness_server_t *s = harness_server_start(NULL);
    msgid_out_of_range_is_answered_then_closed(s, (uint64_t)UINT32_MAX + 1);
    msgid_out_of_range_is_answered_then_closed(s, UINT64_MAX);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "ping", "{}", &reply); /* the server is fine */
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
