/* wal_reap.c - the WAL's reaper thread: deletes the segments a checkpoint covers
 * (wal_truncate_before, persist/wal.h), shrinking each a step at a time first, so that no group
 * commit waits while the file system frees and discards a segment's blocks, and writes the spare
 * full of zeros before the writer takes it, so that appends overwrite written blocks
 * (persist/wal.h, "Written before use"). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/limits.h"
#include "fault.h"
#include "wal_private.h"
#include "writeback.h"

/* Shrink the open file fd to nothing WAL_SHRINK_STEP_BYTES at a time from its end, each step
 * made durable (fsync: the freed blocks, and their discard, go before the next step). Returns the
 * steps taken; stops at the first failure (the unlink that follows frees the rest at once). */
static uint64_t wal_file_shrink_paced(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return 0;
    uint64_t steps = 0;
    for (uint64_t size = (uint64_t)st.st_size; size > 0; steps++) {
        persist_writeback_gate(); /* a step per WAL flush while it commits */
        size = size > WAL_SHRINK_STEP_BYTES ? size - WAL_SHRINK_STEP_BYTES : 0;
        if (ftruncate(fd, (off_t)size) != 0 || fsync(fd) != 0)
            break;
    }
    return steps;
}

/* Delete one segment: renamed out of the log (made durable: from then on it is deleted), shrunk
 * a step at a time, unlinked (persist/wal.h, "Truncation"). *steps: the shrink's steps. True
 * when it left the log. */
static bool wal_segment_delete_paced(wal_t *wal, const char *name, uint64_t *steps)
{
    if (renameat(wal->dir_fd, name, wal->dir_fd, WAL_DELETING_NAME) != 0)
        return false;
    (void)fsync(wal->dir_fd); /* the rename first: a crash mid-shrink leaves no short segment */
    int fd = openat(wal->dir_fd, WAL_DELETING_NAME, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        *steps += wal_file_shrink_paced(fd);
        close(fd);
    }
    (void)unlinkat(wal->dir_fd, WAL_DELETING_NAME, 0); /* else wal_open removes it */
    return true;
}

/* Delete segments whose records are all <= lsn: those followed by a segment starting at or
 * before lsn + 1. The newest (active) segment is never deleted; a segment the writer makes
 * meanwhile is newer than every one listed here. Returns how many went; *steps: the shrink
 * steps they took. */
static size_t wal_segments_delete_before(wal_t *wal, uint64_t lsn, uint64_t *steps)
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
        if (wal_segment_delete_paced(wal, segments[i].name, steps))
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
        ssize_t written = pwrite(fd, wal_zeros, n, (off_t)(offset + done));
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return written < 0 ? -errno : -EIO;
        done += (uint64_t)written;
    }
    int rc = persist_writeback_range(fd, offset, bytes);
    return rc == -EINVAL || rc == -ENOSYS ? 0 : rc; /* then the fsync writes them */
}

/* True when [offset, offset + bytes) of fd is all written blocks (FIEMAP: no hole, no unwritten
 * extent): nothing to fill there, e.g. a segment filled before a restart. False when unsure. */
static bool wal_blocks_written(int fd, uint64_t offset, uint64_t bytes)
{
    enum { EXTENTS_MAX = 8 };
    struct fiemap *map =
        calloc(1, sizeof(struct fiemap) + EXTENTS_MAX * sizeof(struct fiemap_extent));
    if (map == NULL)
        return false;
    *map = (struct fiemap){.fm_start = offset, .fm_length = bytes, .fm_extent_count = EXTENTS_MAX};
    bool written = ioctl(fd, FS_IOC_FIEMAP, map) == 0;
    uint64_t covered = offset;
    for (uint32_t i = 0; written && i < map->fm_mapped_extents; i++) {
        const struct fiemap_extent *extent = &map->fm_extents[i];
        if (extent->fe_logical > covered || (extent->fe_flags & FIEMAP_EXTENT_UNWRITTEN) != 0)
            written = false;
        covered = extent->fe_logical + extent->fe_length;
    }
    free(map);
    return written && covered >= offset + bytes;
}

/* One fill: the spare (from its start) or the active segment (above the writer's end). */
typedef struct wal_zero_job {
    bool active;
    int fd;
    uint64_t request;
} wal_zero_job_t;

/* Mutex held: the fill is still wanted (the writer has not taken it back, no later request
 * replaced it, no stop). */
static bool wal_zero_wanted(const wal_t *wal, const wal_zero_job_t *job)
{
    if (wal->stop)
        return false;
    return job->active ? wal->zero_active_fd == job->fd && wal->zero_active_request == job->request
                       : wal->zero_fd == job->fd && wal->zero_request == job->request;
}

/* Mutex held: the next window to fill at or after offset, or bytes when there is none left. The
 * active segment's fill stays above the writer's next write, in whole windows. */
static uint64_t wal_zero_window_next(const wal_t *wal, const wal_zero_job_t *job, uint64_t offset)
{
    const uint64_t window = PERSIST_WRITEBACK_WINDOW_BYTES;
    if (job->active && offset < wal->active_write_end)
        offset = (wal->active_write_end + window - 1) / window * window;
    return offset < wal->segment_bytes ? offset : wal->segment_bytes;
}

/* Mutex held on entry and exit: fill one window (unless already written; bytes 0: fsync the
 * file instead) with the mutex dropped and zero_busy set, so that the writer waits for this step
 * at most. *written: zeros were written. 0 or -errno. */
