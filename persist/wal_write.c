/* wal_write.c - the live log: the writer thread (group commit: one write and one fdatasync per
 * batch, segment allocation ahead of need, truncation) and the loop thread's side (append,
 * flush, durable and fatal reports, close). Opening is wal_open.c; the format is at the top of
 * wal_format.c. */
#include "wal_private.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/byte_order.h"
#include "core/errors.h"
#include "fault.h"
#include "writeback.h"

const uint8_t wal_zeros[WAL_ZERO_CHUNK_BYTES];

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t monotonic_ms(void)
{
    return monotonic_us() / 1000u;
}

/* ---- the writer thread ----------------------------------------------------------------- */

/* Writer, mutex not held: wake the loop (wal_wake_cb). Not a uv_async_t: while a uv_async_send
 * is between its two steps, libuv's loop spins on the handle (997 pauses, then sched_yield,
 * again and again), and when the writer shares the loop's CPU (allotd pinned to one) the
 * loop's wake-up preempts the writer in exactly that window: about 4 yields and their spins
 * per group commit, on the loop. An eventfd has no such window: one write until the loop has
 * read it, and the loop reads it, then clears wake_pending, then reads what was published, so
 * a wake-up skipped because one was pending is never lost. */
static void wal_loop_wake(wal_t *wal)
{
    if (atomic_exchange(&wal->wake_pending, true))
        return;
    uint64_t one = 1;
    ssize_t n = write(wal->wake_fd, &one, sizeof one);
    (void)n; /* EAGAIN only when the counter is full, i.e. the loop is woken already */
}

/* Writer: record a fatal failure (first one wins) and wake the loop. */
static void wal_writer_fail(wal_t *wal, int error, const char *what, int sys_error)
{
    pthread_mutex_lock(&wal->mutex);
    if (wal->error == 0) {
        wal->error = error;
        snprintf(wal->error_message, sizeof wal->error_message, "wal: %s: %s", what,
                 strerror(sys_error));
    }
    atomic_store(&wal->failed, true);
    pthread_mutex_unlock(&wal->mutex);
    wal_loop_wake(wal);
}

int wal_zero_range(int fd, uint64_t offset, uint64_t bytes)
{
    while (bytes > 0) {
        size_t n = bytes < WAL_ZERO_CHUNK_BYTES ? (size_t)bytes : WAL_ZERO_CHUNK_BYTES;
        int rc = persist_pwrite_all(fd, wal_zeros, n, offset);
        if (rc < 0)
            return rc;
        offset += n;
        bytes -= n;
    }
    return 0;
}

