/* thread_priority.h - how persist/'s background threads step aside for the loop.
 *
 * Why: allotd's threads share the CPUs with the loop, and in the benchmark all of them share one
 * (taskset). Whatever a background thread does there delays every reply behind it; the WAL
 * reaper's zero fill writes 64 MiB of zeros through the page cache per segment. Open loop at 118k
 * reserves/s, allotd on one CPU, alternating runs (docs/benchmarks.md, "Issue 20, the merged
 * round (2)"): request p99 with the reaper at normal priority 47, 53, 175, 114, 123, 50, 24,
 * 34 ms; at SCHED_IDLE 20, 96, 175, 40, 41, 28, 23, 28 ms.
 *
 * Two classes:
 *   - persist_thread_idle: work that may wait for as long as the CPUs are busy, because nothing
 *     depends on it finishing soon (the reaper: a spare not zeroed in time is filled above the
 *     WAL writer instead, a segment deleted late only holds its disk space longer; the page
 *     warmer: a page not faulted in ahead is faulted by its first writer). SCHED_IDLE, or
 *     PERSIST_THREAD_IDLE_NICE where that is refused.
 *   - persist_thread_nice(increment): work that must keep up but may take longer (the
 *     checkpoint writer: the WAL grows until it commits), a few nice steps below the process.
 * Never for the WAL writer: every reply waits for its fdatasync.
 * One wait crosses the classes: the WAL writer, taking a spare whose zero fill is not done,
 * waits for the reaper's window in progress (persist/wal.h, "Written before use"). At
 * SCHED_IDLE that window may also wait for the CPU until the loop blocks, and the loop blocks
 * soon, since every reply it has waits for the writer: the wait stays about one loop iteration
 * longer than at normal priority (wal.segments_unzeroed counts these switches).
 *
 * Contract: called by the thread itself, first thing. Best effort: a refusal (a seccomp filter,
 * a container's limits) leaves the priority as it was; nothing else changes.
 */
#ifndef ALLOT_PERSIST_THREAD_PRIORITY_H
#define ALLOT_PERSIST_THREAD_PRIORITY_H

/* Nice value of an idle-class thread where SCHED_IDLE is refused (the lowest). */
#define PERSIST_THREAD_IDLE_NICE 19

void persist_thread_idle(void);
void persist_thread_nice(int increment);

#endif
