/* commit_floor.c - allot-commit-floor: the lowest latency that a server making every reply
 * durable before sending it (append, fdatasync, reply; group commit) can give on this disk.
 *
 * One thread commits back to back, as the WAL writer does under a steady load: --bytes appended
 * to a file written full of zeros beforehand (as allotd's WAL segments are), then fdatasync, then
 * the next. Every commit's start and end are kept. Afterwards requests arriving evenly at --rate
 * per second are laid over that timeline: a request arriving at t is durable at the end of the
 * first commit that starts at or after t (the commit in flight at t started before the request's
 * bytes existed), so its latency is that end minus t. Those latencies are the floor under an
 * open-loop run at --fsync always at the same rate: whatever the server itself does only adds
 * to them. bench/commit-floor.sh runs it alone and next to a busy allotd.
 *
 * usage: allot-commit-floor [--dir DIR] [--duration S] [--bytes B] [--rate R]
 * Prints one line: commits and their p50/p99/p99.9/max, then the requests' p50..p99.9, max and
 * the share over 5 and 20 ms, then the most common gaps between slow commits (over 3 ms).
 * Percentiles come from core/histogram.h (within 0.2%), maxima and shares are exact.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/histogram.h"

#define FILE_BYTES            (64u << 20)
#define ZERO_CHUNK_BYTES      (1u << 20)
#define SLOW_COMMIT_NS        3000000u
#define GAP_BIN_MS            10u
#define GAP_BINS              100u /* gaps up to 1 s */
#define GAPS_PRINTED          4u
#define REQUESTS_MAX          20000000ull /* requests laid over the timeline, one pass each */
#define COMMIT_BYTES_MAX      (16u << 20)
#define COMMITS_GROWTH_FACTOR 2u

typedef struct commit {
    uint64_t start_ns;
    uint64_t end_ns;
} commit_t;

typedef struct options {
    const char *dir;
    double duration_s;
    size_t bytes;
    double rate;
} options_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int usage(void)
{
    fprintf(stderr, "usage: allot-commit-floor [--dir DIR] [--duration S] [--bytes B] "
                    "[--rate R]\n  defaults: --dir . --duration 10 --bytes 4096 --rate 118000\n");
    return 64;
}

static int parse_options(int argc, char **argv, options_t *o)
{
    *o = (options_t){.dir = ".", .duration_s = 10, .bytes = 4096, .rate = 118000};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return -1;
        const char *value = argv[++i];
        char *end = NULL;
        if (strcmp(argv[i - 1], "--dir") == 0)
            o->dir = value;
        else if (strcmp(argv[i - 1], "--duration") == 0)
            o->duration_s = strtod(value, &end);
        else if (strcmp(argv[i - 1], "--bytes") == 0)
            o->bytes = (size_t)strtoull(value, &end, 10);
        else if (strcmp(argv[i - 1], "--rate") == 0)
            o->rate = strtod(value, &end);
        else
            return -1;
        if (end != NULL && *end != '\0')
            return -1;
    }
    if (!(o->duration_s > 0 && o->duration_s <= 3600) || o->bytes == 0 ||
        o->bytes > COMMIT_BYTES_MAX || !(o->rate > 0) ||
        o->rate * o->duration_s > (double)REQUESTS_MAX)
        return -1;
    return 0;
}

