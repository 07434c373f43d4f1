/* writeback.c - paced write-out of a file's dirty pages (contract in writeback.h). */
#include "writeback.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/limits.h"

static atomic_uint_fast64_t writeback_walks;

/* THE FLUSH GATE (writeback.h). */
static atomic_uint_fast64_t wal_flushes;
static atomic_uint_fast64_t wal_flush_last_ns;
static atomic_uint_fast64_t gate_waits;
static _Thread_local uint64_t wal_flushes_seen; /* at this thread's previous window */

static uint64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_flushed = PTHREAD_COND_INITIALIZER; /* CLOCK_REALTIME waits */

void persist_writeback_flush_done(void)
{
    atomic_store(&wal_flush_last_ns, monotonic_ns());
    pthread_mutex_lock(&gate_lock);
    atomic_fetch_add(&wal_flushes, 1);
    pthread_cond_broadcast(&gate_flushed);
    pthread_mutex_unlock(&gate_lock);
}

uint64_t persist_writeback_gate_waits(void)
{
    return atomic_load(&gate_waits);
}

/* True while the WAL is committing: a flush within PERSIST_WRITEBACK_GATE_ACTIVE_MS. */
static bool wal_committing(void)
{
    uint64_t last_ns = atomic_load(&wal_flush_last_ns);
    return last_ns != 0 && monotonic_ns() - last_ns < PERSIST_WRITEBACK_GATE_ACTIVE_MS * 1000000u;
}

struct timespec persist_deadline_after_ns(long ns)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += ns;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    return deadline;
}

void persist_writeback_gate(void)
{
    if (atomic_load(&wal_flushes) == wal_flushes_seen && wal_committing()) {
        atomic_fetch_add(&gate_waits, 1);
        struct timespec deadline =
            persist_deadline_after_ns((long)PERSIST_WRITEBACK_GATE_WAIT_US_MAX * 1000);
        pthread_mutex_lock(&gate_lock);
        while (atomic_load(&wal_flushes) == wal_flushes_seen &&
               pthread_cond_timedwait(&gate_flushed, &gate_lock, &deadline) == 0)
            ;
        pthread_mutex_unlock(&gate_lock);
    }
    wal_flushes_seen = atomic_load(&wal_flushes);
}

uint64_t persist_writeback_walks(void)
{
    return atomic_load(&writeback_walks);
}

#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif

/* False when the page cache holds no dirty page of [offset, offset + bytes) of fd (cachestat,
 * Linux 6.5): such a window needs neither the flush gate nor a write. True when unsure. */
static bool window_dirty(int fd, uint64_t offset, uint64_t bytes)
{
    struct {
        uint64_t offset, length;
    } range = {offset, bytes};
    struct {
        uint64_t cached, dirty, writeback, evicted, recently_evicted;
    } stat;
    if (syscall(SYS_cachestat, fd, &range, &stat, 0) != 0)
        return true;
    return stat.dirty + stat.writeback > 0;
}

int persist_writeback_range(int fd, uint64_t offset, uint64_t bytes)
{
    atomic_fetch_add(&writeback_walks, 1);
    const unsigned int flags =
        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    for (uint64_t done = 0; done < bytes; done += PERSIST_WRITEBACK_WINDOW_BYTES) {
        uint64_t window = bytes - done < PERSIST_WRITEBACK_WINDOW_BYTES
                              ? bytes - done
                              : PERSIST_WRITEBACK_WINDOW_BYTES;
        if (!window_dirty(fd, offset + done, window))
            continue;
        persist_writeback_gate();
        while (sync_file_range(fd, (off64_t)(offset + done), (off64_t)window, flags) != 0)
            if (errno != EINTR)
                return -errno;
    }
    return 0;
}

int persist_writeback_paced(int fd, uint64_t bytes)
{
    return persist_writeback_range(fd, 0, bytes);
}

