/* connection.c - one client connection: read, frame, dispatch, hold, flush, close. */
#include <arpa/inet.h>
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/errors.h"
#include "core/inventory.h"
#include "decode.h"
#include "dispatch.h"
#include "events.h"
#include "log.h"
#include "pack.h"
#include "peek.h"
#include "server_internal.h"

static void input_process(connection_t *conn);
static void frame_dispatch(connection_t *conn, dispatch_env_t *env, const uint8_t *data,
                           size_t len);
static void dispatch_env_init(connection_t *conn, dispatch_env_t *env);
static void wait_list_remove(connection_t *conn);
static void reading_start(connection_t *conn);

/* ---- lifecycle ------------------------------------------------------------------------------ */

static bool tail_resize(connection_t *conn, size_t capacity);
static void buffer_trim(server_t *server, msgpack_sbuffer *buffer);

static void on_close(uv_handle_t *handle)
{
    connection_t *conn = handle->data;
    conn->in_size = 0;
    tail_resize(conn, 0);
    server_buffered_sub(conn->server, conn->out.size + conn->writing.size + conn->held.size);
    conn->out.size = conn->writing.size = conn->held.size = 0;
    buffer_trim(conn->server, &conn->out);
    buffer_trim(conn->server, &conn->writing);
    buffer_trim(conn->server, &conn->held);
    free(conn->held_replies);
    free(conn->waiting); /* out of the wait list since connection_close */
    assert(conn->server->connections_closing > 0);
    conn->server->connections_closing--;
    server_connection_closed(conn->server, conn);
    free(conn);
}

static void held_list_remove(connection_t *conn)
{
    server_t *server = conn->server;
    if (!conn->in_held_list)
        return;
    if (conn->held_prev != NULL)
        conn->held_prev->held_next = conn->held_next;
    else
        server->held = conn->held_next;
    if (conn->held_next != NULL)
        conn->held_next->held_prev = conn->held_prev;
    conn->held_prev = conn->held_next = NULL;
    conn->in_held_list = false;
}

static void reading_stop(connection_t *conn);

/* ---- unauthenticated connections (authentication on) ----------------------------------------- */

static void unauth_list_remove(connection_t *conn)
{
    server_t *server = conn->server;
    if (!conn->in_unauth_list)
        return;
    if (conn->unauth_prev != NULL)
        conn->unauth_prev->unauth_next = conn->unauth_next;
    else
        server->unauth_oldest = conn->unauth_next;
    if (conn->unauth_next != NULL)
        conn->unauth_next->unauth_prev = conn->unauth_prev;
    else
        server->unauth_newest = conn->unauth_prev;
    conn->unauth_prev = conn->unauth_next = NULL;
    conn->in_unauth_list = false;
    assert(server->unauth_count > 0);
    server->unauth_count--;
}

static void unauth_list_append(connection_t *conn)
{
    server_t *server = conn->server;
    assert(!conn->in_unauth_list);
    conn->unauth_prev = server->unauth_newest;
    conn->unauth_next = NULL;
    if (server->unauth_newest != NULL)
        server->unauth_newest->unauth_next = conn;
    else
        server->unauth_oldest = conn;
    server->unauth_newest = conn;
    conn->in_unauth_list = true;
    server->unauth_count++;
}

void connection_authenticated(connection_t *conn)
{
    unauth_list_remove(conn);
}

/* Close the handles of queued connections, at most CONNECTION_CLOSES_PER_ITERATION per loop
 * iteration: when thousands of clients hang up at once, each close costs the kernel some 10 us
 * (FIN, socket teardown), and doing them all in one go stalled every other client. An idle
 * handle, so that the loop does not block in poll while closes are left. */
static void on_close_spread(uv_idle_t *idle)
{
    server_t *server = idle->data;
    for (uint32_t i = 0; i < CONNECTION_CLOSES_PER_ITERATION && server->close_queue != NULL; i++) {
        connection_t *conn = server->close_queue;
        server->close_queue = conn->close_next;
        if (server->close_queue == NULL)
            server->close_queue_last = NULL;
        conn->close_next = NULL;
        uv_close((uv_handle_t *)&conn->handle, on_close);
    }
    if (server->close_queue == NULL)
        uv_idle_stop(idle);
}

void connection_close(connection_t *conn)
{
    if (conn->closing)
        return;
    server_t *server = conn->server;
    conn->closing = true;
    server->connections_closing++;
    reading_stop(conn);
    held_list_remove(conn);
    unauth_list_remove(conn);
    wait_list_remove(conn);
    events_connection_closed(server->events, conn); /* subscriptions, long polls */
    if (conn->deferred_count > 0)
        server_deferred_drop(server, conn);
    /* nothing is read or sent any more; the handle is closed from the queue */
    if (server->close_queue_last != NULL)
        server->close_queue_last->close_next = conn;
    else
        server->close_queue = conn;
    server->close_queue_last = conn;
    if (!uv_is_active((uv_handle_t *)&server->close_spreader))
        uv_idle_start(&server->close_spreader, on_close_spread);
}

bool connection_idle(const connection_t *conn)
{
    return conn->held_count == 0 && conn->deferred_count == 0 && conn->waiting == NULL &&
           conn->out.size == 0 && !conn->write_active;
}

static void close_if_done(connection_t *conn)
{
    if (conn->waiting != NULL)
        return; /* a read waiting for min_index is still to be answered */
    if (conn->close_when_flushed && connection_idle(conn))
        connection_close(conn);
}

static void reading_stop(connection_t *conn)
{
    if (conn->reading)
        uv_read_stop((uv_stream_t *)&conn->handle);
    conn->reading = false;
}

void connection_begin_shutdown(connection_t *conn)
{
    reading_stop(conn);
    conn->close_when_flushed = true;
    close_if_done(conn);
}

