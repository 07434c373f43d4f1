/* heap_warm.h - fault the malloc heap in on the other core while recovery fills it (recovery_run,
 * persist/recovery.h).
 *
 * Why: recovery builds about a gigabyte of state (10M positions) in small blocks from malloc's
 * heap. The first write to each fresh page makes the kernel hand out a zeroed page, on the
 * thread that writes: on the benchmark VM that zeroing was a fifth of start-up time, all of it
 * on the one thread that also has to apply every record.
 *
 * How: while warming, malloc is asked to extend the heap in large steps (M_TOP_PAD), and a
 * thread follows the heap's end (sbrk(0)) and prefaults every new range with
 * madvise(MADV_POPULATE_WRITE), which maps zeroed pages without writing to them, so it is safe
 * next to the thread that is filling the same range. The loading thread then finds its pages
 * already there. heap_warm_stop joins the thread, puts M_TOP_PAD back to glibc's default and
 * returns the untouched padding at the heap's end to the kernel (malloc_trim).
 *
 * Contract: heap_warm_start and heap_warm_stop are called by the same thread, once each, in
 * that order (stop(NULL) does nothing). Best effort: if the thread cannot start, or the kernel
 * lacks MADV_POPULATE_WRITE (before 5.14), nothing is warmed and nothing else changes; it never
 * fails start-up. Not for use while other threads allocate heavily (start-up only).
 */
#ifndef ALLOT_PERSIST_HEAP_WARM_H
#define ALLOT_PERSIST_HEAP_WARM_H

typedef struct heap_warm heap_warm_t;

/* NULL when warming is not possible (nothing to stop then). */
heap_warm_t *heap_warm_start(void);
void heap_warm_stop(heap_warm_t *warm);

#endif
