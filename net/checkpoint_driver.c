/* checkpoint_driver.c - the server's checkpoints on the loop: triggers, serialization in slices,
 * the hand-over to the writer thread once the WAL is durable, commit and shutdown (contract in
 * checkpoint_driver.h). */
#include "checkpoint_driver.h"

#include <assert.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdint.h>

#include "command.h"
#include "core/errors.h"
#include "core/order.h"
#include "core/state.h"
#include "log.h"
#include "pack.h"
#include "rpc.h"
#include "events.h"
#include "server_internal.h"

static void checkpoint_answer(server_t *server, uint64_t generation, int status, uint64_t lsn,
                              const char *message)
{
    server_checkpoint_t *cp = &server->checkpoint;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < cp->waiter_count; i++) {
        checkpoint_waiter_t waiter = cp->waiters[i];
        if (waiter.generation > generation) {
            cp->waiters[kept++] = waiter;
            continue;
        }
        msgpack_packer pk;
        msgpack_packer_init(&pk, &server->scratch, msgpack_sbuffer_write);
        server->scratch.size = 0;
        if (status == 0) {
            rpc_pack_result_header(&pk, waiter.msgid);
            msgpack_pack_map(&pk, 1);
            pack_key_int(&pk, "checkpoint_lsn", (int64_t)lsn);
        } else {
            allot_error_detail_t detail;
            allot_error_detail_clear(&detail);
            allot_error_set(&detail, ALLOT_EINTERNAL, NULL, "checkpoint failed: %s", message);
            rpc_pack_error(&pk, waiter.msgid, ALLOT_EINTERNAL, &detail);
        }
        if (waiter.http != NULL)
            http_reply_deferred(waiter.http, server->scratch.data, server->scratch.size);
        else
            connection_reply_deferred(waiter.conn, server->scratch.data, server->scratch.size);
    }
    cp->waiter_count = kept;
}

/* Something to write: new WAL records, dirty objects, or batches of a failed checkpoint. */
static bool checkpoint_due(const server_t *server)
{
    const server_checkpoint_t *cp = &server->checkpoint;
    return server_wal_lsn(server) > server->checkpoint_lsn ||
           allot_state_dirty_count(server->state) > 0 || cp->full_needed ||
           checkpoint_writer_kept(cp->writer) > 0 || cp->waiter_count > 0;
}

void checkpoint_driver_durable(server_t *server)
{
    server_checkpoint_t *cp = &server->checkpoint;
    if (cp->pending == NULL || cp->writer == NULL || checkpoint_writer_busy(cp->writer) ||
        server->durable_lsn < cp->pending_lsn)
        return;
    /* the events of the records the checkpoint covers are stored before its writer syncs the
     * store (checkpoint_driver_committed_cb) and the WAL that could derive them again goes */
    events_store_durable(server->events);
    if (checkpoint_writer_submit(cp->writer, cp->pending, cp->pending_lsn) != 0)
        return; /* out of memory: kept pending, retried at the next durable report */
    cp->pending = NULL;
    cp->in_flight_generation = cp->pending_generation;
}

/* Serializing failed (out of memory): the dirty marks are gone, so the next checkpoint rewrites
 * every object; the waiters of this generation get an error. A request that came meanwhile is
 * served by the next housekeeping tick (checkpoint_maybe_start). */
static void checkpoint_serialize_failed(server_t *server, const char *reason, uint64_t generation)
{
    server_checkpoint_t *cp = &server->checkpoint;
    log_event(LOG_ERROR, "checkpoint_failed", LOG_STR("reason", reason), LOG_STR("code", "NOMEM"),
              LOG_STR("message",
                      "out of memory while serializing; the next checkpoint writes everything"));
    cp->full_needed = true;
    checkpoint_answer(server, generation, ALLOT_ENOMEM, 0, "out of memory");
    if (cp->shutdown_phase == 1)
        server_shutdown_close_all(server);
}

