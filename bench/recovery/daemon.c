/* daemon.c - start the real allotd, wait for its first pong, read its memory and log phases. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "rb.h"

double rb_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t rb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t rb_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rb_samples_add(rb_samples_t *s, uint64_t us)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        uint32_t *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

void rb_samples_free(rb_samples_t *s)
{
    free(s->v);
    *s = (rb_samples_t){0};
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

uint32_t rb_samples_pct(rb_samples_t *s, double p)
{
    if (s->n == 0)
        return 0;
    qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
    size_t i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
    return s->v[i < s->n ? i : s->n - 1];
}

uint64_t rb_proc_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = strlen(field);
    unsigned long long kib = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kib = strtoull(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

static bool ping_once(uint16_t port)
{
    allot_client_t *c = allot_client_create();
    bool ok = false;
    if (c != NULL && allot_client_connect(c, "127.0.0.1", port, 1000) == 0) {
        allot_reply_t r = {0};
        ok = allot_client_call(c, "ping", NULL, 0, &r) == 0 && !r.is_error;
        allot_reply_free(&r);
    }
    allot_client_close(c);
    return ok;
}

int rb_daemon_start(rb_daemon_t *d, const char *allotd, const char *dir, uint16_t port,
                    const char *log_path, const char *const *extra, double timeout_s)
{
    memset(d, 0, sizeof(*d));
    d->port = port;
    snprintf(d->log_path, sizeof(d->log_path), "%s", log_path);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
    const char *argv[48];
    size_t argc = 0;
    argv[argc++] = allotd;
    argv[argc++] = "--data-dir";
    argv[argc++] = dir;
    argv[argc++] = "--listen";
    argv[argc++] = listen;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && argc < 46; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    if (ping_once(port)) {
        fprintf(stderr, "daemon: something already answers on port %u\n", port);
        return -1;
    }
    d->fork_wall_ms = rb_wall_ms();
    d->started_s = rb_now_s();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        execv(allotd, (char *const *)argv);
        dprintf(2, "exec %s: %s\n", allotd, strerror(errno));
        _exit(127);
    }
    d->pid = pid;
    while (rb_now_s() - d->started_s < timeout_s) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "daemon: allotd exited during start-up (status %d); log: %s\n", status,
                    log_path);
            d->pid = 0;
            return -1;
        }
        if (ping_once(port)) {
            d->ready_s = rb_now_s();
            return 0;
        }
        struct timespec pause = {0, 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "daemon: no pong within %.0f s; log: %s\n", timeout_s, log_path);
    rb_daemon_kill9(d);
    return -1;
}

void rb_daemon_kill9(rb_daemon_t *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
}

int rb_daemon_stop(rb_daemon_t *d, double timeout_s)
{
    if (d->pid <= 0)
        return 0;
    kill(d->pid, SIGTERM);
    double t0 = rb_now_s();
    int status = 0;
    while (rb_now_s() - t0 < timeout_s) {
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    rb_daemon_kill9(d);
    return -1;
}

/* "ts=2024-05-01T10:00:00.123Z" -> ms since the epoch (UTC). */
static int64_t parse_ts_ms(const char *line)
{
    const char *p = strstr(line, "ts=");
    if (p == NULL)
        return -1;
    struct tm tm = {0};
    int ms = 0;
    if (sscanf(p + 3, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

int64_t rb_log_event_ms(const char *log_path, const char *event, char *out, size_t out_bytes,
                        bool last)
{
    FILE *f = fopen(log_path, "r");
    if (f == NULL)
        return -1;
    char line[2400], needle[96];
    snprintf(needle, sizeof(needle), " event=%s ", event);
    size_t nlen = strlen(needle);
    int64_t ms = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        /* the event may end the line */
        bool hit = strstr(line, needle) != NULL;
        if (!hit && len >= nlen - 1 && strcmp(line + len - (nlen - 1), needle) == 0)
            hit = true;
        if (hit) {
            ms = parse_ts_ms(line);
            if (out != NULL)
                snprintf(out, out_bytes, "%s", line);
            if (!last)
                break;
        }
    }
    fclose(f);
    return ms;
}

static void evict_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

static void evict_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[RB_PATH_BYTES + 300];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        evict_file(path);
    }
    closedir(d);
}

void rb_evict_cache(const char *dir)
{
    char wal[RB_PATH_BYTES + 8];
    snprintf(wal, sizeof(wal), "%s/wal", dir);
    evict_dir(dir);
    evict_dir(wal);
}

long long rb_log_field(const char *line, const char *key)
{
    char needle[64];
    snprintf(needle, sizeof(needle), " %s=", key);
    const char *p = strstr(line, needle);
    return p != NULL ? strtoll(p + strlen(needle), NULL, 10) : -1;
}

/* utime + stime of a process in seconds (0 when unreadable). */
double rb_proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                            &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}
