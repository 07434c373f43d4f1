/* clock_count.c - an LD_PRELOAD shim that counts a process's precise clock reads
 * (clock_gettime of CLOCK_MONOTONIC or CLOCK_REALTIME) and writes the count, at exit, to the file
 * named by ALLOT_CLOCK_COUNT_FILE; test_request_timing.c runs allotd under it. */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static _Atomic unsigned long long precise_reads;

int clock_gettime(clockid_t clock, struct timespec *ts)
{
    static clock_gettime_fn next;
    if (next == NULL)
        next = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    if (clock == CLOCK_MONOTONIC || clock == CLOCK_REALTIME)
        atomic_fetch_add_explicit(&precise_reads, 1, memory_order_relaxed);
    return next(clock, ts);
}

__attribute__((destructor)) static void clock_count_write(void)
{
    const char *path = getenv("ALLOT_CLOCK_COUNT_FILE");
    if (path == NULL)
        return;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    fprintf(f, "%llu\n", (unsigned long long)atomic_load(&precise_reads));
    fclose(f);
}