/* Bytes the kernel holds for the connection that have not been read yet (0 when unknown). */
static int unread_bytes(const connection_t *conn)
{
    uv_os_fd_t fd;
    int bytes = 0;
    if (uv_fileno((const uv_handle_t *)&conn->handle, &fd) != 0 || ioctl(fd, FIONREAD, &bytes) != 0)
        return 0;
    return bytes;
}

/* A deadline passed: true when it must be judged again after a read, because the client's bytes
 * are in the kernel unread (the loop was stopped or stalled, e.g. SIGSTOP, while they came). Once
 * per deadline, so a client trickling bytes cannot put it off. */
static bool timeout_defer_for_unread(connection_t *conn)
{
    if (conn->timeout_deferred || !conn->reading || unread_bytes(conn) == 0)
        return false;
    conn->timeout_deferred = true;
    return true;
}

void connection_check_timeout(connection_t *conn, uint64_t now_monotonic_ms)
{
    uint64_t idle_ms = (uint64_t)conn->server->config.idle_timeout_s * 1000;
    if (!conn->closing && idle_ms > 0 && conn->partial_since_ms == 0 && connection_idle(conn) &&
        now_monotonic_ms - conn->last_read_ms >= idle_ms) {
        if (conn->reading && unread_bytes(conn) > 0)
            return; /* not idle: what it sent is about to be read */
        uint64_t suppressed;
        if (server_log_allow(conn->server, &conn->server->timeout_log, &suppressed))
            log_event(LOG_INFO, "idle_timeout", LOG_UINT("connection", conn->id),
                      LOG_STR("peer", conn->peer),
                      LOG_UINT("idle_s", conn->server->config.idle_timeout_s),
                      LOG_UINT("suppressed", suppressed));
        connection_close(conn);
        return;
    }
    uint32_t timeout_ms = conn->server->config.request_timeout_ms;
    if (conn->closing || conn->partial_since_ms == 0 || timeout_ms == 0)
        return;
    if (now_monotonic_ms - conn->partial_since_ms < timeout_ms || timeout_defer_for_unread(conn))
        return;
    uint64_t suppressed;
    if (server_log_allow(conn->server, &conn->server->timeout_log, &suppressed))
        log_event(LOG_INFO, "request_timeout", LOG_UINT("connection", conn->id),
                  LOG_STR("peer", conn->peer), LOG_UINT("buffered_bytes", conn->in_size),
                  LOG_UINT("suppressed", suppressed));
    connection_close(conn);
}

/* ---- output --------------------------------------------------------------------------------- */

static void mark_dirty(connection_t *conn)
{
    if (conn->dirty || conn->closing)
        return;
    conn->dirty = true;
    conn->dirty_next = conn->server->dirty;
    conn->server->dirty = conn;
}

/* Reply buffers are given up when they empty, so an idle connection holds no buffer at all
 * (10,000 idle connections would otherwise pin 8 KiB or more each). One of msgpack-c's first
 * size goes to the server's spares (at most ALLOT_REPLY_BUFFERS_SPARE_MAX), for the next
 * connection with replies to send: a read's replies would otherwise cost a malloc and a free. */
static void buffer_trim(server_t *server, msgpack_sbuffer *buffer)
{
    if (buffer->size != 0 || buffer->alloc == 0)
        return;
    if (buffer->alloc == MSGPACK_SBUFFER_INIT_SIZE &&
        server->reply_spare_count < ALLOT_REPLY_BUFFERS_SPARE_MAX)
        server->reply_spares[server->reply_spare_count++] = buffer->data;
    else
        msgpack_sbuffer_destroy(buffer);
    msgpack_sbuffer_init(buffer);
}

/* Before bytes go into a buffer: an unallocated one takes a spare, if there is one. */
static void buffer_ready(server_t *server, msgpack_sbuffer *buffer)
{
    if (buffer->alloc != 0 || server->reply_spare_count == 0)
        return;
    buffer->data = server->reply_spares[--server->reply_spare_count];
    buffer->alloc = MSGPACK_SBUFFER_INIT_SIZE;
    assert(buffer->size == 0);
}

void connection_spares_free(server_t *server)
{
    while (server->reply_spare_count > 0)
        free(server->reply_spares[--server->reply_spare_count]);
}

/* A client let more than output_bytes_max pile up: disconnected. */
static __attribute__((noinline, cold)) void output_limit_close(connection_t *conn, size_t pending)
{
    conn->server->metrics.connections_closed_by_limit++;
    uint64_t suppressed;
    if (server_log_allow(conn->server, &conn->server->output_limit_log, &suppressed))
        log_event(LOG_WARN, "output_limit", LOG_UINT("connection", conn->id),
                  LOG_STR("peer", conn->peer), LOG_UINT("pending_bytes", pending),
                  LOG_UINT("limit_bytes", conn->server->config.output_bytes_max),
                  LOG_UINT("suppressed", suppressed));
    connection_close(conn);
}

/* Queue reply bytes; a client that lets more than output_bytes_max pile up is disconnected.
 * One reply alone may be larger (only a write's: a read's is answered TOO_LARGE instead, see
 * reply_too_large), since its change is made and the client must learn so. */
static inline __attribute__((always_inline)) void output_append(connection_t *conn,
                                                                const char *bytes, size_t len)
{
    size_t queued = conn->out.size + conn->writing.size;
    size_t pending = queued + len;
    if (queued > 0 && pending > conn->server->config.output_bytes_max) {
        output_limit_close(conn, pending); /* out of line: every reply passes here */
        return;
    }
    buffer_ready(conn->server, &conn->out);
    pack_sbuffer_append(&conn->out, bytes, len); /* a short reply: no memcpy call */
    server_buffered_add(conn->server, len);
    mark_dirty(conn);
}

