/* test_client_wire.c - liballot against scripted fake servers (forked): framing, errors, limits. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "client/client.h"
#include "client/json_msgpack.h"

typedef void (*fake_script_fn)(int fd);

typedef struct fake_server {
    pid_t pid;
    uint16_t port;
} fake_server_t;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Listen on loopback (IPv4 or IPv6), fork a child that accepts one connection and runs script. */
static fake_server_t fake_server_start_family(int family, fake_script_fn script)
{
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(family, SOCK_STREAM, 0);
    cr_assert(lfd >= 0);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    if (bind(lfd, (struct sockaddr *)&ss, len) != 0) {
        close(lfd);
        return (fake_server_t){0, 0};
    }
    cr_assert_eq(listen(lfd, 4), 0);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
    uint16_t port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        alarm(30); /* a client that never comes (a failing test) does not leave it behind */
        int fd = accept(lfd, NULL, NULL);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        script(fd);
        close(fd);
        _exit(0);
    }
    close(lfd);
    return (fake_server_t){pid, port};
}

static fake_server_t fake_server_start(fake_script_fn script)
{
    return fake_server_start_family(AF_INET, script);
}

static void fake_server_wait(fake_server_t *f)
{
    int status;
    waitpid(f->pid, &status, 0);
}

static allot_client_t *client_connect(const fake_server_t *f, int timeout_ms)
{
    allot_client_t *c = allot_client_create();
    cr_assert_not_null(c);
    cr_assert_eq(allot_client_connect(c, "127.0.0.1", f->port, timeout_ms), 0, "%s",
                 allot_client_last_error(c));
    return c;
}

/* ---- fake-server side helpers (run in the child) ------------------------------------------ */

static void write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            _exit(3);
        p += n;
        len -= (size_t)n;
    }
}

/* Read one request; returns its msgid and keeps the unpacked params map in *u. */
static uint32_t request_read(int fd, msgpack_unpacker *up, msgpack_unpacked *u)
{
    for (;;) {
        if (msgpack_unpacker_next(up, u) == MSGPACK_UNPACK_SUCCESS) {
            msgpack_object o = u->data;
            if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 4)
                _exit(4);
            return (uint32_t)o.via.array.ptr[1].via.u64;
        }
        msgpack_unpacker_reserve_buffer(up, 4096);
        ssize_t n = read(fd, msgpack_unpacker_buffer(up), 4096);
        if (n <= 0)
            _exit(5);
        msgpack_unpacker_buffer_consumed(up, (size_t)n);
    }
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* [1, msgid, nil, "result"] */
static void reply_str_write(int fd, uint32_t msgid, const char *result)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_uint32(&pk, msgid);
    msgpack_pack_nil(&pk);
    pack_cstr(&pk, result);
    write_all(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void serve_one_str(int fd, const char *result)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    uint32_t id = request_read(fd, &up, &u);
    reply_str_write(fd, id, result);
}

/* ---- scripts ------------------------------------------------------------------------------ */

