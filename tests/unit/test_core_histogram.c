/* test_core_histogram.c - the one latency histogram (server metrics and the bench) reports every
 * percentile within its error bound. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/histogram.h"

static histogram_t h, other;

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact percentile of sorted values, with the histogram's rank rule. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

static void assert_percentiles_close(uint64_t *values, size_t n, double bound)
{
    histogram_reset(&h);
    for (size_t i = 0; i < n; i++)
        histogram_record(&h, values[i]);
    qsort(values, n, sizeof(*values), compare_u64);
    const double ps[] = {1, 10, 25, 50, 75, 90, 99, 99.9, 99.99};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        double want = (double)exact_percentile(values, n, ps[i]);
        double got = (double)histogram_percentile(&h, ps[i]);
        cr_assert(fabs(got - want) <= bound * want, "p%g: got %.0f, exact %.0f (bound %.3f%%)",
                  ps[i], got, want, bound * 100);
    }
    cr_assert_eq(histogram_percentile(&h, 100), values[n - 1]);
    cr_assert_eq(histogram_percentile(&h, 0), values[0]);
}

Test(histogram, small_values_are_counted_exactly)
{
    histogram_reset(&h);
    for (uint64_t v = 0; v < 2 * HISTOGRAM_SUB_BUCKETS; v++) {
        cr_assert_eq(histogram_bucket_lowest(histogram_bucket_index(v)), v);
        cr_assert_eq(histogram_bucket_highest(histogram_bucket_index(v)), v);
    }
}

Test(histogram, every_bucket_is_narrower_than_the_error_bound)
{
    uint64_t state = 12345;
    for (int i = 0; i < 1000000; i++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        uint64_t v = (state >> 20) % HISTOGRAM_VALUE_MAX;
        uint32_t index = histogram_bucket_index(v);
        uint64_t lo = histogram_bucket_lowest(index), hi = histogram_bucket_highest(index);
        cr_assert(lo <= v && v <= hi, "%lu not in bucket %u [%lu, %lu]", v, index, lo, hi);
        cr_assert((double)(hi - lo + 1) <= (double)lo / HISTOGRAM_SUB_BUCKETS + 1.0,
                  "bucket %u [%lu, %lu] too wide", index, lo, hi);
    }
    /* consecutive buckets tile the range without gaps */
    for (uint32_t i = 1; i < HISTOGRAM_BUCKETS; i++)
        cr_assert_eq(histogram_bucket_lowest(i), histogram_bucket_highest(i - 1) + 1);
    cr_assert_eq(histogram_bucket_highest(HISTOGRAM_BUCKETS - 1), HISTOGRAM_VALUE_MAX);
}

Test(histogram, uniform_1us_to_1s_within_half_a_percent)
{
    size_t n = 1000000;
    uint64_t *values = malloc(n * sizeof(*values));
    for (size_t i = 0; i < n; i++)
        values[i] = 1000 + (uint64_t)i * 999; /* 1 us .. ~1 s in ns */
    assert_percentiles_close(values, n, 0.005);
    free(values);
}

Test(histogram, lognormal_latencies_within_half_a_percent)
{
    size_t n = 500000;
    uint64_t *values = malloc(n * sizeof(*values));
    srand48(7);
    for (size_t i = 0; i < n; i++) {
        /* Box-Muller: median 200 us, long tail into seconds */
        double u1 = drand48() + 1e-12, u2 = drand48();
        double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        values[i] = (uint64_t)(200000.0 * exp(1.5 * z)) + 1;
    }
    assert_percentiles_close(values, n, 0.005);
    free(values);
}

Test(histogram, bimodal_stall_shows_in_the_tail)
{
    size_t n = 100000;
    uint64_t *values = malloc(n * sizeof(*values));
    for (size_t i = 0; i < n; i++)
        values[i] = i % 50 == 0 ? 60000000000ull : 100000 + i % 1000; /* 2% at 60 s */
    assert_percentiles_close(values, n, 0.005);
    cr_assert_eq(h.clamped, 0);
    free(values);
}

Test(histogram, values_above_the_range_are_clamped_and_counted)
{
    histogram_reset(&h);
    histogram_record(&h, HISTOGRAM_VALUE_MAX + 1000);
    histogram_record(&h, 5);
    cr_assert_eq(h.clamped, 1);
    cr_assert_eq(h.count, 2);
    cr_assert_eq(histogram_percentile(&h, 100), HISTOGRAM_VALUE_MAX);
    cr_assert_eq(histogram_percentile(&h, 50), 5);
}

Test(histogram, empty_reports_zero)
{
    histogram_reset(&h);
    cr_assert_eq(histogram_percentile(&h, 99), 0);
    cr_assert_eq(histogram_mean(&h), 0.0);
}

Test(histogram, merge_equals_recording_into_one)
{
    histogram_t *all = malloc(sizeof(*all));
    histogram_reset(&h);
    histogram_reset(&other);
    histogram_reset(all);
    for (uint64_t v = 1; v < 200000; v += 7) {
        histogram_record(v % 2 ? &h : &other, v * 13);
        histogram_record(all, v * 13);
    }
    histogram_merge(&h, &other);
    cr_assert_eq(h.count, all->count);
    cr_assert_eq(h.min, all->min);
    cr_assert_eq(h.max, all->max);
    for (double p = 0; p <= 100; p += 0.5)
        cr_assert_eq(histogram_percentile(&h, p), histogram_percentile(all, p));
    free(all);
}

Test(histogram, recording_a_value_n_times_at_once_equals_recording_it_n_times)
{
    histogram_t *one_by_one = malloc(sizeof(*one_by_one));
    histogram_reset(&h);
    histogram_reset(one_by_one);
    const uint64_t values[] = {0, 1, 511, 512, 10000, 123456789, HISTOGRAM_VALUE_MAX + 5};
    const uint64_t counts[] = {3, 0, 1, 16, 256, 7, 2};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        histogram_record_count(&h, values[i], counts[i]);
        for (uint64_t n = 0; n < counts[i]; n++)
            histogram_record(one_by_one, values[i]);
    }
    cr_assert_eq(h.count, one_by_one->count);
    cr_assert_eq(h.clamped, one_by_one->clamped);
    cr_assert_eq(h.min, one_by_one->min);
    cr_assert_eq(h.max, one_by_one->max);
    cr_assert_eq(h.sum, one_by_one->sum);
    cr_assert(memcmp(h.buckets, one_by_one->buckets, sizeof(h.buckets)) == 0);
    free(one_by_one);
}
