/* client.c - liballot: blocking, poll-based MessagePack-RPC client over one TCP connection. */
#include "client/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "client/frame.h"
#include "client/json_msgpack.h"
#include "core/limits.h"

struct allot_client {
    int fd;
    int timeout_ms;
    uint32_t msgid_next;
    size_t reply_bytes_max;
    msgpack_sbuffer out; /* requests not yet written */
    size_t out_offset;   /* bytes of `out` already written */
    char *rx;            /* received bytes: [rx_offset, rx_len) not yet returned */
    size_t rx_offset;
    size_t rx_len;
    size_t rx_cap;
    frame_scanner_t scanner; /* over the object starting at rx_offset (client/frame.h) */
    bool broken;             /* closed after a failure; buffered replies remain readable */
    int broken_error;
    int broken_errno;
    char broken_message[ALLOT_CLIENT_ERROR_BYTES];
    char peer[300];                     /* "host:port" for messages */
    char host[ALLOT_ADDRESS_BYTES_MAX]; /* of the current connection, as given to connect */
    uint16_t port;
    int redirects_max;  /* NOT_LEADER redirects one call follows */
    uint64_t redirects; /* redirects followed since create */
    char *token;        /* sent with `auth` on every connection a redirect opens (or NULL) */
    size_t token_len;
    char last_error[ALLOT_CLIENT_ERROR_BYTES];
    int last_errno;
    allot_notification_cb notification_cb; /* NULL: notifications are skipped */
    void *notification_ctx;
};

/* ---- errors and time ---------------------------------------------------------------------- */

static int client_fail(allot_client_t *c, int error, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int client_fail(allot_client_t *c, int error, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof c->last_error, fmt, ap);
    va_end(ap);
    c->last_errno = errnum;
    return error;
}