/* Checks the envelope is [0, id, "ping", [{}]] and answers "pong" (else "bad envelope"). */
static void script_ping(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    uint32_t id = request_read(fd, &up, &u);
    msgpack_object *a = u.data.via.array.ptr;
    bool ok = a[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[0].via.u64 == 0 &&
              a[2].type == MSGPACK_OBJECT_STR && a[2].via.str.size == 4 &&
              memcmp(a[2].via.str.ptr, "ping", 4) == 0 && a[3].type == MSGPACK_OBJECT_ARRAY &&
              a[3].via.array.size == 1 && a[3].via.array.ptr[0].type == MSGPACK_OBJECT_MAP &&
              a[3].via.array.ptr[0].via.map.size == 0;
    reply_str_write(fd, id, ok ? "pong" : "bad envelope");
}

Test(client_wire, call_sends_the_envelope_and_returns_the_result)
{
    fake_server_t f = fake_server_start(script_ping);
    allot_client_t *c = client_connect(&f, 2000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", "{}", &reply), 0, "%s",
                 allot_client_last_error(c));
    cr_assert(!reply.is_error);
    cr_assert_eq(reply.msgid, 1);
    cr_assert(allot_object_str_equal(&reply.result, "pong"));
    cr_assert_eq(reply.error.type, MSGPACK_OBJECT_NIL);
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

static void script_error(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    uint32_t id = request_read(fd, &up, &u);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_uint32(&pk, id);
    msgpack_pack_map(&pk, 3);
    pack_cstr(&pk, "code");
    pack_cstr(&pk, "NOT_FOUND");
    pack_cstr(&pk, "message");
    pack_cstr(&pk, "no such sku: X");
    pack_cstr(&pk, "sku");
    pack_cstr(&pk, "X");
    msgpack_pack_nil(&pk);
    write_all(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

Test(client_wire, error_reply_fills_code_message_and_details)
{
    fake_server_t f = fake_server_start(script_error);
    allot_client_t *c = client_connect(&f, 2000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "stock.get", "{\"sku\": \"X\"}", &reply), 0);
    cr_assert(reply.is_error);
    cr_assert_str_eq(reply.code, "NOT_FOUND");
    cr_assert_str_eq(reply.message, "no such sku: X");
    cr_assert(allot_object_str_equal(allot_object_map_get(&reply.error, "sku"), "X"));
    cr_assert_eq(reply.result.type, MSGPACK_OBJECT_NIL);
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

/* Echo the params map back as the result. */
static void script_echo_params(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    uint32_t id = request_read(fd, &up, &u);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_uint32(&pk, id);
    msgpack_pack_nil(&pk);
    msgpack_pack_object(&pk, u.data.via.array.ptr[3].via.array.ptr[0]);
    write_all(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

Test(client_wire, json_params_arrive_as_one_map)
{
    fake_server_t f = fake_server_start(script_echo_params);
    allot_client_t *c = client_connect(&f, 2000);
    allot_reply_t reply = {0};
    const char *json =
        "{\"id\":\"c1\",\"lines\":[{\"sku\":\"A\",\"qty\":1}],\"ttl_s\":60,\"x\":1.5}";
    cr_assert_eq(allot_client_call_json(c, "reserve", json, &reply), 0);
    char *text = NULL;
    cr_assert_eq(json_msgpack_to_text(&reply.result, 0, &text, NULL, NULL, 0), 0);
    cr_assert_str_eq(text, json);
    free(text);
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

/* Read three requests, answer them in reverse order. */
static void script_reverse_three(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    uint32_t ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = request_read(fd, &up, &u);
    for (int i = 2; i >= 0; i--)
        reply_str_write(fd, ids[i], i == 0 ? "first" : i == 1 ? "second" : "third");
}

Test(client_wire, pipelined_replies_come_back_in_arrival_order_with_their_msgids)
{
    fake_server_t f = fake_server_start(script_reverse_three);
    allot_client_t *c = client_connect(&f, 2000);
    uint32_t ids[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(allot_client_send(c, "ping", NULL, 0, &ids[i]), 0);
    cr_assert_eq(ids[0], 1);
    cr_assert_eq(ids[2], 3);
    cr_assert_eq(allot_client_flush(c), 0);
    allot_reply_t reply = {0};
    const char *expected[] = {"third", "second", "first"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(allot_client_recv(c, &reply), 0, "%s", allot_client_last_error(c));
        cr_assert_eq(reply.msgid, ids[2 - i]);
        cr_assert(allot_object_str_equal(&reply.result, expected[i]));
    }
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

static void script_one_byte_at_a_time(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    uint32_t id = request_read(fd, &up, &u);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_uint32(&pk, id);
    msgpack_pack_nil(&pk);
    msgpack_pack_map(&pk, 2);
    pack_cstr(&pk, "on_hand");
    msgpack_pack_int64(&pk, (int64_t)1 << 40);
    pack_cstr(&pk, "sku");
    pack_cstr(&pk, "a-fairly-long-sku-name-that-spans-a-str8-header-xxxxxxxxxxxxxx");
    for (size_t i = 0; i < sb.size; i++) {
        write_all(fd, sb.data + i, 1);
        sleep_ms(1);
    }
    msgpack_sbuffer_destroy(&sb);
}

Test(client_wire, a_reply_split_into_single_bytes_is_reassembled)
{
    fake_server_t f = fake_server_start(script_one_byte_at_a_time);
    allot_client_t *c = client_connect(&f, 5000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "stock.get", NULL, &reply), 0, "%s",
                 allot_client_last_error(c));
    const msgpack_object *on_hand = allot_object_map_get(&reply.result, "on_hand");
    cr_assert_not_null(on_hand);
    cr_assert_eq(on_hand->via.u64, (uint64_t)1 << 40);
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

/* Answer the first request late, the second at once. */
static void script_late_then_fresh(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    uint32_t first = request_read(fd, &up, &u);
    sleep_ms(300);
    reply_str_write(fd, first, "late");
    uint32_t second = request_read(fd, &up, &u);
    reply_str_write(fd, second, "fresh");
}

Test(client_wire, timeout_keeps_the_connection_and_the_late_reply_is_skipped)
{
    fake_server_t f = fake_server_start(script_late_then_fresh);
    allot_client_t *c = client_connect(&f, 100);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), ALLOT_EIO);
    cr_assert_eq(allot_client_last_errno(c), ETIMEDOUT);
    cr_assert_str_eq(allot_client_last_error(c), "timed out after 100 ms");
    cr_assert(allot_client_connected(c));
    allot_client_set_timeout(c, 3000);
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), 0, "%s",
                 allot_client_last_error(c));
    cr_assert(allot_object_str_equal(&reply.result, "fresh"));
    cr_assert_eq(reply.msgid, 2);
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

static void script_close_after_request(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    request_read(fd, &up, &u);
}

Test(client_wire, server_closing_is_reported_and_sticks)
{
    fake_server_t f = fake_server_start(script_close_after_request);
    allot_client_t *c = client_connect(&f, 2000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), ALLOT_EIO);
    cr_assert_str_eq(allot_client_last_error(c), "server closed the connection");
    cr_assert(!allot_client_connected(c));
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), ALLOT_EIO);
    cr_assert_str_eq(allot_client_last_error(c), "server closed the connection");
    allot_client_close(c);
    fake_server_wait(&f);
}

/* Two replies, then close: both are still delivered. */
static void script_two_then_close(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    uint32_t a = request_read(fd, &up, &u);
    uint32_t b = request_read(fd, &up, &u);
    reply_str_write(fd, a, "a");
    reply_str_write(fd, b, "b");
}

Test(client_wire, replies_received_before_a_close_are_still_delivered)
{
    fake_server_t f = fake_server_start(script_two_then_close);
    allot_client_t *c = client_connect(&f, 2000);
    cr_assert_eq(allot_client_send(c, "ping", NULL, 0, NULL), 0);
    cr_assert_eq(allot_client_send(c, "ping", NULL, 0, NULL), 0);
    cr_assert_eq(allot_client_flush(c), 0);
    fake_server_wait(&f);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_recv(c, &reply), 0, "%s", allot_client_last_error(c));
    cr_assert(allot_object_str_equal(&reply.result, "a"));
    cr_assert_eq(allot_client_recv(c, &reply), 0, "%s", allot_client_last_error(c));
    cr_assert(allot_object_str_equal(&reply.result, "b"));
    cr_assert_eq(allot_client_recv(c, &reply), ALLOT_EIO);
    cr_assert_str_eq(allot_client_last_error(c), "server closed the connection");
    allot_reply_free(&reply);
    allot_client_close(c);
}

Test(client_wire, connection_refused_names_the_address)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    allot_client_t *c = allot_client_create();
    cr_assert_eq(allot_client_connect(c, "127.0.0.1", ntohs(a.sin_port), 1000), ALLOT_EIO);
    char expected[64];
    snprintf(expected, sizeof expected, "connect 127.0.0.1:%u: Connection refused",
             (unsigned)ntohs(a.sin_port));
    cr_assert_str_eq(allot_client_last_error(c), expected);
    cr_assert_eq(allot_client_last_errno(c), ECONNREFUSED);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), ALLOT_EIO);
    cr_assert_str_eq(allot_client_last_error(c), "not connected");
    allot_client_close(c);
}

