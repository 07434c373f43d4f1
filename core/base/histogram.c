/* histogram.c - log-linear latency histogram (see histogram.h). */
#include "core/histogram.h"

#include <assert.h>
#include <math.h>
#include <string.h>

_Static_assert(HISTOGRAM_VALUE_BITS < 64, "values must fit in uint64_t with room to shift");
_Static_assert(HISTOGRAM_SUB_BUCKETS_LOG2 < HISTOGRAM_VALUE_BITS, "sub-buckets exceed range");

void histogram_reset(histogram_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

uint32_t histogram_bucket_index(uint64_t value)
{
    if (value > HISTOGRAM_VALUE_MAX)
        value = HISTOGRAM_VALUE_MAX;
    if (value < 2 * HISTOGRAM_SUB_BUCKETS)
        return (uint32_t)value;
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(value);
    uint32_t shift = msb - HISTOGRAM_SUB_BUCKETS_LOG2;
    /* value >> shift lies in [SUB, 2 * SUB): index = SUB * shift + (value >> shift). */
    uint32_t index = HISTOGRAM_SUB_BUCKETS * shift + (uint32_t)(value >> shift);
    assert(index < HISTOGRAM_BUCKETS);
    return index;
}

uint64_t histogram_bucket_lowest(uint32_t index)
{
    assert(index < HISTOGRAM_BUCKETS);
    if (index < 2 * HISTOGRAM_SUB_BUCKETS)
        return index;
    uint32_t shift = index / HISTOGRAM_SUB_BUCKETS - 1;
    uint64_t mantissa = index - HISTOGRAM_SUB_BUCKETS * shift;
    return mantissa << shift;
}

uint64_t histogram_bucket_highest(uint32_t index)
{
    assert(index < HISTOGRAM_BUCKETS);
    if (index < 2 * HISTOGRAM_SUB_BUCKETS)
        return index;
    uint32_t shift = index / HISTOGRAM_SUB_BUCKETS - 1;
    return histogram_bucket_lowest(index) + (UINT64_C(1) << shift) - 1;
}

void histogram_record(histogram_t *h, uint64_t value)
{
    if (value > HISTOGRAM_VALUE_MAX) {
        h->clamped++;
        value = HISTOGRAM_VALUE_MAX;
    }
    h->buckets[histogram_bucket_index(value)]++;
    h->count++;
    h->sum += (double)value;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

void histogram_record_count(histogram_t *h, uint64_t value, uint64_t count)
{
    if (count == 0)
        return;
    if (value > HISTOGRAM_VALUE_MAX) {
        h->clamped += count;
        value = HISTOGRAM_VALUE_MAX;
    }
    h->buckets[histogram_bucket_index(value)] += count;
    h->count += count;
    h->sum += (double)value * (double)count;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

void histogram_merge(histogram_t *into, const histogram_t *from)
{
    if (from->count == 0)
        return;
    for (uint32_t i = 0; i < HISTOGRAM_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    into->count += from->count;
    into->clamped += from->clamped;
    into->sum += from->sum;
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t histogram_percentile(const histogram_t *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p <= 0.0)
        return h->min;
    if (p >= 100.0)
        return h->max;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t lowest = histogram_bucket_lowest(i);
            uint64_t mid = lowest + (histogram_bucket_highest(i) - lowest) / 2;
            if (mid < h->min)
                mid = h->min;
            if (mid > h->max)
                mid = h->max;
            return mid;
        }
    }
    return h->max;
}

double histogram_mean(const histogram_t *h)
{
    return h->count == 0 ? 0.0 : h->sum / (double)h->count;
}
