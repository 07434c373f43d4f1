/* pages_warm.c - fault in fresh table pages at idle priority (contract in pages_warm.h). */
#include "pages_warm.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/pages.h"
#include "thread_priority.h"

typedef struct warm_range {
    uintptr_t from;
    uintptr_t to;
} warm_range_t;

struct pages_warm {
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t wake;      /* a range queued, or stop */
    pthread_cond_t step_done; /* the step in flight ended */
    warm_range_t queue[PAGES_WARM_RANGES_MAX];
    uint32_t queued;
    warm_range_t in_flight; /* from == to: none */
    bool stop;
    bool unsupported; /* the kernel refused MADV_POPULATE_WRITE */
    pages_warm_stats_t stats;
};

static bool ranges_overlap(warm_range_t a, uintptr_t from, uintptr_t to)
{
    return a.from < to && from < a.to;
}

static void warm_fresh_cb(void *ctx, void *at, size_t bytes)
{
    pages_warm_t *warm = ctx;
    pthread_mutex_lock(&warm->mutex);
    if (warm->queued == PAGES_WARM_RANGES_MAX || warm->unsupported) {
        warm->stats.ranges_dropped++;
    } else {
        warm->queue[warm->queued++] = (warm_range_t){(uintptr_t)at, (uintptr_t)at + bytes};
        pthread_cond_signal(&warm->wake);
    }
    pthread_mutex_unlock(&warm->mutex);
}

/* Drop the queue's ranges that overlap [from, to) (a range only partly in it is cut; one that
 * sticks out on both sides is dropped whole: best effort). */
static void queue_forget(pages_warm_t *warm, uintptr_t from, uintptr_t to)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < warm->queued; i++) {
        warm_range_t r = warm->queue[i];
        if (ranges_overlap(r, from, to)) {
            if (r.from < from && r.to <= to)
                r.to = from;
            else if (r.from >= from && r.to > to)
                r.from = to;
            else
                continue;
        }
        warm->queue[kept++] = r;
    }
    warm->queued = kept;
}

static void warm_retire_cb(void *ctx, void *at, size_t bytes)
{
    pages_warm_t *warm = ctx;
    uintptr_t from = (uintptr_t)at, to = from + bytes;
    pthread_mutex_lock(&warm->mutex);
    queue_forget(warm, from, to);
    while (ranges_overlap(warm->in_flight, from, to))
        pthread_cond_wait(&warm->step_done, &warm->mutex);
    pthread_mutex_unlock(&warm->mutex);
}

/* The next step: the first PAGES_WARM_STEP_BYTES of the oldest range, ending on a step boundary
 * (one huge page), taken off the queue. Mutex held; the queue is not empty. */
static warm_range_t queue_take_step(pages_warm_t *warm)
{
    warm_range_t *r = &warm->queue[0];
    uintptr_t end = (r->from + PAGES_WARM_STEP_BYTES) & ~(uintptr_t)(PAGES_WARM_STEP_BYTES - 1);
    warm_range_t step = {r->from, end < r->to ? end : r->to};
    r->from = step.to;
    if (r->from == r->to) {
        warm->queued--;
        for (uint32_t i = 0; i < warm->queued; i++)
            warm->queue[i] = warm->queue[i + 1];
    }
    return step;
}

static void *pages_warm_main(void *arg)
{
    pages_warm_t *warm = arg;
    pthread_setname_np(pthread_self(), "allot-pages"); /* its name in ps -L, perf, traces */
    persist_thread_idle();
    pthread_mutex_lock(&warm->mutex);
    for (;;) {
        while (!warm->stop && warm->queued == 0)
            pthread_cond_wait(&warm->wake, &warm->mutex);
        if (warm->stop)
            break;
        warm_range_t step = queue_take_step(warm);
        warm->in_flight = step;
        pthread_mutex_unlock(&warm->mutex);
        /* ENOMEM (out of memory) leaves the pages to the loop; EINVAL: no kernel support */
        int rc = madvise((void *)step.from, step.to - step.from, MADV_POPULATE_WRITE);
        int error = rc == 0 ? 0 : errno;
        pthread_mutex_lock(&warm->mutex);
        warm->in_flight = (warm_range_t){0, 0};
        pthread_cond_broadcast(&warm->step_done);
        if (rc == 0)
            warm->stats.bytes_warmed += step.to - step.from;
        if (error == EINVAL) {
            warm->unsupported = true;
            warm->stats.ranges_dropped += warm->queued;
            warm->queued = 0;
        }
    }
    pthread_mutex_unlock(&warm->mutex);
    return NULL;
}

pages_warm_t *pages_warm_start(void)
{
    pages_warm_t *warm = calloc(1, sizeof(*warm));
    if (warm == NULL)
        return NULL;
    pthread_mutex_init(&warm->mutex, NULL);
    pthread_cond_init(&warm->wake, NULL);
    pthread_cond_init(&warm->step_done, NULL);
    if (pthread_create(&warm->thread, NULL, pages_warm_main, warm) != 0) {
        pthread_cond_destroy(&warm->step_done);
        pthread_cond_destroy(&warm->wake);
        pthread_mutex_destroy(&warm->mutex);
        free(warm);
        return NULL;
    }
    allot_pages_hooks_set(&(allot_pages_hooks_t){
        .fresh_cb = warm_fresh_cb, .retire_cb = warm_retire_cb, .ctx = warm});
    return warm;
}

void pages_warm_stop(pages_warm_t *warm)
{
    if (warm == NULL)
        return;
    allot_pages_hooks_set(NULL);
    pthread_mutex_lock(&warm->mutex);
    warm->stop = true;
    pthread_cond_signal(&warm->wake);
    pthread_mutex_unlock(&warm->mutex);
    pthread_join(warm->thread, NULL);
    pthread_cond_destroy(&warm->step_done);
    pthread_cond_destroy(&warm->wake);
    pthread_mutex_destroy(&warm->mutex);
    free(warm);
}

pages_warm_stats_t pages_warm_stats(pages_warm_t *warm)
{
    pages_warm_stats_t stats = {0};
    if (warm == NULL)
        return stats;
    pthread_mutex_lock(&warm->mutex);
    stats = warm->stats;
    stats.bytes_pending = warm->in_flight.to - warm->in_flight.from;
    for (uint32_t i = 0; i < warm->queued; i++)
        stats.bytes_pending += warm->queue[i].to - warm->queue[i].from;
    pthread_mutex_unlock(&warm->mutex);
    return stats;
}