Test(client_wire, unresolvable_host_is_a_clear_error)
{
    allot_client_t *c = allot_client_create();
    cr_assert_eq(allot_client_connect(c, "no-such-host.invalid", 7411, 1000), ALLOT_EIO);
    cr_assert(strncmp(allot_client_last_error(c), "resolve no-such-host.invalid: ", 30) == 0, "%s",
              allot_client_last_error(c));
    allot_client_close(c);
}

static void script_ping_v6(int fd)
{
    serve_one_str(fd, "pong6");
}

Test(client_wire, connects_over_ipv6_loopback)
{
    fake_server_t f = fake_server_start_family(AF_INET6, script_ping_v6);
    if (f.pid == 0)
        cr_skip_test("no IPv6 loopback here");
    allot_client_t *c = allot_client_create();
    cr_assert_eq(allot_client_connect(c, "::1", f.port, 2000), 0, "%s", allot_client_last_error(c));
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), 0);
    cr_assert(allot_object_str_equal(&reply.result, "pong6"));
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

static void script_garbage(int fd)
{
    script_close_after_request(fd);
    write_all(fd, "\xc1\xc1\xc1", 3);
    sleep_ms(200);
}

Test(client_wire, a_byte_that_is_not_msgpack_is_a_corrupt_reply)
{
    fake_server_t f = fake_server_start(script_garbage);
    allot_client_t *c = client_connect(&f, 2000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), ALLOT_ECORRUPT);
    cr_assert_eq(allot_client_last_errno(c), EPROTO);
    cr_assert(!allot_client_connected(c));
    allot_client_close(c);
    fake_server_wait(&f);
}

