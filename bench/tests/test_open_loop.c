/* test_open_loop.c - open-loop runs measure from the intended start: a server stall shows up in
 * the latencies of every request that should have been sent during it (no coordinated
 * omission), both in the pacer's arithmetic and through the real engine against a fake server. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/wire.h"
#include "fake_server.h"

Test(pacer, closed_loop_is_always_due_now)
{
    pacer_t p;
    pacer_init(&p, 1000, 0.0);
    cr_assert_eq(pacer_due(&p, 5000), 5000);
    cr_assert_eq(pacer_due(&p, 5001), 5001);
    cr_assert_eq(pacer_backlog(&p, 999999), 0);
}

Test(pacer, intended_starts_do_not_move_when_the_client_is_late)
{
    pacer_t p;
    pacer_init(&p, 1000000, 1000.0); /* 1 per us */
    cr_assert_eq(pacer_due(&p, 999999), 0, "nothing is due before the start");
    cr_assert_eq(pacer_next_ns(&p), 1000000);
    /* the client wakes up 10 us late: ten requests are due, each keeps its own time */
    cr_assert_eq(pacer_backlog(&p, 1010000), 11);
    for (uint64_t i = 0; i <= 10; i++)
        cr_assert_eq(pacer_due(&p, 1010000), 1000000 + i * 1000);
    cr_assert_eq(pacer_due(&p, 1010000), 0);
    cr_assert_eq(pacer_backlog(&p, 1010000), 0);
}

Test(pacer, send_time_is_the_next_intended_start_when_requests_are_further_apart_than_the_window)
{
    pacer_t p;
    pacer_init(&p, 1000000, 100000.0); /* one every 100 us */
    cr_assert_eq(pacer_send_ns(&p, 0, 50000), 1000000, "the first goes out at the start");
    cr_assert_eq(pacer_due(&p, 1000000), 1000000);
    cr_assert_eq(pacer_send_ns(&p, 1000000, 50000), 1100000, "a window shorter than the gap");
    cr_assert_eq(pacer_send_ns(&p, 1000000, 0), 1100000, "no window");
}

Test(pacer, requests_due_within_the_window_wait_for_one_send_and_keep_their_intended_starts)
{
    pacer_t p;
    pacer_init(&p, 1000000, 10000.0); /* one every 10 us, a 50 us window */
    uint64_t last = 0, sends = 0;
    static uint64_t late_max_ns, intended_next = 1000000;
    while (pacer_next_ns(&p) < 2000000) { /* 1 ms: 100 requests */
        uint64_t at = pacer_send_ns(&p, last, 50000);
        cr_assert_geq(at, pacer_next_ns(&p), "never before a request is due");
        cr_assert_leq(at, pacer_next_ns(&p) + 50000, "no request waits more than the window");
        uint64_t due = pacer_backlog(&p, at);
        cr_assert_geq(due, 1);
        for (uint64_t i = 0; i < due; i++) {
            uint64_t intended = pacer_due(&p, at);
            cr_assert_eq(intended, intended_next, "the schedule does not move");
            intended_next += 10000;
            if (at - intended > late_max_ns)
                late_max_ns = at - intended;
        }
        cr_assert_eq(pacer_due(&p, at), 0);
        last = at;
        sends++;
    }
    cr_assert_eq(p.issued, 101, "1 ms of requests and the one due at its end");
    cr_assert_leq(sends, 21, "about one send per window, not one per request: %lu", sends);
    cr_assert_leq(late_max_ns, 50000, "lateness %lu ns", late_max_ns);
    cr_assert_geq(late_max_ns, 40000, "the first of a window waits for it: %lu ns", late_max_ns);
}

/* A simulated single-slot client: service 100 us, one 500 ms stall at t = 1 s, 1000 requests/s
 * for 10 s. From the intended start the stall covers ~5% of requests (p99 in the hundreds of
 * ms); measured from the actual send (coordinated omission) only one request would see it. */
Test(pacer, simulated_stall_shows_in_p99_only_when_measured_from_the_intended_start)
{
    static histogram_t open, omitted;
    histogram_reset(&open);
    histogram_reset(&omitted);
    pacer_t p;
    const uint64_t ms = 1000000, start = 1000 * ms;
    pacer_init(&p, start, 1.0 * (double)ms);
    uint64_t free_at = start;
    for (int i = 0; i < 10000; i++) {
        uint64_t intended = pacer_next_ns(&p);
        uint64_t send = intended > free_at ? intended : free_at;
        cr_assert_eq(pacer_due(&p, send), intended);
        uint64_t done = send + 100000;
        if (send >= start + 1000 * ms && send < start + 1500 * ms)
            done = start + 1500 * ms + 100000;
        free_at = done;
        histogram_record(&open, done - intended);
        histogram_record(&omitted, done - send);
    }
    cr_assert_geq(histogram_percentile(&open, 99), 400 * ms, "p99 %lu",
                  histogram_percentile(&open, 99));
    cr_assert_lt(histogram_percentile(&omitted, 99), 1 * ms);
    cr_assert_lt(histogram_percentile(&open, 50), 1 * ms);
}