/* Allocate wal-spare.tmp at full size. 0 or -errno; on failure nothing is left behind. */
static int wal_spare_create(wal_t *wal)
{
    assert(wal->spare_fd < 0);
    int fd = openat(wal->dir_fd, WAL_SPARE_NAME, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = persist_fallocate(fd, wal->segment_bytes);
    wal->spare_written = rc == -EOPNOTSUPP;
    if (rc == -EOPNOTSUPP)
        rc = wal_zero_range(fd, 0, wal->segment_bytes);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (rc == 0 && fsync(wal->dir_fd) != 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        unlinkat(wal->dir_fd, WAL_SPARE_NAME, 0);
        return rc;
    }
    wal->spare_fd = fd;
    wal->stats.segments_created++;
    return 0;
}

/* Try to allocate the spare; on failure schedule a retry. True when a spare now exists. */
bool wal_spare_try(wal_t *wal)
{
    int rc = wal_spare_create(wal);
    wal->stats.allocate_error_last = rc;
    atomic_store(&wal->allocate_failing, rc < 0);
    if (rc < 0) {
        wal->stats.allocate_failures++;
        wal->next_allocate_ms = monotonic_ms() + wal->allocate_retry_ms;
        return false;
    }
    atomic_fetch_add(&wal->spares_created, 1);
    return true;
}

void wal_spare_zero_request(wal_t *wal)
{
    assert(wal->spare_fd >= 0);
    wal->spare_zeroed = wal->spare_written; /* then there is nothing left to fill */
    if (wal->spare_written)
        return;
    wal->zero_fd = wal->spare_fd;
    wal->zero_request++;
    wal->zero_pending = true;
}

void wal_active_zero_request(wal_t *wal)
{
    assert(wal->active_fd >= 0);
    wal->zero_active_fd = wal->active_fd;
    wal->zero_active_request++;
    wal->zero_active_pending = true;
    wal->active_write_end = wal->active_offset;
    atomic_store(&wal->active_zeroing, true);
}

/* Writer, before it leaves the active segment for the spare: stop both zero fills (waiting for
 * at most the window being written). True when the spare was filled completely. */
static bool wal_zero_stop(wal_t *wal)
{
    pthread_mutex_lock(&wal->mutex);
    wal->zero_fd = wal->zero_active_fd = -1;
    wal->zero_pending = wal->zero_active_pending = false;
    atomic_store(&wal->active_zeroing, false);
    while (wal->zero_busy)
        pthread_cond_wait(&wal->zero_cond, &wal->mutex);
    bool zeroed = wal->spare_fd >= 0 && wal->spare_zeroed;
    wal->spare_zeroed = false;
    pthread_mutex_unlock(&wal->mutex);
    return zeroed;
}

/* Writer, before it writes up to `end` in the active segment while the fill runs above it: say
 * so, and wait for the window being written if it begins below end (one window at most). */
static void wal_zero_fence(wal_t *wal, uint64_t end)
{
    pthread_mutex_lock(&wal->mutex);
    wal->active_write_end = end;
    while (wal->zero_busy && wal->zero_busy_active && wal->zero_window_offset < end)
        pthread_cond_wait(&wal->zero_cond, &wal->mutex);
    pthread_mutex_unlock(&wal->mutex);
}

/* Writer: the active segment's records up to active_last_lsn were just made durable: say so in
 * its header (before they are reported durable; see the format). 0 or ALLOT_EIO (fatal). */
static int wal_writer_header_update(wal_t *wal)
{
    if (wal->active_v1 || wal->active_last_lsn <= wal->active_synced_lsn)
        return 0;
    uint8_t header[WAL_SEGMENT_HEADER_BYTES];
    wal_segment_header_encode(header, wal->active_first_lsn, wal->active_capacity,
                              wal->active_last_lsn);
    int rc = persist_pwrite_all(wal->active_fd, header, sizeof header, 0);
    if (rc < 0) {
        wal_writer_fail(wal, ALLOT_EIO, "segment header write failed", -rc);
        return ALLOT_EIO;
    }
    wal->active_synced_lsn = wal->active_last_lsn;
    wal->active_header_dirty = true;
    return 0;
}

/* fdatasync fd; for the active segment, then record the synced LSN in its header. */
static int wal_writer_sync(wal_t *wal, int fd)
{
    assert(fd >= 0);
    wal->stats.fdatasyncs++;
    uint64_t started_us = monotonic_us();
    int rc = persist_fdatasync(fd);
    uint64_t sync_us = monotonic_us() - started_us;
    persist_writeback_flush_done(); /* background writes may queue their next window now */
    pthread_mutex_lock(&wal->mutex);
    histogram_record(&wal->histograms.fdatasync_us, sync_us);
    pthread_mutex_unlock(&wal->mutex);
    if (rc < 0) {
        wal_writer_fail(wal, ALLOT_EIO, "fdatasync failed", -rc);
        return rc;
    }
    if (fd != wal->active_fd)
        return 0;
    wal->active_dirty = false;
    wal->active_header_dirty = false;
    return wal_writer_header_update(wal);
}

/* Replace wal-end in the directory dir_fd atomically: the newest segment made starts at
 * newest_first_lsn (it is already renamed into place and its directory entry durable). 0 or
 * -errno. */
int wal_end_write(int dir_fd, uint64_t newest_first_lsn)
{
    uint8_t bytes[WAL_END_FILE_BYTES];
    wal_end_encode(bytes, newest_first_lsn);
    int fd = openat(dir_fd, WAL_END_TMP_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = persist_pwrite_all(fd, bytes, sizeof bytes, 0);
    if (rc == 0)
        rc = persist_fdatasync(fd);
    close(fd);
    if (rc == 0 && renameat(dir_fd, WAL_END_TMP_NAME, dir_fd, WAL_END_FILE_NAME) != 0)
        rc = -errno;
    if (rc == 0 && fsync(dir_fd) != 0)
        rc = -errno;
    return rc;
}

/* Make the spare (allocated now if there is none) segment wal-<first_lsn>.log: its header, the
 * rename, then wal-end. 0 or -errno with *what naming the step that failed. Touches nothing else:
 * the active segment is still the previous one. */
int wal_segment_make(wal_t *wal, uint64_t first_lsn, const char **what)
{
    int rc = 0;
    *what = "no segment could be allocated";
    if (wal->spare_fd < 0 && (rc = wal_spare_create(wal)) < 0)
        return rc;
    uint8_t header[WAL_SEGMENT_HEADER_BYTES];
    wal_segment_header_encode(header, first_lsn, wal->segment_bytes, first_lsn - 1);
    *what = "segment header write failed";
    if ((rc = persist_pwrite_all(wal->spare_fd, header, sizeof header, 0)) < 0)
        return rc;
    *what = "fdatasync failed";
    wal->stats.fdatasyncs++;
    if ((rc = persist_fdatasync(wal->spare_fd)) < 0)
        return rc;
    char name[WAL_SEGMENT_NAME_BYTES + 1];
    snprintf(name, sizeof name, "wal-%016" PRIx64 ".log", first_lsn);
    *what = "segment rename failed";
    if (renameat(wal->dir_fd, WAL_SPARE_NAME, wal->dir_fd, name) != 0 || fsync(wal->dir_fd) != 0)
        return -errno;
    *what = "wal-end write failed";
    wal->stats.fdatasyncs++;
    return wal_end_write(wal->dir_fd, first_lsn);
}

/* The segment just made (wal_segment_make) becomes the active one. */
void wal_segment_switch(wal_t *wal, uint64_t first_lsn)
{
    assert(wal->spare_fd >= 0);
    wal->active_fd = wal->spare_fd;
    wal->spare_fd = -1;
    wal->active_offset = WAL_SEGMENT_HEADER_BYTES;
    wal->active_capacity = wal->segment_bytes;
    atomic_store_explicit(&wal->active_room, wal->active_capacity - wal->active_offset,
                          memory_order_relaxed);
    wal->active_dirty = false;
    wal->active_header_dirty = false;
    wal->active_v1 = false;
    wal->active_first_lsn = first_lsn;
    wal->active_last_lsn = wal->active_synced_lsn = first_lsn - 1;
    wal->next_allocate_ms = 0; /* allocate the next spare as soon as this batch is done */
}

/* Turn the spare into segment wal-<first_lsn>.log and make it the active segment; the previous
 * one (its records end at first_lsn - 1) is synced (unless fsync none) and closed. */
static int wal_writer_rollover(wal_t *wal, uint64_t first_lsn)
{
    const char *what;
    bool zeroed = wal_zero_stop(wal);
    int rc = wal_segment_make(wal, first_lsn, &what);
    if (rc < 0) {
        wal_writer_fail(wal, ALLOT_EIO, what, -rc);
        return ALLOT_EIO;
    }
    if (wal->active_fd >= 0) {
        assert(wal->active_last_lsn < first_lsn);
        wal->active_last_lsn = first_lsn - 1; /* the batch's records before this one */
        if (wal->active_dirty && wal->fsync_mode != WAL_FSYNC_NONE &&
            wal_writer_sync(wal, wal->active_fd) < 0)
            return ALLOT_EIO;
        close(wal->active_fd);
    }
    wal_segment_switch(wal, first_lsn);
    if (!zeroed) { /* taken before its fill was done: the rest is filled above the writer */
        wal->stats.segments_unzeroed++;
        pthread_mutex_lock(&wal->mutex);
        wal_active_zero_request(wal);
        pthread_cond_signal(&wal->reap_cond);
        pthread_mutex_unlock(&wal->mutex);
    }
    return 0;
}

static int wal_writer_write(wal_t *wal, const uint8_t *data, size_t bytes)
{
    if (bytes == 0)
        return 0;
    assert(wal->active_fd >= 0);
    assert(wal->active_offset + bytes <= wal->active_capacity);
    if (atomic_load(&wal->active_zeroing))
        wal_zero_fence(wal, wal->active_offset + bytes);
    int rc = persist_pwrite_all(wal->active_fd, data, bytes, wal->active_offset);
    if (rc < 0) {
        wal_writer_fail(wal, ALLOT_EIO, "write failed", -rc);
        return ALLOT_EIO;
    }
    wal->active_offset += bytes;
    atomic_store_explicit(&wal->active_room, wal->active_capacity - wal->active_offset,
                          memory_order_relaxed);
    wal->active_dirty = true;
    wal->stats.bytes_written += bytes;
    return 0;
}

/* Write one batch: runs of records per segment, rolling over where a record does not fit. */
static int wal_writer_batch(wal_t *wal, const uint8_t *batch, size_t bytes, uint64_t last_lsn)
{
    uint64_t records = 0;
    size_t pos = 0;
    size_t run_start = 0;
    uint64_t run_end_offset = wal->active_offset;
    while (pos < bytes) {
        assert(pos + WAL_RECORD_OVERHEAD_BYTES <= bytes);
        size_t record_bytes = (size_t)allot_u32_load_le(batch + pos) + WAL_RECORD_OVERHEAD_BYTES;
        assert(pos + record_bytes <= bytes);
        if (wal->active_fd < 0 || run_end_offset + record_bytes > wal->active_capacity) {
            if (wal_writer_write(wal, batch + run_start, pos - run_start) < 0 ||
                wal_writer_rollover(wal, allot_u64_load_le(batch + pos + 4)) < 0)
                return ALLOT_EIO;
            run_start = pos;
            run_end_offset = wal->active_offset;
        }
        run_end_offset += record_bytes;
        pos += record_bytes;
        records++;
    }
    if (wal_writer_write(wal, batch + run_start, pos - run_start) < 0)
        return ALLOT_EIO;
    assert(wal->active_offset == run_end_offset);
    wal->active_last_lsn = last_lsn; /* the rest of the batch is in the active segment */
    if (wal->fsync_mode == WAL_FSYNC_ALWAYS && wal_writer_sync(wal, wal->active_fd) < 0)
        return ALLOT_EIO;
    wal->written_lsn = last_lsn;
    wal->stats.batches_written++;
    pthread_mutex_lock(&wal->mutex);
    histogram_record(&wal->histograms.batch_records, records);
    pthread_mutex_unlock(&wal->mutex);
    return 0;
}

/* Writer, mutex held: make results visible to the loop. */
static void wal_writer_publish(wal_t *wal)
{
    if (wal->error == 0)
        wal->durable_lsn_shared = wal->written_lsn;
    wal->stats_shared = wal->stats;
}

/* Writer, mutex held: wait for work or the next timed duty (interval sync, allocation retry). */
static void wal_writer_wait(wal_t *wal)
{
    bool failed = atomic_load(&wal->failed);
    uint64_t deadline_ms = UINT64_MAX;
    if (!failed && wal->spare_fd < 0)
        deadline_ms = wal->next_allocate_ms;
    if (!failed && wal->fsync_mode == WAL_FSYNC_INTERVAL && wal->active_dirty &&
        wal->next_sync_ms < deadline_ms)
        deadline_ms = wal->next_sync_ms;
    if (deadline_ms == UINT64_MAX) {
        pthread_cond_wait(&wal->writer_cond, &wal->mutex);
        return;
    }
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    pthread_cond_timedwait(&wal->writer_cond, &wal->mutex, &ts);
}

/* Writer, mutex held: the spare is missing and its allocation is due. */
static bool wal_writer_spare_due(const wal_t *wal, uint64_t now_ms)
{
    return !atomic_load(&wal->failed) && !wal->stop && wal->spare_fd < 0 &&
           now_ms >= wal->next_allocate_ms;
}

/* Writer, mutex held on entry and exit: do one duty if one is due. False when idle. The next
 * spare comes before the next batch: under a steady load a batch is always pending, and records
 * that do not fit in the rest of the active segment wait for the spare. */
static bool wal_writer_duty(wal_t *wal)
{
    bool failed = atomic_load(&wal->failed);
    uint64_t now_ms = monotonic_ms();
    if (wal_writer_spare_due(wal, now_ms)) {
        pthread_mutex_unlock(&wal->mutex);
        bool created = wal_spare_try(wal);
        pthread_mutex_lock(&wal->mutex);
        wal_writer_publish(wal);
        if (created) {
            wal_spare_zero_request(wal);
            pthread_cond_signal(&wal->reap_cond);
            pthread_mutex_unlock(&wal->mutex);
            wal_loop_wake(wal);
            pthread_mutex_lock(&wal->mutex);
        }
        return true;
    }
    if (wal->flight_pending) {
        if (!failed) {
            pthread_mutex_unlock(&wal->mutex);
            wal_writer_batch(wal, wal->flight, wal->flight_bytes, wal->flight_last_lsn);
            pthread_mutex_lock(&wal->mutex);
        }
        wal->flight_pending = false;
        wal_writer_publish(wal);
        pthread_cond_broadcast(&wal->done_cond);
        pthread_mutex_unlock(&wal->mutex); /* the loop woken next takes it at once */
        wal_loop_wake(wal);
        pthread_mutex_lock(&wal->mutex);
        return true;
    }
    if (!failed && wal->fsync_mode == WAL_FSYNC_INTERVAL && wal->active_dirty &&
        now_ms >= wal->next_sync_ms) {
        pthread_mutex_unlock(&wal->mutex);
        wal_writer_sync(wal, wal->active_fd);
        wal->next_sync_ms = now_ms + wal->fsync_interval_ms;
        pthread_mutex_lock(&wal->mutex);
        wal_writer_publish(wal);
        return true;
    }
    return false;
}

void *wal_writer_main(void *arg)
{
    wal_t *wal = arg;
    pthread_setname_np(pthread_self(), "allot-wal"); /* its name in ps -L, perf, traces */
    pthread_mutex_lock(&wal->mutex);
    for (;;) {
        if (wal_writer_duty(wal))
            continue;
        if (wal->stop)
            break;
        wal_writer_wait(wal);
    }
    pthread_mutex_unlock(&wal->mutex);
    /* a clean stop leaves the records and then the header that says so durable */
    for (int i = 0; i < 2 && !atomic_load(&wal->failed) && wal->fsync_mode != WAL_FSYNC_NONE &&
                    (wal->active_dirty || wal->active_header_dirty);
         i++)
        wal_writer_sync(wal, wal->active_fd);
    pthread_mutex_lock(&wal->mutex);
    wal_writer_publish(wal);
    pthread_mutex_unlock(&wal->mutex);
    return NULL;
}

/* ---- loop thread ----------------------------------------------------------------------- */

static bool wal_spare_ready(const wal_t *wal)
{
    return atomic_load(&((wal_t *)wal)->spares_created) > wal->spares_consumed;
}

size_t wal_payload_bytes_max(const wal_t *wal)
{
    return wal->payload_bytes_max;
}

/* No spare is ready and the last attempt to allocate one failed: the disk refused space. */
static bool wal_disk_short(const wal_t *wal)
{
    return atomic_load(&((wal_t *)wal)->allocate_failing) && !wal_spare_ready(wal);
}

bool wal_writable(const wal_t *wal)
{
    if (atomic_load(&((wal_t *)wal)->failed) || wal->closing)
        return false;
    assert(wal->place_offset <= wal->place_capacity || wal->place_capacity == 0);
    uint64_t room =
        wal->place_capacity > wal->place_offset ? wal->place_capacity - wal->place_offset : 0;
    return !wal_disk_short(wal) || room >= ALLOT_WAL_HEADROOM_BYTES;
}

int wal_room_check(const wal_t *wal, size_t payload_bytes)
{
    if (!wal_writable(wal))
        return ALLOT_EUNAVAILABLE;
    if (payload_bytes > wal->payload_bytes_max)
        return ALLOT_ETOO_LARGE;
    if (wal_has_room(wal, payload_bytes))
        return 0;
    uint64_t record_bytes = payload_bytes + WAL_RECORD_OVERHEAD_BYTES;
    if (wal->fill_bytes + record_bytes > wal->batch_bytes_max)
        return ALLOT_EOVERLOADED; /* the batch drains by itself */
    return wal_disk_short(wal) ? ALLOT_EUNAVAILABLE : ALLOT_EOVERLOADED; /* else: spare pending */
}

bool wal_has_room(const wal_t *wal, size_t payload_bytes)
{
    if (atomic_load(&((wal_t *)wal)->failed) || wal->closing)
        return false;
    if (payload_bytes > wal->payload_bytes_max)
        return false;
    uint64_t record_bytes = payload_bytes + WAL_RECORD_OVERHEAD_BYTES;
    if (wal->fill_bytes + record_bytes > wal->batch_bytes_max)
        return false;
    return wal->place_offset + record_bytes <= wal->place_capacity || wal_spare_ready(wal);
}

uint64_t wal_append(wal_t *wal, uint8_t type, int64_t time_ms, const void *payload, size_t len)
{
    assert(payload != NULL || len == 0);
    if (!wal_has_room(wal, len))
        return 0;
    uint64_t record_bytes = len + WAL_RECORD_OVERHEAD_BYTES;
    if (wal->place_offset + record_bytes > wal->place_capacity) {
        assert(wal_spare_ready(wal));
        wal->spares_consumed++;
        wal->place_offset = WAL_SEGMENT_HEADER_BYTES;
        wal->place_capacity = wal->segment_bytes;
    }
    wal->place_offset += record_bytes;
    assert(wal->place_offset <= wal->place_capacity);
    uint64_t lsn = ++wal->last_lsn;
    size_t n =
        wal_record_encode(wal->fill + wal->fill_bytes, wal->batch_bytes_max - wal->fill_bytes, lsn,
                          time_ms, type, payload, len);
    assert(n == record_bytes);
    wal->fill_bytes += n;
    wal->fill_records++;
    wal->records_appended++;
    return lsn;
}

/* Mutex held, writer idle: hand the fill buffer over. */
static void wal_hand_over(wal_t *wal)
{
    assert(!wal->flight_pending);
    assert(wal->fill_bytes > 0);
    uint8_t *spare_buffer = wal->flight;
    wal->flight = wal->fill;
    wal->flight_bytes = wal->fill_bytes;
    wal->flight_last_lsn = wal->last_lsn;
    wal->flight_pending = true;
    wal->fill = spare_buffer;
    wal->fill_bytes = 0;
    wal->fill_records = 0;
    pthread_cond_signal(&wal->writer_cond);
    wal->handed = true;
    if (wal->linger_ns_max > 0)
        wal->handed_ns = uv_hrtime();
    wal->linger_until_ns = 0; /* linger_fd may still fire: wal_linger_cb ignores it */
}

/* Mutex held: the writer is done with the batch handed over (adaptive group commit, wal.h).
 * When at least ALLOT_WAL_LINGER_ARRIVALS_MIN records arrived while it was being committed, more
 * are coming: a small next batch lingers for as long as that commit took, at most linger_ns_max.
 * Fewer arrivals (a lone writer waits for its reply before it writes again) never linger. */
static void wal_linger_begin(wal_t *wal)
{
    wal->handed = false;
    if (wal->linger_ns_max == 0 || wal->fill_bytes >= wal->linger_bytes ||
        wal->fill_records < ALLOT_WAL_LINGER_ARRIVALS_MIN)
        return;
    uint64_t now_ns = uv_hrtime();
    uint64_t linger_ns = now_ns - wal->handed_ns;
    if (linger_ns > wal->linger_ns_max)
        linger_ns = wal->linger_ns_max;
    /* a timerfd, not a uv_timer_t: libuv's timers count whole milliseconds, so a linger of a
     * few hundred microseconds would last a millisecond whenever the loop has nothing to do */
    struct itimerspec expiry = {.it_value = {.tv_sec = (time_t)(linger_ns / 1000000000u),
                                             .tv_nsec = (long)(linger_ns % 1000000000u)}};
    if (linger_ns == 0 || timerfd_settime(wal->linger_fd, 0, &expiry, NULL) != 0)
        return; /* cannot be armed (never seen): no linger rather than one without an end */
    wal->linger_until_ns = now_ns + linger_ns;
}

/* The fill may go to the writer now: no linger, or it grew large, or its deadline passed. */
static bool wal_linger_over(const wal_t *wal)
{
    return wal->linger_until_ns == 0 || wal->fill_bytes >= wal->linger_bytes ||
           uv_hrtime() >= wal->linger_until_ns;
}

void wal_flush(wal_t *wal)
{
    if (wal->fill_bytes == 0 || atomic_load(&wal->failed) || !wal_linger_over(wal))
        return;
    pthread_mutex_lock(&wal->mutex);
    if (!wal->flight_pending)
        wal_hand_over(wal);
    pthread_mutex_unlock(&wal->mutex);
}

/* Read the 8-byte counter of an eventfd or a timerfd the loop polls, so that it stops being
 * readable; EAGAIN (an earlier callback read it, or a timer re-armed since it fired) is fine. */
static void loop_fd_drain(int fd)
{
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof count);
    (void)n;
}

void wal_linger_cb(uv_poll_t *handle, int status, int events)
{
    (void)status;
    (void)events;
    wal_t *wal = handle->data;
    loop_fd_drain(wal->linger_fd);
    if (wal->linger_until_ns != 0 && uv_hrtime() < wal->linger_until_ns)
        return; /* the end of an earlier linger, re-armed since */
    wal->linger_until_ns = 0;
    wal_flush(wal);
}

/* Deliver what the writer published: hand over the next batch, durable_cb, fatal_cb. */
static void wal_report(wal_t *wal)
{
    char message[WAL_MESSAGE_BYTES_MAX];
    pthread_mutex_lock(&wal->mutex);
    uint64_t durable_lsn = wal->durable_lsn_shared;
    int error = wal->error;
    memcpy(message, wal->error_message, sizeof message);
    if (wal->handed && !wal->flight_pending && !wal->closing)
        wal_linger_begin(wal);
    if (error == 0 && !wal->closing && !wal->flight_pending && wal->fill_bytes > 0 &&
        wal_linger_over(wal))
        wal_hand_over(wal);
    pthread_mutex_unlock(&wal->mutex);
    if (durable_lsn > wal->durable_lsn_reported) {
        assert(durable_lsn <= wal->last_lsn);
        wal->durable_lsn_reported = durable_lsn;
        if (wal->durable_cb != NULL)
            wal->durable_cb(wal, durable_lsn, wal->ctx);
    }
    if (error != 0 && !wal->fatal_reported) {
        wal->fatal_reported = true;
        if (wal->fatal_cb != NULL)
            wal->fatal_cb(wal, error, message, wal->ctx);
    }
}

void wal_wake_cb(uv_poll_t *handle, int status, int events)
{
    (void)status;
    (void)events;
    wal_t *wal = handle->data;
    loop_fd_drain(wal->wake_fd);
    atomic_store(&wal->wake_pending, false);
    wal_report(wal);
}

uint64_t wal_last_lsn(const wal_t *wal)
{
    return wal->last_lsn;
}

uint64_t wal_durable_lsn(const wal_t *wal)
{
    return wal->durable_lsn_reported;
}

int wal_truncate_before(wal_t *wal, uint64_t checkpoint_lsn)
{
    if (wal->closing)
        return ALLOT_EINVALID_ARGUMENT;
    pthread_mutex_lock(&wal->mutex);
    if (!wal->truncate_pending || checkpoint_lsn > wal->truncate_lsn)
        wal->truncate_lsn = checkpoint_lsn;
    wal->truncate_pending = true;
    pthread_cond_signal(&wal->reap_cond);
    pthread_mutex_unlock(&wal->mutex);
    return 0;
}

void wal_stats(const wal_t *wal, wal_stats_t *out)
{
    pthread_mutex_lock(&((wal_t *)wal)->mutex);
    *out = wal->stats_shared;
    out->segments_deleted = wal->segments_deleted; /* the reaper's */
    out->segment_shrink_steps = wal->segment_shrink_steps;
    out->zeroed_bytes = wal->zeroed_bytes;
    out->zero_fill_failures = wal->zero_fill_failures;
    pthread_mutex_unlock(&((wal_t *)wal)->mutex);
    out->records_appended = wal->records_appended;
}

void wal_histograms(const wal_t *wal, wal_histograms_t *out)
{
    pthread_mutex_lock(&((wal_t *)wal)->mutex);
    *out = wal->histograms;
    pthread_mutex_unlock(&((wal_t *)wal)->mutex);
}

void wal_free(wal_t *wal)
{
    pthread_mutex_destroy(&wal->mutex);
    pthread_cond_destroy(&wal->writer_cond);
    pthread_cond_destroy(&wal->done_cond);
    pthread_cond_destroy(&wal->reap_cond);
    pthread_cond_destroy(&wal->zero_cond);
    if (wal->wake_fd >= 0)
        close(wal->wake_fd);
    if (wal->linger_fd >= 0)
        close(wal->linger_fd);
    free(wal->fill);
    free(wal->flight);
    free(wal);
}

void wal_handle_closed_cb(uv_handle_t *handle)
{
    wal_t *wal = handle->data;
    assert(wal->handles_open > 0);
    if (--wal->handles_open > 0)
        return;
    void (*closed_cb)(void *) = wal->closed_cb;
    void *ctx = wal->ctx;
    wal_free(wal);
    if (closed_cb != NULL)
        closed_cb(ctx);
}

int wal_close(wal_t *wal, void (*closed_cb)(void *ctx))
{
    assert(!wal->closing);
    wal->closing = true;
    wal->closed_cb = closed_cb;
    pthread_mutex_lock(&wal->mutex);
    while (wal->flight_pending)
        pthread_cond_wait(&wal->done_cond, &wal->mutex);
    if (wal->fill_bytes > 0 && !atomic_load(&wal->failed))
        wal_hand_over(wal);
    wal->stop = true;
    pthread_cond_signal(&wal->writer_cond);
    pthread_cond_signal(&wal->reap_cond);
    pthread_mutex_unlock(&wal->mutex);
    pthread_join(wal->thread, NULL);
    if (wal->reaper_started)
        pthread_join(wal->reaper, NULL);
    wal_report(wal);
    if (wal->active_fd >= 0)
        close(wal->active_fd);
    if (wal->spare_fd >= 0)
        close(wal->spare_fd);
    close(wal->dir_fd);
    int error = wal->error;
    uv_close((uv_handle_t *)&wal->wake, wal_handle_closed_cb);
    uv_close((uv_handle_t *)&wal->linger_poll, wal_handle_closed_cb);
    return error;
}
