/* fault.c - wrappers around pwrite/fdatasync/fallocate (and the raft barrier's seam) that tests
 * and ALLOT_FAULT can break. */
#include "fault.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/limits.h"

typedef struct fault_rule {
    bool armed;
    int errno_value;
    uint64_t calls_left_ok; /* calls that still succeed before the fault fires */
    bool limited;           /* only failures_left more calls fail (else: sticky) */
    uint64_t failures_left;
} fault_rule_t;

static pthread_mutex_t fault_mutex = PTHREAD_MUTEX_INITIALIZER;
static fault_rule_t fault_rules[PERSIST_FAULT_OP_COUNT];
static uint64_t fault_calls[PERSIST_FAULT_OP_COUNT];
static char fault_file[FAULT_PATH_BYTES_MAX]; /* empty: faults are unconditional */
static bool fault_env_loaded;

static const char *const fault_op_names[PERSIST_FAULT_OP_COUNT] = {
    "write", "fdatasync", "fallocate", "map", "barrier", "barrier_cb", "zero_fill"};

void persist_fault_set(persist_fault_op_t op, int errno_value, uint64_t after_calls)
{
    assert(op < PERSIST_FAULT_OP_COUNT);
    assert(errno_value > 0);
    pthread_mutex_lock(&fault_mutex);
    fault_rules[op] = (fault_rule_t){true, errno_value, after_calls, false, 0};
    pthread_mutex_unlock(&fault_mutex);
}

void persist_fault_set_times(persist_fault_op_t op, int errno_value, uint64_t after_calls,
                             uint64_t times)
{
    assert(op < PERSIST_FAULT_OP_COUNT);
    assert(errno_value > 0 && times > 0);
    pthread_mutex_lock(&fault_mutex);
    fault_rules[op] = (fault_rule_t){true, errno_value, after_calls, true, times};
    pthread_mutex_unlock(&fault_mutex);
}

void persist_fault_clear(persist_fault_op_t op)
{
    assert(op < PERSIST_FAULT_OP_COUNT);
    pthread_mutex_lock(&fault_mutex);
    fault_rules[op] = (fault_rule_t){0};
    pthread_mutex_unlock(&fault_mutex);
}

void persist_fault_clear_all(void)
{
    pthread_mutex_lock(&fault_mutex);
    memset(fault_rules, 0, sizeof fault_rules);
    fault_file[0] = '\0';
    pthread_mutex_unlock(&fault_mutex);
}

uint64_t persist_fault_calls(persist_fault_op_t op)
{
    assert(op < PERSIST_FAULT_OP_COUNT);
    pthread_mutex_lock(&fault_mutex);
    uint64_t calls = fault_calls[op];
    pthread_mutex_unlock(&fault_mutex);
    return calls;
}

/* Count the call; return the errno to fail with, or 0 to go ahead. */
static int fault_check(persist_fault_op_t op)
{
    int result = 0;
    pthread_mutex_lock(&fault_mutex);
    fault_calls[op]++;
    fault_rule_t *rule = &fault_rules[op];
    if (rule->armed) {
        if (rule->calls_left_ok > 0)
            rule->calls_left_ok--;
        else if ((fault_file[0] == '\0' || access(fault_file, F_OK) == 0) &&
                 (!rule->limited || rule->failures_left > 0)) {
            result = rule->errno_value;
            if (rule->limited)
                rule->failures_left--;
        }
    }
    pthread_mutex_unlock(&fault_mutex);
    return result;
}

static int fault_errno_parse(const char *name, size_t len)
{
    static const struct {
        const char *name;
        int value;
    } names[] = {{"EIO", EIO},     {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT},
                 {"EROFS", EROFS}, {"EBADF", EBADF},   {"EINVAL", EINVAL}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && memcmp(names[i].name, name, len) == 0)
            return names[i].value;
    char digits[16];
    if (len == 0 || len >= sizeof digits)
        return -1;
    memcpy(digits, name, len);
    digits[len] = '\0';
    char *end = NULL;
    long value = strtol(digits, &end, 10);
    return (*end == '\0' && value > 0 && value < 4096) ? (int)value : -1;
}

/* One ":after=N" or ":times=M" of an ALLOT_FAULT item (without the colon). */
static int fault_option_parse(const char *option, size_t len, uint64_t *after, uint64_t *times)
{
    char digits[32];
    const char *eq = memchr(option, '=', len);
    size_t name_len = eq != NULL ? (size_t)(eq - option) : len;
    size_t digits_len = eq != NULL ? len - name_len - 1 : 0;
    if (eq == NULL || digits_len == 0 || digits_len >= sizeof digits)
        return ALLOT_EINVALID_ARGUMENT;
    memcpy(digits, eq + 1, digits_len);
    digits[digits_len] = '\0';
    char *end = NULL;
    uint64_t value = strtoull(digits, &end, 10);
    if (*end != '\0' || digits[0] < '0' || digits[0] > '9')
        return ALLOT_EINVALID_ARGUMENT;
    if (name_len == 5 && memcmp(option, "after", 5) == 0)
        *after = value;
    else if (name_len == 5 && memcmp(option, "times", 5) == 0 && value > 0)
        *times = value;
    else
        return ALLOT_EINVALID_ARGUMENT;
    return 0;
}

