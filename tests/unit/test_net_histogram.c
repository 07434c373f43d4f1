/* test_net_histogram.c - bucket mapping and percentile accuracy of the server's histogram. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "net/histogram.h"

Test(histogram, every_value_lands_in_a_bucket_whose_range_holds_it)
{
    int64_t previous_upper = -1;
    for (uint32_t b = 0; b < HISTOGRAM_BUCKETS; b++) {
        int64_t upper = histogram_bucket_upper(b);
        cr_assert_gt(upper, previous_upper, "bucket %u", b);
        cr_assert_eq(histogram_bucket_of(upper), b, "upper edge of %u", b);
        cr_assert_eq(histogram_bucket_of(previous_upper + 1), b, "lower edge of %u", b);
        previous_upper = upper;
    }
    cr_assert_eq(previous_upper, HISTOGRAM_VALUE_MAX - 1);
}

Test(histogram, relative_error_is_bounded_by_one_thirty_second)
{
    for (int64_t v = 1; v < HISTOGRAM_VALUE_MAX; v = v * 3 / 2 + 1) {
        int64_t upper = histogram_bucket_upper(histogram_bucket_of(v));
        cr_assert_geq(upper, v);
        cr_assert_leq((double)(upper - v), (double)v / 32.0 + 1.0, "value %lld", (long long)v);
    }
}

Test(histogram, percentiles_of_a_uniform_distribution)
{
    static histogram_t h;
    for (int64_t v = 1; v <= 100000; v++)
        histogram_record(&h, v);
    const double ps[] = {50, 90, 99, 99.9};
    for (size_t i = 0; i < 4; i++) {
        double exact = ps[i] / 100.0 * 100000;
        double got = (double)histogram_percentile(&h, ps[i]);
        cr_assert_leq(abs((int)(got - exact)), exact / 32 + 1, "p%g: %g vs %g", ps[i], got,
                      exact);
    }
    cr_assert_eq(histogram_percentile(&h, 100), 100000);
    cr_assert_eq(h.count, 100000);
}

Test(histogram, clamps_absurd_values_and_counts_them)
{
    static histogram_t h;
    histogram_record(&h, -5);
    histogram_record(&h, INT64_MAX);
    cr_assert_eq(h.count, 2);
    cr_assert_eq(h.clamped, 1);
    cr_assert_eq(histogram_percentile(&h, 0), 0);
}
