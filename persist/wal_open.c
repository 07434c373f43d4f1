/* wal_open.c - opening the WAL for appending where replay found its end: the torn tail zeroed,
 * an accepted loss cut, wal-end brought up to the newest segment, the writer thread started. */
#include "wal_private.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "fault.h"

static int wal_config_apply(wal_t *wal, const wal_config_t *config, char *message,
                            size_t message_bytes)
{
    if (config->dir == NULL || config->dir[0] == '\0' ||
        strlen(config->dir) + WAL_SEGMENT_NAME_BYTES + 2 > WAL_PATH_BYTES_MAX)
        return snprintf(message, message_bytes, "wal: dir missing or too long"),
               ALLOT_EINVALID_ARGUMENT;
    if (config->fsync_mode != WAL_FSYNC_ALWAYS && config->fsync_mode != WAL_FSYNC_INTERVAL &&
        config->fsync_mode != WAL_FSYNC_NONE)
        return snprintf(message, message_bytes, "wal: bad fsync mode"), ALLOT_EINVALID_ARGUMENT;
    if (config->fsync_mode == WAL_FSYNC_INTERVAL &&
        (config->fsync_interval_ms < 1 || config->fsync_interval_ms > WAL_FSYNC_INTERVAL_MS_MAX))
        return snprintf(message, message_bytes, "wal: fsync interval must be 1..%u ms",
                        WAL_FSYNC_INTERVAL_MS_MAX),
               ALLOT_EINVALID_ARGUMENT;
    snprintf(wal->dir, sizeof wal->dir, "%s", config->dir);
    wal->fsync_mode = config->fsync_mode;
    wal->fsync_interval_ms = config->fsync_interval_ms;
    wal->segment_bytes =
        config->segment_bytes ? config->segment_bytes : ALLOT_WAL_SEGMENT_BYTES_DEFAULT;
    wal->batch_bytes_max =
        config->batch_bytes_max ? config->batch_bytes_max : ALLOT_WAL_BATCH_BYTES_MAX;
    wal->allocate_retry_ms =
        config->allocate_retry_ms ? config->allocate_retry_ms : WAL_ALLOCATE_RETRY_MS_DEFAULT;
    wal->zero_lead_bytes =
        config->zero_lead_bytes ? config->zero_lead_bytes : WAL_ZERO_LEAD_BYTES_DEFAULT;
    if (config->fsync_mode == WAL_FSYNC_ALWAYS)
        wal->linger_ns_max = (uint64_t)config->linger_us_max * 1000u;
    if (wal->segment_bytes < WAL_SEGMENT_BYTES_MIN || wal->segment_bytes > WAL_SEGMENT_BYTES_MAX)
        return snprintf(message, message_bytes, "wal: segment size must be %u..%llu bytes",
                        WAL_SEGMENT_BYTES_MIN, (unsigned long long)WAL_SEGMENT_BYTES_MAX),
               ALLOT_EINVALID_ARGUMENT;
    uint64_t fit = wal->segment_bytes - WAL_SEGMENT_HEADER_BYTES - WAL_RECORD_OVERHEAD_BYTES;
    wal->payload_bytes_max = fit < ALLOT_WAL_RECORD_BYTES_MAX ? fit : ALLOT_WAL_RECORD_BYTES_MAX;
    if (wal->batch_bytes_max < wal->payload_bytes_max + WAL_RECORD_OVERHEAD_BYTES ||
        wal->batch_bytes_max > ALLOT_WAL_BATCH_BYTES_MAX)
        return snprintf(message, message_bytes,
                        "wal: batch size must hold one largest record and be at most %u bytes",
                        ALLOT_WAL_BATCH_BYTES_MAX),
               ALLOT_EINVALID_ARGUMENT;
    return 0;
}

