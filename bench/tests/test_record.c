/* test_record.c - what a run records: a session of one request is recorded once (in its op's
 * histogram) and still counted in the sessions' histogram exactly; sessions of several requests
 * are recorded whole; through the real engine against a fake server. */
#include <criterion/criterion.h>
#include <string.h>

#include "bench/bench.h"
#include "fake_server.h"

static bench_config_t config;
static bench_run_t run;

/* A closed-loop run of `sessions` sessions of `scenario` over 2 connections x 8. */
static void run_sessions(bench_scenario_t scenario, uint64_t sessions)
{
    static fake_server_t fs;
    memset(&fs, 0, sizeof(fs));
    fs.connections = 2;
    pthread_t thread;
    fake_server_start(&fs, &thread);
    fake_server_config(&fs, &config, 2, 8);
    config.scenario = scenario;
    config.duration_s = 20; /* a cap: the run ends after `sessions` */
    config.requests = sessions;
    config.lines_min = config.lines_max = 1;
    config.release_ratio = 0.3;
    config.mix_weights[SCENARIO_BROWSE] = 50;
    config.mix_weights[SCENARIO_CHECKOUT] = 50;
    fake_server_run(&fs, thread, &config, &run);
    cr_assert(!run.incomplete, "%s", run.error);
}

static void assert_same_histogram(const histogram_t *a, const histogram_t *b)
{
    cr_assert_eq(a->count, b->count);
    cr_assert_eq(a->min, b->min);
    cr_assert_eq(a->max, b->max);
    cr_assert_eq(a->clamped, b->clamped);
    cr_assert_float_eq(a->sum, b->sum, 1e-9 * (a->sum + 1.0));
    for (uint32_t i = 0; i < HISTOGRAM_BUCKETS; i++)
        cr_assert_eq(a->buckets[i], b->buckets[i], "bucket %u", i);
    for (double p = 0; p <= 100; p += 12.5)
        cr_assert_eq(histogram_percentile(a, p), histogram_percentile(b, p), "p%g", p);
}

Test(record, a_session_of_one_request_is_its_request_in_the_sessions_histogram, .timeout = 30)
{
    cr_assert(scenario_sessions_single(SCENARIO_PING));
    run_sessions(SCENARIO_PING, 3000);
    const histogram_t *ping = &run.stats[OP_PING].latency_ns;
    cr_assert_eq(ping->count, 3000);
    cr_assert_eq(run.stats[OP_PING].ok, 3000);
    assert_same_histogram(&run.session_ns, ping);
}

Test(record, a_browse_session_is_one_avail_get_in_the_sessions_histogram, .timeout = 30)
{
    run_sessions(SCENARIO_BROWSE, 2000);
    cr_assert_eq(run.stats[OP_AVAIL].latency_ns.count, 2000);
    assert_same_histogram(&run.session_ns, &run.stats[OP_AVAIL].latency_ns);
}

/* A checkout is reserve, then order.create, order.pay, order.release (or reservation.release):
 * each request in its op's histogram, each checkout once in the sessions' histogram, spanning
 * its requests. */
Test(record, a_checkout_is_recorded_once_whole_and_once_per_request, .timeout = 30)
{
    cr_assert(!scenario_sessions_single(SCENARIO_CHECKOUT));
    run_sessions(SCENARIO_CHECKOUT, 1000);
    const op_stats_t *st = run.stats;
    uint64_t reserves = st[OP_RESERVE].latency_ns.count;
    cr_assert_eq(reserves, 1000);
    cr_assert_eq(st[OP_ORDER_CREATE].latency_ns.count + st[OP_RELEASE].latency_ns.count, 1000);
    cr_assert_eq(st[OP_ORDER_PAY].latency_ns.count, st[OP_ORDER_CREATE].latency_ns.count);
    cr_assert_eq(run.session_ns.count, 1000, "one record per checkout");
    /* a checkout takes at least as long as its first request, and its requests' sum at most */
    cr_assert_geq(run.session_ns.max, st[OP_RESERVE].latency_ns.min);
    double requests_sum = 0;
    for (int op = 0; op < OP_COUNT; op++)
        requests_sum += run.stats[op].latency_ns.sum;
    cr_assert_leq(run.session_ns.sum, requests_sum * 1.0001);
    cr_assert_gt(run.session_ns.sum, st[OP_RESERVE].latency_ns.sum);
}

/* Mixed: browse sessions (one request) and checkouts (several) side by side; each counted once. */
Test(record, mixed_sessions_are_each_counted_once, .timeout = 30)
{
    cr_assert(!scenario_sessions_single(SCENARIO_MIXED));
    run_sessions(SCENARIO_MIXED, 2000);
    uint64_t browse = run.stats[OP_AVAIL].latency_ns.count;
    uint64_t checkouts = run.stats[OP_RESERVE].latency_ns.count;
    cr_assert_eq(browse + checkouts, 2000);
    cr_assert_gt(browse, 0);
    cr_assert_gt(checkouts, 0);
    cr_assert_eq(run.session_ns.count, 2000);
}