static void on_write(uv_write_t *req, int status)
{
    connection_t *conn = req->data;
    conn->write_active = false;
    server_buffered_sub(conn->server, conn->writing.size);
    conn->writing.size = 0;
    buffer_trim(conn->server, &conn->writing);
    if (conn->closing)
        return;
    if (status < 0) {
        connection_close(conn);
        return;
    }
    connection_flush(conn);
}

void connection_flush(connection_t *conn)
{
    if (conn->closing || conn->write_active)
        return;
    if (conn->out.size > 0) {
        uv_buf_t buf = uv_buf_init(conn->out.data, (unsigned)conn->out.size);
        int written = uv_try_write((uv_stream_t *)&conn->handle, &buf, 1);
        if (written < 0 && written != UV_EAGAIN) {
            connection_close(conn);
            return;
        }
        size_t done = written > 0 ? (size_t)written : 0;
        if (done < conn->out.size) {
            msgpack_sbuffer swap = conn->writing; /* empty, keeps its capacity */
            conn->writing = conn->out;
            conn->out = swap;
            memmove(conn->writing.data, conn->writing.data + done, conn->writing.size - done);
            conn->writing.size -= done;
            server_buffered_sub(conn->server, done);
            uv_buf_t rest = uv_buf_init(conn->writing.data, (unsigned)conn->writing.size);
            conn->write_req.data = conn;
            if (uv_write(&conn->write_req, (uv_stream_t *)&conn->handle, &rest, 1, on_write) != 0) {
                connection_close(conn);
                return;
            }
            conn->write_active = true;
            return;
        }
        server_buffered_sub(conn->server, conn->out.size);
        conn->out.size = 0;
        buffer_trim(conn->server, &conn->out);
    }
    close_if_done(conn);
}

void connection_notify(connection_t *conn, const char *bytes, size_t len)
{
    buffer_ready(conn->server, &conn->out);
    msgpack_sbuffer_write(&conn->out, bytes, len);
    server_buffered_add(conn->server, len);
    mark_dirty(conn);
}

void connection_reply_deferred(connection_t *conn, const char *bytes, size_t len)
{
    assert(conn->deferred_count > 0);
    conn->deferred_count--;
    if (conn->closing)
        return;
    output_append(conn, bytes, len);
    close_if_done(conn);
}

/* ---- replies held for durability ------------------------------------------------------------ */

static void held_list_add(connection_t *conn)
{
    server_t *server = conn->server;
    if (conn->in_held_list)
        return;
    conn->held_prev = NULL;
    conn->held_next = server->held;
    if (server->held != NULL)
        server->held->held_prev = conn;
    server->held = conn;
    conn->in_held_list = true;
}

static bool held_reserve_slot(connection_t *conn)
{
    if (conn->held_head + conn->held_count < conn->held_capacity)
        return true;
    if (conn->held_head > 0) {
        memmove(conn->held_replies, conn->held_replies + conn->held_head,
                conn->held_count * sizeof(held_reply_t));
        conn->held_head = 0;
        return true;
    }
    uint32_t capacity = conn->held_capacity ? conn->held_capacity * 2 : 16;
    held_reply_t *grown = realloc(conn->held_replies, capacity * sizeof(held_reply_t));
    if (grown == NULL)
        return false;
    conn->held_replies = grown;
    conn->held_capacity = capacity;
    return true;
}

/* Count a held request, released at now_ns, in the per-method metrics. */
static void reply_record(server_t *server, const held_reply_t *reply, uint64_t now_ns)
{
    if (reply->command_index == SIZE_MAX)
        return;
    int64_t latency_us = (int64_t)((now_ns - reply->started_ns) / 1000);
    metrics_request_record(&server->metrics, reply->command_index, latency_us, reply->error);
}

/* ---- request timing: one clock read per batch of requests, not three per request ----------- */

uint64_t connection_batch_started_ns(server_t *server)
{
    if (server->batch_started_ns == 0)
        server->batch_started_ns = uv_hrtime();
    return server->batch_started_ns;
}

void connection_batch_end(server_t *server)
{
    if (server->batch_started_ns == 0)
        return;
    uint64_t ended_ns = uv_hrtime();
    int64_t latency_us = (int64_t)((ended_ns - server->batch_started_ns) / 1000);
    for (uint32_t i = 0; i < server->batch_run_count; i++)
        metrics_requests_record(&server->metrics, server->batch_runs[i].command_index, latency_us,
                                server->batch_runs[i].calls, server->batch_runs[i].errors);
    server->batch_run_count = 0;
    server->batch_reply_count = 0;
    server->batch_started_ns = 0;
}

/* A request answered at once: recorded with its batch's latency when the batch ends, in one go
 * with the requests of the same method answered right before it. */
static void batch_reply_add(server_t *server, const held_reply_t *reply)
{
    if (reply->command_index == SIZE_MAX)
        return;
    assert(server->batch_started_ns != 0);
    if (server->batch_reply_count == ALLOT_BATCH_REPLIES_MAX) {
        connection_batch_end(server);
        connection_batch_started_ns(server); /* this request opens the next batch */
    }
    server->batch_reply_count++;
    uint32_t runs = server->batch_run_count;
    if (runs > 0 && server->batch_runs[runs - 1].command_index == reply->command_index) {
        server->batch_runs[runs - 1].calls++;
        server->batch_runs[runs - 1].errors += reply->error;
        return;
    }
    server->batch_runs[runs].command_index = (uint32_t)reply->command_index;
    server->batch_runs[runs].calls = 1;
    server->batch_runs[runs].errors = reply->error;
    server->batch_run_count++;
}