static void script_not_a_response(int fd)
{
    script_close_after_request(fd);
    write_all(fd, "\x94\x00\x01\xc0\xc0", 5); /* [0, 1, nil, nil]: a request, not a response */
    sleep_ms(200);
}

Test(client_wire, a_well_formed_non_response_is_corrupt)
{
    fake_server_t f = fake_server_start(script_not_a_response);
    allot_client_t *c = client_connect(&f, 2000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), ALLOT_ECORRUPT);
    cr_assert(strstr(allot_client_last_error(c), "is not a response") != NULL);
    allot_client_close(c);
    fake_server_wait(&f);
}

/* [1, 1, nil, str32 claiming 4 GiB]: only the header is sent. */
static void script_huge_header(int fd)
{
    script_close_after_request(fd);
    write_all(fd, "\x94\x01\x01\xc0\xdb\xff\xff\xff\xff", 9);
    sleep_ms(500);
}

Test(client_wire, a_declared_length_over_the_limit_fails_at_once)
{
    fake_server_t f = fake_server_start(script_huge_header);
    allot_client_t *c = client_connect(&f, 2000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), ALLOT_ETOO_LARGE);
    cr_assert_eq(allot_client_last_errno(c), EMSGSIZE);
    allot_client_close(c);
    fake_server_wait(&f);
}

/* [1, 1, nil, array32 claiming 2^32-1 elements]: must not allocate 100 GB. */
static void script_huge_array(int fd)
{
    script_close_after_request(fd);
    write_all(fd, "\x94\x01\x01\xc0\xdd\xff\xff\xff\xff", 9);
    sleep_ms(500);
}

Test(client_wire, a_declared_element_count_over_the_limit_fails_at_once)
{
    fake_server_t f = fake_server_start(script_huge_array);
    allot_client_t *c = client_connect(&f, 2000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), ALLOT_ETOO_LARGE);
    allot_client_close(c);
    fake_server_wait(&f);
}

static void script_big_string(int fd)
{
    char *big = malloc(1 << 20);
    memset(big, 'x', 1 << 20);
    big[(1 << 20) - 1] = '\0';
    serve_one_str(fd, big);
    free(big);
    sleep_ms(200);
}

Test(client_wire, a_one_mib_reply_arrives_whole)
{
    fake_server_t f = fake_server_start(script_big_string);
    allot_client_t *c = client_connect(&f, 5000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), 0, "%s",
                 allot_client_last_error(c));
    cr_assert_eq(reply.result.type, MSGPACK_OBJECT_STR);
    cr_assert_eq(reply.result.via.str.size, (1u << 20) - 1);
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

Test(client_wire, a_reply_over_a_lowered_limit_is_too_large)
{
    fake_server_t f = fake_server_start(script_big_string);
    allot_client_t *c = client_connect(&f, 5000);
    allot_client_set_reply_bytes_max(c, 64 * 1024);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), ALLOT_ETOO_LARGE);
    cr_assert(strstr(allot_client_last_error(c), "larger than 65536 bytes") != NULL, "%s",
              allot_client_last_error(c));
    allot_client_close(c);
    fake_server_wait(&f);
}