static void client_socket_close(allot_client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Close the connection after a failure already described in last_error. */
static int client_break(allot_client_t *c, int error)
{
    client_socket_close(c);
    c->broken = true;
    c->broken_error = error;
    c->broken_errno = c->last_errno;
    snprintf(c->broken_message, sizeof c->broken_message, "%s", c->last_error);
    return error;
}

static int client_not_connected(allot_client_t *c)
{
    if (c->broken)
        return client_fail(c, c->broken_error, c->broken_errno, "%s", c->broken_message);
    return client_fail(c, ALLOT_EIO, ENOTCONN, "not connected");
}

static int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_from_timeout(int timeout_ms)
{
    return timeout_ms > 0 ? clock_now_ms() + timeout_ms : -1;
}

/* Milliseconds poll() may wait: -1 forever, 0 when the deadline has passed. */
static int deadline_wait_ms(int64_t deadline_ms)
{
    if (deadline_ms < 0)
        return -1;
    int64_t left = deadline_ms - clock_now_ms();
    return left <= 0 ? 0 : (int)left;
}

/* Wait for `events` on the socket; a timeout leaves the connection usable. */
static int client_wait(allot_client_t *c, short events, int64_t deadline_ms, short *revents)
{
    for (;;) {
        int wait_ms = deadline_wait_ms(deadline_ms);
        if (wait_ms == 0 && deadline_ms >= 0)
            return client_fail(c, ALLOT_EIO, ETIMEDOUT, "timed out after %d ms", c->timeout_ms);
        struct pollfd pfd = {.fd = c->fd, .events = events};
        int n = poll(&pfd, 1, wait_ms);
        if (n > 0) {
            *revents = pfd.revents;
            return 0;
        }
        if (n < 0 && errno != EINTR) {
            client_fail(c, ALLOT_EIO, errno, "poll: %s", strerror(errno));
            return client_break(c, ALLOT_EIO);
        }
    }
}

/* ---- reply framing ------------------------------------------------------------------------ */

static void reply_scanner_reset(frame_scanner_t *s)
{
    frame_scanner_reset_object(s); /* a reply, or a notification the client skips */
}

/* ---- replies ------------------------------------------------------------------------------ */

void allot_reply_init(allot_reply_t *reply)
{
    memset(reply, 0, sizeof *reply);
}

void allot_reply_free(allot_reply_t *reply)
{
    if (reply == NULL)
        return;
    msgpack_unpacked_destroy(&reply->unpacked_private);
    free(reply->bytes_private);
    allot_reply_init(reply);
}

const msgpack_object *allot_object_map_get(const msgpack_object *map, const char *key)
{
    if (map == NULL || key == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (allot_object_str_equal(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

bool allot_object_str_equal(const msgpack_object *object, const char *s)
{
    if (object == NULL || s == NULL || object->type != MSGPACK_OBJECT_STR)
        return false;
    size_t n = strlen(s);
    return object->via.str.size == n && memcmp(object->via.str.ptr, s, n) == 0;
}

static void str_copy_out(char *dst, size_t dst_bytes, const msgpack_object *o)
{
    size_t n = o->via.str.size < dst_bytes - 1 ? o->via.str.size : dst_bytes - 1;
    memcpy(dst, o->via.str.ptr, n);
    dst[n] = '\0';
}

static void reply_error_describe(allot_reply_t *reply)
{
    const msgpack_object *error = &reply->error;
    const msgpack_object *code = allot_object_map_get(error, "code");
    const msgpack_object *message = allot_object_map_get(error, "message");
    snprintf(reply->code, sizeof reply->code, "ERROR");
    if (code != NULL && code->type == MSGPACK_OBJECT_STR && code->via.str.size > 0)
        str_copy_out(reply->code, sizeof reply->code, code);
    if (message != NULL && message->type == MSGPACK_OBJECT_STR)
        str_copy_out(reply->message, sizeof reply->message, message);
    else if (error->type == MSGPACK_OBJECT_STR)
        str_copy_out(reply->message, sizeof reply->message, error);
    else if (error->type != MSGPACK_OBJECT_MAP)
        snprintf(reply->message, sizeof reply->message, "non-standard error object");
}

void allot_client_set_notification_cb(allot_client_t *c, allot_notification_cb cb, void *ctx)
{
    c->notification_cb = cb;
    c->notification_ctx = ctx;
}

/* Decode one complete object (owned by the reply). 1: a notification (handed to the
 * notification callback, if any), skipped. */
static int reply_decode(allot_client_t *c, allot_reply_t *reply)
{
    size_t offset = 0;
    msgpack_unpacked *u = &reply->unpacked_private;
    msgpack_unpack_return ret =
        msgpack_unpack_next(u, reply->bytes_private, c->scanner.offset, &offset);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        return client_fail(c, ALLOT_ENOMEM, ENOMEM, "out of memory decoding a reply");
    if (ret != MSGPACK_UNPACK_SUCCESS || offset != c->scanner.offset)
        return client_fail(c, ALLOT_ECORRUPT, EPROTO, "malformed reply from %s", c->peer);
    const msgpack_object *o = &u->data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3)
        return client_fail(c, ALLOT_ECORRUPT, EPROTO, "reply from %s is not a response", c->peer);
    const msgpack_object *items = o->via.array.ptr;
    if (items[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && items[0].via.u64 == 2 &&
        o->via.array.size == 3) {
        if (c->notification_cb != NULL && items[1].type == MSGPACK_OBJECT_STR)
            c->notification_cb(c->notification_ctx, items[1].via.str.ptr, items[1].via.str.size,
                               &items[2]);
        return 1;
    }
    if (o->via.array.size != 4 || items[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        items[0].via.u64 != 1 || items[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        items[1].via.u64 > UINT32_MAX)
        return client_fail(c, ALLOT_ECORRUPT, EPROTO, "reply from %s is not a response", c->peer);
    reply->msgid = (uint32_t)items[1].via.u64;
    reply->error = items[2];
    reply->result = items[3];
    reply->is_error = items[2].type != MSGPACK_OBJECT_NIL;
    if (reply->is_error)
        reply_error_describe(reply);
    return 0;
}

/* Move the complete object at rx_offset into the reply and decode it. */
static int reply_take(allot_client_t *c, allot_reply_t *reply)
{
    size_t len = c->scanner.offset;
    allot_reply_free(reply);
    reply->bytes_private = malloc(len);
    if (reply->bytes_private == NULL)
        return client_break(c, client_fail(c, ALLOT_ENOMEM, ENOMEM, "out of memory"));
    memcpy(reply->bytes_private, c->rx + c->rx_offset, len);
    int rc = reply_decode(c, reply);
    c->rx_offset += len;
    if (c->rx_offset == c->rx_len)
        c->rx_offset = c->rx_len = 0;
    reply_scanner_reset(&c->scanner);
    if (rc != 0)
        allot_reply_free(reply);
    if (rc < 0)
        return client_break(c, rc);
    return rc;
}

/* ---- socket I/O --------------------------------------------------------------------------- */

static size_t rx_buffered(const allot_client_t *c)
{
    return c->rx_len - c->rx_offset;
}

/* Make room for more bytes at the end of rx (bounded by reply_bytes_max). */
static int rx_room_make(allot_client_t *c)
{
    if (c->rx_offset > 0 && c->rx_cap - c->rx_len < CLIENT_READ_CHUNK_BYTES) {
        memmove(c->rx, c->rx + c->rx_offset, rx_buffered(c));
        c->rx_len -= c->rx_offset;
        c->rx_offset = 0;
    }
    if (c->rx_cap - c->rx_len >= CLIENT_READ_CHUNK_BYTES || c->rx_cap >= c->reply_bytes_max)
        return 0;
    size_t cap = c->rx_cap == 0 ? CLIENT_READ_CHUNK_BYTES * 2 : c->rx_cap * 2;
    if (cap > c->reply_bytes_max)
        cap = c->reply_bytes_max;
    char *grown = realloc(c->rx, cap);
    if (grown == NULL)
        return client_fail(c, ALLOT_ENOMEM, ENOMEM, "out of memory");
    c->rx = grown;
    c->rx_cap = cap;
    return 0;
}

/* Read what the socket has: >0 bytes, 0 nothing now (or no room), <0 failure (connection
 * closed). */
static int rx_read(allot_client_t *c)
{
    if (rx_buffered(c) >= c->reply_bytes_max)
        return 0;
    int rc = rx_room_make(c);
    if (rc < 0)
        return client_break(c, rc);
    size_t room = c->rx_cap - c->rx_len;
    if (room > c->reply_bytes_max - rx_buffered(c))
        room = c->reply_bytes_max - rx_buffered(c);
    if (room == 0)
        return 0;
    ssize_t n = recv(c->fd, c->rx + c->rx_len, room, 0);
    if (n > 0) {
        c->rx_len += (size_t)n;
        return (int)(n > 1 << 30 ? 1 << 30 : n);
    }
    if (n == 0) {
        client_fail(c, ALLOT_EIO, ECONNRESET, "server closed the connection");
        return client_break(c, ALLOT_EIO);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    if (errno == ECONNRESET)
        client_fail(c, ALLOT_EIO, errno, "server closed the connection (reset)");
    else
        client_fail(c, ALLOT_EIO, errno, "receive from %s: %s", c->peer, strerror(errno));
    return client_break(c, ALLOT_EIO);
}

/* Write every pending request byte, reading replies meanwhile. */
static int client_flush_until(allot_client_t *c, int64_t deadline_ms)
{
    while (c->out_offset < c->out.size) {
        if (c->fd < 0)
            return client_not_connected(c);
        ssize_t n =
            send(c->fd, c->out.data + c->out_offset, c->out.size - c->out_offset, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_offset += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            short revents = 0;
            short events = POLLOUT | (rx_buffered(c) < c->reply_bytes_max ? POLLIN : 0);
            int rc = client_wait(c, events, deadline_ms, &revents);
            if (rc < 0)
                return rc;
            if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0 && (events & POLLIN) != 0) {
                rc = rx_read(c);
                if (rc < 0)
                    return rc;
            }
            continue;
        }
        if (errno == EPIPE || errno == ECONNRESET)
            client_fail(c, ALLOT_EIO, errno, "server closed the connection");
        else
            client_fail(c, ALLOT_EIO, errno, "send to %s: %s", c->peer, strerror(errno));
        return client_break(c, ALLOT_EIO);
    }
    msgpack_sbuffer_clear(&c->out);
    c->out_offset = 0;
    return 0;
}

static int client_recv_until(allot_client_t *c, allot_reply_t *reply, int64_t deadline_ms)
{
    allot_reply_free(reply);
    if (c->out_offset < c->out.size && c->fd >= 0) {
        int rc = client_flush_until(c, deadline_ms);
        if (rc < 0 && !c->broken)
            return rc;
    }
    for (;;) {
        size_t reply_bytes = 0;
        frame_status_t scan = frame_scan(&c->scanner, (const uint8_t *)c->rx + c->rx_offset,
                                         rx_buffered(c), c->reply_bytes_max, &reply_bytes);
        if (scan == FRAME_COMPLETE) {
            int rc = reply_take(c, reply);
            if (rc == 1)
                continue; /* notification */
            return rc;
        }
        if (scan == FRAME_INVALID) {
            client_fail(c, ALLOT_ECORRUPT, EPROTO, "malformed reply from %s", c->peer);
            return client_break(c, ALLOT_ECORRUPT);
        }
        if (scan == FRAME_TOO_DEEP) {
            client_fail(c, ALLOT_ECORRUPT, EPROTO, "reply from %s nested deeper than %d", c->peer,
                        ALLOT_CLIENT_DEPTH_MAX);
            return client_break(c, ALLOT_ECORRUPT);
        }
        if (scan == FRAME_TOO_LARGE || rx_buffered(c) >= c->reply_bytes_max) {
            client_fail(c, ALLOT_ETOO_LARGE, EMSGSIZE, "reply from %s larger than %zu bytes",
                        c->peer, c->reply_bytes_max);
            return client_break(c, ALLOT_ETOO_LARGE);
        }
        if (c->fd < 0)
            return client_not_connected(c);
        int n = rx_read(c);
        if (n < 0)
            return n;
        if (n > 0)
            continue;
        short revents = 0;
        int rc = client_wait(c, POLLIN, deadline_ms, &revents);
        if (rc < 0)
            return rc;
    }
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

allot_client_t *allot_client_create(void)
{
    allot_client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->fd = -1;
    c->timeout_ms = ALLOT_CLIENT_TIMEOUT_MS_DEFAULT;
    c->msgid_next = 1;
    c->reply_bytes_max = ALLOT_CLIENT_REPLY_BYTES_MAX;
    c->redirects_max = ALLOT_CLIENT_REDIRECTS_MAX_DEFAULT;
    msgpack_sbuffer_init(&c->out);
    reply_scanner_reset(&c->scanner);
    snprintf(c->peer, sizeof c->peer, "(not connected)");
    return c;
}

static void client_reset(allot_client_t *c)
{
    client_socket_close(c);
    msgpack_sbuffer_clear(&c->out);
    c->out_offset = 0;
    c->rx_offset = c->rx_len = 0;
    reply_scanner_reset(&c->scanner);
    c->broken = false;
    c->msgid_next = 1;
}

void allot_client_close(allot_client_t *c)
{
    if (c == NULL)
        return;
    client_socket_close(c);
    msgpack_sbuffer_destroy(&c->out);
    free(c->rx);
    allot_client_set_auth_token(c, NULL, 0);
    free(c);
}

/* Try one resolved address; on success c->fd is the connected socket. */
static int client_address_connect(allot_client_t *c, const struct addrinfo *ai, int timeout_ms,
                                  int64_t deadline_ms)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return client_fail(c, ALLOT_EIO, errno, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return client_fail(c, ALLOT_EIO, err, "connect %s: %s", c->peer, strerror(err));
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int wait_ms = deadline_wait_ms(deadline_ms);
        int n = (wait_ms == 0 && deadline_ms >= 0) ? 0 : poll(&pfd, 1, wait_ms);
        if (n < 0 && errno == EINTR)
            continue;
        int err = n > 0 ? 0 : n == 0 ? ETIMEDOUT : errno;
        socklen_t err_len = sizeof err;
        if (n > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0)
            err = errno;
        if (err == 0)
            break;
        close(fd);
        if (err == ETIMEDOUT && n == 0)
            return client_fail(c, ALLOT_EIO, err, "connect %s: timed out after %d ms", c->peer,
                               timeout_ms);
        return client_fail(c, ALLOT_EIO, err, "connect %s: %s", c->peer, strerror(err));
    }
    c->fd = fd;
    return 0;
}

int allot_client_connect(allot_client_t *c, const char *host, uint16_t port, int timeout_ms)
{
    if (c == NULL)
        return ALLOT_EINVALID_ARGUMENT;
    client_reset(c);
    if (host == NULL || host[0] == '\0')
        return client_fail(c, ALLOT_EINVALID_ARGUMENT, 0, "no host given");
    if (strlen(host) >= sizeof c->host)
        return client_fail(c, ALLOT_EINVALID_ARGUMENT, 0, "host name too long");
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    bool is_ipv6 = strchr(host, ':') != NULL;
    snprintf(c->peer, sizeof c->peer, "%s%s%s:%u", is_ipv6 ? "[" : "", host, is_ipv6 ? "]" : "",
             (unsigned)port);
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *addresses = NULL;
    int gai = getaddrinfo(host, service, &hints, &addresses);
    if (gai != 0)
        return client_fail(c, ALLOT_EIO, gai == EAI_SYSTEM ? errno : EHOSTUNREACH, "resolve %s: %s",
                           host, gai_strerror(gai));
    int64_t deadline_ms = deadline_from_timeout(timeout_ms);
    int rc = ALLOT_EIO;
    for (const struct addrinfo *ai = addresses; ai != NULL && rc != 0; ai = ai->ai_next)
        rc = client_address_connect(c, ai, timeout_ms, deadline_ms);
    freeaddrinfo(addresses);
    c->timeout_ms = timeout_ms;
    return rc;
}

void allot_client_set_timeout(allot_client_t *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

void allot_client_set_reply_bytes_max(allot_client_t *c, size_t reply_bytes_max)
{
    if (reply_bytes_max < CLIENT_REPLY_BYTES_MAX_FLOOR)
        reply_bytes_max = CLIENT_REPLY_BYTES_MAX_FLOOR;
    if (reply_bytes_max > CLIENT_REPLY_BYTES_MAX_CEILING)
        reply_bytes_max = CLIENT_REPLY_BYTES_MAX_CEILING;
    c->reply_bytes_max = reply_bytes_max;
}

bool allot_client_connected(const allot_client_t *c)
{
    return c != NULL && c->fd >= 0;
}

/* ---- requests ----------------------------------------------------------------------------- */

static bool params_is_one_map(const void *params, size_t len)
{
    const uint8_t *p = params;
    if (len == 0 || !((p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf))
        return false;
    return frame_object_bytes(p, len) == (long)len;
}

static int client_send_until(allot_client_t *c, const char *method, const void *params, size_t len,
                             uint32_t *msgid_out, int64_t deadline_ms)
{
    if (method == NULL)
        return client_fail(c, ALLOT_EINVALID_ARGUMENT, 0, "no method given");
    if (params == NULL || len == 0) {
        params = "\x80";
        len = 1;
    } else if (!params_is_one_map(params, len)) {
        return client_fail(c, ALLOT_EINVALID_ARGUMENT, 0, "params must be exactly one msgpack map");
    }
    if (c->fd < 0)
        return client_not_connected(c);
    if (c->out.size - c->out_offset > ALLOT_CLIENT_SEND_BYTES_MAX) {
        int rc = client_flush_until(c, deadline_ms);
        if (rc < 0)
            return rc;
    }
    uint32_t msgid = c->msgid_next++;
    if (c->msgid_next == 0)
        c->msgid_next = 1;
    size_t size_before = c->out.size;
    size_t method_len = strlen(method);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &c->out, msgpack_sbuffer_write);
    int failed = msgpack_pack_array(&pk, 4) | msgpack_pack_uint8(&pk, 0) |
                 msgpack_pack_uint32(&pk, msgid) | msgpack_pack_str(&pk, method_len) |
                 msgpack_pack_str_body(&pk, method, method_len) | msgpack_pack_array(&pk, 1) |
                 msgpack_sbuffer_write(&c->out, params, len);
    if (failed != 0) {
        c->out.size = size_before;
        return client_fail(c, ALLOT_ENOMEM, ENOMEM, "out of memory");
    }
    if (msgid_out != NULL)
        *msgid_out = msgid;
    return 0;
}

int allot_client_send(allot_client_t *c, const char *method, const void *params_map_msgpack,
                      size_t len, uint32_t *msgid_out)
{
    return client_send_until(c, method, params_map_msgpack, len, msgid_out,
                             deadline_from_timeout(c->timeout_ms));
}

/* Convert JSON params (one object; NULL/"" is {}) into `buffer`. */
static int params_json_pack(allot_client_t *c, const char *params_json, msgpack_sbuffer *buffer)
{
    if (params_json == NULL || params_json[0] == '\0') {
        if (msgpack_sbuffer_write(buffer, "\x80", 1) != 0)
            return client_fail(c, ALLOT_ENOMEM, ENOMEM, "out of memory");
        return 0;
    }
    char err[JSON_MSGPACK_ERROR_BYTES];
    int rc = json_msgpack_from_text(params_json, strlen(params_json), buffer, err, sizeof err);
    if (rc < 0)
        return client_fail(c, rc, 0, "%s", err);
    if (!params_is_one_map(buffer->data, buffer->size))
        return client_fail(c, ALLOT_EINVALID_ARGUMENT, 0, "params must be a JSON object");
    return 0;
}

int allot_client_send_json(allot_client_t *c, const char *method, const char *params_json,
                           uint32_t *msgid_out)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    int rc = params_json_pack(c, params_json, &buffer);
    if (rc == 0)
        rc = allot_client_send(c, method, buffer.data, buffer.size, msgid_out);
    msgpack_sbuffer_destroy(&buffer);
    return rc;
}

int allot_client_send_raw(allot_client_t *c, const void *bytes, size_t len)
{
    if (bytes == NULL && len > 0)
        return client_fail(c, ALLOT_EINVALID_ARGUMENT, 0, "no bytes given");
    if (c->fd < 0)
        return client_not_connected(c);
    if (len > 0 && msgpack_sbuffer_write(&c->out, bytes, len) != 0)
        return client_fail(c, ALLOT_ENOMEM, ENOMEM, "out of memory");
    return 0;
}

int allot_client_flush(allot_client_t *c)
{
    return client_flush_until(c, deadline_from_timeout(c->timeout_ms));
}

int allot_client_recv(allot_client_t *c, allot_reply_t *reply)
{
    return client_recv_until(c, reply, deadline_from_timeout(c->timeout_ms));
}

/* Send one request and wait for its reply, both before deadline_ms. */
static int client_call_until(allot_client_t *c, const char *method, const void *params, size_t len,
                             allot_reply_t *reply, int64_t deadline_ms)
{
    uint32_t msgid = 0;
    allot_reply_free(reply);
    int rc = client_send_until(c, method, params, len, &msgid, deadline_ms);
    while (rc == 0) {
        rc = client_recv_until(c, reply, deadline_ms);
        if (rc == 0 && reply->msgid == msgid)
            return 0;
    }
    return rc;
}

/* ---- following NOT_LEADER ----------------------------------------------------------------- */

/* The leader's client address from a NOT_LEADER error: "host:port" or "[v6 host]:port". False
 * when it is nil (an election) or not an address. */
static bool leader_address_parse(const msgpack_object *leader, char *host, size_t host_bytes,
                                 uint16_t *port)
{
    if (leader == NULL || leader->type != MSGPACK_OBJECT_STR || leader->via.str.size == 0 ||
        leader->via.str.size >= host_bytes)
        return false;
    char text[ALLOT_ADDRESS_BYTES_MAX];
    str_copy_out(text, sizeof text, leader);
    char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text)
        return false;
    char *end = NULL;
    unsigned long value = strtoul(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || value == 0 || value > 65535)
        return false;
    *colon = '\0';
    char *start = text;
    if (start[0] == '[' && colon[-1] == ']') {
        start++;
        colon[-1] = '\0';
    }
    snprintf(host, host_bytes, "%s", start);
    *port = (uint16_t)value;
    return host[0] != '\0';
}

/* Sleep the redirect's pause; false when the deadline comes first. */
static bool redirect_pause(int redirect, int64_t deadline_ms)
{
    int pause_ms = ALLOT_CLIENT_REDIRECT_PAUSE_MS_FIRST;
    for (int i = 0; i < redirect && pause_ms < ALLOT_CLIENT_REDIRECT_PAUSE_MS_MAX; i++)
        pause_ms *= 2;
    if (pause_ms > ALLOT_CLIENT_REDIRECT_PAUSE_MS_MAX)
        pause_ms = ALLOT_CLIENT_REDIRECT_PAUSE_MS_MAX;
    if (deadline_ms >= 0 && deadline_wait_ms(deadline_ms) <= pause_ms)
        return false;
    struct timespec ts = {pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return true;
}

/* Connect to host:port within the call's deadline, keeping the call timeout. */
static int client_reconnect(allot_client_t *c, const char *host, uint16_t port, int64_t deadline_ms)
{
    int timeout_ms = c->timeout_ms;
    int wait_ms = deadline_wait_ms(deadline_ms);
    if (deadline_ms >= 0 && wait_ms == 0)
        return client_fail(c, ALLOT_EIO, ETIMEDOUT, "timed out after %d ms", timeout_ms);
    int rc = allot_client_connect(c, host, port, deadline_ms < 0 ? timeout_ms : wait_ms);
    c->timeout_ms = timeout_ms;
    return rc;
}

/* `auth {"token"}` on the connection a redirect just opened; the reply is the call's answer when
 * the token is refused. */
static int client_authenticate(allot_client_t *c, allot_reply_t *reply, int64_t deadline_ms)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init(&params);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &params, msgpack_sbuffer_write);
    int failed = msgpack_pack_map(&pk, 1) | msgpack_pack_str_with_body(&pk, "token", 5) |
                 msgpack_pack_str_with_body(&pk, c->token, c->token_len);
    int rc = failed != 0
                 ? client_fail(c, ALLOT_ENOMEM, ENOMEM, "out of memory")
                 : client_call_until(c, "auth", params.data, params.size, reply, deadline_ms);
    if (params.data != NULL)
        explicit_bzero(params.data, params.size);
    msgpack_sbuffer_destroy(&params);
    return rc;
}

/* After a reply: 1 when it is NOT_LEADER and the call should be sent again (now connected to the
 * leader it names, or after a pause while none is known or the one named cannot be reached), 0
 * when the reply is the call's answer, < 0 when no connection could be made. */
static int client_redirect(allot_client_t *c, allot_reply_t *reply, int redirect,
                           int64_t deadline_ms)
{
    if (!reply->is_error || strcmp(reply->code, "NOT_LEADER") != 0 || redirect >= c->redirects_max)
        return 0;
    char host[ALLOT_ADDRESS_BYTES_MAX];
    uint16_t port = 0;
    bool named = leader_address_parse(allot_object_map_get(&reply->error, "leader"), host,
                                      sizeof host, &port);
    if (named && !(port == c->port && strcmp(host, c->host) == 0)) {
        char from_host[ALLOT_ADDRESS_BYTES_MAX];
        uint16_t from_port = c->port;
        snprintf(from_host, sizeof from_host, "%s", c->host);
        if (client_reconnect(c, host, port, deadline_ms) == 0) {
            c->redirects++;
            if (c->token == NULL)
                return 1;
            int rc = client_authenticate(c, reply, deadline_ms);
            return rc != 0 ? rc : reply->is_error ? 0 : 1;
        }
        /* the leader named is gone (an election is near): back to where the call was sent */
        int rc = client_reconnect(c, from_host, from_port, deadline_ms);
        if (rc != 0)
            return rc;
    }
    if (!redirect_pause(redirect, deadline_ms))
        return 0;
    c->redirects++;
    return 1;
}

int allot_client_call(allot_client_t *c, const char *method, const void *params_map_msgpack,
                      size_t len, allot_reply_t *reply)
{
    int64_t deadline_ms = deadline_from_timeout(c->timeout_ms);
    for (int redirect = 0;; redirect++) {
        int rc = client_call_until(c, method, params_map_msgpack, len, reply, deadline_ms);
        if (rc == 0)
            rc = client_redirect(c, reply, redirect, deadline_ms);
        if (rc <= 0)
            return rc;
    }
}

int allot_client_call_json(allot_client_t *c, const char *method, const char *params_json,
                           allot_reply_t *reply)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    allot_reply_free(reply);
    int rc = params_json_pack(c, params_json, &buffer);
    if (rc == 0)
        rc = allot_client_call(c, method, buffer.data, buffer.size, reply);
    msgpack_sbuffer_destroy(&buffer);
    return rc;
}

int allot_client_set_auth_token(allot_client_t *c, const char *token, size_t len)
{
    if (c->token != NULL) {
        explicit_bzero(c->token, c->token_len);
        free(c->token);
    }
    c->token = NULL;
    c->token_len = 0;
    if (token == NULL || len == 0)
        return 0;
    if ((c->token = malloc(len)) == NULL)
        return client_fail(c, ALLOT_ENOMEM, ENOMEM, "out of memory");
    memcpy(c->token, token, len);
    c->token_len = len;
    return 0;
}

void allot_client_set_redirects_max(allot_client_t *c, int redirects_max)
{
    c->redirects_max = redirects_max < 0 ? 0 : redirects_max;
}

uint64_t allot_client_redirects(const allot_client_t *c)
{
    return c == NULL ? 0 : c->redirects;
}

const char *allot_client_peer(const allot_client_t *c)
{
    return c == NULL ? "" : c->peer;
}

const char *allot_client_last_error(const allot_client_t *c)
{
    return c == NULL ? "out of memory" : c->last_error;
}

int allot_client_last_errno(const allot_client_t *c)
{
    return c == NULL ? ENOMEM : c->last_errno;
}

int allot_client_fd(const allot_client_t *c)
{
    return c == NULL ? -1 : c->fd;
}

size_t allot_client_buffered_bytes(const allot_client_t *c)
{
    return c == NULL ? 0 : rx_buffered(c);
}
