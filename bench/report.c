/* report.c - a run's results as a text table and as JSON (the input of `allot-bench plot`). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static void latency_format(uint64_t ns, char *buf, size_t bytes)
{
    if (ns < 1000000)
        snprintf(buf, bytes, "%.1fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, bytes, "%.2fms", (double)ns / 1e6);
    else
        snprintf(buf, bytes, "%.2fs", (double)ns / 1e9);
}

static const char *mode_name(const bench_config_t *config)
{
    return config->rate_per_s > 0 ? "open" : "closed";
}

/* Requests of every op completed in the measured window. */
static uint64_t run_requests(const bench_run_t *run)
{
    uint64_t total = 0;
    for (int op = 0; op < OP_COUNT; op++)
        total += run->stats[op].latency_ns.count;
    return total;
}

static uint32_t run_workers(const bench_run_t *run)
{
    uint32_t workers = run->config->threads < run->config->connections ? run->config->threads
                                                                       : run->config->connections;
    return workers ? workers : 1;
}

/* Which side was saturated: the server's loop is one thread, the bench has one thread per
 * worker; a side at BENCH_SATURATED_PERCENT of its threads or more is what limited a closed-loop
 * run. "server", "client", "neither" (waits: fsync, scheduling), "unknown" (no --server-pid or
 * no client CPU), NULL for an open loop (the rate sets the pace). *busiest_percent: the busier
 * side's share. */
static const char *run_limited_by(const bench_run_t *run, double *busiest_percent)
{
    *busiest_percent = -1.0;
    if (run->config->rate_per_s > 0)
        return NULL;
    if (run->client_cpu_s <= 0 || run->elapsed_s <= 0 || run->server_cpu_s <= 0)
        return "unknown";
    double client_percent = 100.0 * run->client_cpu_s / run->elapsed_s / run_workers(run);
    double server_percent = 100.0 * run->server_cpu_s / run->elapsed_s;
    *busiest_percent = client_percent >= server_percent ? client_percent : server_percent;
    if (*busiest_percent < BENCH_SATURATED_PERCENT)
        return "neither";
    return client_percent >= server_percent ? "client" : "server";
}

/* Open loop: how late the bench handed sessions to connections, from their intended starts. A
 * tail here is the client's own (its thread or its free slots), not the server's. */
static void report_send_late(const bench_run_t *run, FILE *out)
{
    const histogram_t *h = &run->send_late_ns;
    if (run->config->rate_per_s <= 0 || h->count == 0)
        return;
    char p[4][16];
    const double ps[3] = {50, 99, 99.9};
    for (int i = 0; i < 3; i++)
        latency_format(histogram_percentile(h, ps[i]), p[i], sizeof(p[i]));
    latency_format(h->max, p[3], sizeof(p[3]));
    fprintf(out,
            "open loop: sent late p50 %s, p99 %s, p99.9 %s, max %s (from the intended start; "
            "send window %u us); every slot busy %" PRIu64 " times\n",
            p[0], p[1], p[2], p[3], run->config->send_window_us, run->slot_waits);
}

/* The bench's own CPU beside the server's, and which side was saturated (run_limited_by). */
static void report_client_cpu(const bench_run_t *run, FILE *out)
{
    if (run->client_cpu_s <= 0 || run->elapsed_s <= 0)
        return;
    uint64_t total = run_requests(run);
    uint32_t workers = run_workers(run);
    double client_percent = 100.0 * run->client_cpu_s / run->elapsed_s / workers;
    fprintf(out, "client CPU %.2f s (%.0f%% of %u thread%s): %.2f us per request\n",
            run->client_cpu_s, client_percent, workers, workers == 1 ? "" : "s",
            total ? 1e6 * run->client_cpu_s / (double)total : 0.0);
    double busiest;
    const char *side = run_limited_by(run, &busiest);
    if (side == NULL)
        return;
    if (strcmp(side, "unknown") == 0)
        fprintf(out, "limited by: unknown (no --server-pid)\n");
    else if (strcmp(side, "neither") == 0)
        fprintf(out,
                "limited by: neither side's CPU (server %.0f%%, client %.0f%%): waits "
                "(fsync, scheduling)\n",
                100.0 * run->server_cpu_s / run->elapsed_s, client_percent);
    else
        fprintf(out, "limited by: the %s (%.0f%% busy)\n", side, busiest);
}