/* 40 nested non-empty arrays as the result. */
static void script_deep(int fd)
{
    script_close_after_request(fd);
    char deep[4 + 40 + 1];
    memcpy(deep, "\x94\x01\x01\xc0", 4);
    memset(deep + 4, 0x91, 40);
    deep[44] = 0x01;
    write_all(fd, deep, sizeof deep);
    sleep_ms(200);
}

Test(client_wire, a_reply_nested_too_deep_is_refused)
{
    fake_server_t f = fake_server_start(script_deep);
    allot_client_t *c = client_connect(&f, 2000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), ALLOT_ECORRUPT);
    cr_assert(strstr(allot_client_last_error(c), "nested deeper than 32") != NULL, "%s",
              allot_client_last_error(c));
    allot_client_close(c);
    fake_server_wait(&f);
}

static void script_notification_first(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    uint32_t id = request_read(fd, &up, &u);
    write_all(fd,
              "\x93\x02\xa5"
              "event\x90",
              9); /* [2, "event", []] */
    reply_str_write(fd, id, "after");
}

Test(client_wire, notifications_are_skipped)
{
    fake_server_t f = fake_server_start(script_notification_first);
    allot_client_t *c = client_connect(&f, 2000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), 0, "%s",
                 allot_client_last_error(c));
    cr_assert(allot_object_str_equal(&reply.result, "after"));
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

static void script_raw(int fd)
{
    serve_one_str(fd, "raw ok");
}

Test(client_wire, raw_bytes_go_out_verbatim)
{
    fake_server_t f = fake_server_start(script_raw);
    allot_client_t *c = client_connect(&f, 2000);
    /* [0, 77, "ping", [{}]] sent in two pieces */
    cr_assert_eq(allot_client_send_raw(c, "\x94\x00\x4d\xa4pi", 6), 0);
    cr_assert_eq(allot_client_send_raw(c, "ng\x91\x80", 4), 0);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_recv(c, &reply), 0, "%s", allot_client_last_error(c));
    cr_assert_eq(reply.msgid, 77);
    cr_assert(allot_object_str_equal(&reply.result, "raw ok"));
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

static void script_nothing(int fd)
{
    char b;
    (void)read(fd, &b, 1);
}

