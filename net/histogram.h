/* histogram.h - fixed-size log-linear latency histogram (HdrHistogram-style).
 *
 * Contract: records non-negative integer values (microseconds by convention) from 0 to
 * HISTOGRAM_VALUE_MAX (larger values are clamped and counted in `clamped`). Values below 64 are
 * exact; above, each power of two is split in 32 linear sub-buckets, so a reported percentile is
 * within 1/32 (3.2%) of the true value. No allocation: the struct holds every bucket.
 */
#ifndef ALLOT_NET_HISTOGRAM_H
#define ALLOT_NET_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SUB_BUCKET_BITS 5
#define HISTOGRAM_SUB_BUCKETS (1u << HISTOGRAM_SUB_BUCKET_BITS) /* 32 */
#define HISTOGRAM_EXPONENT_MAX 36                              /* 2^36 us = 19 h */
#define HISTOGRAM_BUCKETS (2 * HISTOGRAM_SUB_BUCKETS + (HISTOGRAM_EXPONENT_MAX - 6) * HISTOGRAM_SUB_BUCKETS)
#define HISTOGRAM_VALUE_MAX ((int64_t)1 << HISTOGRAM_EXPONENT_MAX)

typedef struct histogram {
    uint64_t count;
    uint64_t clamped;
    int64_t max;
    uint64_t sum;
    uint32_t buckets[HISTOGRAM_BUCKETS];
} histogram_t;

void histogram_record(histogram_t *h, int64_t value);

/* The value at percentile p (0..100): the upper edge of the bucket holding it (0 if empty). */
int64_t histogram_percentile(const histogram_t *h, double p);

/* Bucket index for a value, and the largest value a bucket holds (for tests and rendering). */
uint32_t histogram_bucket_of(int64_t value);
int64_t histogram_bucket_upper(uint32_t bucket);

#endif
