/* dirlock.c - one allotd per data directory: an exclusive lock on <data-dir>/allotd.lock. */
#include "dirlock.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/limits.h"

#define DIRLOCK_PID_BYTES_MAX  24u

struct dirlock {
    int fd;
};

/* Exclusive, non-blocking: 0, -EAGAIN when another process holds it, or -errno. */
static int dirlock_take(int fd)
{
    struct flock range = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_OFD_SETLK, &range) == 0)
        return 0;
    if (errno == EAGAIN || errno == EACCES)
        return -EAGAIN;
    if (errno != EINVAL)
        return -errno;
    /* a kernel without OFD locks: flock is per open file too */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* The pid the holder wrote into the file (0: not written yet or unreadable). */
static long dirlock_holder_pid(int fd)
{
    char text[DIRLOCK_PID_BYTES_MAX + 1];
    ssize_t n = pread(fd, text, DIRLOCK_PID_BYTES_MAX, 0);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    char *end;
    long pid = strtol(text, &end, 10);
    return end != text && (*end == '\n' || *end == '\0') && pid > 0 ? pid : 0;
}

/* Replace the content of the locked file by our pid. */
static int dirlock_pid_write(int fd)
{
    char text[DIRLOCK_PID_BYTES_MAX];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    assert(n > 0 && (size_t)n < sizeof text);
    if (ftruncate(fd, 0) != 0)
        return -errno;
    ssize_t written = pwrite(fd, text, (size_t)n, 0);
    if (written < 0)
        return -errno;
    return written == n ? 0 : -EIO;
}

static int dirlock_refused(int fd, const char *path, const char *data_dir, char *message,
                           size_t message_bytes)
{
    long pid = dirlock_holder_pid(fd);
    if (pid > 0)
        snprintf(message, message_bytes,
                 "data directory %s is in use by pid %ld (it holds the lock on %s); stop that "
                 "process or choose another --data-dir",
                 data_dir, pid, path);
    else
        snprintf(message, message_bytes,
                 "data directory %s is in use by another process (it holds the lock on %s; its "
                 "pid is not written yet); stop that process or choose another --data-dir",
                 data_dir, path);
    return ALLOT_EUNAVAILABLE;
}

int dirlock_acquire(const char *data_dir, dirlock_t **out, char *message, size_t message_bytes)
{
    assert(data_dir != NULL && out != NULL);
    *out = NULL;
    char path[DIRLOCK_PATH_BYTES_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", data_dir, DIRLOCK_FILE_NAME);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(message, message_bytes, "data directory path too long: %s", data_dir);
        return ALLOT_EINVALID_ARGUMENT;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(message, message_bytes, "cannot open the lock file %s: %s", path, strerror(errno));
        return ALLOT_EIO;
    }
    int rc = dirlock_take(fd);
    if (rc == -EAGAIN) {
        rc = dirlock_refused(fd, path, data_dir, message, message_bytes);
        close(fd);
        return rc;
    }
    if (rc == 0)
        rc = dirlock_pid_write(fd);
    dirlock_t *lock = rc == 0 ? malloc(sizeof *lock) : NULL;
    if (lock == NULL) {
        snprintf(message, message_bytes, "cannot lock %s: %s", path,
                 strerror(rc < 0 ? -rc : ENOMEM));
        close(fd); /* closing the only descriptor drops the lock */
        return rc < 0 ? ALLOT_EIO : ALLOT_ENOMEM;
    }
    lock->fd = fd;
    *out = lock;
    return 0;
}

void dirlock_release(dirlock_t *lock)
{
    if (lock == NULL)
        return;
    close(lock->fd);
    free(lock);
}