/* Every pending object is in the batch: it is the state as of building_lsn. Hand it on. */
static void checkpoint_serialized(server_t *server)
{
    server_checkpoint_t *cp = &server->checkpoint;
    if (server->checkpoint_slicer.loop != NULL)
        uv_idle_stop(&server->checkpoint_slicer);
    checkpoint_batch_t *batch = cp->building;
    cp->building = NULL;
    int rc = allot_state_checkpoint_end(server->state);
    if (rc != 0 || checkpoint_batch_failed(batch)) {
        checkpoint_batch_free(batch);
        checkpoint_serialize_failed(server, cp->building_reason, cp->building_generation);
        return;
    }
    cp->pending = batch;
    cp->pending_lsn = cp->building_lsn;
    cp->pending_generation = cp->building_generation;
    log_event(
        LOG_DEBUG, "checkpoint_serialized", LOG_STR("reason", cp->building_reason),
        LOG_UINT("lsn", cp->pending_lsn), LOG_UINT("objects", checkpoint_batch_entries(batch)),
        LOG_UINT("bytes", checkpoint_batch_bytes(batch)), LOG_UINT("slices", cp->building_slices),
        LOG_UINT("serialize_us", (uv_hrtime() - cp->building_started_ns) / 1000));
    checkpoint_driver_durable(server);
}

/* Serialize the next slice of the checkpoint being built (with `all`, the rest of it); once
 * nothing is pending, hand the batch on. */
static void checkpoint_slice(server_t *server, bool all)
{
    server_checkpoint_t *cp = &server->checkpoint;
    assert(cp->building != NULL && allot_state_checkpoint_active(server->state));
    uint64_t started_ns = uv_hrtime();
    uint32_t objects = 0;
    bool done = false;
    while (!done && (all || (objects < SERVER_CHECKPOINT_SLICE_OBJECTS &&
                             uv_hrtime() - started_ns < SERVER_CHECKPOINT_SLICE_NS))) {
        done = allot_state_checkpoint_step(server->state, SERVER_CHECKPOINT_STEP_OBJECTS);
        objects += SERVER_CHECKPOINT_STEP_OBJECTS;
    }
    cp->building_slices++;
    if (done)
        checkpoint_serialized(server);
}

/* An idle handle, not a check handle: while it is active the loop polls without blocking, so the
 * slices follow each other (between them, I/O and timers run as usual) even when no request
 * arrives. */
static void on_checkpoint_slice(uv_idle_t *idle)
{
    server_t *server = idle->data;
    if (server->checkpoint.building != NULL)
        checkpoint_slice(server, false);
    else
        uv_idle_stop(idle);
}

/* A checkpoint is being serialized, waits for the writer, or is being written. */
static bool checkpoint_in_flight(const server_checkpoint_t *cp)
{
    return cp->building != NULL || cp->pending != NULL || checkpoint_writer_busy(cp->writer);
}

/* Begin a checkpoint of what changed (or of everything after a failure) as of the WAL's last
 * LSN; it is serialized in slices (or remember the request while one is running). */
static void checkpoint_start(server_t *server, const char *reason)
{
    server_checkpoint_t *cp = &server->checkpoint;
    if (cp->writer == NULL || cp->shutdown_phase == 2)
        return;
    if (checkpoint_in_flight(cp)) {
        cp->requested = true;
        return;
    }
    cp->requested = false;
    cp->started_ms = uv_now(server->loop);
    if (checkpoint_writer_kept_bytes(cp->writer) > CHECKPOINT_KEPT_BYTES_MAX) {
        /* A long run of failed checkpoints: one full checkpoint replaces what they kept. */
        checkpoint_writer_drop_kept(cp->writer);
        cp->full_needed = true;
    }
    cp->wal_bytes_at_start = server_log_bytes(server);
    bool full = cp->full_needed;
    uint64_t generation = ++cp->generation_started;
    checkpoint_batch_t *batch = checkpoint_writer_batch_create(cp->writer, full);
    if (batch == NULL) {
        checkpoint_serialize_failed(server, reason, generation);
        return;
    }
    cp->full_needed = false;
    cp->building = batch;
    cp->building_lsn = server_wal_lsn(server); /* the state reflects every record up to here */
    cp->building_generation = generation;
    cp->building_reason = reason;
    cp->building_started_ns = uv_hrtime();
    cp->building_slices = 0;
    log_event(LOG_DEBUG, "checkpoint_start", LOG_STR("reason", reason),
              LOG_UINT("lsn", cp->building_lsn),
              LOG_UINT("dirty", allot_state_dirty_count(server->state)), LOG_BOOL("full", full));
    allot_state_checkpoint_begin(server->state, full, checkpoint_batch_snapshot_cb, batch);
    if (cp->shutdown_phase != 0 || server->checkpoint_slicer.loop == NULL)
        checkpoint_slice(server, true); /* shutting down: no request is left to answer */
    else
        uv_idle_start(&server->checkpoint_slicer, on_checkpoint_slice);
}

