/* wal_reap.c - the WAL's reaper thread: deletes the segments a checkpoint covers
 * (wal_truncate_before, persist/wal.h), so that no group commit waits while the file system
 * frees a segment's blocks. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "wal_private.h"

/* Delete segments whose records are all <= lsn: those followed by a segment starting at or
 * before lsn + 1. The newest (active) segment is never deleted; a segment the writer makes
 * meanwhile is newer than every one listed here. Returns how many went. */
static size_t wal_segments_delete_before(wal_t *wal, uint64_t lsn)
{
    wal_segment_entry_t *segments = NULL;
    size_t count = 0;
    char message[WAL_MESSAGE_BYTES_MAX];
    if (wal_segments_list(wal->dir, &segments, &count, message, sizeof message) < 0) {
        free(segments);
        return 0;
    }
    size_t deleted = 0;
    for (size_t i = 0; i + 1 < count; i++) {
        if (segments[i + 1].first_lsn > lsn + 1)
            break;
        if (unlinkat(wal->dir_fd, segments[i].name, 0) == 0)
            deleted++;
    }
    if (deleted > 0)
        fsync(wal->dir_fd);
    free(segments);
    return deleted;
}

void *wal_reaper_main(void *arg)
{
    wal_t *wal = arg;
    pthread_mutex_lock(&wal->mutex);
    for (;;) {
        while (!wal->truncate_pending && !wal->stop)
            pthread_cond_wait(&wal->reap_cond, &wal->mutex);
        if (!wal->truncate_pending)
            break; /* stopped, nothing pending */
        wal->truncate_pending = false;
        uint64_t lsn = wal->truncate_lsn;
        pthread_mutex_unlock(&wal->mutex);
        size_t deleted = wal_segments_delete_before(wal, lsn);
        pthread_mutex_lock(&wal->mutex);
        wal->segments_deleted += deleted; /* published with the writer's next stats */
    }
    pthread_mutex_unlock(&wal->mutex);
    return NULL;
}
