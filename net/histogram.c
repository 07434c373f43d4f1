/* histogram.c - log-linear buckets with bounded relative error (see histogram.h). */
#include "histogram.h"

#include <assert.h>

uint32_t histogram_bucket_of(int64_t value)
{
    assert(value >= 0);
    if (value < 2 * (int64_t)HISTOGRAM_SUB_BUCKETS)
        return (uint32_t)value;
    unsigned top = 63 - (unsigned)__builtin_clzll((unsigned long long)value); /* >= 6 */
    unsigned shift = top - HISTOGRAM_SUB_BUCKET_BITS;
    uint32_t sub = (uint32_t)(value >> shift) - HISTOGRAM_SUB_BUCKETS; /* 0..31 */
    return 2 * HISTOGRAM_SUB_BUCKETS + (top - 6) * HISTOGRAM_SUB_BUCKETS + sub;
}

int64_t histogram_bucket_upper(uint32_t bucket)
{
    if (bucket < 2 * HISTOGRAM_SUB_BUCKETS)
        return bucket;
    uint32_t rest = bucket - 2 * HISTOGRAM_SUB_BUCKETS;
    unsigned top = 6 + rest / HISTOGRAM_SUB_BUCKETS;
    uint32_t sub = rest % HISTOGRAM_SUB_BUCKETS;
    unsigned shift = top - HISTOGRAM_SUB_BUCKET_BITS;
    return ((int64_t)(HISTOGRAM_SUB_BUCKETS + sub + 1) << shift) - 1;
}

void histogram_record(histogram_t *h, int64_t value)
{
    if (value < 0)
        value = 0;
    if (value >= HISTOGRAM_VALUE_MAX) {
        value = HISTOGRAM_VALUE_MAX - 1;
        h->clamped++;
    }
    h->buckets[histogram_bucket_of(value)]++;
    h->count++;
    h->sum += (uint64_t)value;
    if (value > h->max)
        h->max = value;
}

int64_t histogram_percentile(const histogram_t *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)((p / 100.0) * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < HISTOGRAM_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= rank) {
            int64_t upper = histogram_bucket_upper(b);
            return upper < h->max ? upper : h->max;
        }
    }
    return h->max;
}