int checkpoint_driver_begin(server_t *server, const char *reason, uint64_t *lsn)
{
    server_checkpoint_t *cp = &server->checkpoint;
    if (cp->writer == NULL || cp->shutdown_phase != 0 || checkpoint_in_flight(cp))
        return ALLOT_EOVERLOADED;
    checkpoint_start(server, reason);
    if (cp->building == NULL && cp->pending == NULL)
        return ALLOT_ENOMEM; /* the serialization could not start */
    *lsn = cp->building != NULL ? cp->building_lsn : cp->pending_lsn;
    return 0;
}

/* Evict aged ended orders (core/order.h). Only when every order that is not dirty is in the
 * store in its current form: right after a committed checkpoint with nothing serialized since
 * (no pending batch, no kept batches), or when nothing changed since the last commit. Emits
 * ORDER_EVICT records, so only while writes are allowed; the next checkpoint stores the archived
 * snapshots. */
static void orders_evict(server_t *server)
{
    server_checkpoint_t *cp = &server->checkpoint;
    int refused;
    if (cp->archive == NULL || cp->writer == NULL || cp->shutdown_phase != 0 ||
        server->consensus != NULL || /* a group keeps its orders in memory (operations.md) */
        checkpoint_in_flight(cp) || cp->full_needed || checkpoint_writer_kept(cp->writer) > 0 ||
        !server_writes_allowed(server, &refused))
        return;
    uint32_t evicted =
        allot_orders_evict_aged(server->state, server_now_ms(server), ALLOT_ORDERS_EVICT_BATCH_MAX);
    if (evicted == 0)
        return;
#ifdef __GLIBC__
    /* glibc keeps freed heap pages resident; give the evicted orders' pages back (at most once
     * per checkpoint; a few ms on a large heap) so RSS follows the orders in memory. */
    malloc_trim(0);
#endif
    log_event(LOG_DEBUG, "orders_evicted", LOG_UINT("count", evicted));
}

int checkpoint_driver_committed_cb(void *ctx)
{
    server_t *server = ctx; /* written by the loop before the submit (the writer's mutex) */
    return events_flush(server->events);
}