Test(client_wire, params_that_are_not_one_map_are_refused_before_sending)
{
    fake_server_t f = fake_server_start(script_nothing);
    allot_client_t *c = client_connect(&f, 2000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call(c, "ping", "\x91\x01", 2, &reply), ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(allot_client_call(c, "ping", "\x80\x80", 2, &reply), ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(allot_client_call(c, "ping",
                                   "\x81\xa1"
                                   "a",
                                   3, &reply),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(allot_client_call_json(c, "ping", "[1]", &reply), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(allot_client_last_error(c), "params must be a JSON object");
    cr_assert_eq(allot_client_call_json(c, "ping", "{\"a\":", &reply), ALLOT_EINVALID_ARGUMENT);
    cr_assert(strncmp(allot_client_last_error(c), "invalid JSON at line 1", 22) == 0);
    cr_assert_eq(allot_client_call(c, NULL, NULL, 0, &reply), ALLOT_EINVALID_ARGUMENT);
    cr_assert(allot_client_connected(c));
    cr_assert_eq(allot_client_buffered_bytes(c), 0);
    allot_client_close(c);
    fake_server_wait(&f);
}

/* ---- NOT_LEADER (a group's follower) -------------------------------------------------------- */

static char not_leader_address[64]; /* what script_not_leader names ("" = nil); set before fork */
static int not_leader_replies;      /* NOT_LEADER replies before script_not_leader echoes */

/* [1, msgid, {"code": "NOT_LEADER", "message", "leader": address or nil}, nil] */
static void reply_not_leader_write(int fd, uint32_t msgid, const char *leader)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_uint32(&pk, msgid);
    msgpack_pack_map(&pk, 3);
    pack_cstr(&pk, "code");
    pack_cstr(&pk, "NOT_LEADER");
    pack_cstr(&pk, "message");
    pack_cstr(&pk, "this node is a follower");
    pack_cstr(&pk, "leader");
    if (leader[0] != '\0')
        pack_cstr(&pk, leader);
    else
        msgpack_pack_nil(&pk);
    msgpack_pack_nil(&pk);
    write_all(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* Answers the next request with [method, params] as the result. */
static void reply_method_params_write(int fd, msgpack_unpacker *up, msgpack_unpacked *u)
{
    uint32_t id = request_read(fd, up, u);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_uint32(&pk, id);
    msgpack_pack_nil(&pk);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_object(&pk, u->data.via.array.ptr[2]);
    msgpack_pack_object(&pk, u->data.via.array.ptr[3].via.array.ptr[0]);
    write_all(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* not_leader_replies NOT_LEADER replies naming not_leader_address, then one echo. */
static void script_not_leader(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    for (int i = 0; i < not_leader_replies; i++)
        reply_not_leader_write(fd, request_read(fd, &up, &u), not_leader_address);
    reply_method_params_write(fd, &up, &u);
}

/* The leader: echoes one request. */
static void script_leader(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    reply_method_params_write(fd, &up, &u);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The reply is [method, params] as sent. */
static void assert_echo(const allot_reply_t *reply, const char *method, const char *params_json)
{
    cr_assert(!reply->is_error, "%s: %s", reply->code, reply->message);
    cr_assert_eq(reply->result.type, MSGPACK_OBJECT_ARRAY);
    cr_assert(allot_object_str_equal(&reply->result.via.array.ptr[0], method));
    msgpack_sbuffer sent;
    msgpack_sbuffer_init(&sent);
    char err[128];
    cr_assert_eq(json_msgpack_from_text(params_json, strlen(params_json), &sent, err, sizeof err),
                 0);
    msgpack_sbuffer got;
    msgpack_sbuffer_init(&got);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &got, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, reply->result.via.array.ptr[1]);
    cr_assert(got.size == sent.size && memcmp(got.data, sent.data, got.size) == 0,
              "the request resent differs from the one sent");
    msgpack_sbuffer_destroy(&sent);
    msgpack_sbuffer_destroy(&got);
}

Test(client_wire, not_leader_naming_the_leader_reconnects_there_and_resends_the_request)
{
    fake_server_t leader = fake_server_start(script_leader);
    snprintf(not_leader_address, sizeof not_leader_address, "127.0.0.1:%u", (unsigned)leader.port);
    not_leader_replies = 1;
    fake_server_t follower = fake_server_start(script_not_leader);
    allot_client_t *c = client_connect(&follower, 5000);
    allot_reply_t reply = {0};
    const char *params = "{\"id\": \"r-1\", \"lines\": [{\"sku\": \"A\", \"qty\": 2}]}";
    cr_assert_eq(allot_client_call_json(c, "reserve", params, &reply), 0, "%s",
                 allot_client_last_error(c));
    assert_echo(&reply, "reserve", params);
    cr_assert_eq(allot_client_redirects(c), 1);
    cr_assert_str_eq(allot_client_peer(c), not_leader_address);
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&follower);
    fake_server_wait(&leader);
}

Test(client_wire, not_leader_with_a_bracketed_ipv6_leader_reconnects_there)
{
    fake_server_t leader = fake_server_start_family(AF_INET6, script_leader);
    if (leader.port == 0)
        cr_skip_test("no IPv6 loopback here");
    snprintf(not_leader_address, sizeof not_leader_address, "[::1]:%u", (unsigned)leader.port);
    not_leader_replies = 1;
    fake_server_t follower = fake_server_start(script_not_leader);
    allot_client_t *c = client_connect(&follower, 5000);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "stock.set", "{}", &reply), 0, "%s",
                 allot_client_last_error(c));
    assert_echo(&reply, "stock.set", "{}");
    cr_assert_eq(allot_client_redirects(c), 1);
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&follower);
    fake_server_wait(&leader);
}

Test(client_wire, not_leader_during_an_election_pauses_and_resends_on_the_same_connection)
{
    not_leader_address[0] = '\0';
    not_leader_replies = 2;
    fake_server_t f = fake_server_start(script_not_leader);
    allot_client_t *c = client_connect(&f, 5000);
    allot_reply_t reply = {0};
    int64_t start_ms = now_ms();
    cr_assert_eq(allot_client_call_json(c, "reserve", "{\"id\": \"r-2\"}", &reply), 0, "%s",
                 allot_client_last_error(c));
    assert_echo(&reply, "reserve", "{\"id\": \"r-2\"}");
    cr_assert_geq(now_ms() - start_ms,
                  ALLOT_CLIENT_REDIRECT_PAUSE_MS_FIRST * 3, /* the first pause, then double */
                  "the client resent without pausing");
    cr_assert_eq(allot_client_redirects(c), 2);
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

Test(client_wire, redirects_are_bounded_and_the_last_not_leader_is_the_reply)
{
    not_leader_address[0] = '\0';
    not_leader_replies = 4; /* the call and its two redirects, then one for redirects_max 0 */
    fake_server_t f = fake_server_start(script_not_leader);
    allot_client_t *c = client_connect(&f, 5000);
    allot_client_set_redirects_max(c, 2);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "reserve", "{}", &reply), 0, "%s",
                 allot_client_last_error(c));
    cr_assert(reply.is_error);
    cr_assert_str_eq(reply.code, "NOT_LEADER");
    cr_assert_eq(allot_client_redirects(c), 2);
    /* the connection is still usable: the fake's fourth NOT_LEADER, then its echo */
    allot_client_set_redirects_max(c, 0);
    cr_assert_eq(allot_client_call_json(c, "reserve", "{}", &reply), 0);
    cr_assert_str_eq(reply.code, "NOT_LEADER");
    cr_assert_eq(allot_client_call_json(c, "ping", "{}", &reply), 0);
    assert_echo(&reply, "ping", "{}");
    cr_assert_eq(allot_client_redirects(c), 2, "redirects_max 0 follows none");
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

Test(client_wire, a_call_timeout_bounds_the_redirects)
{
    not_leader_address[0] = '\0';
    not_leader_replies = 1;
    fake_server_t f = fake_server_start(script_not_leader);
    allot_client_t *c = client_connect(&f, ALLOT_CLIENT_REDIRECT_PAUSE_MS_FIRST / 2);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "reserve", "{}", &reply), 0, "%s",
                 allot_client_last_error(c));
    cr_assert_str_eq(reply.code, "NOT_LEADER", "a pause longer than the timeout is not taken");
    cr_assert_eq(allot_client_redirects(c), 0);
    allot_client_set_timeout(c, 5000);
    cr_assert_eq(allot_client_call_json(c, "ping", "{}", &reply), 0);
    assert_echo(&reply, "ping", "{}");
    allot_reply_free(&reply);
    allot_client_close(c);
    fake_server_wait(&f);
}

/* A follower naming a leader that is gone: accepts a second connection after the failed
 * redirect, and answers there. */
static void script_not_leader_twice(int fd)
{
    msgpack_unpacker up;
    msgpack_unpacked u;
    msgpack_unpacker_init(&up, 4096);
    msgpack_unpacked_init(&u);
    reply_not_leader_write(fd, request_read(fd, &up, &u), not_leader_address);
}

Test(client_wire, a_leader_that_cannot_be_reached_sends_the_call_back_where_it_came_from)
{
    /* a port nobody listens on: bind, note it, close */
    fake_server_t gone = fake_server_start(script_leader);
    kill(gone.pid, SIGKILL);
    fake_server_wait(&gone);
    snprintf(not_leader_address, sizeof not_leader_address, "127.0.0.1:%u", (unsigned)gone.port);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(lfd, (struct sockaddr *)&a, len), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        alarm(30);
        int first = accept(lfd, NULL, NULL);
        script_not_leader_twice(first);
        int second = accept(lfd, NULL, NULL);
        script_leader(second);
        _exit(0);
    }
    close(lfd);
    allot_client_t *c = allot_client_create();
    cr_assert_eq(allot_client_connect(c, "127.0.0.1", ntohs(a.sin_port), 5000), 0);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, "reserve", "{\"id\": \"r-3\"}", &reply), 0, "%s",
                 allot_client_last_error(c));
    assert_echo(&reply, "reserve", "{\"id\": \"r-3\"}");
    cr_assert_eq(allot_client_redirects(c), 1);
    allot_reply_free(&reply);
    allot_client_close(c);
    int status;
    waitpid(pid, &status, 0);
}