void report_text(const bench_run_t *run, FILE *out)
{
    const bench_config_t *config = run->config;
    fprintf(out, "%s %s:%u  scenario %s  %u connections x pipeline %u  %u threads  %s loop",
            run->target->name, config->host, config->port, bench_scenario_names[config->scenario],
            config->connections, config->pipeline, config->threads, mode_name(config));
    if (config->rate_per_s > 0)
        fprintf(out, " at %.0f/s", config->rate_per_s);
    fprintf(out, "  measured %.2f s\n", run->elapsed_s);
    fprintf(out, "%-20s %10s %11s %9s %9s %9s %9s %9s %8s\n", "op", "count", "per s", "p50", "p90",
            "p99", "p99.9", "max", "errors");
    for (int op = 0; op < OP_COUNT; op++) {
        const op_stats_t *st = &run->stats[op];
        if (st->latency_ns.count == 0)
            continue;
        char p[5][16];
        const double ps[4] = {50, 90, 99, 99.9};
        for (int i = 0; i < 4; i++)
            latency_format(histogram_percentile(&st->latency_ns, ps[i]), p[i], sizeof(p[i]));
        latency_format(st->latency_ns.max, p[4], sizeof(p[4]));
        fprintf(out, "%-20s %10" PRIu64 " %11.0f %9s %9s %9s %9s %9s %8" PRIu64 "\n",
                bench_op_names[op], st->latency_ns.count,
                run->elapsed_s > 0 ? (double)st->latency_ns.count / run->elapsed_s : 0.0, p[0],
                p[1], p[2], p[3], p[4], st->errors);
        for (uint32_t k = 0; k < st->code_count; k++)
            fprintf(out, "%-20s   error %s x %" PRIu64 "\n", "", st->codes[k], st->code_counts[k]);
    }
    if (run->server_cpu_s > 0) {
        const op_stats_t *primary = &run->stats[scenario_primary_op(config->scenario)];
        uint64_t total = run_requests(run);
        fprintf(out, "server CPU %.2f s (%.0f%% of one core): %.2f us per request",
                run->server_cpu_s, 100.0 * run->server_cpu_s / run->elapsed_s,
                total ? 1e6 * run->server_cpu_s / (double)total : 0.0);
        if (config->scenario == SCENARIO_BROWSE)
            fprintf(out, ", %.2fM SKU lookups per server CPU second",
                    (double)primary->latency_ns.count * config->skus_per_request /
                        run->server_cpu_s / 1e6);
        fprintf(out, "\n");
    }
    report_client_cpu(run, out);
    report_send_late(run, out);
    if (atomic_load(&run->orders_unsupported))
        fprintf(out, "orders skipped: the server answered UNKNOWN_METHOD for order.create; "
                     "checkouts did reserve + reservation.release\n");
    if (run->incomplete)
        fprintf(out, "INCOMPLETE: %s\n", run->error[0] ? run->error : "requests still in flight");
}

static void stats_json(FILE *f, const op_stats_t *st, double elapsed_s)
{
    const histogram_t *h = &st->latency_ns;
    fprintf(f,
            "{\"count\": %" PRIu64 ", \"ok\": %" PRIu64 ", \"errors\": %" PRIu64
            ", \"per_s\": %.1f, \"mean_us\": %.2f, \"p50_us\": %.2f, \"p90_us\": %.2f, "
            "\"p99_us\": %.2f, \"p999_us\": %.2f, \"max_us\": %.2f, \"codes\": {",
            h->count, st->ok, st->errors, elapsed_s > 0 ? (double)h->count / elapsed_s : 0.0,
            histogram_mean(h) / 1e3, histogram_percentile(h, 50) / 1e3,
            histogram_percentile(h, 90) / 1e3, histogram_percentile(h, 99) / 1e3,
            histogram_percentile(h, 99.9) / 1e3, (double)h->max / 1e3);
    for (uint32_t k = 0; k < st->code_count; k++)
        fprintf(f, "%s\"%s\": %" PRIu64, k ? ", " : "", st->codes[k], st->code_counts[k]);
    fprintf(f, "}}");
}

/* The percentile curve on the "nines" axis: x = -log10(1 - p/100), 0.05 apart, up to the
 * resolution the sample count allows, then the max. */