void checkpoint_driver_done_cb(checkpoint_writer_t *writer, int status, uint64_t lsn,
                               const checkpoint_write_stats_t *stats, const char *message,
                               void *ctx)
{
    server_t *server = ctx;
    server_checkpoint_t *cp = &server->checkpoint;
    (void)writer;
    cp->last_duration_ms = (int64_t)(uv_now(server->loop) - cp->started_ms);
    cp->completed += status == 0;
    cp->failed += status != 0;
    if (status == 0) {
        server->checkpoint_lsn = lsn;
        /* the chunks kept for the next batch: what this one took while writes go on (the
         * dirty set is still growing: fitting the spares to it now would leave the next batch
         * fresh pages), none when nothing is dirty (idle memory is given back before the
         * checkpoint is answered); the tick fits them once writes stop (spares_fit_when_idle) */
        cp->dirty_at_tick = allot_state_dirty_count(server->state);
        cp->dirty_still_ticks = 0;
        if (cp->dirty_at_tick == 0)
            checkpoint_writer_spares_fit(cp->writer, 0);
        checkpoint_spare_stats_t spares;
        checkpoint_writer_spare_stats(cp->writer, &spares);
        log_event(LOG_INFO, "checkpoint", LOG_UINT("lsn", lsn), LOG_UINT("puts", stats->puts),
                  LOG_UINT("deletes", stats->deletes), LOG_UINT("map_bytes", stats->map_bytes),
                  LOG_UINT("spare_bytes", spares.bytes),
                  LOG_UINT("chunks_reused", spares.chunks_reused),
                  LOG_UINT("chunks_fresh", spares.chunks_fresh),
                  LOG_UINT("chunks_reserved", spares.chunks_reserved));
        /* the events of the records about to go are derived again from them no more: the
         * store was synced on the writer thread (checkpoint_driver_committed_cb) */
        events_checkpointed(server->events, stats->committed_status);
        if (server->wal != NULL)
            wal_truncate_before(server->wal, lsn);
        if (server->consensus != NULL) /* a raft snapshot may wait for it */
            consensus_checkpoint_committed(server->consensus, lsn);
        orders_evict(server); /* committed: every clean order is in the store */
    } else {
        if (server->consensus != NULL)
            consensus_checkpoint_failed(server->consensus);
        log_event(LOG_ERROR, "checkpoint_failed", LOG_UINT("lsn", lsn),
                  LOG_STR("code", allot_error_code(status)), LOG_STR("message", message),
                  LOG_UINT("kept_batches", checkpoint_writer_kept(cp->writer)));
    }
    checkpoint_answer(server, cp->in_flight_generation, status, lsn, message);
    if (cp->shutdown_phase == 2)
        return; /* reported by checkpoint_writer_close */
    if (cp->requested)
        checkpoint_start(server, "requested");
    else if (cp->shutdown_phase == 1 && cp->pending == NULL && cp->building == NULL)
        server_shutdown_close_all(server);
}

/* No checkpoint running and the dirty count as it was SERVER_CHECKPOINT_SPARES_IDLE_MS ago: keep
 * only the spare chunks what is dirty will fill (none when nothing is), as no larger checkpoint
 * is in sight. */
static void spares_fit_when_idle(server_t *server, size_t dirty, bool in_flight)
{
    server_checkpoint_t *cp = &server->checkpoint;
    bool still = dirty == cp->dirty_at_tick && !in_flight;
    cp->dirty_at_tick = dirty;
    cp->dirty_still_ticks = still ? cp->dirty_still_ticks + 1 : 0;
    if (cp->dirty_still_ticks == SERVER_CHECKPOINT_SPARES_IDLE_MS / SERVER_HOUSEKEEPING_PERIOD_MS)
        checkpoint_writer_spares_fit(cp->writer, dirty);
}

void checkpoint_driver_tick(server_t *server)
{
    server_checkpoint_t *cp = &server->checkpoint;
    if (cp->writer == NULL)
        return;
    size_t dirty = allot_state_dirty_count(server->state);
    bool in_flight = checkpoint_in_flight(cp);
    spares_fit_when_idle(server, dirty, in_flight);
    /* the chunks the next checkpoint will fill, faulted in off the loop before it starts; not
     * while one is in flight: its chunks come back to the spares when it commits, and chunks
     * reserved meanwhile would add to its memory at its peak */
    if (!in_flight)
        checkpoint_writer_spares_reserve(cp->writer, dirty);
    if (cp->requested && !in_flight) {
        checkpoint_start(server, "requested"); /* came while one was running that then failed */
        return;
    }
    const server_config_t *config = &server->config;
    bool by_time =
        config->checkpoint_interval_s > 0 &&
        uv_now(server->loop) - cp->started_ms >= (uint64_t)config->checkpoint_interval_s * 1000;
    bool by_bytes =
        config->checkpoint_wal_bytes > 0 &&
        server_log_bytes(server) - cp->wal_bytes_at_start >= config->checkpoint_wal_bytes;
    /* Serializing is sliced, so the dirty set no longer bounds a stall; the count bounds the
     * size of one checkpoint (its batch is held in memory) and what a crash leaves to replay. */
    bool by_dirty = config->checkpoint_dirty_max > 0 && dirty >= config->checkpoint_dirty_max;
    /* the next checkpoint due while one is in flight: the writer stops stepping aside */
    checkpoint_writer_set_behind(cp->writer, (by_time || by_bytes || by_dirty) && in_flight);
    if (!by_time && !by_bytes && !by_dirty)
        return;
    if (checkpoint_due(server)) {
        checkpoint_start(server, by_dirty ? "dirty_objects" : by_bytes ? "wal_bytes" : "interval");
    } else {
        cp->started_ms = uv_now(server->loop);
        orders_evict(server); /* nothing changed since the last commit: orders may age out idle */
    }
}

