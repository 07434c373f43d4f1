/* recovery.c - start-up recovery: state.lmdb loaded, the WAL replayed after it (recovery.h). */
#include "recovery.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/order.h"
#include "core/replay.h"
#include "core/state.h"
#include "fault.h"
#include "heap_warm.h"
#include "persist/consensus.h"

#define RECOVERY_STR(k, v) ((recovery_field_t){.key = (k), .kind = RECOVERY_FIELD_STR, .str = (v)})
#define RECOVERY_UINT(k, v)                                                                        \
    ((recovery_field_t){.key = (k), .kind = RECOVERY_FIELD_UINT, .number = (v)})

/* recovery_report(config, level, event, RECOVERY_STR(...), ...): at least one field. */
#define recovery_report(config, level, event, ...)                                                 \
    recovery_fields_report((config), (level), (event), (const recovery_field_t[]){__VA_ARGS__},    \
                           sizeof((const recovery_field_t[]){__VA_ARGS__}) /                       \
                               sizeof(recovery_field_t))

static void recovery_fields_report(const recovery_config_t *config, recovery_level_t level,
                                   const char *event, const recovery_field_t *fields, size_t count)
{
    assert(count <= RECOVERY_FIELDS_MAX);
    if (config->log_cb != NULL)
        config->log_cb(config->log_ctx, level, event, fields, count);
}

/* WAL records go through the prefetching replayer (core/replay.h); each segment is finished
 * before the WAL frees its buffer. */
static int replay_record(void *ctx, uint64_t lsn, int64_t time_ms, uint8_t type,
                         const uint8_t *payload, size_t len)
{
    return allot_replay_push_at(ctx, lsn, time_ms, type, payload, len);
}

static int replay_segment_done(void *ctx)
{
    return allot_replay_finish(ctx);
}

/* Serve evicted orders from the store (order.get / order.list / order.create repeats). */
static int recovery_archive_attach(const recovery_config_t *config, struct allot_state *state,
                                   recovery_result_t *result)
{
    int rc = archive_open(result->store, &result->archive);
    if (rc != 0) {
        recovery_report(config, RECOVERY_LEVEL_ERROR, "recovery_failed",
                        RECOVERY_STR("code", allot_error_code(rc)),
                        RECOVERY_STR("message", "opening the order archive"));
        return rc;
    }
    allot_order_archive_t hook;
    archive_hook(result->archive, &hook);
    allot_state_set_archive(state, &hook);
    return 0;
}

/* Open <data-dir>/state.lmdb (created when missing) and load it into the empty state. */
static int recovery_store_load(const recovery_config_t *config, const char *path,
                               struct allot_state *state, recovery_result_t *result)
{
    char message[CHECKPOINT_MESSAGE_BYTES_MAX];
    checkpoint_load_stats_t stats = {0};
    int rc = checkpoint_store_open(path, 0, &result->store, message, sizeof(message));
    if (rc == 0)
        rc = checkpoint_store_load_state(result->store, state, &stats, message, sizeof(message));
    if (rc != 0) {
        recovery_report(config, RECOVERY_LEVEL_ERROR, "recovery_failed",
                        RECOVERY_STR("code", allot_error_code(rc)),
                        RECOVERY_STR("message", message));
        return rc;
    }
    uint32_t upgraded_from = checkpoint_store_upgraded_from(result->store);
    if (upgraded_from != 0)
        recovery_report(config, RECOVERY_LEVEL_INFO, "checkpoint_upgraded",
                        RECOVERY_STR("path", path), RECOVERY_UINT("from_version", upgraded_from),
                        RECOVERY_UINT("to_version", CHECKPOINT_FORMAT_VERSION));
    allot_state_dirty_clear(state); /* what was loaded is what is stored */
    rc = recovery_archive_attach(config, state, result);
    if (rc != 0)
        return rc;
    result->checkpoint_lsn = checkpoint_store_lsn(result->store);
    result->records_loaded = stats.records;
    result->records_second_thread = stats.second_thread;
    recovery_report(config, RECOVERY_LEVEL_INFO, "checkpoint_loaded", RECOVERY_STR("path", path),
                    RECOVERY_UINT("lsn", result->checkpoint_lsn),
                    RECOVERY_UINT("records", stats.records),
                    RECOVERY_UINT("second_thread", stats.second_thread));
    return 0;
}