static void held_append(connection_t *conn, const held_reply_t *reply, const char *bytes,
                        size_t len)
{
    if (!held_reserve_slot(conn)) {
        connection_close(conn);
        return;
    }
    buffer_ready(conn->server, &conn->held);
    msgpack_sbuffer_write(&conn->held, bytes, len);
    server_buffered_add(conn->server, len);
    held_reply_t *slot = &conn->held_replies[conn->held_head + conn->held_count];
    *slot = *reply;
    slot->end = conn->held.size;
    conn->held_count++;
    held_list_add(conn);
}

static void reading_start(connection_t *conn);

void connection_release_durable(connection_t *conn, uint64_t durable_lsn, uint64_t now_ns)
{
    size_t end = 0;
    while (conn->held_count > 0 && conn->held_replies[conn->held_head].lsn <= durable_lsn) {
        end = conn->held_replies[conn->held_head].end;
        reply_record(conn->server, &conn->held_replies[conn->held_head], now_ns);
        conn->held_head++;
        conn->held_count--;
    }
    if (end == 0)
        return;
    output_append(conn, conn->held.data, end);
    memmove(conn->held.data, conn->held.data + end, conn->held.size - end);
    conn->held.size -= end;
    server_buffered_sub(conn->server, end);
    for (uint32_t i = 0; i < conn->held_count; i++)
        conn->held_replies[conn->held_head + i].end -= end;
    if (conn->held_count == 0) {
        conn->held_head = 0;
        held_list_remove(conn);
        buffer_trim(conn->server, &conn->held);
    }
    if (!conn->closing && !conn->reading && !conn->close_when_flushed &&
        conn->held_count < conn->server->config.inflight_requests_max) {
        reading_start(conn);
        input_process(conn);
    }
}

/* ---- input ---------------------------------------------------------------------------------- */

/* Read the msgid of an envelope that starts [type, msgid, ...], if those bytes are here. */
static bool peek_envelope_msgid(const uint8_t *p, size_t len, uint8_t type, uint32_t *msgid)
{
    size_t at;
    if (len >= 1 && p[0] == 0x94)
        at = 1;
    else if (len >= 3 && p[0] == 0xdc && p[1] == 0 && p[2] == 4)
        at = 3;
    else if (len >= 5 && p[0] == 0xdd && p[1] == 0 && p[2] == 0 && p[3] == 0 && p[4] == 4)
        at = 5;
    else
        return false;
    if (len < at + 2 || p[at] != type)
        return false;
    at++;
    uint64_t value = 0;
    unsigned width = p[at] <= 0x7f   ? 0
                     : p[at] == 0xcc ? 1
                     : p[at] == 0xcd ? 2
                     : p[at] == 0xce ? 4
                                     : 9;
    if (width == 9 || len < at + 1 + width)
        return false;
    if (width == 0)
        value = p[at];
    for (unsigned i = 0; i < width; i++)
        value = (value << 8) | p[at + 1 + i];
    *msgid = (uint32_t)value;
    return true;
}

/* Read the msgid of a request whose envelope starts [0, msgid, ...], if those bytes are here. */
static bool peek_msgid(const uint8_t *p, size_t len, uint32_t *msgid)
{
    return peek_envelope_msgid(p, len, 0x00, msgid);
}

/* The bytes cannot become a valid request: answer when a msgid is readable, then close.
 * data[0, len) starts with the offending request. */
static void frame_reject(connection_t *conn, frame_status_t status, const uint8_t *data, size_t len)
{
    server_t *server = conn->server;
    int error = status == FRAME_TOO_LARGE ? ALLOT_ETOO_LARGE : ALLOT_EINVALID_ARGUMENT;
    char message[160];
    if (status == FRAME_TOO_LARGE)
        snprintf(message, sizeof(message), "request larger than %u bytes",
                 server->config.request_bytes_max);
    else if (status == FRAME_TOO_DEEP)
        snprintf(message, sizeof(message), "request nested deeper than %d levels",
                 ALLOT_REQUEST_DEPTH_MAX);
    else
        snprintf(message, sizeof(message), "not a MessagePack-RPC request");
    uint32_t msgid;
    if (peek_msgid(data, len, &msgid)) {
        server->scratch.size = 0;
        dispatch_pack_error(&server->scratch, msgid, error, "request", message);
        output_append(conn, server->scratch.data, server->scratch.size);
    }
    server->metrics.requests_malformed++;
    uint64_t suppressed;
    if (server_log_allow(server, &server->bad_request_log, &suppressed))
        log_event(LOG_INFO, "bad_request", LOG_UINT("connection", conn->id),
                  LOG_STR("peer", conn->peer), LOG_STR("code", allot_error_code(error)),
                  LOG_UINT("suppressed", suppressed));
    reading_stop(conn);
    conn->close_when_flushed = true; /* the rest is discarded */
}

/* Over the global buffer budget: answer OVERLOADED without running the request. */
static void frame_overloaded(connection_t *conn, const uint8_t *data, size_t len)
{
    server_t *server = conn->server;
    uint32_t msgid;
    server->metrics.requests_overloaded++;
    if (!peek_msgid(data, len, &msgid))
        return; /* a notification: nobody to tell */
    server->scratch.size = 0;
    dispatch_pack_error(&server->scratch, msgid, ALLOT_EOVERLOADED, NULL,
                        "server buffers are full; retry later");
    output_append(conn, server->scratch.data, server->scratch.size);
}

/* A read's reply (in server->scratch) is over output_bytes_max: it could never be sent, so it is
 * replaced by TOO_LARGE naming its size and the limit, and the connection stays usable. */