/* The one paced map (writeback.h, THE PACED MAP); base NULL: none. */
typedef struct paced_map {
    const char *base;
    uint64_t bytes;
    int fd;
} paced_map_t;

static pthread_mutex_t paced_map_lock = PTHREAD_MUTEX_INITIALIZER;
static paced_map_t paced_map = {NULL, 0, -1};
static atomic_uint_fast64_t paced_map_syncs;

/* The start of the writable shared map of the file (dev, ino) from offset 0 that is `bytes`
 * long (a reader's read-only map of the same file is not it), or NULL. */
static const char *shared_map_find(dev_t dev, ino_t ino, uint64_t bytes)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    if (maps == NULL)
        return NULL;
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    const uint64_t map_bytes = (bytes + page - 1) / page * page; /* a map is whole pages */
    const char *found = NULL;
    char line[512];
    while (found == NULL && fgets(line, sizeof line, maps) != NULL) {
        unsigned long start, end, offset, inode;
        unsigned int dev_major, dev_minor;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu", &start, &end, perms, &offset, &dev_major,
                   &dev_minor, &inode) == 7 &&
            perms[1] == 'w' && perms[3] == 's' && offset == 0 && end - start == map_bytes &&
            inode == ino && makedev(dev_major, dev_minor) == dev)
            found = (const char *)start;
    }
    fclose(maps);
    return found;
}

int persist_writeback_map_set(int fd, uint64_t bytes)
{
    struct stat st;
    const char *base = fstat(fd, &st) == 0 ? shared_map_find(st.st_dev, st.st_ino, bytes) : NULL;
    pthread_mutex_lock(&paced_map_lock);
    paced_map = base != NULL ? (paced_map_t){base, bytes, fd} : (paced_map_t){NULL, 0, -1};
    pthread_mutex_unlock(&paced_map_lock);
    return base != NULL ? 0 : -ENOENT;
}

void persist_writeback_map_clear(int fd)
{
    pthread_mutex_lock(&paced_map_lock);
    if (paced_map.fd == fd)
        paced_map = (paced_map_t){NULL, 0, -1};
    pthread_mutex_unlock(&paced_map_lock);
}

uint64_t persist_writeback_map_syncs(void)
{
    return atomic_load(&paced_map_syncs);
}

/* Write out the part of [addr, addr + length) inside the paced map, a window at a time. */
static void paced_map_write_out(const char *addr, size_t length)
{
    pthread_mutex_lock(&paced_map_lock);
    const paced_map_t map = paced_map;
    if (map.base != NULL && addr >= map.base && addr < map.base + map.bytes) {
        uint64_t offset = (uint64_t)(addr - map.base);
        uint64_t bytes = length < map.bytes - offset ? length : map.bytes - offset;
        (void)persist_writeback_range(map.fd, offset, bytes); /* best effort: msync follows */
        atomic_fetch_add(&paced_map_syncs, 1);
    }
    pthread_mutex_unlock(&paced_map_lock);
}

typedef int msync_fn_t(void *addr, size_t length, int flags);

static int msync_system_call(void *addr, size_t length, int flags)
{
    return (int)syscall(SYS_msync, addr, length, flags);
}

/* The msync this definition hides (libc's, or a preloaded library's that wraps it: tests count
 * syncs that way), else the system call itself. */
static msync_fn_t *msync_next(void)
{
    static _Atomic(msync_fn_t *) next;
    msync_fn_t *fn = atomic_load(&next);
    if (fn == NULL) {
        *(void **)&fn = dlsym(RTLD_NEXT, "msync");
        if (fn == NULL || fn == msync)
            fn = msync_system_call;
        atomic_store(&next, fn);
    }
    return fn;
}

/* The process's msync (writeback.h, THE PACED MAP): the paced write-out, then the msync it
 * hides. */
int msync(void *addr, size_t length, int flags)
{
    if ((flags & MS_SYNC) != 0)
        paced_map_write_out(addr, length);
    return msync_next()(addr, length, flags);
}
