/* connection.c - one client connection: read, frame, dispatch, hold, flush, close. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "dispatch.h"
#include "log.h"
#include "server_internal.h"

/* Buffers above this size are freed when they empty, so one large request or reply does not
 * pin memory for the life of the connection. */
#define CONNECTION_BUFFER_KEEP_BYTES (256u * 1024)

static void process_input(connection_t *conn);

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void on_close(uv_handle_t *handle)
{
    connection_t *conn = handle->data;
    server_buffered_sub(conn->server, conn->in_capacity + conn->out.size + conn->writing.size +
                                          conn->held.size);
    free(conn->in);
    msgpack_sbuffer_destroy(&conn->out);
    msgpack_sbuffer_destroy(&conn->writing);
    msgpack_sbuffer_destroy(&conn->held);
    free(conn->held_replies);
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

void connection_close(connection_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    held_list_remove(conn);
    if (conn->deferred_count > 0)
        server_deferred_drop(conn->server, conn);
    uv_close((uv_handle_t *)&conn->handle, on_close);
}

bool connection_idle(const connection_t *conn)
{
    return conn->held_count == 0 && conn->deferred_count == 0 && conn->out.size == 0 &&
           !conn->write_active;
}

static void close_if_done(connection_t *conn)
{
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

void connection_check_timeout(connection_t *conn, uint64_t now_monotonic_ms)
{
    uint64_t idle_ms = (uint64_t)conn->server->config.idle_timeout_s * 1000;
    if (!conn->closing && idle_ms > 0 && conn->partial_since_ms == 0 && connection_idle(conn) &&
        now_monotonic_ms - conn->last_read_ms >= idle_ms) {
        log_write(LOG_INFO, "idle_timeout", "connection=%llu idle_s=%u",
                  (unsigned long long)conn->id, conn->server->config.idle_timeout_s);
        connection_close(conn);
        return;
    }
    uint32_t timeout_ms = conn->server->config.request_timeout_ms;
    if (conn->closing || conn->partial_since_ms == 0 || timeout_ms == 0)
        return;
    if (now_monotonic_ms - conn->partial_since_ms < timeout_ms)
        return;
    log_write(LOG_INFO, "request_timeout", "connection=%llu buffered_bytes=%zu",
              (unsigned long long)conn->id, conn->in_size - conn->in_start);
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

static void buffer_trim(msgpack_sbuffer *buffer)
{
    if (buffer->size == 0 && buffer->alloc > CONNECTION_BUFFER_KEEP_BYTES) {
        msgpack_sbuffer_destroy(buffer);
        msgpack_sbuffer_init(buffer);
    }
}

/* Queue reply bytes; a client that lets more than output_bytes_max pile up is disconnected. */
static void output_append(connection_t *conn, const char *bytes, size_t len)
{
    size_t pending = conn->out.size + conn->writing.size + len;
    if (pending > conn->server->config.output_bytes_max) {
        conn->server->metrics.connections_closed_by_limit++;
        log_write(LOG_WARN, "output_limit", "connection=%llu pending_bytes=%zu limit_bytes=%u",
                  (unsigned long long)conn->id, pending, conn->server->config.output_bytes_max);
        connection_close(conn);
        return;
    }
    msgpack_sbuffer_write(&conn->out, bytes, len);
    server_buffered_add(conn->server, len);
    mark_dirty(conn);
}

static void on_write(uv_write_t *req, int status)
{
    connection_t *conn = req->data;
    conn->write_active = false;
    server_buffered_sub(conn->server, conn->writing.size);
    conn->writing.size = 0;
    buffer_trim(&conn->writing);
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
        buffer_trim(&conn->out);
    }
    close_if_done(conn);
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

/* Count an answered request in the per-method metrics. */
static void reply_record(server_t *server, const held_reply_t *reply)
{
    if (reply->command_index == SIZE_MAX)
        return;
    int64_t latency_us = (int64_t)((uv_hrtime() - reply->started_ns) / 1000);
    metrics_request_record(&server->metrics, reply->command_index, latency_us, reply->error);
}

static void held_append(connection_t *conn, const held_reply_t *reply, const char *bytes,
                        size_t len)
{
    if (!held_reserve_slot(conn)) {
        connection_close(conn);
        return;
    }
    msgpack_sbuffer_write(&conn->held, bytes, len);
    server_buffered_add(conn->server, len);
    held_reply_t *slot = &conn->held_replies[conn->held_head + conn->held_count];
    *slot = *reply;
    slot->end = conn->held.size;
    conn->held_count++;
    held_list_add(conn);
}

static void reading_start(connection_t *conn);

void connection_release_durable(connection_t *conn, uint64_t durable_lsn)
{
    size_t end = 0;
    while (conn->held_count > 0 && conn->held_replies[conn->held_head].lsn <= durable_lsn) {
        end = conn->held_replies[conn->held_head].end;
        reply_record(conn->server, &conn->held_replies[conn->held_head]);
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
        buffer_trim(&conn->held);
    }
    if (!conn->closing && !conn->reading && !conn->close_when_flushed &&
        conn->held_count < conn->server->config.inflight_requests_max) {
        reading_start(conn);
        process_input(conn);
    }
}

/* ---- input ---------------------------------------------------------------------------------- */

/* Read the msgid of a request whose envelope starts [0, msgid, ...], if those bytes are here. */
static bool peek_msgid(const uint8_t *p, size_t len, uint32_t *msgid)
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
    if (len < at + 2 || p[at] != 0x00)
        return false;
    at++;
    uint64_t value = 0;
    unsigned width = p[at] <= 0x7f ? 0 : p[at] == 0xcc ? 1 : p[at] == 0xcd ? 2 : p[at] == 0xce ? 4 : 9;
    if (width == 9 || len < at + 1 + width)
        return false;
    if (width == 0)
        value = p[at];
    for (unsigned i = 0; i < width; i++)
        value = (value << 8) | p[at + 1 + i];
    *msgid = (uint32_t)value;
    return true;
}

/* The bytes cannot become a valid request: answer when a msgid is readable, then close. */
static void frame_reject(connection_t *conn, frame_status_t status)
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
    const uint8_t *frame = conn->in + conn->in_start;
    if (peek_msgid(frame, conn->in_size - conn->in_start, &msgid)) {
        server->scratch.size = 0;
        dispatch_pack_error(&server->scratch, msgid, error, "request", message);
        output_append(conn, server->scratch.data, server->scratch.size);
    }
    server->metrics.requests_malformed++;
    log_write(LOG_INFO, "bad_request", "connection=%llu code=%s", (unsigned long long)conn->id,
              allot_error_code(error));
    reading_stop(conn);
    conn->close_when_flushed = true;
    conn->in_start = conn->in_size; /* discard the rest */
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

static void frame_dispatch(connection_t *conn, const uint8_t *data, size_t len)
{
    server_t *server = conn->server;
    msgpack_object object;
    size_t offset = 0;
    msgpack_unpack_return ret =
        msgpack_unpack((const char *)data, len, &offset, &server->zone, &object);
    if (ret != MSGPACK_UNPACK_SUCCESS || offset != len) {
        msgpack_zone_clear(&server->zone);
        frame_reject(conn, FRAME_INVALID);
        return;
    }
    if (server_buffered_over_budget(server)) {
        frame_overloaded(conn, data, len);
        msgpack_zone_clear(&server->zone);
        return;
    }
    uint64_t started_ns = uv_hrtime();
    dispatch_env_t env = {.state = server->state,
                          .server = server,
                          .conn = conn,
                          .now_ms = server_now_ms(server),
                          .auth_required = server->auth.required,
                          .session = &conn->auth};
    env.writes_allowed = server_writes_allowed(server, &env.writes_refused_error);
    dispatch_outcome_t outcome;
    server->scratch.size = 0;
    dispatch_object(&env, &object, &server->scratch, &outcome);
    msgpack_zone_clear(&server->zone);
    held_reply_t reply = {.started_ns = started_ns,
                          .command_index = outcome.command_index,
                          .error = outcome.error != 0};
    if (outcome.replied) {
        reply.lsn = server_wal_lsn(server);
        if (outcome.write && reply.lsn > server->durable_lsn) {
            held_append(conn, &reply, server->scratch.data, server->scratch.size);
        } else {
            output_append(conn, server->scratch.data, server->scratch.size);
            reply_record(server, &reply);
        }
    }
    server->iteration_busy_ns += uv_hrtime() - started_ns;
    if (outcome.close) {
        reading_stop(conn);
        conn->close_when_flushed = true; /* process_input discards what follows */
    }
}

static void input_compact(connection_t *conn)
{
    if (conn->in_start == conn->in_size) {
        conn->in_start = conn->in_size = 0;
        if (conn->in_capacity > CONNECTION_BUFFER_KEEP_BYTES) {
            server_buffered_sub(conn->server, conn->in_capacity);
            free(conn->in);
            conn->in = NULL;
            conn->in_capacity = 0;
        }
    } else if (conn->in_start > 0) {
        memmove(conn->in, conn->in + conn->in_start, conn->in_size - conn->in_start);
        conn->in_size -= conn->in_start;
        conn->in_start = 0;
    }
}

static void process_input(connection_t *conn)
{
    server_t *server = conn->server;
    while (!conn->closing && !conn->close_when_flushed && conn->in_start < conn->in_size) {
        if (conn->held_count >= server->config.inflight_requests_max) {
            reading_stop(conn); /* resumed when replies drain (connection_release_durable) */
            break;
        }
        size_t frame_bytes = 0;
        frame_status_t status =
            frame_scan(&conn->scanner, conn->in + conn->in_start, conn->in_size - conn->in_start,
                       server->config.request_bytes_max, &frame_bytes);
        if (status == FRAME_NEED_MORE) {
            if (conn->partial_since_ms == 0)
                conn->partial_since_ms = uv_now(server->loop);
            break;
        }
        if (status != FRAME_COMPLETE) {
            frame_reject(conn, status);
            break;
        }
        frame_dispatch(conn, conn->in + conn->in_start, frame_bytes);
        conn->in_start += frame_bytes;
        frame_scanner_reset(&conn->scanner);
        conn->partial_since_ms = 0;
    }
    if (conn->close_when_flushed)
        conn->in_start = conn->in_size; /* nothing after a fatal request is read */
    input_compact(conn);
    close_if_done(conn);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    connection_t *conn = handle->data;
    (void)suggested;
    size_t limit = (size_t)conn->server->config.request_bytes_max + ALLOT_READ_CHUNK_BYTES;
    if (conn->in_capacity - conn->in_size < ALLOT_READ_CHUNK_BYTES &&
        conn->in_capacity < limit) {
        size_t capacity = conn->in_capacity ? conn->in_capacity * 2 : ALLOT_READ_CHUNK_BYTES;
        if (capacity > limit)
            capacity = limit;
        uint8_t *grown = realloc(conn->in, capacity);
        if (grown != NULL) {
            server_buffered_add(conn->server, capacity - conn->in_capacity);
            conn->in = grown;
            conn->in_capacity = capacity;
        }
    }
    *buf = uv_buf_init((char *)conn->in + conn->in_size,
                       (unsigned)(conn->in_capacity - conn->in_size));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    connection_t *conn = stream->data;
    (void)buf;
    if (nread == UV_ENOBUFS) {
        /* a complete request never needs more than request_bytes_max: the scanner has
         * already rejected anything larger, so this cannot persist; stop and close */
        connection_close(conn);
        return;
    }
    if (nread < 0) {
        connection_close(conn);
        return;
    }
    conn->in_size += (size_t)nread;
    conn->last_read_ms = uv_now(conn->server->loop);
    process_input(conn);
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
        log_write(LOG_WARN, "connection_limit", "limit=%u refused_total=%llu",
                  server->config.connections_max,
                  (unsigned long long)server->connections_refused);
    }
    uv_close((uv_handle_t *)tcp, on_refused_close);
}

void connection_accept(server_t *server)
{
    if (server->connection_count >= server->config.connections_max) {
        refuse(server);
        return;
    }
    connection_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        refuse(server);
        return;
    }
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
    if (uv_accept((uv_stream_t *)&server->listener, (uv_stream_t *)&conn->handle) != 0) {
        connection_close(conn);
        return;
    }
    uv_tcp_nodelay(&conn->handle, 1);
    conn->last_read_ms = uv_now(server->loop);
    server->metrics.connections_accepted++;
    reading_start(conn);
}
