/* wal_reap.c - the WAL's reaper thread: deletes the segments a checkpoint covers
 * (wal_truncate_before, persist/wal.h), so that no group commit waits while the file system
 * frees a segment's blocks, and writes the spare full of zeros before the writer takes it, so
 * that appends overwrite written blocks (persist/wal.h, "Written before use"). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/limits.h"
#include "fault.h"
#include "wal_private.h"

static const uint8_t wal_fill_zeros[WAL_ZERO_CHUNK_BYTES];

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

/* Write zeros over [offset, offset + bytes) of fd, then write them out and wait for them, as
 * persist/writeback.h does for a window: the writer's fdatasync of the active segment queues
 * behind this window at most. Plain pwrite, not persist_pwrite_all: its own fault seam
 * (zero_fill), so that the fill never shifts what a test counts of the writer's writes.
 * 0 or -errno. */
static int wal_zero_window(int fd, uint64_t offset, uint64_t bytes)
{
    int fault = persist_fault_hit(PERSIST_FAULT_ZERO_FILL);
    if (fault != 0)
        return -fault;
    for (uint64_t done = 0; done < bytes;) {
        size_t n =
            bytes - done < WAL_ZERO_CHUNK_BYTES ? (size_t)(bytes - done) : WAL_ZERO_CHUNK_BYTES;
        ssize_t written = pwrite(fd, wal_fill_zeros, n, (off_t)(offset + done));
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return written < 0 ? -errno : -EIO;
        done += (uint64_t)written;
    }
    const unsigned int flags =
        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    while (sync_file_range(fd, (off64_t)offset, (off64_t)bytes, flags) != 0)
        if (errno != EINTR)
            return errno == EINVAL || errno == ENOSYS ? 0 : -errno; /* the fsync writes them */
    return 0;
}

/* Mutex held: the fill asked for as `request` is still wanted (the writer has not taken the
 * spare back, no later request replaced it, no stop). */
static bool wal_zero_wanted(const wal_t *wal, int fd, uint64_t request)
{
    return wal->zero_fd == fd && wal->zero_request == request && !wal->stop;
}

/* Mutex held on entry and exit: fill the spare asked for (wal_spare_zero_request) a window at a
 * time, then fsync it (its extents written, as the allocation's fsync made them allocated).
 * zero_busy is set while the mutex is dropped: the writer waits for that window, not more. */
static void wal_spare_zero(wal_t *wal)
{
    int fd = wal->zero_fd;
    uint64_t request = wal->zero_request;
    uint64_t bytes = wal->segment_bytes;
    wal->zero_pending = false;
    int rc = 0;
    uint64_t offset = 0;
    while (rc == 0 && offset < bytes && wal_zero_wanted(wal, fd, request)) {
        uint64_t window = bytes - offset < PERSIST_WRITEBACK_WINDOW_BYTES
                              ? bytes - offset
                              : PERSIST_WRITEBACK_WINDOW_BYTES;
        wal->zero_busy = true;
        pthread_mutex_unlock(&wal->mutex);
        rc = wal_zero_window(fd, offset, window);
        pthread_mutex_lock(&wal->mutex);
        wal->zero_busy = false;
        pthread_cond_broadcast(&wal->zero_cond);
        if (rc == 0) {
            offset += window;
            wal->zeroed_bytes += window;
        }
    }
    if (rc == 0 && offset == bytes && wal_zero_wanted(wal, fd, request)) {
        wal->zero_busy = true;
        pthread_mutex_unlock(&wal->mutex);
        rc = fsync(fd) == 0 ? 0 : -errno;
        pthread_mutex_lock(&wal->mutex);
        wal->zero_busy = false;
        pthread_cond_broadcast(&wal->zero_cond);
        wal->spare_zeroed = rc == 0 && wal->zero_request == request; /* even if just taken */
    }
    if (rc < 0)
        wal->zero_fill_failures++; /* the spare stays as allocated: appends work as before */
}

void *wal_reaper_main(void *arg)
{
    wal_t *wal = arg;
    pthread_mutex_lock(&wal->mutex);
    for (;;) {
        while (!wal->truncate_pending && !wal->zero_pending && !wal->stop)
            pthread_cond_wait(&wal->reap_cond, &wal->mutex);
        if (!wal->truncate_pending && wal->stop)
            break; /* stopped, no truncation pending (a fill is abandoned) */
        if (!wal->truncate_pending) {
            wal_spare_zero(wal);
            continue;
        }
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