/* Create the WAL directory if missing (and make its entry durable), open it. */
static int wal_dir_open(wal_t *wal, char *message, size_t message_bytes)
{
    if (mkdir(wal->dir, 0750) == 0) {
        persist_fsync_parent_dir(wal->dir); /* best effort, as before: the WAL is new */
    } else if (errno != EEXIST) {
        snprintf(message, message_bytes, "wal: cannot create %s: %s", wal->dir, strerror(errno));
        return ALLOT_EIO;
    }
    wal->dir_fd = open(wal->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (wal->dir_fd < 0) {
        snprintf(message, message_bytes, "wal: cannot open %s: %s", wal->dir, strerror(errno));
        return ALLOT_EIO;
    }
    /* a segment whose paced deletion a crash interrupted (wal_reap.c): no part of the log */
    if (unlinkat(wal->dir_fd, WAL_DELETING_NAME, 0) != 0 && errno != ENOENT) {
        snprintf(message, message_bytes, "wal: cannot remove %s in %s: %s", WAL_DELETING_NAME,
                 wal->dir, strerror(errno));
        return ALLOT_EIO;
    }
    if (unlinkat(wal->dir_fd, WAL_SPARE_NAME, 0) != 0 && errno != ENOENT) {
        snprintf(message, message_bytes, "wal: cannot remove stale spare in %s: %s", wal->dir,
                 strerror(errno));
        return ALLOT_EIO;
    }
    return 0;
}

/* Zero a torn tail (offset, bytes) and make that durable. */
static int wal_tail_zero(int fd, const wal_log_end_t *end, const char *path, char *message,
                         size_t message_bytes)
{
    assert(end->offset + end->torn_bytes <= end->segment_bytes);
    int rc = wal_zero_range(fd, end->offset, end->torn_bytes);
    if (rc == 0)
        rc = persist_fdatasync(fd);
    if (rc < 0) {
        snprintf(message, message_bytes, "wal: cannot zero the torn tail of %s: %s", path,
                 strerror(-rc));
        return ALLOT_EIO;
    }
    return 0;
}

/* Where the newest segment's records end, by reading and checking it (no replay result). */
static int wal_log_end_scan(const char *dir, const wal_segment_entry_t *newest, wal_log_end_t *end,
                            const char *path, char *message, size_t message_bytes)
{
    wal_loaded_t loaded;
    wal_segment_load(dir, newest, true, &loaded);
    int rc = loaded.rc;
    if (rc == ALLOT_ECORRUPT)
        wal_message_set(message, message_bytes,
                        "wal: the log is damaged or incomplete at %s offset %" PRIu64
                        " (LSN %" PRIu64 " expected): %s",
                        path, loaded.scan.end_offset, loaded.scan.last_lsn + 1, loaded.scan.reason);
    else if (rc < 0)
        snprintf(message, message_bytes, "%s", loaded.message);
    else
        *end = wal_log_end_of(&loaded.scan);
    wal_loaded_free(&loaded);
    return rc;
}

/* Open the newest segment for writing if `known` (a replay's result->end) describes it: same
 * first LSN and size. -1 otherwise (the caller reads the segment itself). */
static int wal_log_end_open_known(const char *path, uint64_t first_lsn, const wal_log_end_t *known)
{
    if (known == NULL || known->segment_first_lsn != first_lsn)
        return -1;
    assert(known->offset <= known->segment_bytes);
    assert(known->offset + known->torn_bytes <= known->segment_bytes);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || (uint64_t)st.st_size != known->segment_bytes)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Accepted loss: zero the kept segment from the cut on, and make its header agree (synced LSN
 * at most the cut's last LSN, segment bytes the file's size: it may have been truncated). */
static int wal_segment_seal(const char *path, const wal_log_end_t *cut, char *message,
                            size_t message_bytes)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    int rc = fd >= 0 && fstat(fd, &st) == 0 ? 0 : -errno;
    uint64_t bytes = rc == 0 ? (uint64_t)st.st_size : 0;
    if (rc == 0 && bytes > cut->offset)
        rc = wal_zero_range(fd, cut->offset, bytes - cut->offset);
    if (rc == 0 && cut->version != WAL_FORMAT_VERSION_V1) {
        uint8_t header[WAL_SEGMENT_HEADER_BYTES];
        uint64_t synced = cut->synced_lsn < cut->last_lsn ? cut->synced_lsn : cut->last_lsn;
        wal_segment_header_encode(header, cut->segment_first_lsn, bytes, synced);
        rc = persist_pwrite_all(fd, header, sizeof header, 0);
    }
    if (rc == 0)
        rc = persist_fdatasync(fd);
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        snprintf(message, message_bytes, "wal: cannot cut %s: %s", path, strerror(-rc));
    return rc < 0 ? ALLOT_EIO : 0;
}