static void reply_too_large(connection_t *conn, held_reply_t *reply)
{
    server_t *server = conn->server;
    uint32_t msgid = 0;
    size_t reply_bytes = server->scratch.size;
    bool found =
        peek_envelope_msgid((const uint8_t *)server->scratch.data, reply_bytes, 0x01, &msgid);
    assert(found); /* packed by rpc_pack_result_header */
    (void)found;
    msgpack_sbuffer_destroy(&server->scratch); /* do not keep the peak */
    msgpack_sbuffer_init(&server->scratch);
    char message[ALLOT_ERROR_MESSAGE_BYTES_MAX];
    snprintf(message, sizeof(message),
             "the reply is %zu bytes, over this connection's limit of %u (--output-bytes-max); "
             "ask for less",
             reply_bytes, server->config.output_bytes_max);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &server->scratch, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint32(&pk, 1); /* response */
    msgpack_pack_uint32(&pk, msgid);
    msgpack_pack_map(&pk, 4);
    pack_key_cstr(&pk, "code", allot_error_code(ALLOT_ETOO_LARGE));
    pack_key_cstr(&pk, "message", message);
    pack_key_int(&pk, "reply_bytes", (int64_t)reply_bytes);
    pack_key_int(&pk, "limit_bytes", (int64_t)server->config.output_bytes_max);
    msgpack_pack_nil(&pk);
    reply->error = true;
    server->metrics.replies_too_large++;
}

/* ---- reads waiting for min_index (PROTOCOL.md, Cluster) ------------------------------------- */

static void wait_list_remove(connection_t *conn)
{
    if (conn->waiting == NULL)
        return;
    server_t *server = conn->server;
    if (conn->wait_prev != NULL)
        conn->wait_prev->wait_next = conn->wait_next;
    else
        server->waiting = conn->wait_next;
    if (conn->wait_next != NULL)
        conn->wait_next->wait_prev = conn->wait_prev;
    conn->wait_prev = conn->wait_next = NULL;
    server->waiting_count--;
    server_buffered_sub(server, conn->waiting_bytes);
}

/* Keep the request (its frame) until the index is applied or the wait is over; the connection's
 * later requests wait behind it. Too many waiting: answered now, as if the wait were over. */
static void wait_begin(connection_t *conn, const uint8_t *data, size_t len,
                       const dispatch_outcome_t *outcome)
{
    server_t *server = conn->server;
    uint8_t *copy = server->waiting_count < ALLOT_MIN_INDEX_WAITERS_MAX ? malloc(len) : NULL;
    if (copy == NULL) {
        conn->wait_over = true;
        dispatch_env_t env;
        dispatch_env_init(conn, &env);
        frame_dispatch(conn, &env, data, len);
        conn->wait_over = false;
        return;
    }
    memcpy(copy, data, len);
    conn->waiting = copy;
    conn->waiting_bytes = len;
    conn->waiting_index = outcome->wait_index;
    conn->waiting_deadline_ms = uv_now(server->loop) + outcome->wait_ms;
    conn->wait_prev = NULL;
    conn->wait_next = server->waiting;
    if (server->waiting != NULL)
        server->waiting->wait_prev = conn;
    server->waiting = conn;
    server->waiting_count++;
    server_buffered_add(server, len);
    reading_stop(conn); /* resumed once it is answered */
}

static void wait_end(connection_t *conn, bool over)
{
    uint8_t *frame = conn->waiting;
    size_t len = conn->waiting_bytes;
    wait_list_remove(conn);
    conn->waiting = NULL;
    conn->wait_over = over;
    dispatch_env_t env;
    dispatch_env_init(conn, &env);
    frame_dispatch(conn, &env, frame, len);
    conn->wait_over = false;
    free(frame);
    if (conn->waiting == NULL && !conn->closing && !conn->close_when_flushed) {
        reading_start(conn);
        input_process(conn);
    }
    close_if_done(conn);
}

void connection_waits_check(server_t *server, uint64_t applied_index, uint64_t now_monotonic_ms)
{
    connection_t *next;
    for (connection_t *conn = server->waiting; conn != NULL; conn = next) {
        next = conn->wait_next;
        if (conn->waiting_index <= applied_index || now_monotonic_ms >= conn->waiting_deadline_ms)
            wait_end(conn, conn->waiting_index > applied_index);
    }
}

/* Empty server->zone after a request, as msgpack_zone_clear does: when the request allocated
 * from the first chunk only (the head is the one the last clear left, none added) and pushed no
 * finalizer, putting back the free pointer and count that clear left is all a clear would do (it
 * frees the chunks added before the first, calls the finalizers and resets those two fields);
 * that took some 27 instructions a request in msgpack-c's clear. Anything else: a full clear. */
static inline void request_zone_reset(server_t *server)
{
    msgpack_zone *zone = &server->zone;
    if (zone->chunk_list.head == server->zone_cleared.head &&
        zone->finalizer_array.tail == zone->finalizer_array.array) {
        zone->chunk_list.free = server->zone_cleared.free;
        zone->chunk_list.ptr = server->zone_cleared.ptr;
        return;
    }
    msgpack_zone_clear(zone);
    server->zone_cleared = zone->chunk_list;
}

static void object_dispatch(connection_t *conn, dispatch_env_t *env, const uint8_t *data,
                            size_t len, const msgpack_object *object, rpc_envelope_t *checked);

/* Dispatch the request data[0, len), one whole object as the framer found it: decoded here. */
static void frame_dispatch(connection_t *conn, dispatch_env_t *env, const uint8_t *data, size_t len)
{
    server_t *server = conn->server;
    msgpack_object object;
    size_t offset = 0;
    msgpack_unpack_return ret =
        msgpack_unpack((const char *)data, len, &offset, &server->zone, &object);
    if (ret != MSGPACK_UNPACK_SUCCESS || offset != len) {
        request_zone_reset(server);
        frame_reject(conn, FRAME_INVALID, data, len);
        return;
    }
    object_dispatch(conn, env, data, len, &object, NULL);
}

