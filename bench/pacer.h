/* pacer.h - open-loop request schedule: when each request was *meant* to start.
 *
 * Contract:
 *   - An open-loop run sends request i at start_ns + i * interval_ns, whatever happened to the
 *     previous requests. A request that cannot be sent on time (every pipeline slot busy, the
 *     client thread late) keeps its intended start; its latency is measured from that time, so a
 *     server stall shows up in the latencies of every request that should have been sent during
 *     it (no coordinated omission).
 *   - pacer_due(p, now) returns the intended start of the next request when it is due
 *     (<= now_ns) and advances, else 0; pacer_next_ns is when the next one falls due.
 *   - interval_ns 0 means closed loop: every call is due "now" (intended start = now_ns).
 *   - Times are CLOCK_MONOTONIC nanoseconds (> 0). Pure arithmetic, no clock reads.
 */
#ifndef ALLOT_BENCH_PACER_H
#define ALLOT_BENCH_PACER_H

#include <stdint.h>

typedef struct pacer {
    uint64_t start_ns;
    double interval_ns; /* 0: closed loop */
    uint64_t issued;    /* requests handed out so far */
} pacer_t;

void pacer_init(pacer_t *p, uint64_t start_ns, double interval_ns);
/* Intended start of request number `issued` (the next one). */
uint64_t pacer_next_ns(const pacer_t *p);
/* The next request's intended start if it is due at now_ns (and advance), else 0. */
uint64_t pacer_due(pacer_t *p, uint64_t now_ns);
/* Requests that are due at now_ns but not yet handed out (the backlog). */
uint64_t pacer_backlog(const pacer_t *p, uint64_t now_ns);

#endif