/* ---- the real engine against a fake server that stalls once ---------------------------- */

Test(open_loop, engine_charges_a_server_stall_to_every_request_due_during_it, .timeout = 30)
{
    static fake_server_t fs = {.stall_after_ns = 500000000, .stall_ns = 400000000};
    pthread_t thread;
    fake_server_start(&fs, &thread);
    static bench_config_t config;
    fake_server_config(&fs, &config, 1, 64);
    config.rate_per_s = 2000;
    config.duration_s = 2;
    static bench_run_t run;
    fake_server_run(&fs, thread, &config, &run);
    const histogram_t *h = &run.stats[OP_AVAIL].latency_ns;
    /* every intended request was sent and recorded, none silently dropped */
    cr_assert_geq(h->count, 3800, "recorded %lu of 4000", h->count);
    cr_assert_leq(h->count, 4001);
    cr_assert(fs.stalled);
    /* ~800 of 4000 requests were due during the 400 ms stall: the tail must show it */
    cr_assert_geq(histogram_percentile(h, 90), 50000000, "p90 %lu ns", histogram_percentile(h, 90));
    cr_assert_geq(histogram_percentile(h, 99), 250000000, "p99 %lu ns",
                  histogram_percentile(h, 99));
    cr_assert_geq(h->max, 350000000, "max %lu ns", h->max);
    cr_assert_lt(histogram_percentile(h, 50), 100000000, "p50 %lu ns", histogram_percentile(h, 50));
}

Test(open_loop, a_session_that_waits_for_a_free_slot_is_reported_late_from_its_intended_start,
     .timeout = 30)
{
    /* 1 connection x 8 slots at 1000/s: the 300 ms stall fills every slot within 8 ms, and the
     * ~290 sessions due after that wait for a slot to come free */
    static fake_server_t fs = {.stall_after_ns = 400000000, .stall_ns = 300000000};
    pthread_t thread;
    fake_server_start(&fs, &thread);
    static bench_config_t config;
    fake_server_config(&fs, &config, 1, 8);
    config.rate_per_s = 1000;
    config.duration_s = 1.5;
    static bench_run_t run;
    fake_server_run(&fs, thread, &config, &run);
    cr_assert(fs.stalled);
    const histogram_t *latency = &run.stats[OP_AVAIL].latency_ns;
    const histogram_t *late = &run.send_late_ns;
    cr_assert_eq(late->count, latency->count, "one lateness for every measured session");
    cr_assert_gt(run.slot_waits, 0, "the stall held every slot");
    /* the sessions due while every slot was busy went out when the stall ended, late by up to
     * the stall less the ~8 ms it took to fill the slots */
    cr_assert_geq(late->max, 200000000, "max lateness %lu ns", late->max);
    cr_assert_leq(late->max, latency->max, "a session is never later than its reply");
}

Test(open_loop, requests_due_within_the_send_window_leave_together_on_one_connection, .timeout = 30)
{
    /* 8000/s over 4 connections with a 2 ms window: about 16 requests fall due per window. They
     * go out in one write on one connection (the next window's on the next), so the server's
     * reads bring about 16 each; one write per request, or the 16 spread over the 4
     * connections, would bring 1 to 4. Each request still counts from its intended start. */
    static fake_server_t fs = {.connections = 4};
    pthread_t thread;
    fake_server_start(&fs, &thread);
    static bench_config_t config;
    fake_server_config(&fs, &config, 4, 64);
    config.rate_per_s = 8000;
    config.send_window_us = 2000;
    config.duration_s = 1;
    static bench_run_t run;
    fake_server_run(&fs, thread, &config, &run);
    const histogram_t *latency = &run.stats[OP_AVAIL].latency_ns;
    const histogram_t *late = &run.send_late_ns;
    cr_assert_geq(latency->count, 7600, "recorded %lu of 8000", latency->count);
    cr_assert_leq(latency->count, 8001);
    cr_assert_eq(late->count, latency->count, "one lateness for every measured session");
    cr_assert_geq(fs.requests, latency->count);
    cr_assert_geq(fs.requests, 8 * fs.reads, "%lu requests in %lu reads", fs.requests, fs.reads);
    /* the first request of a window waited for its end: that wait is in its latency */
    cr_assert_geq(late->max, 1000000, "max lateness %lu ns", late->max);
    cr_assert_leq(late->max, latency->max, "a session is never later than its reply");
}