/* dispatch_env_t.writes_check_cb: may a WRITE run now (asked for WRITE commands only). */
static void writes_check(const dispatch_env_t *env, dispatch_writes_t *writes)
{
    server_t *server = env->server;
    writes->allowed = server_writes_allowed(server, &writes->refused_error);
    if (!writes->allowed && server->consensus != NULL) {
        writes->leader_address = server_leader_address(server);
        writes->leader_elected = writes->refused_error == ALLOT_EUNAVAILABLE &&
                                 consensus_role(server->consensus) == CONSENSUS_LEADER;
    }
}

/* The dispatch environment of conn's requests, built once for the requests of one read (the
 * clock, the connection and its wait state do not change between them); object_dispatch sets
 * the applied index per request. */
static void dispatch_env_init(connection_t *conn, dispatch_env_t *env)
{
    server_t *server = conn->server;
    *env = (dispatch_env_t){.state = server->state,
                            .server = server,
                            .conn = conn,
                            .now_ms = server_now_ms(server),
                            .auth_required = server->auth.required,
                            .session = &conn->auth,
                            .writes_check_cb = writes_check,
                            .read_wait_over = conn->wait_over};
}

/* Dispatch the request data[0, len) decoded into object (its containers in server->zone, which
 * is cleared here); env from dispatch_env_init for conn; checked: its envelope when the decoder
 * checked it (dispatch_request), else NULL. */
static void object_dispatch(connection_t *conn, dispatch_env_t *env, const uint8_t *data,
                            size_t len, const msgpack_object *object, rpc_envelope_t *checked)
{
    server_t *server = conn->server;
    if (server_buffered_over_budget(server)) {
        frame_overloaded(conn, data, len);
        request_zone_reset(server);
        return;
    }
    uint64_t started_ns = connection_batch_started_ns(server);
    env->applied_index =
        server->consensus != NULL ? consensus_applied_index(server->consensus) : UINT64_MAX;
    dispatch_outcome_t outcome;
    server->scratch.size = 0;
    dispatch_request(env, object, checked, &server->scratch, &outcome);
    request_zone_reset(server);
    if (outcome.wait) {
        wait_begin(conn, data, len, &outcome);
        return;
    }
    if (outcome.command_index == SIZE_MAX && outcome.error != 0)
        metrics_request_rejected(&server->metrics, outcome.error, outcome.close);
    held_reply_t reply = {.started_ns = started_ns,
                          .command_index = outcome.command_index,
                          .error = outcome.error != 0};
    if (outcome.replied && !outcome.write && server->scratch.size > server->config.output_bytes_max)
        reply_too_large(conn, &reply);
    if (outcome.replied) {
        reply.lsn = outcome.write ? server_wal_lsn(server) : 0; /* a read waits for nothing */
        if (reply.lsn > server->durable_lsn) {
            held_append(conn, &reply, server->scratch.data, server->scratch.size);
        } else {
            output_append(conn, server->scratch.data, server->scratch.size);
            batch_reply_add(server, &reply);
        }
    }
    if (outcome.close) {
        reading_stop(conn);
        conn->close_when_flushed = true; /* input_dispatch discards what follows */
    }
}

/* A whole request at data[0, len), framed and decoded in one pass (net/decode.h), is dispatched
 * and true returned with *frame_bytes its length. False: nothing was dispatched or consumed, and
 * the request is for the framer (partial, or refused with the framer's error). Only a request's
 * first attempt comes here (the scanner at its start), so a request arriving in pieces is still
 * scanned once, resuming, not decoded again from its start on every read. */
static bool request_decode_dispatch(connection_t *conn, dispatch_env_t *env, const uint8_t *data,
                                    size_t len, size_t *frame_bytes)
{
    server_t *server = conn->server;
    msgpack_object object;
    decode_result_t decoded;
    if (decode_request_envelope(data, len, server->config.request_bytes_max, &server->zone, &object,
                                &decoded) != DECODE_COMPLETE) {
        request_zone_reset(server);
        return false;
    }
    *frame_bytes = decoded.frame_bytes;
    object_dispatch(conn, env, data, decoded.frame_bytes, &object,
                    decoded.checked ? &decoded.envelope : NULL);
    return true;
}

/* Dispatch the complete requests at the start of data[0, len) (the current request's first
 * byte first); stops at a partial request, when the connection may not take more, or after a
 * request that ends it. Returns the bytes consumed (all of them once the connection is ending:
 * nothing after a fatal request is read). At the start of a request not yet peeked, the group of
 * whole requests from it on is peeked and what they will look up loaded ahead (net/peek.h), unless
 * the tables are small enough to stay in the caches (allot_prefetch_pays). */
static size_t input_dispatch(connection_t *conn, const uint8_t *data, size_t len)
{
    server_t *server = conn->server;
    size_t used = 0;
    /* requests before this offset were peeked (all of them when the tables fit in the caches) */
    size_t peeked_end = allot_prefetch_pays(server->state) ? 0 : len;
    dispatch_env_t env;
    dispatch_env_init(conn, &env);
    while (!conn->closing && !conn->close_when_flushed && conn->waiting == NULL && used < len) {
        if (conn->held_count >= server->config.inflight_requests_max) {
            reading_stop(conn); /* resumed when replies drain (connection_release_durable) */
            break;
        }
        if (conn->scanner.offset == 0 && used >= peeked_end) {
            size_t peeked = peek_requests_prefetch(server->state, data + used, len - used);
            peeked_end = used + (peeked > 0 ? peeked : 1); /* not again within this request */
        }
        size_t frame_bytes = 0;
        if (conn->scanner.offset == 0 &&
            request_decode_dispatch(conn, &env, data + used, len - used, &frame_bytes)) {
            used += frame_bytes;
            conn->partial_since_ms = 0;
            conn->timeout_deferred = false;
            continue;
        }
        frame_status_t status = frame_scan(&conn->scanner, data + used, len - used,
                                           server->config.request_bytes_max, &frame_bytes);
        if (status == FRAME_NEED_MORE) {
            if (conn->partial_since_ms == 0)
                conn->partial_since_ms = uv_now(server->loop);
            break;
        }
        if (status != FRAME_COMPLETE) {
            frame_reject(conn, status, data + used, len - used);
            break;
        }
        frame_dispatch(conn, &env, data + used, frame_bytes);
        used += frame_bytes;
        frame_scanner_reset(&conn->scanner);
        conn->partial_since_ms = 0;
        conn->timeout_deferred = false;
    }
    return conn->closing || conn->close_when_flushed ? len : used;
}

