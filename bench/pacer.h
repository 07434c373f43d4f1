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
 *   - pacer_send_ns says when a worker should next hand out requests: the next intended start,
 *     but no sooner than window_ns after it last did. Above one request per window the requests
 *     that fall due within a window go out together, one wake-up and one write for all of them
 *     instead of one each; each still counts from its own intended start (the wait is lateness,
 *     reported as such). At rates below one per window every request goes out at its own time.
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
/* When to hand out the next requests after the last hand-out at last_send_ns (0: none yet). */
uint64_t pacer_send_ns(const pacer_t *p, uint64_t last_send_ns, uint64_t window_ns);

#endif
