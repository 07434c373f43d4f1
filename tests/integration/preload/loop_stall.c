/* loop_stall.c - an LD_PRELOAD shim for test_loop_stalls.c: counts the disk syncs (fsync,
 * fdatasync, msync) allotd's main thread (its loop) makes, writing the count after each one to
 * the file named by ALLOT_LOOP_SYNC_FILE, and with ALLOT_LOOP_ACCEPT_DELAY_MS=N makes each
 * accept on the main thread take N ms longer (a stall inside a loop callback). */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static _Atomic unsigned long long main_syncs;

static int on_main_thread(void)
{
    return (pid_t)syscall(SYS_gettid) == getpid();
}

static void sync_count(void)
{
    if (!on_main_thread())
        return;
    unsigned long long count = atomic_fetch_add(&main_syncs, 1) + 1;
    const char *path = getenv("ALLOT_LOOP_SYNC_FILE");
    if (path == NULL)
        return;
    char text[32];
    int len = snprintf(text, sizeof(text), "%llu\n", count);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    ssize_t written = write(fd, text, (size_t)len);
    (void)written;
    close(fd);
}

typedef int (*sync_fn)(int);
typedef int (*msync_fn)(void *, size_t, int);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);

int fsync(int fd)
{
    static sync_fn next;
    if (next == NULL)
        next = (sync_fn)dlsym(RTLD_NEXT, "fsync");
    sync_count();
    return next(fd);
}

int fdatasync(int fd)
{
    static sync_fn next;
    if (next == NULL)
        next = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
    sync_count();
    return next(fd);
}

int msync(void *addr, size_t length, int flags)
{
    static msync_fn next;
    if (next == NULL)
        next = (msync_fn)dlsym(RTLD_NEXT, "msync");
    if (flags & MS_SYNC)
        sync_count();
    return next(addr, length, flags);
}

static void accept_delay(void)
{
    const char *ms = getenv("ALLOT_LOOP_ACCEPT_DELAY_MS");
    if (ms == NULL || !on_main_thread())
        return;
    long delay_ms = strtol(ms, NULL, 10);
    struct timespec t = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0)
        ;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    static accept4_fn next;
    if (next == NULL)
        next = (accept4_fn)dlsym(RTLD_NEXT, "accept4");
    int rc = next(fd, addr, len, flags);
    if (rc >= 0)
        accept_delay();
    return rc;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    static accept_fn next;
    if (next == NULL)
        next = (accept_fn)dlsym(RTLD_NEXT, "accept");
    int rc = next(fd, addr, len);
    if (rc >= 0)
        accept_delay();
    return rc;
}
