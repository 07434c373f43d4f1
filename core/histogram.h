/* histogram.h - the latency histogram of the server's metrics (microseconds) and of the bench
 * (nanoseconds): bounded relative error, log-linear, HdrHistogram-style.
 *
 * Contract:
 *   - Values are unsigned 64-bit integers in any unit (the bench records nanoseconds, the
 *     server microseconds). Values
 *     below 2 * HISTOGRAM_SUB_BUCKETS are counted exactly; above, each power-of-two range
 *     [2^k, 2^(k+1)) is split into HISTOGRAM_SUB_BUCKETS linear buckets, so every reported
 *     value (a bucket midpoint) is within 1 / (2 * HISTOGRAM_SUB_BUCKETS) = 0.2% of the true
 *     value. Values above HISTOGRAM_VALUE_MAX (about 68.7 s in ns) are clamped to it and counted
 *     in `clamped`.
 *   - min, max and the sum are exact. A histogram is a plain struct (about 60 KiB): zero it with
 *     histogram_reset, record from one thread, merge into another with histogram_merge.
 *   - No allocation, no errors: every function is total.
 */
#ifndef ALLOT_CORE_HISTOGRAM_H
#define ALLOT_CORE_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SUB_BUCKETS_LOG2 8
#define HISTOGRAM_SUB_BUCKETS      (1u << HISTOGRAM_SUB_BUCKETS_LOG2)
/* Largest value kept exactly in range: 2^36 - 1 (68.7 s in nanoseconds). */
#define HISTOGRAM_VALUE_BITS 36
#define HISTOGRAM_VALUE_MAX  ((UINT64_C(1) << HISTOGRAM_VALUE_BITS) - 1)
#define HISTOGRAM_BUCKETS                                                                          \
    ((HISTOGRAM_VALUE_BITS - HISTOGRAM_SUB_BUCKETS_LOG2 + 1) * HISTOGRAM_SUB_BUCKETS)

typedef struct histogram {
    uint64_t count;
    uint64_t clamped; /* values recorded above HISTOGRAM_VALUE_MAX */
    uint64_t min, max;
    double sum;
    uint64_t buckets[HISTOGRAM_BUCKETS];
} histogram_t;

void histogram_reset(histogram_t *h);
void histogram_record(histogram_t *h, uint64_t value);
/* Record `value` `count` times (as many histogram_record calls would). */
void histogram_record_count(histogram_t *h, uint64_t value, uint64_t count);
/* Add every count of `from` into `into`. */
void histogram_merge(histogram_t *into, const histogram_t *from);
/* The value at percentile p (0..100): the smallest recorded value v such that at least p% of
 * the values are <= v, reported as its bucket's midpoint (exact min for p = 0, exact max for
 * p = 100, clamped into [min, max]). 0 when empty. */
uint64_t histogram_percentile(const histogram_t *h, double p);
double histogram_mean(const histogram_t *h);

/* Bucket index of a value and the [lowest, highest] values sharing that bucket (for tests). */
uint32_t histogram_bucket_index(uint64_t value);
uint64_t histogram_bucket_lowest(uint32_t index);
uint64_t histogram_bucket_highest(uint32_t index);

#endif