static void curve_json(FILE *f, const histogram_t *h)
{
    fprintf(f, "[");
    if (h->count > 0) {
        double nines_max = log10((double)h->count);
        bool first = true;
        for (double nines = 0.0; nines < nines_max && nines <= 6.0; nines += 0.05) {
            double p = 100.0 * (1.0 - pow(10.0, -nines));
            fprintf(f, "%s[%.6f, %.2f]", first ? "" : ", ", p, histogram_percentile(h, p) / 1e3);
            first = false;
        }
        fprintf(f, "%s[100, %.2f]", first ? "" : ", ", (double)h->max / 1e3);
    }
    fprintf(f, "]");
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* "timeline": {"window_ms", "start_unix_ms", "windows": [[count, over_5ms, over_20ms, max_us],
 * ...]} with --timeline-ms. */
static void timeline_json(FILE *f, const bench_run_t *run)
{
    if (run->timeline == NULL)
        return;
    fprintf(f, "\"timeline\": {\"window_ms\": %u, \"start_unix_ms\": %" PRId64 ", \"windows\": [",
            run->config->timeline_ms, run->measure_start_unix_ms);
    for (uint32_t i = 0; i < run->timeline_count; i++) {
        const bench_timeline_window_t *t = &run->timeline[i];
        fprintf(f, "%s[%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %.0f]", i ? ", " : "", t->count,
                t->over_5ms, t->over_20ms, (double)t->max_ns / 1e3);
    }
    fprintf(f, "]}, ");
}

int report_json(const bench_run_t *run, const char *path)
{
    const bench_config_t *config = run->config;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    bench_op_t primary = scenario_primary_op(config->scenario);
    const op_stats_t *p = &run->stats[primary];
    char label[256];
    if (config->label != NULL)
        snprintf(label, sizeof(label), "%s", config->label);
    else
        snprintf(label, sizeof(label), "%s %s", run->target->name,
                 bench_scenario_names[config->scenario]);
    fprintf(f, "{\"label\": ");
    json_string(f, label);
    fprintf(f, ", \"target\": \"%s\", \"address\": ", run->target->name);
    json_string(f, config->host);
    fprintf(f,
            ", \"port\": %u, \"scenario\": \"%s\", \"connections\": %u, \"pipeline\": %u, "
            "\"threads\": %u, \"mode\": \"%s\", \"rate_per_s\": %.1f, \"duration_s\": %.2f, "
            "\"warmup_s\": %.2f, \"elapsed_s\": %.3f, \"skus_per_request\": %u, \"detail\": %s, "
            "\"promise\": %s, "
            "\"lines_min\": %u, \"lines_max\": %u, \"release_ratio\": %.3f, ",
            config->port, bench_scenario_names[config->scenario], config->connections,
            config->pipeline, config->threads, mode_name(config), config->rate_per_s,
            config->duration_s, config->warmup_s, run->elapsed_s, config->skus_per_request,
            config->detail ? "true" : "false", config->promise ? "true" : "false",
            config->lines_min, config->lines_max, config->release_ratio);
    fprintf(f, "\"primary_op\": \"%s\", \"throughput_per_s\": %.1f, ", bench_op_names[primary],
            run->elapsed_s > 0 ? (double)p->latency_ns.count / run->elapsed_s : 0.0);
    fprintf(f, "\"server_cpu_s\": %.3f, \"client_cpu_s\": %.3f, ", run->server_cpu_s,
            run->client_cpu_s);
    double busiest;
    const char *limited_by = run_limited_by(run, &busiest);
    fprintf(f, "\"limited_by\": %s%s%s, ", limited_by ? "\"" : "", limited_by ? limited_by : "null",
            limited_by ? "\"" : "");
    const histogram_t *late = &run->send_late_ns;
    fprintf(f,
            "\"send_late_us\": {\"count\": %" PRIu64 ", \"p50\": %.2f, \"p99\": %.2f, "
            "\"p999\": %.2f, \"max\": %.2f}, \"slot_waits\": %" PRIu64 ", \"send_window_us\": %u, ",
            late->count, histogram_percentile(late, 50) / 1e3, histogram_percentile(late, 99) / 1e3,
            histogram_percentile(late, 99.9) / 1e3, (double)late->max / 1e3, run->slot_waits,
            config->send_window_us);
    fprintf(f, "\"no_orders\": %s, ", config->no_orders ? "true" : "false");
    fprintf(f, "\"orders_skipped\": %s, \"incomplete\": %s, \"error\": ",
            atomic_load(&run->orders_unsupported) ? "true" : "false",
            run->incomplete ? "true" : "false");
    json_string(f, run->error);
    if (config->scenario == SCENARIO_FLASHSALE)
        fprintf(f,
                ", \"flash\": {\"units\": %" PRId64 ", \"ok\": %" PRIu64 ", \"refused\": %" PRIu64
                "}",
                config->flash_units, run->flash_ok, run->flash_refused);
    fprintf(f, ", \"ops\": {");
    bool first = true;
    for (int op = 0; op < OP_COUNT; op++) {
        if (run->stats[op].latency_ns.count == 0)
            continue;
        fprintf(f, "%s\"%s\": ", first ? "" : ", ", bench_op_names[op]);
        stats_json(f, &run->stats[op], run->elapsed_s);
        first = false;
    }
    fprintf(f, "}, ");
    timeline_json(f, run);
    fprintf(f, "\"curve\": ");
    curve_json(f, &p->latency_ns);
    fprintf(f, "}\n");
    return fclose(f) == 0 ? 0 : -1;
}