/* Move the connection's input tail to `capacity` bytes (0: free it), keeping its content, and
 * account the change in the budget. False when memory ran out (nothing changed). */
static bool tail_resize(connection_t *conn, size_t capacity)
{
    assert(capacity >= conn->in_size);
    uint8_t *moved = NULL;
    if (capacity > 0) {
        moved = realloc(conn->in, capacity);
        if (moved == NULL)
            return false;
    } else {
        free(conn->in);
    }
    server_t *server = conn->server;
    server_buffered_sub(server, conn->in_capacity);
    server->input_bytes -= conn->in_capacity;
    server_buffered_add(server, capacity);
    server->input_bytes += capacity;
    conn->in = moved;
    conn->in_capacity = capacity;
    return true;
}

/* Room for `bytes` in the tail: grown to what is needed, at least doubling. */
static bool tail_reserve(connection_t *conn, size_t bytes)
{
    if (bytes <= conn->in_capacity)
        return true;
    size_t capacity = conn->in_capacity * 2;
    if (capacity < bytes)
        capacity = bytes;
    if (capacity < ALLOT_INPUT_TAIL_BYTES_MIN)
        capacity = ALLOT_INPUT_TAIL_BYTES_MIN;
    return tail_resize(conn, capacity);
}

/* Drop the first `used` bytes of the tail; a tail left much larger than its content shrinks
 * (an emptied one is freed), so what a connection keeps is what it has not sent in full. */
static void tail_consume(connection_t *conn, size_t used)
{
    assert(used <= conn->in_size);
    memmove(conn->in, conn->in + used, conn->in_size - used);
    conn->in_size -= used;
    if (conn->in_size == 0)
        tail_resize(conn, 0);
    else if (conn->in_capacity > ALLOT_READ_CHUNK_BYTES && conn->in_size <= conn->in_capacity / 4)
        tail_resize(conn, conn->in_size > ALLOT_INPUT_TAIL_BYTES_MIN ? conn->in_size
                                                                     : ALLOT_INPUT_TAIL_BYTES_MIN);
}

/* Dispatch what the tail holds (after more arrived, or when reading resumes). */
static void input_process(connection_t *conn)
{
    if (conn->in_size > 0)
        tail_consume(conn, input_dispatch(conn, conn->in, conn->in_size));
    close_if_done(conn);
}

/* Unfinished requests of all connections together may hold at most a share of the global
 * budget: over it, close the connections holding the most input (largest first) until they fit,
 * so one group of slow or hostile senders cannot push everyone else into OVERLOADED. */
static void input_budget_enforce(server_t *server)
{
    uint64_t input_bytes_max = server->config.buffer_bytes_max / ALLOT_BUFFER_INPUT_SHARE_DIVISOR;
    while (server->input_bytes > input_bytes_max) {
        connection_t *largest = NULL;
        for (connection_t *c = server->connections; c != NULL; c = c->next)
            if (!c->closing && c->in_capacity > 0 &&
                (largest == NULL || c->in_capacity > largest->in_capacity))
                largest = c;
        if (largest == NULL)
            break;
        server->metrics.connections_closed_by_budget++;
        uint64_t suppressed;
        if (server_log_allow(server, &server->input_cut_log, &suppressed))
            log_event(LOG_WARN, "input_budget", LOG_UINT("connection", largest->id),
                      LOG_STR("peer", largest->peer), LOG_UINT("pending_bytes", largest->in_size),
                      LOG_UINT("input_bytes", server->input_bytes),
                      LOG_UINT("limit_bytes", input_bytes_max), LOG_UINT("suppressed", suppressed));
        largest->in_size = 0;
        tail_resize(largest, 0); /* accounted now; the handle closes later */
        connection_close(largest);
    }
}

/* Every read lands in the loop's one read buffer: nothing is allocated for a connection until
 * part of a request is left over. */
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    connection_t *conn = handle->data;
    (void)suggested;
    *buf = uv_buf_init((char *)conn->server->read_buffer, sizeof(conn->server->read_buffer));
}

/* New bytes in the shared read buffer: dispatch straight from it when nothing was left over,
 * else behind the tail; keep what is not consumed. */
static void input_arrived(connection_t *conn, const uint8_t *data, size_t len)
{
    if (conn->in_size == 0) {
        size_t used = input_dispatch(conn, data, len);
        data += used;
        len -= used;
        if (len == 0)
            return;
    }
    if (!tail_reserve(conn, conn->in_size + len)) {
        log_event(LOG_ERROR, "input_failed", LOG_UINT("connection", conn->id),
                  LOG_STR("peer", conn->peer), LOG_STR("code", "NOMEM"));
        connection_close(conn);
        return;
    }
    memcpy(conn->in + conn->in_size, data, len);
    conn->in_size += len;
    if (conn->in_size > len) /* there was a tail: the request continues in it */
        tail_consume(conn, input_dispatch(conn, conn->in, conn->in_size));
    assert(conn->closing || conn->in_size <= (size_t)conn->server->config.request_bytes_max +
                                                 ALLOT_READ_CHUNK_BYTES);
    input_budget_enforce(conn->server);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    connection_t *conn = stream->data;
    if (nread == UV_ENOBUFS || nread < 0) {
        connection_close(conn);
        return;
    }
    if (nread == 0)
        return;
    conn->last_read_ms = uv_now(conn->server->loop);
    input_arrived(conn, (const uint8_t *)buf->base, (size_t)nread);
    connection_batch_end(conn->server); /* one clock read for the read's requests */
    close_if_done(conn);
}