static int wal_zero_step(wal_t *wal, const wal_zero_job_t *job, uint64_t offset, uint64_t bytes,
                         bool *written)
{
    wal->zero_busy = true;
    wal->zero_busy_active = job->active;
    wal->zero_window_offset = bytes == 0 ? UINT64_MAX : offset; /* an fsync blocks no write */
    pthread_mutex_unlock(&wal->mutex);
    int rc = 0;
    *written = false;
    if (bytes == 0)
        rc = fsync(job->fd) == 0 ? 0 : -errno;
    else if (!wal_blocks_written(job->fd, offset, bytes))
        *written = (rc = wal_zero_window(job->fd, offset, bytes)) == 0;
    pthread_mutex_lock(&wal->mutex);
    wal->zero_busy = false;
    pthread_cond_broadcast(&wal->zero_cond);
    return rc;
}

/* Mutex held: how far into the spare its fill may go now: as far as the active segment is from
 * being full, counted from the spare's end, plus zero_lead_bytes (with segments of one size: the
 * writer's end in the active segment plus the lead). */
static uint64_t wal_zero_pace_end(const wal_t *wal)
{
    uint64_t room = atomic_load_explicit(&wal->active_room, memory_order_relaxed);
    return (room < wal->segment_bytes ? wal->segment_bytes - room : 0) + wal->zero_lead_bytes;
}

/* Mutex held: wait until the spare's window at offset starts within wal_zero_pace_end
 * (persist/wal.h, "Written before use"), looking again every WAL_ZERO_PACE_POLL_MS. False when
 * the fill should stop for now: it is no longer wanted, or a truncation was asked for (then the
 * fill is asked for again, to go on after it). The active segment's own fill is never paced: the
 * writer is writing into it. */
static bool wal_zero_paced(wal_t *wal, const wal_zero_job_t *job, uint64_t offset)
{
    while (!job->active && wal_zero_wanted(wal, job) && offset > wal_zero_pace_end(wal)) {
        if (wal->truncate_pending) {
            wal->zero_pending = true; /* the same spare (zero_fd, zero_request), resumed later */
            return false;
        }
        struct timespec deadline =
            persist_deadline_after_ns((long)WAL_ZERO_PACE_POLL_MS * 1000000L);
        pthread_cond_timedwait(&wal->reap_cond, &wal->mutex, &deadline);
    }
    return wal_zero_wanted(wal, job);
}

/* Mutex held on entry and exit: fill a window at a time (persist/wal.h, "Written before use"),
 * then fsync (its extents written, as the allocation's fsync made them allocated). */
static void wal_zero_fill(wal_t *wal, wal_zero_job_t job)
{
    int rc = 0;
    bool any_written = false;
    uint64_t offset = wal_zero_window_next(wal, &job, 0);
    while (rc == 0 && offset < wal->segment_bytes && wal_zero_paced(wal, &job, offset)) {
        uint64_t bytes = wal->segment_bytes - offset < PERSIST_WRITEBACK_WINDOW_BYTES
                             ? wal->segment_bytes - offset
                             : PERSIST_WRITEBACK_WINDOW_BYTES;
        bool written;
        rc = wal_zero_step(wal, &job, offset, bytes, &written);
        if (written) {
            wal->zeroed_bytes += bytes;
            any_written = true;
        }
        offset = wal_zero_window_next(wal, &job, offset + bytes);
    }
    bool done = rc == 0 && offset >= wal->segment_bytes && wal_zero_wanted(wal, &job);
    bool written;
    if (done && any_written)
        rc = wal_zero_step(wal, &job, 0, 0, &written); /* the fsync */
    if (!job.active)
        wal->spare_zeroed = done && rc == 0 && wal->zero_request == job.request; /* even if taken */
    else if (wal->zero_active_request == job.request)
        atomic_store(&wal->active_zeroing, false);
    if (rc < 0)
        wal->zero_fill_failures++; /* the segment stays as allocated: appends work as before */
}

/* Mutex held: the next fill asked for, the active segment's first (it is being written now). */
static void wal_zero_next(wal_t *wal)
{
    if (wal->zero_active_pending) {
        wal->zero_active_pending = false;
        wal_zero_fill(wal, (wal_zero_job_t){true, wal->zero_active_fd, wal->zero_active_request});
    } else if (wal->zero_pending) {
        wal->zero_pending = false;
        wal_zero_fill(wal, (wal_zero_job_t){false, wal->zero_fd, wal->zero_request});
    }
}

void *wal_reaper_main(void *arg)
{
    wal_t *wal = arg;
    pthread_setname_np(pthread_self(), "allot-reap"); /* its name in ps -L, perf, traces */
    /* at the process's priority, not idle: the writer waits for its window in progress
     * (persist/thread_priority.h) */
    pthread_mutex_lock(&wal->mutex);
    for (;;) {
        while (!wal->truncate_pending && !wal->zero_pending && !wal->zero_active_pending &&
               !wal->stop)
            pthread_cond_wait(&wal->reap_cond, &wal->mutex);
        if (!wal->truncate_pending && wal->stop)
            break; /* stopped, no truncation pending (a fill is abandoned) */
        if (!wal->truncate_pending) {
            wal_zero_next(wal);
            continue;
        }
        wal->truncate_pending = false;
        uint64_t lsn = wal->truncate_lsn;
        pthread_mutex_unlock(&wal->mutex);
        uint64_t steps = 0;
        size_t deleted = wal_segments_delete_before(wal, lsn, &steps);
        pthread_mutex_lock(&wal->mutex);
        wal->segments_deleted += deleted; /* published with the writer's next stats */
        wal->segment_shrink_steps += steps;
    }
    pthread_mutex_unlock(&wal->mutex);
    return NULL;
}
