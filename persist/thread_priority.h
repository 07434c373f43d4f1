/* thread_priority.h - how persist/'s background threads step aside for the loop.
 *
 * Why: allotd's threads share the CPUs with the loop, and in the benchmark all of them share one
 * (taskset). Whatever a background thread does there delays every reply behind it.
 *
 * Two classes, and one habit:
 *   - persist_thread_idle: work nobody ever waits for, which may wait for as long as the CPUs
 *     are busy (the page warmer: a page not faulted in ahead is faulted by its first writer).
 *     SCHED_IDLE, or PERSIST_THREAD_IDLE_NICE where that is refused.
 *   - persist_thread_nice(increment): work that must keep up but may take longer (the
 *     checkpoint writer: the WAL grows until it commits), a few nice steps below the process.
 *   - persist_thread_step_aside(done, every): a long loop of a thread below the loop's
 *     priority yields the CPU (sched_yield) once every `every` units of work. The scheduler
 *     protects a running thread's slice (several ms) even from a woken thread of a higher
 *     priority; the loop, which sleeps between requests and wakes for each, therefore waited
 *     behind the checkpoint writer's slices and lost a fifth of its share of the CPU to it while a
 *     checkpoint was written. Yielding costs one system call when nothing else is runnable.
 * Never for a thread another one waits for: the WAL writer (every reply waits for its
 * fdatasync), and the WAL reaper, although its zero fill is the background work that takes the
 * most CPU (64 MiB of zeros through the page cache per segment): the writer, taking a spare
 * whose fill is not done, waits for the reaper's window in progress (persist/wal.h, "Written
 * before use"), and an idle reaper holding that window gets the CPU only when everything else
 * sleeps. Tried: with the reaper at SCHED_IDLE the open-loop p99 at 118k/s looked better (median
 * of 8 runs 34 against 51 ms, on a host whose p99 moved 24-175 ms from minute to minute), but
 * with the server and its client saturating one CPU the writer took 2 spares mid-fill and
 * p99.9 went from 36 to 119 ms (docs/benchmarks.md, "Issue 20, the merged round (2)"). Raising
 * a thread back from SCHED_IDLE for the wait needs CAP_SYS_NICE, so the reaper stays at the
 * process's priority.
 *
 * Contract: called by the thread itself, first thing. Best effort: a refusal (a seccomp filter,
 * a container's limits) leaves the priority as it was; nothing else changes.
 */
#ifndef ALLOT_PERSIST_THREAD_PRIORITY_H
#define ALLOT_PERSIST_THREAD_PRIORITY_H

#include <stddef.h>

/* Nice value of an idle-class thread where SCHED_IDLE is refused (the lowest). */
#define PERSIST_THREAD_IDLE_NICE 19

void persist_thread_idle(void);
void persist_thread_nice(int increment);
/* Yield when `done` (the units of work done so far, counted from 0) completes a multiple of
 * `every` (> 0). Any thread; never blocks. */
void persist_thread_step_aside(size_t done, size_t every);

#endif