static void reading_start(connection_t *conn)
{
    if (conn->reading || conn->closing)
        return;
    if (uv_read_start((uv_stream_t *)&conn->handle, on_alloc, on_read) == 0)
        conn->reading = true;
}

/* ---- accept --------------------------------------------------------------------------------- */

static void on_refused_close(uv_handle_t *handle)
{
    free(handle);
}

static void refuse(server_t *server)
{
    uv_tcp_t *tcp = malloc(sizeof(*tcp));
    if (tcp == NULL)
        return;
    uv_tcp_init(server->loop, tcp);
    if (uv_accept((uv_stream_t *)&server->listener, (uv_stream_t *)tcp) == 0) {
        server->connections_refused++;
        server->metrics.connections_refused++;
        uint64_t suppressed;
        if (server_log_allow(server, &server->refused_log, &suppressed))
            log_event(LOG_WARN, "connection_limit",
                      LOG_UINT("limit", server->config.connections_max),
                      LOG_UINT("refused_total", server->connections_refused),
                      LOG_UINT("suppressed", suppressed));
    }
    uv_close((uv_handle_t *)tcp, on_refused_close);
}

/* "ip:port" of the client into conn->peer ("?" when the kernel cannot tell). */
static void peer_describe(connection_t *conn)
{
    struct sockaddr_storage address;
    int address_bytes = sizeof(address);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    snprintf(conn->peer, sizeof(conn->peer), "?");
    if (uv_tcp_getpeername(&conn->handle, (struct sockaddr *)&address, &address_bytes) != 0)
        return;
    auth_peer_key_from_address((const struct sockaddr *)&address, &conn->auth.peer);
    if (address.ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)&address, host, sizeof(host));
        port = ntohs(((const struct sockaddr_in6 *)&address)->sin6_port);
        snprintf(conn->peer, sizeof(conn->peer), "[%s]:%d", host, port);
    } else if (address.ss_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)&address, host, sizeof(host));
        port = ntohs(((const struct sockaddr_in *)&address)->sin_port);
        snprintf(conn->peer, sizeof(conn->peer), "%s:%d", host, port);
    }
}

/* A new client needs a slot while authentication is on: over the unauthenticated cap, or at
 * connections_max, the oldest unauthenticated connections are closed (the slots cannot be held
 * by sockets that never authenticate; an authenticating client takes a millisecond). */
static void unauth_make_room(server_t *server)
{
    while (server->unauth_oldest != NULL &&
           (server->unauth_count >= server_unauthenticated_max(server) ||
            server_connections_open(server) >= server->config.connections_max)) {
        connection_t *oldest = server->unauth_oldest;
        server->metrics.connections_unauth_evicted++;
        uint64_t suppressed;
        if (server_log_allow(server, &server->unauth_log, &suppressed))
            log_event(LOG_WARN, "unauthenticated_evicted", LOG_UINT("connection", oldest->id),
                      LOG_STR("peer", oldest->peer),
                      LOG_UINT("unauthenticated", server->unauth_count),
                      LOG_UINT("limit", server_unauthenticated_max(server)),
                      LOG_UINT("suppressed", suppressed));
        connection_close(oldest); /* leaves the list */
    }
}

void connection_check_auth_deadlines(server_t *server, uint64_t now_monotonic_ms)
{
    uint32_t timeout_ms = server->config.auth_timeout_ms;
    if (!server->auth.required || timeout_ms == 0)
        return;
    uint32_t closed = 0;
    connection_t *next;
    for (connection_t *conn = server->unauth_oldest;
         conn != NULL && now_monotonic_ms - conn->accepted_ms >= timeout_ms; conn = next) {
        next = conn->unauth_next;
        if (timeout_defer_for_unread(conn))
            continue; /* its auth request may be waiting in the kernel */
        connection_close(conn);
        closed++;
    }
    if (closed == 0)
        return;
    server->metrics.connections_auth_timeout += closed;
    log_event(LOG_INFO, "auth_timeout", LOG_UINT("closed", closed),
              LOG_UINT("timeout_ms", timeout_ms),
              LOG_UINT("unauthenticated", server->unauth_count));
}

static connection_t *connection_create(server_t *server)
{
    connection_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        return NULL;
    conn->server = server;
    conn->id = ++server->next_connection_id;
    msgpack_sbuffer_init(&conn->out);
    msgpack_sbuffer_init(&conn->writing);
    msgpack_sbuffer_init(&conn->held);
    frame_scanner_reset(&conn->scanner);
    uv_tcp_init(server->loop, &conn->handle);
    conn->handle.data = conn;
    conn->next = server->connections;
    if (server->connections != NULL)
        server->connections->prev = conn;
    server->connections = conn;
    server->connection_count++;
    return conn;
}

void connection_accept(server_t *server)
{
    if (server->auth.required)
        unauth_make_room(server);
    connection_t *conn = server_connections_open(server) < server->config.connections_max
                             ? connection_create(server)
                             : NULL;
    if (conn == NULL) {
        refuse(server);
        return;
    }
    if (uv_accept((uv_stream_t *)&server->listener, (uv_stream_t *)&conn->handle) != 0) {
        connection_close(conn);
        return;
    }
    uv_tcp_nodelay(&conn->handle, 1);
    peer_describe(conn);
    conn->accepted_ms = conn->last_read_ms = uv_now(server->loop);
    if (server->auth.required)
        unauth_list_append(conn);
    server->metrics.connections_accepted++;
    reading_start(conn);
}