/* Replay failed: a record the state refused (failed_lsn), or the log itself. */
static int recovery_replay_failed(const recovery_config_t *config, int rc, uint64_t failed_lsn,
                                  uint64_t checkpoint_lsn, const char *message)
{
    if (failed_lsn != 0) {
        recovery_report(
            config, RECOVERY_LEVEL_ERROR, "recovery_failed",
            RECOVERY_STR("code", allot_error_code(rc)), RECOVERY_UINT("lsn", failed_lsn),
            RECOVERY_STR("message", "the WAL record with this LSN does not apply to the state"),
            RECOVERY_STR("hint", "inspect with: allot-wal dump <data-dir>"));
        return rc;
    }
    /* e.g. a log that starts after checkpoint_lsn + 1: records between the checkpoint and the
     * log are missing (a WAL segment or state.lmdb was deleted or restored alone). */
    recovery_report(
        config, RECOVERY_LEVEL_ERROR, "recovery_failed", RECOVERY_STR("code", allot_error_code(rc)),
        RECOVERY_UINT("checkpoint_lsn", checkpoint_lsn), RECOVERY_STR("message", message),
        RECOVERY_STR("hint", rc == ALLOT_ECORRUPT
                                 ? "inspect with: allot-wal verify <data-dir>; restore "
                                   "the data directory from a backup, or start once "
                                   "with --accept-data-loss to cut the log there (the "
                                   "writes after it are lost)"
                                 : "inspect with: allot-wal verify <data-dir>"));
    return rc;
}

/* Replay the WAL after the checkpoint (the preload ends here, whatever happens). */
static int recovery_replay(const recovery_config_t *config, wal_preload_t *preload,
                           struct allot_state *state, recovery_result_t *result)
{
    wal_replay_result_t replayed;
    char message[WAL_MESSAGE_BYTES_MAX];
    allot_replay_t *replay = allot_replay_create(state);
    if (replay == NULL) {
        wal_preload_cancel(preload);
        recovery_report(config, RECOVERY_LEVEL_ERROR, "recovery_failed",
                        RECOVERY_STR("code", "NOMEM"), RECOVERY_STR("message", "replay window"));
        return ALLOT_ENOMEM;
    }
    int rc = wal_replay_preloaded(preload, result->checkpoint_lsn, replay_record,
                                  replay_segment_done, replay, &replayed, message, sizeof(message));
    if (rc == 0)
        rc = allot_replay_finish(replay);
    uint64_t failed_lsn = allot_replay_failed_lsn(replay);
    allot_replay_destroy(replay);
    if (rc != 0)
        return recovery_replay_failed(config, rc, failed_lsn, result->checkpoint_lsn, message);
    if (replayed.data_loss)
        recovery_report(
            config, RECOVERY_LEVEL_ERROR, "wal_data_loss_accepted",
            RECOVERY_STR("file", replayed.bad_file), RECOVERY_UINT("offset", replayed.bad_offset),
            RECOVERY_UINT("lsn", replayed.bad_lsn), RECOVERY_STR("message", replayed.loss_message));
    if (replayed.tail_truncated)
        recovery_report(config, RECOVERY_LEVEL_WARN, "wal_torn_tail",
                        RECOVERY_STR("file", replayed.tail_file),
                        RECOVERY_UINT("offset", replayed.tail_offset),
                        RECOVERY_UINT("bytes", replayed.tail_bytes));
    recovery_report(config, RECOVERY_LEVEL_INFO, "recovered",
                    RECOVERY_UINT("checkpoint_lsn", result->checkpoint_lsn),
                    RECOVERY_UINT("replayed", replayed.records_replayed),
                    RECOVERY_UINT("last_lsn", replayed.last_lsn));
    result->last_lsn = replayed.last_lsn;
    result->log_end = replayed.end; /* wal_open need not read the newest segment again */
    result->records_replayed = replayed.records_replayed;
    result->tail_truncated = replayed.tail_truncated;
    result->data_loss = replayed.data_loss;
    return 0;
}

/* A group member that lagged received the leader's state image (persist/consensus.c): it
 * replaces state.lmdb before anything is loaded, durably (rename, then the directory synced). */