/* Accepted loss (log_end.cut): every segment after the cut one (and that one too when its
 * header is damaged; every one when the cut keeps none) is renamed <name>.discarded; the kept
 * one is sealed at the cut. The caller starts a new segment. */
static int wal_open_cut(wal_t *wal, const wal_log_end_t *cut, char *message, size_t message_bytes)
{
    wal_segment_entry_t *segments = NULL;
    size_t count = 0;
    int rc = wal_segments_list(wal->dir, &segments, &count, message, message_bytes);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        uint64_t first = segments[i].first_lsn;
        char path[WAL_PATH_BYTES_MAX], aside[WAL_PATH_BYTES_MAX + 16];
        wal_segment_path(path, wal->dir, segments[i].name);
        if (first < cut->segment_first_lsn)
            continue;
        if (first == cut->segment_first_lsn && !cut->header_damaged) {
            rc = wal_segment_seal(path, cut, message, message_bytes);
            continue;
        }
        snprintf(aside, sizeof aside, "%s%s", path, WAL_DISCARDED_SUFFIX);
        if (rename(path, aside) != 0) {
            snprintf(message, message_bytes, "wal: cannot set %s aside: %s", path, strerror(errno));
            rc = ALLOT_EIO;
        }
    }
    free(segments);
    if (rc == 0 && fsync(wal->dir_fd) != 0) {
        snprintf(message, message_bytes, "wal: fsync of %s: %s", wal->dir, strerror(errno));
        rc = ALLOT_EIO;
    }
    return rc;
}

/* Make the newest segment (version 2) the active one, where replay found its end. */
static void wal_active_set(wal_t *wal, int fd, const wal_log_end_t *end)
{
    wal->active_fd = fd;
    wal->active_offset = end->offset;
    wal->active_capacity = end->segment_bytes;
    atomic_store(&wal->active_room, wal->active_capacity - wal->active_offset);
    wal->active_first_lsn = end->segment_first_lsn;
    wal->active_last_lsn = end->last_lsn;
    wal->active_synced_lsn = end->synced_lsn;
    wal->active_v1 = end->version == WAL_FORMAT_VERSION_V1;
    if (wal->active_v1) /* never appended to: wal_open begins a version 2 segment */
        wal->active_capacity = wal->active_offset;
}

