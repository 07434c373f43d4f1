/* checkpoint_private.h - what the files of the checkpoint store share (persist/ only). */
#ifndef ALLOT_PERSIST_CHECKPOINT_PRIVATE_H
#define ALLOT_PERSIST_CHECKPOINT_PRIVATE_H

#include <lmdb.h>
#include <pthread.h>

#include "checkpoint.h"
#include "core/event.h"

#define CHECKPOINT_PATH_BYTES_MAX 4096u

struct checkpoint_store {
    MDB_env *env;
    MDB_dbi meta;
    MDB_dbi state;
    MDB_dbi index;                 /* orders_by_customer (persist/archive.h) */
    pthread_mutex_t map_lock;      /* readers' transactions vs. map resizes */
    allot_event_scratch_t scratch; /* decoding orders for the index (the writing thread) */
    uint64_t lsn;
    uint64_t map_bytes;
    char path[CHECKPOINT_PATH_BYTES_MAX];
};

/* An ALLOT_E* code for an LMDB error, with "checkpoint: <what> <path>: <reason>" in message. */
int checkpoint_lmdb_error(int mdb_rc, const char *what, const char *path, char *message,
                          size_t message_bytes);

#endif