static int write_all(int fd, const void *data, size_t bytes, off_t offset)
{
    const char *p = data;
    while (bytes > 0) {
        ssize_t n = pwrite(fd, p, bytes, offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        bytes -= (size_t)n;
        offset += n;
    }
    return 0;
}

/* The file the commits go to, written full of zeros and synced first (no block allocation or
 * extent conversion during the run, as with a zero-filled WAL segment). -1 on failure. */
static int open_zeroed(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    static const char zeros[ZERO_CHUNK_BYTES];
    for (off_t offset = 0; offset < (off_t)FILE_BYTES; offset += ZERO_CHUNK_BYTES) {
        if (write_all(fd, zeros, sizeof zeros, offset) != 0) {
            close(fd);
            return -1;
        }
    }
    if (fdatasync(fd) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Commit back to back for the duration; *count_out gets the number of commits. NULL on failure. */
static commit_t *run_commits(int fd, const options_t *o, size_t *count_out)
{
    size_t capacity = 4096, count = 0;
    commit_t *commits = malloc(capacity * sizeof *commits);
    char *data = malloc(o->bytes);
    if (commits == NULL || data == NULL)
        goto fail;
    memset(data, 'x', o->bytes);
    off_t offset = 0;
    uint64_t end_ns = now_ns() + (uint64_t)(o->duration_s * 1e9);
    for (uint64_t start = now_ns(); start < end_ns; start = now_ns()) {
        if (offset + (off_t)o->bytes > (off_t)FILE_BYTES)
            offset = 0;
        if (write_all(fd, data, o->bytes, offset) != 0 || fdatasync(fd) != 0)
            goto fail;
        offset += (off_t)o->bytes;
        if (count == capacity) {
            commit_t *grown = realloc(commits, capacity * COMMITS_GROWTH_FACTOR * sizeof *grown);
            if (grown == NULL)
                goto fail;
            commits = grown;
            capacity *= COMMITS_GROWTH_FACTOR;
        }
        commits[count++] = (commit_t){.start_ns = start, .end_ns = now_ns()};
    }
    free(data);
    *count_out = count;
    return commits;
fail:
    free(data);
    free(commits);
    return NULL;
}

static double percentile_ms(const histogram_t *h, double p)
{
    return (double)histogram_percentile(h, p) / 1e6;
}

static void print_commits(const commit_t *commits, size_t n, double duration_s)
{
    static histogram_t lat; /* about 60 KiB: not on the stack */
    histogram_reset(&lat);
    for (size_t i = 0; i < n; i++)
        histogram_record(&lat, commits[i].end_ns - commits[i].start_ns);
    printf("commits %zu (%.0f/s) p50 %.2f p99 %.2f p99.9 %.2f max %.2f ms", n,
           (double)n / duration_s, percentile_ms(&lat, 50), percentile_ms(&lat, 99),
           percentile_ms(&lat, 99.9), (double)lat.max / 1e6);
}

/* Requests at rate over [first commit's start, last commit's start]: each waits for the end of
 * the first commit starting at or after its arrival. */
static void print_requests(const commit_t *commits, size_t n, double rate)
{
    uint64_t first = commits[0].start_ns, last = commits[n - 1].start_ns;
    size_t count = (size_t)((double)(last - first) / 1e9 * rate);
    if (count == 0)
        return;
    static histogram_t lat;
    histogram_reset(&lat);
    size_t over5 = 0, over20 = 0, c = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t arrival = first + (uint64_t)((double)i * 1e9 / rate);
        while (c < n && commits[c].start_ns < arrival)
            c++;
        uint64_t latency = commits[c < n ? c : n - 1].end_ns - arrival;
        histogram_record(&lat, latency);
        over5 += latency > 5000000u;
        over20 += latency > 20000000u;
    }
    printf(" | requests at %.0f/s p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f ms, over 5 ms "
           "%.2f%%, over 20 ms %.2f%%",
           rate, percentile_ms(&lat, 50), percentile_ms(&lat, 90), percentile_ms(&lat, 99),
           percentile_ms(&lat, 99.9), (double)lat.max / 1e6, 100.0 * (double)over5 / (double)count,
           100.0 * (double)over20 / (double)count);
}

/* The most common gaps between the starts of slow commits, in GAP_BIN_MS bins: a host that
 * stalls its disk on a timer shows its period here. */
static void print_slow_gaps(const commit_t *commits, size_t n)
{
    unsigned bins[GAP_BINS + 1] = {0};
    size_t slow = 0;
    uint64_t previous = 0;
    for (size_t i = 0; i < n; i++) {
        if (commits[i].end_ns - commits[i].start_ns <= SLOW_COMMIT_NS)
            continue;
        if (slow++ > 0) {
            uint64_t bin =
                ((commits[i].start_ns - previous) / 1000000u + GAP_BIN_MS / 2) / GAP_BIN_MS;
            bins[bin < GAP_BINS ? bin : GAP_BINS]++;
        }
        previous = commits[i].start_ns;
    }
    printf(" | slow commits (over %u ms) %zu, most common gaps:", SLOW_COMMIT_NS / 1000000u, slow);
    for (unsigned k = 0; k < GAPS_PRINTED; k++) {
        unsigned best = 0;
        for (unsigned b = 1; b < GAP_BINS; b++)
            if (bins[b] > bins[best])
                best = b;
        if (bins[best] == 0)
            break;
        printf(" %u ms x%u", best * GAP_BIN_MS, bins[best]);
        bins[best] = 0;
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    options_t o;
    if (parse_options(argc, argv, &o) != 0)
        return usage();
    char path[4096];
    if (snprintf(path, sizeof path, "%s/commit-floor.%d.tmp", o.dir, (int)getpid()) >=
        (int)sizeof path)
        return usage();
    int fd = open_zeroed(path);
    if (fd < 0) {
        fprintf(stderr, "allot-commit-floor: %s: %s\n", path, strerror(errno));
        unlink(path);
        return 1;
    }
    size_t n = 0;
    commit_t *commits = run_commits(fd, &o, &n);
    int saved_errno = errno;
    close(fd);
    unlink(path);
    if (commits == NULL || n < 2) {
        fprintf(stderr, "allot-commit-floor: commits failed: %s\n", strerror(saved_errno));
        free(commits);
        return 1;
    }
    print_commits(commits, n, o.duration_s);
    print_requests(commits, n, o.rate);
    print_slow_gaps(commits, n);
    free(commits);
    return 0;
}