/* One "op:ERRNO[:after=N][:times=M]" item of ALLOT_FAULT. */
static int fault_item_parse(const char *item, size_t len)
{
    const char *colon = memchr(item, ':', len);
    if (colon == NULL)
        return ALLOT_EINVALID_ARGUMENT;
    int op = -1;
    for (int i = 0; i < PERSIST_FAULT_OP_COUNT; i++)
        if (strlen(fault_op_names[i]) == (size_t)(colon - item) &&
            memcmp(fault_op_names[i], item, (size_t)(colon - item)) == 0)
            op = i;
    const char *end = item + len;
    const char *errno_start = colon + 1;
    const char *errno_end = memchr(errno_start, ':', (size_t)(end - errno_start));
    if (errno_end == NULL)
        errno_end = end;
    int errno_value = fault_errno_parse(errno_start, (size_t)(errno_end - errno_start));
    uint64_t after = 0, times = 0;
    for (const char *option = errno_end; option < end;) {
        option++; /* past the ':' */
        const char *next = memchr(option, ':', (size_t)(end - option));
        if (next == NULL)
            next = end;
        if (fault_option_parse(option, (size_t)(next - option), &after, &times) != 0)
            return ALLOT_EINVALID_ARGUMENT;
        option = next;
    }
    if (op < 0 || errno_value < 0)
        return ALLOT_EINVALID_ARGUMENT;
    if (times > 0)
        persist_fault_set_times((persist_fault_op_t)op, errno_value, after, times);
    else
        persist_fault_set((persist_fault_op_t)op, errno_value, after);
    return 0;
}

int persist_fault_env_load(void)
{
    pthread_mutex_lock(&fault_mutex);
    bool loaded = fault_env_loaded;
    fault_env_loaded = true;
    pthread_mutex_unlock(&fault_mutex);
    if (loaded)
        return 0;
    const char *spec = getenv("ALLOT_FAULT");
    const char *file = getenv("ALLOT_FAULT_FILE");
    if (file != NULL && file[0] != '\0') {
        if (strlen(file) >= FAULT_PATH_BYTES_MAX)
            return ALLOT_EINVALID_ARGUMENT;
        pthread_mutex_lock(&fault_mutex);
        snprintf(fault_file, sizeof fault_file, "%s", file);
        pthread_mutex_unlock(&fault_mutex);
        if (spec == NULL || spec[0] == '\0')
            persist_fault_set(PERSIST_FAULT_FALLOCATE, ENOSPC, 0);
    }
    if (spec == NULL)
        return 0;
    for (const char *item = spec; *item != '\0';) {
        const char *comma = strchr(item, ',');
        size_t len = comma != NULL ? (size_t)(comma - item) : strlen(item);
        int rc = fault_item_parse(item, len);
        if (rc < 0)
            return rc;
        item += len + (comma != NULL ? 1 : 0);
    }
    return 0;
}

int persist_fault_hit(persist_fault_op_t op)
{
    assert(op < PERSIST_FAULT_OP_COUNT);
    return fault_check(op);
}

int persist_pwrite_all(int fd, const void *data, size_t bytes, uint64_t offset)
{
    assert(fd >= 0);
    assert(data != NULL || bytes == 0);
    int injected = fault_check(PERSIST_FAULT_WRITE);
    if (injected != 0)
        return -injected;
    const uint8_t *p = data;
    size_t done = 0;
    while (done < bytes) {
        ssize_t n = pwrite(fd, p + done, bytes - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        done += (size_t)n;
    }
    assert(done == bytes);
    return 0;
}

int persist_fdatasync(int fd)
{
    assert(fd >= 0);
    int injected = fault_check(PERSIST_FAULT_FDATASYNC);
    if (injected != 0)
        return -injected;
    return fdatasync(fd) == 0 ? 0 : -errno;
}

int persist_fallocate(int fd, uint64_t bytes)
{
    assert(fd >= 0);
    assert(bytes > 0 && bytes <= (uint64_t)INT64_MAX);
    int injected = fault_check(PERSIST_FAULT_FALLOCATE);
    if (injected != 0)
        return -injected;
    int rc;
    do
        rc = fallocate(fd, 0, 0, (off_t)bytes);
    while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : -errno;
}

int persist_map_populate(void *addr, size_t bytes)
{
    assert(addr != NULL && bytes > 0);
    int injected = fault_check(PERSIST_FAULT_MAP);
    if (injected != 0)
        return -injected;
    return madvise(addr, bytes, MADV_POPULATE_READ) == 0 ? 0 : -errno;
}

int persist_file_map_release(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    FILE *maps = fopen("/proc/self/maps", "re");
    if (maps == NULL)
        return -errno;
    char line[PATH_MAX + 128];
    int rc = 0;
    while (fgets(line, sizeof(line), maps) != NULL) {
        unsigned long start, end, inode;
        unsigned int major, minor;
        if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &start, &end, &major, &minor, &inode) == 5 &&
            inode == (unsigned long)st.st_ino && major == major(st.st_dev) &&
            minor == minor(st.st_dev) && madvise((void *)start, end - start, MADV_DONTNEED) != 0)
            rc = -errno;
    }
    fclose(maps);
    return rc;
}

int persist_fsync_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}
