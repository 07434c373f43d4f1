/* recovery.h - start-up recovery of a data directory: the one sequence that allotd runs before it
 * serves, and that the in-process recovery measurement of the durability benchmark
 * (tools/allot-datagen) and the tests run too.
 *
 * Contract
 *  - recovery_run(config, state, result) fills `state` (empty, from allot_state_create; the
 *    caller's) from <data-dir>: (1) a read-ahead thread starts reading and checking the WAL
 *    segments of <data-dir>/wal (wal_preload_start, persist/wal_read.h; told to cut damage
 *    instead of refusing it when config->accept_data_loss); (2) <data-dir>/state.lmdb is opened
 *    (created empty when missing, an older format rewritten: persist/checkpoint.h) and loaded
 *    (checkpoint_store_load_state), the dirty set is cleared (what was loaded is what is stored),
 *    and the order archive is opened over the store and hooked into the state; (3) the WAL after
 *    the checkpoint LSN is replayed through core's replayer (core/replay.h), each segment
 *    finished before its buffer is freed. A second thread prefaults the heap the state is built
 *    in meanwhile (persist/heap_warm.h).
 *  - The directory: the caller makes sure nothing writes it meanwhile. allotd takes its lock
 *    (persist/dirlock.h) and creates <data-dir>/wal before; nothing in the directory is written
 *    except state.lmdb when it is missing or of an older format (the WAL is written later, by
 *    wal_open with result->log_end).
 *  - Reports: persist writes no log. Each step reports what it found through config->log_cb
 *    (may be NULL) on the calling thread when it happens (the time between two reports is the
 *    time of the step between them): level, event and typed fields, the lines allotd logs
 *    (docs/operations.md): accept_data_loss, checkpoint_upgraded, checkpoint_loaded,
 *    wal_data_loss_accepted, wal_torn_tail, recovered, and recovery_failed (naming the code,
 *    the damage and a hint) before every error return. At most RECOVERY_FIELDS_MAX fields.
 *  - Result: on 0, result->store is the open store (the caller hands it to the checkpoint
 *    writer and closes it last), result->archive the archive hooked into the state (unhook and
 *    close it before the store: recovery_close does both), result->log_end where the log ends
 *    (wal_config_t.log_end: wal_open then appends from there at result->last_lsn + 1), and the
 *    counts. On error nothing is left open, the archive is unhooked, and the state holds part
 *    of the data: destroy it.
 *  - Errors: 0 or the ALLOT_E* of the step that failed: NOMEM, IO, CORRUPT (a damaged store or
 *    log, a missing WAL segment, a record the state refuses), INVALID_ARGUMENT (a data
 *    directory path too long).
 */
#ifndef ALLOT_PERSIST_RECOVERY_H
#define ALLOT_PERSIST_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persist/archive.h"
#include "persist/checkpoint.h"
#include "persist/wal_read.h"

struct allot_state;

/* Fields of one report, at most. */
#define RECOVERY_FIELDS_MAX 4

typedef enum recovery_level {
    RECOVERY_LEVEL_INFO = 0,
    RECOVERY_LEVEL_WARN,
    RECOVERY_LEVEL_ERROR,
} recovery_level_t;

typedef enum recovery_field_kind {
    RECOVERY_FIELD_STR = 0,
    RECOVERY_FIELD_UINT,
} recovery_field_kind_t;

/* One key and its value: a string (valid during the call only) or an unsigned number. */
typedef struct recovery_field {
    const char *key;
    recovery_field_kind_t kind;
    const char *str;
    uint64_t number;
} recovery_field_t;

typedef void (*recovery_log_cb)(void *ctx, recovery_level_t level, const char *event,
                                const recovery_field_t *fields, size_t count);

typedef struct recovery_config {
    const char *data_dir;
    bool accept_data_loss; /* allotd --accept-data-loss: cut a damaged log instead of refusing */
    /* A member of a group: only state.lmdb is loaded; the log after it is raft's, replayed by
     * the engine once it starts (persist/consensus.h). <data-dir>/wal is not read. */
    bool without_wal;
    recovery_log_cb log_cb;
    void *log_ctx;
} recovery_config_t;

typedef struct recovery_result {
    checkpoint_store_t *store;      /* <data-dir>/state.lmdb, open */
    archive_t *archive;             /* over the store, hooked into the state */
    uint64_t checkpoint_lsn;        /* what the store covers */
    uint64_t last_lsn;              /* the last LSN replayed (checkpoint_lsn when none was) */
    wal_log_end_t log_end;          /* where the newest segment's records end (for wal_open) */
    uint64_t records_loaded;        /* from the store */
    uint64_t records_second_thread; /* of them, built by the load's second thread */
    uint64_t records_replayed;      /* from the WAL */
    bool tail_truncated;            /* a torn tail follows last_lsn (wal_open zeroes it) */
    bool data_loss;                 /* accept_data_loss cut the log (wal_open drops the rest) */
} recovery_result_t;

int recovery_run(const recovery_config_t *config, struct allot_state *state,
                 recovery_result_t *result);

/* Unhook the archive from state, close it and the store (what recovery_run opened; NULL fields
 * are skipped and cleared). For callers that do not serve afterwards. */
void recovery_close(struct allot_state *state, recovery_result_t *result);

#endif
