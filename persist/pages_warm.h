/* pages_warm.h - fault in fresh table pages (core/pages.h) on a thread of the lowest priority,
 * before the loop writes them.
 *
 * Why: the first write to a fresh page makes the kernel zero it on the writing thread; on the
 * benchmark VM a fresh 2 MiB huge page costs the writer several milliseconds. Every table the
 * loop grows into (the holds' slab, the expiry heaps, a doubled id hash, checkpoint batch
 * chunks) made the loop stall once per huge page it reached first.
 *
 * How: pages_warm_start installs core/pages.h's hooks. Each fresh range is queued (at most
 * PAGES_WARM_RANGES_MAX; more are left to fault on use, and counted), and the thread faults the
 * queue in with madvise(MADV_POPULATE_WRITE), PAGES_WARM_STEP_BYTES at a time. That maps zeroed
 * pages without writing to them, so it is safe next to the loop writing the same range. The
 * thread runs at SCHED_IDLE (nice 19 if that is refused): on a server pinned to one CPU the loop
 * preempts it whenever it has work. A range about to be unmapped or moved (the retire hook,
 * which may run on any thread) is dropped from the queue, and the hook waits for a step in flight
 * on it to end, so nothing is ever populated at an address a later mapping reuses (the LMDB
 * file map is shared and writable: populating it would dirty file pages).
 *
 * Contract: pages_warm_start and pages_warm_stop are called by the same thread, once each, in
 * that order, while no other thread uses core/pages.h (stop(NULL) does nothing; stop removes the
 * hooks and joins the thread). Best effort: if the thread cannot start, NULL and no hooks; if the
 * kernel lacks MADV_POPULATE_WRITE (before 5.14), the thread stops warming and ranges are
 * dropped. pages_warm_stats may be called from any thread.
 */
#ifndef ALLOT_PERSIST_PAGES_WARM_H
#define ALLOT_PERSIST_PAGES_WARM_H

#include <stdint.h>

typedef struct pages_warm pages_warm_t;

typedef struct pages_warm_stats {
    uint64_t bytes_warmed;   /* bytes faulted in (pages already there count too), ever */
    uint64_t ranges_dropped; /* fresh ranges not queued (queue full, or no kernel support) */
    uint64_t bytes_pending;  /* queued or being faulted in now (0: idle) */
} pages_warm_stats_t;

/* NULL when warming is not possible (nothing to stop then). */
pages_warm_t *pages_warm_start(void);
void pages_warm_stop(pages_warm_t *warm);
pages_warm_stats_t pages_warm_stats(pages_warm_t *warm);

#endif