int server_checkpoint_request(server_t *server, connection_t *conn, uint32_t msgid,
                              http_exchange_t *http, allot_error_detail_t *error)
{
    server_checkpoint_t *cp = &server->checkpoint;
    if (cp->writer == NULL || cp->shutdown_phase != 0)
        return allot_error_set(error, ALLOT_EUNAVAILABLE, NULL,
                               "checkpoints are not available (shutting down)");
    if ((conn != NULL || http != NULL) && cp->waiter_count == SERVER_CHECKPOINT_WAITERS_MAX)
        return allot_error_set(error, ALLOT_EOVERLOADED, NULL,
                               "%u server.checkpoint requests are already waiting",
                               SERVER_CHECKPOINT_WAITERS_MAX);
    if (conn != NULL || http != NULL) {
        /* Answered by the next serialization: one already pending or running does not count. */
        cp->waiters[cp->waiter_count++] =
            (checkpoint_waiter_t){conn, http, msgid, cp->generation_started + 1};
        if (conn != NULL)
            conn->deferred_count++;
    }
    checkpoint_start(server, "request");
    return COMMAND_DEFERRED;
}

void server_deferred_drop_http(server_t *server, http_exchange_t *http)
{
    server_checkpoint_t *cp = &server->checkpoint;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < cp->waiter_count; i++)
        if (cp->waiters[i].http != http)
            cp->waiters[kept++] = cp->waiters[i];
    cp->waiter_count = kept;
}

void server_deferred_drop(server_t *server, connection_t *conn)
{
    server_checkpoint_t *cp = &server->checkpoint;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < cp->waiter_count; i++) {
        if (cp->waiters[i].conn == conn)
            conn->deferred_count--;
        else
            cp->waiters[kept++] = cp->waiters[i];
    }
    cp->waiter_count = kept;
}

/* ---- shutdown -------------------------------------------------------------------------------- */

bool checkpoint_driver_shutdown(server_t *server)
{
    server_checkpoint_t *cp = &server->checkpoint;
    assert(cp->shutdown_phase == 0);
    cp->shutdown_phase = 1;
    if (cp->building != NULL)
        checkpoint_slice(server, true); /* no request is left to answer: finish it now */
    if (cp->shutdown_phase == 1 && cp->writer != NULL &&
        (checkpoint_due(server) || cp->pending != NULL || checkpoint_writer_busy(cp->writer))) {
        checkpoint_start(server, "shutdown");
        return true; /* checkpoint_driver_done_cb (or a failed start) closes everything */
    }
    return false;
}

void checkpoint_driver_close(server_t *server)
{
    server_checkpoint_t *cp = &server->checkpoint;
    if (cp->building != NULL) { /* left unfinished: dropped, but core must end its checkpoint */
        while (!allot_state_checkpoint_step(server->state, UINT32_MAX))
            ;
        (void)allot_state_checkpoint_end(server->state);
        checkpoint_batch_free(cp->building);
        cp->building = NULL;
    }
    checkpoint_batch_free(cp->pending); /* its chunks go back to the writer's spares */
    cp->pending = NULL;
    if (cp->writer != NULL) {
        checkpoint_writer_close(cp->writer, NULL); /* joins the thread; frees itself */
        cp->writer = NULL;
    }
    allot_state_set_archive(server->state, NULL);
    archive_close(cp->archive);
    cp->archive = NULL;
    checkpoint_store_close(cp->store);
    cp->store = NULL;
}