static int recovery_image_take(const recovery_config_t *config, const char *store_path)
{
    char image[WAL_PATH_BYTES_MAX];
    int n = snprintf(image, sizeof(image), "%s/%s", config->data_dir, CONSENSUS_INSTALLED_NAME);
    if (n < 0 || (size_t)n >= sizeof(image) || access(image, F_OK) != 0)
        return 0;
    if (rename(image, store_path) != 0 || persist_fsync_parent_dir(store_path) != 0) {
        recovery_report(config, RECOVERY_LEVEL_ERROR, "recovery_failed",
                        RECOVERY_STR("code", allot_error_code(ALLOT_EIO)),
                        RECOVERY_STR("message", "moving the installed snapshot image over "
                                                "state.lmdb failed"));
        return ALLOT_EIO;
    }
    recovery_report(config, RECOVERY_LEVEL_INFO, "snapshot_image_taken",
                    RECOVERY_STR("path", store_path));
    return 0;
}

/* The read-ahead reads and checks the WAL segments while LMDB loads (persist/wal_read.h). */
static int recovery_steps(const recovery_config_t *config, const char *wal_dir,
                          const char *store_path, struct allot_state *state,
                          recovery_result_t *result)
{
    if (config->without_wal) { /* a group member: its log is raft's (persist/consensus.h) */
        int rc = recovery_image_take(config, store_path);
        if (rc == 0)
            rc = recovery_store_load(config, store_path, state, result);
        if (rc == 0) {
            result->last_lsn = result->checkpoint_lsn;
            recovery_report(config, RECOVERY_LEVEL_INFO, "recovered",
                            RECOVERY_UINT("checkpoint_lsn", result->checkpoint_lsn),
                            RECOVERY_UINT("replayed", 0),
                            RECOVERY_UINT("last_lsn", result->last_lsn));
        }
        return rc;
    }
    wal_preload_t *preload = NULL;
    int rc = wal_preload_start(wal_dir, WAL_PRELOAD_SEGMENTS_DEFAULT, &preload);
    if (rc != 0) {
        recovery_report(config, RECOVERY_LEVEL_ERROR, "recovery_failed",
                        RECOVERY_STR("code", allot_error_code(rc)),
                        RECOVERY_STR("message", "WAL read-ahead"));
        return rc;
    }
    if (config->accept_data_loss) {
        wal_preload_accept_loss(preload);
        recovery_report(config, RECOVERY_LEVEL_WARN, "accept_data_loss",
                        RECOVERY_STR("message",
                                     "--accept-data-loss: a damaged or incomplete WAL is cut where "
                                     "the damage starts; acknowledged writes after it are lost"));
    }
    rc = recovery_store_load(config, store_path, state, result);
    if (rc != 0) {
        wal_preload_cancel(preload);
        return rc;
    }
    return recovery_replay(config, preload, state, result);
}

int recovery_run(const recovery_config_t *config, struct allot_state *state,
                 recovery_result_t *result)
{
    assert(config != NULL && config->data_dir != NULL && state != NULL && result != NULL);
    memset(result, 0, sizeof(*result));
    char wal_dir[WAL_PATH_BYTES_MAX], store_path[WAL_PATH_BYTES_MAX];
    int wal_n = snprintf(wal_dir, sizeof(wal_dir), "%s/wal", config->data_dir);
    int store_n =
        snprintf(store_path, sizeof(store_path), "%s/%s", config->data_dir, CHECKPOINT_FILE_NAME);
    if (wal_n < 0 || store_n < 0 || (size_t)wal_n >= sizeof(wal_dir) ||
        (size_t)store_n >= sizeof(store_path)) {
        recovery_report(config, RECOVERY_LEVEL_ERROR, "recovery_failed",
                        RECOVERY_STR("code", allot_error_code(ALLOT_EINVALID_ARGUMENT)),
                        RECOVERY_STR("message", "the data directory path is too long"));
        return ALLOT_EINVALID_ARGUMENT;
    }
    heap_warm_t *warm = heap_warm_start(); /* faults in the heap the state is built in */
    int rc = recovery_steps(config, wal_dir, store_path, state, result);
    heap_warm_stop(warm);
    if (rc != 0)
        recovery_close(state, result);
    return rc;
}

void recovery_close(struct allot_state *state, recovery_result_t *result)
{
    if (result->archive != NULL) {
        allot_state_set_archive(state, NULL);
        archive_close(result->archive);
        result->archive = NULL;
    }
    checkpoint_store_close(result->store);
    result->store = NULL;
}
