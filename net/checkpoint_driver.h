/* checkpoint_driver.h - the server's checkpoints, driven from the loop thread (net/ only): when
 * one starts, its serialization in slices, its hand-over to the checkpoint writer thread
 * (persist/checkpoint.h), what follows its commit, and the final one at shutdown.
 *
 * Contract: a checkpoint is the state as of L = wal_last_lsn() when it begins (core/state.h):
 * the loop serializes the dirty set of that moment into a batch in slices (an idle handle,
 * server_t.checkpoint_slicer, at most SERVER_CHECKPOINT_SLICE_OBJECTS objects or
 * SERVER_CHECKPOINT_SLICE_NS per loop iteration), while requests keep being served; a write to
 * an object not serialized yet first hands its pre-image to the batch (core's copy-on-write), so
 * the batch stays exactly the state as of L. The finished batch waits until the WAL is durable
 * up to L (a checkpoint may never hold effects the WAL could lose), then goes to the writer
 * thread; on commit the covered WAL segments are deleted, server.checkpoint waiters answered,
 * and aged ended orders evicted (core/order.h) when every clean order is stored in its current
 * form. A failed checkpoint keeps its batch in the writer (retried first by the next one); the
 * WAL is only truncated after a commit. A failed serialization (out of memory) makes the next
 * checkpoint a full one. One checkpoint at a time (building, pending or in the writer).
 * Triggers: checkpoint_interval_s, checkpoint_wal_bytes, checkpoint_dirty_max,
 * server.checkpoint, shutdown (which serializes in one go).
 * Calls: server.c calls checkpoint_driver_tick from its housekeeping timer,
 * checkpoint_driver_durable each time the WAL reports durable records, hands
 * checkpoint_driver_done_cb to checkpoint_writer_start (and checkpoint_driver_committed_cb to
 * checkpoint_writer_set_committed_cb: the events store's sync, on the writer thread), and at
 * shutdown (connections drained) calls checkpoint_driver_shutdown once: when it returns true a
 * final checkpoint runs and the driver calls server_shutdown_close_all when it has committed or
 * failed, which calls checkpoint_driver_close (drop what is unfinished, join the writer, close the
 * archive and the store). server.checkpoint requests come in through server_checkpoint_request
 * (server.h).
 */
#ifndef ALLOT_NET_CHECKPOINT_DRIVER_H
#define ALLOT_NET_CHECKPOINT_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/limits.h"
#include "persist/archive.h"
#include "persist/checkpoint.h"

struct server;
typedef struct connection connection_t;

typedef struct checkpoint_waiter {
    connection_t *conn;         /* an RPC request's connection, or NULL and: */
    struct http_exchange *http; /* an HTTP request (net/http.h) */
    uint32_t msgid;
    uint64_t generation; /* answered by the first checkpoint of this generation or later */
} checkpoint_waiter_t;

/* Checkpoint bookkeeping (server_t.checkpoint). A generation is one serialization of the dirty
 * set. */
typedef struct server_checkpoint {
    checkpoint_store_t *store;   /* <data-dir>/state.lmdb; the writer thread owns it once started */
    checkpoint_writer_t *writer; /* NULL until the WAL is open */
    archive_t *archive;          /* evicted orders read back from the store (loop thread) */
    /* Being serialized in slices (core's checkpoint is active): the state as of building_lsn. */
    checkpoint_batch_t *building;
    uint64_t building_lsn;
    uint64_t building_generation;
    const char *building_reason;  /* the trigger (a string literal) */
    uint64_t building_started_ns; /* uv_hrtime() at begin */
    uint64_t building_slices;
    checkpoint_batch_t *pending; /* serialized, waiting for the WAL to be durable up to lsn */
    uint64_t pending_lsn;
    uint64_t pending_generation;
    uint64_t in_flight_generation;
    uint64_t generation_started;
    uint64_t started_ms;         /* uv_now() when the last one was serialized */
    uint64_t wal_bytes_at_start; /* wal_stats bytes_written then */
    bool full_needed;            /* a serialization failed: the next one writes every object */
    bool requested;              /* a trigger fired while one was running */
    uint8_t shutdown_phase;      /* 0 serving, 1 final checkpoint, 2 closing */
    uint64_t completed, failed;  /* checkpoints committed / failed (metrics) */
    int64_t last_duration_ms;    /* serialization to commit of the last one */
    size_t dirty_at_tick;        /* the dirty count at the last tick or commit */
    uint32_t dirty_still_ticks;  /* ticks since it last changed (or a checkpoint ran) */
    uint32_t waiter_count;
    checkpoint_waiter_t waiters[SERVER_CHECKPOINT_WAITERS_MAX];
} server_checkpoint_t;

/* Housekeeping tick: start a checkpoint if a trigger fired (or one was requested while the last
 * one ran), else evict aged orders when nothing changed since the last commit. Between
 * checkpoints, once the dirty count has not changed for SERVER_CHECKPOINT_SPARES_IDLE_MS, the
 * writer's spare chunks are fitted to it (checkpoint_writer_spares_fit): kept while writes go on,
 * given back when they stop. */
void checkpoint_driver_tick(struct server *server);
/* Start a checkpoint now (a raft snapshot asks for one): 0 with *lsn, the LSN it covers, or
 * ALLOT_EOVERLOADED while one is running (ALLOT_ENOMEM: it could not start). */
int checkpoint_driver_begin(struct server *server, const char *reason, uint64_t *lsn);
/* The WAL is durable further: hand a serialized batch waiting for it to the writer. */
void checkpoint_driver_durable(struct server *server);
/* The checkpoint writer's committed_cb (ctx: the server), on the writer thread after each commit:
 * the events store is synced there (events_flush) before the loop deletes WAL segments, so the
 * loop never waits for that disk sync. */
int checkpoint_driver_committed_cb(void *ctx);
/* The checkpoint writer's done_cb (ctx: the server). */
void checkpoint_driver_done_cb(checkpoint_writer_t *writer, int status, uint64_t lsn,
                               const checkpoint_write_stats_t *stats, const char *message,
                               void *ctx);
/* Shutdown, once: finish the checkpoint being serialized and start the final one if anything is
 * left to write. True when one runs (server_shutdown_close_all follows it), false when the
 * caller closes everything now. */
bool checkpoint_driver_shutdown(struct server *server);
/* Drop an unfinished serialization, join the writer thread, close the archive and the store. */
void checkpoint_driver_close(struct server *server);

#endif