/* Find where the log ends and make the newest segment the active one. */
static int wal_open_tail(wal_t *wal, const wal_log_end_t *known, uint64_t next_lsn, char *message,
                         size_t message_bytes)
{
    if (known != NULL && known->cut) {
        if (known->last_lsn + 1 > next_lsn) {
            snprintf(message, message_bytes,
                     "wal: the log is cut at LSN %" PRIu64 " but appending was asked to start "
                     "at %" PRIu64,
                     known->last_lsn, next_lsn);
            return ALLOT_EINVALID_ARGUMENT;
        }
        return wal_open_cut(wal, known, message, message_bytes); /* no active segment */
    }
    wal_segment_entry_t *segments = NULL;
    size_t count = 0;
    int rc = wal_segments_list(wal->dir, &segments, &count, message, message_bytes);
    if (rc < 0 || count == 0) {
        free(segments);
        return rc;
    }
    char path[WAL_PATH_BYTES_MAX];
    wal_segment_path(path, wal->dir, segments[count - 1].name);
    wal_log_end_t end = {0};
    int fd = wal_log_end_open_known(path, segments[count - 1].first_lsn, known);
    if (fd >= 0)
        end = *known;
    else
        rc = wal_log_end_scan(wal->dir, &segments[count - 1], &end, path, message, message_bytes);
    free(segments);
    if (rc < 0)
        return rc;
    if (end.last_lsn + 1 != next_lsn) {
        snprintf(message, message_bytes,
                 "wal: the log ends at LSN %" PRIu64
                 " but appending was asked to start at %" PRIu64,
                 end.last_lsn, next_lsn);
        if (fd >= 0)
            close(fd);
        return ALLOT_EINVALID_ARGUMENT;
    }
    if (fd < 0 && (fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
        snprintf(message, message_bytes, "wal: cannot open %s: %s", path, strerror(errno));
        return ALLOT_EIO;
    }
    if (end.torn_bytes > 0 && wal_tail_zero(fd, &end, path, message, message_bytes) < 0) {
        close(fd);
        return ALLOT_EIO;
    }
    wal_active_set(wal, fd, &end);
    return 0;
}

/* After the tail is open: a log with no segment of version 2 to append to (empty, cut, or its
 * newest segment older) begins one at next_lsn now, so that wal-end and a segment exist from
 * the first start (a full disk leaves that to the first record, as it would); otherwise wal-end
 * is brought up to the newest segment (a crash can fall between a segment's rename and
 * wal-end's). 0 or ALLOT_EIO. */
static int wal_open_segment(wal_t *wal, uint64_t next_lsn, char *message, size_t message_bytes)
{
    const char *what = NULL;
    int rc = 0;
    if (wal->active_fd < 0 || wal->active_v1) {
        rc = wal_segment_make(wal, next_lsn, &what);
        if (rc == 0) {
            if (wal->active_fd >= 0)
                close(wal->active_fd); /* nothing was written to it */
            wal_segment_switch(wal, next_lsn);
        } else if (wal->spare_fd < 0) {
            rc = 0; /* no space for a segment: not writable until there is (wal_spare_try) */
        }
    } else {
        uint64_t named = 0;
        char scratch[WAL_MESSAGE_BYTES_MAX];
        if (wal_end_read(wal->dir, &named, scratch, sizeof scratch) != 1 ||
            named != wal->active_first_lsn) {
            what = "wal-end write failed";
            wal->stats.fdatasyncs++;
            rc = wal_end_write(wal->dir_fd, wal->active_first_lsn);
        }
    }
    if (rc < 0)
        snprintf(message, message_bytes, "wal: %s in %s: %s", what, wal->dir, strerror(-rc));
    return rc < 0 ? ALLOT_EIO : 0;
}

static int wal_threads_start(wal_t *wal, char *message, size_t message_bytes)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&wal->mutex, NULL);
    pthread_cond_init(&wal->writer_cond, &attr);
    pthread_cond_init(&wal->done_cond, NULL);
    pthread_cond_init(&wal->reap_cond, NULL);
    pthread_cond_init(&wal->zero_cond, NULL);
    pthread_condattr_destroy(&attr);
    wal->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wal->wake_fd >= 0)
        wal->linger_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int rc = wal->wake_fd < 0 || wal->linger_fd < 0
                 ? -errno
                 : uv_poll_init(wal->loop, &wal->wake, wal->wake_fd);
    if (rc < 0) {
        snprintf(message, message_bytes, "wal: cannot make the writer's wake-up: %s",
                 wal->wake_fd < 0 || wal->linger_fd < 0 ? strerror(-rc) : uv_strerror(rc));
        wal_free(wal);
        return ALLOT_EIO;
    }
    wal->wake.data = wal;
    uv_poll_start(&wal->wake, UV_READABLE, wal_wake_cb);
    wal->handles_open = 1;
    rc = uv_poll_init(wal->loop, &wal->linger_poll, wal->linger_fd);
    if (rc < 0)
        snprintf(message, message_bytes, "wal: cannot poll the linger timer: %s", uv_strerror(rc));
    if (rc == 0) {
        wal->linger_poll.data = wal;
        uv_poll_start(&wal->linger_poll, UV_READABLE, wal_linger_cb);
        wal->handles_open = 2;
        rc = pthread_create(&wal->reaper, NULL, wal_reaper_main, wal);
        wal->reaper_started = rc == 0;
        if (rc == 0)
            rc = pthread_create(&wal->thread, NULL, wal_writer_main, wal);
        if (rc != 0)
            snprintf(message, message_bytes, "wal: cannot start the %s thread: %s",
                     wal->reaper_started ? "writer" : "reaper", strerror(rc));
        if (rc != 0 && wal->reaper_started) {
            pthread_mutex_lock(&wal->mutex);
            wal->stop = true;
            pthread_cond_signal(&wal->reap_cond);
            pthread_mutex_unlock(&wal->mutex);
            pthread_join(wal->reaper, NULL);
            wal->reaper_started = false;
        }
    }
    if (rc != 0) {
        wal->closed_cb = NULL;
        uv_close((uv_handle_t *)&wal->wake, wal_handle_closed_cb);
        if (wal->handles_open == 2)
            uv_close((uv_handle_t *)&wal->linger_poll, wal_handle_closed_cb);
        return ALLOT_EIO;
    }
    return 0;
}

