/* heap_warm.c - prefault the malloc heap during recovery (contract in heap_warm.h). */
#include "heap_warm.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/limits.h"

/* glibc's default M_TOP_PAD (DEFAULT_TOP_PAD), restored afterwards. */
#define HEAP_WARM_TOP_PAD_DEFAULT (128u << 10)
#define HEAP_WARM_PAGE            4096u

struct heap_warm {
    pthread_t thread;
    atomic_bool stop;
    uintptr_t warmed; /* heap addresses below this are prefaulted (thread only) */
};

static uintptr_t page_down(uintptr_t address)
{
    return address & ~(uintptr_t)(HEAP_WARM_PAGE - 1);
}

/* Prefault [from, to); false when the kernel cannot (then the thread gives up). */
static bool heap_warm_range(uintptr_t from, uintptr_t to)
{
    if (to <= from)
        return true;
    if (madvise((void *)from, to - from, MADV_POPULATE_WRITE) == 0)
        return true;
    /* EINVAL: no MADV_POPULATE_WRITE; ENOMEM: the heap shrank meanwhile. Either way stop. */
    return false;
}

static void *heap_warm_main(void *arg)
{
    heap_warm_t *warm = arg;
    pthread_setname_np(pthread_self(), "allot-warm"); /* its name in ps -L, perf, traces */
    const struct timespec poll = {0, HEAP_WARM_POLL_NS};
    while (!atomic_load(&warm->stop)) {
        uintptr_t end = page_down((uintptr_t)sbrk(0));
        if (end > warm->warmed) {
            if (!heap_warm_range(warm->warmed, end))
                break;
            warm->warmed = end;
            continue;
        }
        nanosleep(&poll, NULL);
    }
    return NULL;
}

heap_warm_t *heap_warm_start(void)
{
    heap_warm_t *warm = calloc(1, sizeof(*warm));
    if (warm == NULL)
        return NULL;
    /* what the heap holds now was touched already: start at its end */
    warm->warmed = page_down((uintptr_t)sbrk(0));
    atomic_init(&warm->stop, false);
    if (mallopt(M_TOP_PAD, (int)HEAP_WARM_TOP_PAD_BYTES) != 1 ||
        pthread_create(&warm->thread, NULL, heap_warm_main, warm) != 0) {
        mallopt(M_TOP_PAD, (int)HEAP_WARM_TOP_PAD_DEFAULT);
        free(warm);
        return NULL;
    }
    return warm;
}

void heap_warm_stop(heap_warm_t *warm)
{
    if (warm == NULL)
        return;
    atomic_store(&warm->stop, true);
    pthread_join(warm->thread, NULL);
    free(warm);
    mallopt(M_TOP_PAD, (int)HEAP_WARM_TOP_PAD_DEFAULT);
    malloc_trim(0); /* the padding recovery did not use goes back */
}