static void wal_open_abort(wal_t *wal)
{
    if (wal->active_fd >= 0)
        close(wal->active_fd);
    if (wal->spare_fd >= 0) {
        close(wal->spare_fd);
        unlinkat(wal->dir_fd, WAL_SPARE_NAME, 0);
    }
    if (wal->dir_fd >= 0)
        close(wal->dir_fd);
    free(wal->fill);
    free(wal->flight);
    free(wal);
}

int wal_open(uv_loop_t *loop, const wal_config_t *config, uint64_t next_lsn, wal_t **out,
             wal_durable_cb durable_cb, wal_fatal_cb fatal_cb, void *ctx, char *message,
             size_t message_bytes)
{
    char scratch[WAL_MESSAGE_BYTES_MAX];
    if (message == NULL || message_bytes == 0) {
        message = scratch;
        message_bytes = sizeof scratch;
    }
    message[0] = '\0';
    *out = NULL;
    if (loop == NULL || config == NULL || next_lsn == 0)
        return ALLOT_EINVALID_ARGUMENT;
    int rc = persist_fault_env_load();
    if (rc < 0)
        return snprintf(message, message_bytes, "wal: malformed ALLOT_FAULT"), rc;
    wal_t *wal = calloc(1, sizeof *wal);
    if (wal == NULL)
        return ALLOT_ENOMEM;
    *wal = (wal_t){.loop = loop,
                   .durable_cb = durable_cb,
                   .fatal_cb = fatal_cb,
                   .ctx = ctx,
                   .dir_fd = -1,
                   .active_fd = -1,
                   .spare_fd = -1,
                   .zero_fd = -1,
                   .zero_active_fd = -1,
                   .wake_fd = -1,
                   .linger_fd = -1,
                   .last_lsn = next_lsn - 1,
                   .durable_lsn_reported = next_lsn - 1};
    wal->written_lsn = wal->durable_lsn_shared = next_lsn - 1;
    histogram_reset(&wal->histograms.fdatasync_us);
    histogram_reset(&wal->histograms.batch_records);
    rc = wal_config_apply(wal, config, message, message_bytes);
    if (rc == 0)
        rc = wal_dir_open(wal, message, message_bytes);
    if (rc == 0)
        rc = wal_open_tail(wal, config->log_end, next_lsn, message, message_bytes);
    if (rc == 0)
        rc = wal_open_segment(wal, next_lsn, message, message_bytes);
    wal->linger_bytes = wal->batch_bytes_max / 2 < ALLOT_WAL_LINGER_BYTES ? wal->batch_bytes_max / 2
                                                                          : ALLOT_WAL_LINGER_BYTES;
    if (rc == 0 && ((wal->fill = malloc(wal->batch_bytes_max)) == NULL ||
                    (wal->flight = malloc(wal->batch_bytes_max)) == NULL))
        rc = ALLOT_ENOMEM;
    if (rc < 0) {
        wal_open_abort(wal);
        return rc;
    }
    if (wal->active_fd >= 0)
        wal_active_zero_request(wal); /* the reaper, started below, takes it up */
    if (wal_spare_try(wal)) /* failure is not fatal: not writable until the writer's retry works */
        wal_spare_zero_request(wal);
    wal->place_offset = wal->active_offset;
    wal->place_capacity = wal->active_capacity;
    wal->stats_shared = wal->stats;
    rc = wal_threads_start(wal, message, message_bytes);
    if (rc < 0)
        return rc;
    *out = wal;
    return 0;
}
