/* allot_bench.c - allot-bench: load generator for Allot (and a Redis baseline): options,
 * subcommands (run, load, plot) and the order of a run: load -> setup -> run -> report -> check. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "client/client.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: allot-bench [run] [options]          run a scenario and report latency/throughput\n"
        "       allot-bench load [options]           load the catalogue (--skus, --locations)\n"
        "       allot-bench plot --svg OUT.svg A.json [B.json ...]   overlay percentile curves\n"
        "\n"
        "target and load shape:\n"
        "  --target URL           allot://HOST:PORT (default allot://127.0.0.1:7411) or "
        "redis://HOST:PORT\n"
        "  --group H:P,H:P,...    a group of allotd: writes to its leader (found with "
        "server.info),\n"
        "                         browse connections spread over every member\n"
        "  --scenario NAME        browse | checkout | flashsale | reserve | mixed | ping (default "
        "browse)\n"
        "  --connections N        TCP connections (default 50)\n"
        "  --pipeline D           requests in flight per connection (default 16, max 4096)\n"
        "  --threads T            client threads (default: number of CPUs)\n"
        "  --rate N               open loop: N sessions/s in total, latency from the intended "
        "start\n"
        "                         (default: closed loop, as fast as replies come back)\n"
        "  --send-window-us W     open loop: requests due within W us of the last send go out\n"
        "                         together with the next (default 50; 0: each at its own time)\n"
        "  --duration S           measured seconds (default 10); cap for flashsale and --requests\n"
        "  --warmup S             unrecorded seconds before measuring (default 1)\n"
        "  --timeline-ms W        --json gets \"timeline\": per W ms of intended start, the\n"
        "                         requests, those over 5 and over 20 ms, and the slowest\n"
        "  --requests N           stop after N sessions instead of a duration\n"
        "data set:\n"
        "  --skus N               catalogue SKUs (default 100000)\n"
        "  --locations M          locations (default 10)\n"
        "  --sku-locations K      locations stocking each SKU (default min(3, M)): N*K positions\n"
        "  --on-hand Q            units per position (default 1000000)\n"
        "  --load                 load the catalogue before the run (location.put, pipelined "
        "stock.set)\n"
        "scenarios:\n"
        "  --skus-per-request N   browse: SKUs per avail.get (default 1; 20 for a listing page)\n"
        "  --detail               browse: ask for per-location detail\n"
        "  --promise              browse: promise: true on avail.get (allot only; exit status\n"
        "                         5 when the server refuses the key)\n"
        "  --redis-get            redis: the catalogue also as string keys avail:<sku> (load), "
        "and\n"
        "                         browse of 1 SKU is GET avail:<sku> instead of HGET avail <sku>\n"
        "  --lines A-B            checkout: lines per cart (default 1-5)\n"
        "  --release-ratio R      checkout: share of abandoned carts (reservation.release; default "
        "0.3)\n"
        "  --no-orders            checkout: every cart reserves then releases (no order.* calls)\n"
        "  --units N              flashsale: units of the hot SKU (default 20000)\n"
        "  --fair                 flashsale: through a queue with max_per_customer 1: customers\n"
        "                         join, poll queue.status with back-off, reserve with their token\n"
        "  --customers N          flashsale --fair: customers who join (default 2000)\n"
        "  --queue-rate N         flashsale --fair: admissions per second (default 500)\n"
        "  --mix K=W,...          mixed: weights, e.g. browse=95,checkout=5 (the default)\n"
        "output:\n"
        "  --json FILE            write results as JSON          --svg FILE   percentile plot\n"
        "  --label TEXT           name of the run in JSON/plots  --quiet      no table\n"
        "  --server-pid PID       report the server's CPU time per request\n"
        "  --seed N               random seed (default 1)\n");
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

/* HOST[:PORT] (HOST may be a bracketed IPv6 address) of `len` bytes; *port kept without one. */
static int parse_host_port(const char *text, size_t len, char *host, uint16_t *port)
{
    char copy[BENCH_HOST_BYTES + 8];
    if (len >= sizeof(copy))
        return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    const char *rest = copy;
    char *colon = strrchr(copy, ':');
    if (colon != NULL && colon > copy && colon[-1] != ']' && copy[0] == '[')
        colon = NULL; /* "[v6 address]" without a port */
    size_t host_len = colon ? (size_t)(colon - rest) : strlen(rest);
    if (host_len >= 2 && rest[0] == '[' && rest[host_len - 1] == ']')
        rest++, host_len -= 2;
    if (host_len == 0 || host_len >= BENCH_HOST_BYTES)
        return -1;
    memcpy(host, rest, host_len);
    host[host_len] = '\0';
    uint64_t value;
    if (colon) {
        if (parse_u64(colon + 1, 1, 65535, &value) != 0)
            return -1;
        *port = (uint16_t)value;
    }
    return 0;
}

static int parse_target(const char *url, bench_config_t *config)
{
    const char *rest = url;
    config->target = TARGET_ALLOT;
    if (strncmp(url, "redis://", 8) == 0) {
        config->target = TARGET_REDIS;
        rest = url + 8;
        config->port = 6379;
    } else if (strncmp(url, "allot://", 8) == 0)
        rest = url + 8;
    return parse_host_port(rest, strlen(rest), config->host, &config->port);
}

/* --group HOST:PORT,HOST:PORT,...: every member's client address. */
static int parse_group(const char *list, bench_config_t *config)
{
    config->group_count = 0;
    for (const char *item = list; *item != '\0';) {
        const char *comma = strchr(item, ',');
        size_t len = comma != NULL ? (size_t)(comma - item) : strlen(item);
        if (config->group_count == ALLOT_GROUP_MEMBERS_MAX)
            return -1;
        uint32_t i = config->group_count++;
        config->group_ports[i] = ALLOT_CLIENT_PORT_DEFAULT;
        if (parse_host_port(item, len, config->group_hosts[i], &config->group_ports[i]) != 0)
            return -1;
        item += len + (comma != NULL);
    }
    return config->group_count > 0 ? 0 : -1;
}

/* The leader's client address as one member sees it (server.info "leader"); false when that
 * member does not answer or knows none. */
static bool group_leader_ask(const char *host, uint16_t port, char *leader, size_t bytes)
{
    allot_client_t *c = allot_client_create();
    allot_reply_t reply = {0};
    bool found = false;
    if (c != NULL && allot_client_connect(c, host, port, 2000) == 0 &&
        allot_client_call_json(c, "server.info", "{}", &reply) == 0 && !reply.is_error) {
        const msgpack_object *o = allot_object_map_get(&reply.result, "leader");
        if (o != NULL && o->type == MSGPACK_OBJECT_STR && o->via.str.size < bytes) {
            memcpy(leader, o->via.str.ptr, o->via.str.size);
            leader[o->via.str.size] = '\0';
            found = true;
        }
    }
    allot_reply_free(&reply);
    allot_client_close(c);
    return found;
}

/* A group: the target becomes its leader (waiting up to BENCH_GROUP_LEADER_WAIT_MS for one). */
static int group_leader_find(bench_config_t *config)
{
    char leader[BENCH_HOST_BYTES];
    for (int waited_ms = 0; waited_ms < BENCH_GROUP_LEADER_WAIT_MS; waited_ms += 100) {
        for (uint32_t i = 0; i < config->group_count; i++) {
            if (!group_leader_ask(config->group_hosts[i], config->group_ports[i], leader,
                                  sizeof(leader)))
                continue;
            if (parse_host_port(leader, strlen(leader), config->host, &config->port) != 0)
                break;
            fprintf(stderr, "allot-bench: group of %u, leader %s\n", config->group_count, leader);
            return 0;
        }
        usleep(100 * 1000);
    }
    fprintf(stderr, "allot-bench: no member of the group names a leader\n");
    return -1;
}

static int parse_mix(const char *s, bench_config_t *config)
{
    memset(config->mix_weights, 0, sizeof(config->mix_weights));
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        uint64_t w;
        if (eq == NULL || parse_u64(eq + 1, 0, 1000000, &w) != 0)
            return -1;
        *eq = '\0';
        int k = 0;
        while (k < SCENARIO_COUNT && strcmp(bench_scenario_names[k], item) != 0)
            k++;
        if (k == SCENARIO_COUNT || k == SCENARIO_MIXED || k == SCENARIO_LOAD ||
            k == SCENARIO_FLASHSALE)
            return -1;
        config->mix_weights[k] = (uint32_t)w;
    }
    return 0;
}

static void config_defaults(bench_config_t *config)
{
    memset(config, 0, sizeof(*config));
    snprintf(config->host, sizeof(config->host), "127.0.0.1");
    config->port = 7411;
    config->scenario = SCENARIO_BROWSE;
    config->mix_weights[SCENARIO_BROWSE] = 95;
    config->mix_weights[SCENARIO_CHECKOUT] = 5;
    config->connections = 50;
    config->pipeline = 16;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    config->threads =
        cpus > 0 ? (uint32_t)(cpus < BENCH_THREADS_MAX ? cpus : BENCH_THREADS_MAX) : 1;
    config->duration_s = 10;
    config->warmup_s = 1;
    config->skus = 100000;
    config->locations = 10;
    config->on_hand = 1000000;
    config->skus_per_request = 1;
    config->lines_min = 1;
    config->lines_max = 5;
    config->release_ratio = 0.3;
    config->flash_units = 20000;
    config->customers = 2000;
    config->queue_rate_per_s = 500;
    config->send_window_us = BENCH_SEND_WINDOW_US_DEFAULT;
    config->seed = 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    config->run_nonce =
        ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() << 40);
}

enum {
    OPT_TARGET = 256,
    OPT_GROUP,
    OPT_SCENARIO,
    OPT_CONNECTIONS,
    OPT_PIPELINE,
    OPT_THREADS,
    OPT_RATE,
    OPT_SEND_WINDOW,
    OPT_TIMELINE,
    OPT_DURATION,
    OPT_WARMUP,
    OPT_REQUESTS,
    OPT_SKUS,
    OPT_LOCATIONS,
    OPT_SKU_LOCATIONS,
    OPT_ON_HAND,
    OPT_LOAD,
    OPT_SKUS_PER_REQUEST,
    OPT_DETAIL,
    OPT_PROMISE,
    OPT_REDIS_GET,
    OPT_LINES,
    OPT_RELEASE_RATIO,
    OPT_UNITS,
    OPT_FAIR,
    OPT_CUSTOMERS,
    OPT_QUEUE_RATE,
    OPT_NO_ORDERS,
    OPT_MIX,
    OPT_JSON,
    OPT_SVG,
    OPT_LABEL,
    OPT_QUIET,
    OPT_SERVER_PID,
    OPT_SEED,
    OPT_HELP
};

static const struct option long_options[] = {
    {"target", 1, 0, OPT_TARGET},
    {"group", 1, 0, OPT_GROUP},
    {"scenario", 1, 0, OPT_SCENARIO},
    {"connections", 1, 0, OPT_CONNECTIONS},
    {"pipeline", 1, 0, OPT_PIPELINE},
    {"threads", 1, 0, OPT_THREADS},
    {"rate", 1, 0, OPT_RATE},
    {"send-window-us", 1, 0, OPT_SEND_WINDOW},
    {"timeline-ms", 1, 0, OPT_TIMELINE},
    {"duration", 1, 0, OPT_DURATION},
    {"warmup", 1, 0, OPT_WARMUP},
    {"requests", 1, 0, OPT_REQUESTS},
    {"skus", 1, 0, OPT_SKUS},
    {"locations", 1, 0, OPT_LOCATIONS},
    {"sku-locations", 1, 0, OPT_SKU_LOCATIONS},
    {"on-hand", 1, 0, OPT_ON_HAND},
    {"load", 0, 0, OPT_LOAD},
    {"skus-per-request", 1, 0, OPT_SKUS_PER_REQUEST},
    {"detail", 0, 0, OPT_DETAIL},
    {"promise", 0, 0, OPT_PROMISE},
    {"redis-get", 0, 0, OPT_REDIS_GET},
    {"lines", 1, 0, OPT_LINES},
    {"release-ratio", 1, 0, OPT_RELEASE_RATIO},
    {"units", 1, 0, OPT_UNITS},
    {"fair", 0, 0, OPT_FAIR},
    {"customers", 1, 0, OPT_CUSTOMERS},
    {"queue-rate", 1, 0, OPT_QUEUE_RATE},
    {"no-orders", 0, 0, OPT_NO_ORDERS},
    {"mix", 1, 0, OPT_MIX},
    {"json", 1, 0, OPT_JSON},
    {"svg", 1, 0, OPT_SVG},
    {"label", 1, 0, OPT_LABEL},
    {"quiet", 0, 0, OPT_QUIET},
    {"server-pid", 1, 0, OPT_SERVER_PID},
    {"seed", 1, 0, OPT_SEED},
    {"help", 0, 0, OPT_HELP},
    {0, 0, 0, 0},
};

static const char *option_name(int opt)
{
    for (const struct option *o = long_options; o->name != NULL; o++)
        if (o->val == opt)
            return o->name;
    return "?";
}

/* One option; -1 on a bad value. */
static int option_apply(int opt, const char *arg, bench_config_t *config)
{
    uint64_t u = 0;
    double d = 0;
    switch (opt) {
    case OPT_TARGET:
        return parse_target(arg, config);
    case OPT_GROUP:
        return parse_group(arg, config);
    case OPT_SCENARIO:
        for (int k = 0; k < SCENARIO_COUNT; k++)
            if (k != SCENARIO_LOAD && strcmp(arg, bench_scenario_names[k]) == 0) {
                config->scenario = (bench_scenario_t)k;
                return 0;
            }
        return -1;
    case OPT_CONNECTIONS:
        return parse_u64(arg, 1, BENCH_CONNECTIONS_MAX, &u)
                   ? -1
                   : (config->connections = (uint32_t)u, 0);
    case OPT_PIPELINE:
        return parse_u64(arg, 1, BENCH_PIPELINE_MAX, &u) ? -1 : (config->pipeline = (uint32_t)u, 0);
    case OPT_THREADS:
        return parse_u64(arg, 1, BENCH_THREADS_MAX, &u) ? -1 : (config->threads = (uint32_t)u, 0);
    case OPT_RATE:
        return parse_double(arg, 0, 1e9, &config->rate_per_s);
    case OPT_SEND_WINDOW:
        return parse_u64(arg, 0, BENCH_SEND_WINDOW_US_MAX, &u)
                   ? -1
                   : (config->send_window_us = (uint32_t)u, 0);
    case OPT_TIMELINE:
        return parse_u64(arg, 1, 60000, &u) ? -1 : (config->timeline_ms = (uint32_t)u, 0);
    case OPT_DURATION:
        return parse_double(arg, 0.1, 86400, &config->duration_s);
    case OPT_WARMUP:
        return parse_double(arg, 0, 3600, &config->warmup_s);
    case OPT_REQUESTS:
        return parse_u64(arg, 1, UINT64_MAX / 2, &config->requests);
    case OPT_SKUS:
        return parse_u64(arg, 1, 64u << 20, &u) ? -1 : (config->skus = (uint32_t)u, 0);
    case OPT_LOCATIONS:
        return parse_u64(arg, 1, 65000, &u) ? -1 : (config->locations = (uint32_t)u, 0);
    case OPT_SKU_LOCATIONS:
        return parse_u64(arg, 1, 1000, &u) ? -1 : (config->sku_locations = (uint32_t)u, 0);
    case OPT_ON_HAND:
        return parse_u64(arg, 0, 1ull << 40, &u) ? -1 : (config->on_hand = (int64_t)u, 0);
    case OPT_LOAD:
        config->load = true;
        return 0;
    case OPT_SKUS_PER_REQUEST:
        return parse_u64(arg, 1, BENCH_SKUS_PER_REQUEST_MAX, &u)
                   ? -1
                   : (config->skus_per_request = (uint32_t)u, 0);
    case OPT_DETAIL:
        config->detail = true;
        return 0;
    case OPT_PROMISE:
        config->promise = true;
        return 0;
    case OPT_REDIS_GET:
        config->redis_get = true;
        return 0;
    case OPT_LINES: {
        unsigned a, b;
        char tail;
        int n = sscanf(arg, "%u-%u%c", &a, &b, &tail);
        if (n == 1 || (n == 0 && sscanf(arg, "%u%c", &a, &tail) == 1))
            b = a;
        else if (n != 2)
            return -1;
        if (a < 1 || b < a || b > BENCH_LINES_MAX)
            return -1;
        config->lines_min = a, config->lines_max = b;
        return 0;
    }
    case OPT_RELEASE_RATIO:
        return parse_double(arg, 0, 1, &config->release_ratio);
    case OPT_UNITS:
        return parse_u64(arg, 1, 1ull << 40, &u) ? -1 : (config->flash_units = (int64_t)u, 0);
    case OPT_NO_ORDERS:
        config->no_orders = true;
        return 0;
    case OPT_FAIR:
        config->fair = true;
        return 0;
    case OPT_CUSTOMERS:
        return parse_u64(arg, 1, 1u << 20, &u) ? -1 : (config->customers = (uint32_t)u, 0);
    case OPT_QUEUE_RATE:
        return parse_u64(arg, 1, 100000, &u) ? -1 : (config->queue_rate_per_s = (uint32_t)u, 0);
    case OPT_MIX:
        return parse_mix(arg, config);
    case OPT_JSON:
        config->json_path = arg;
        return 0;
    case OPT_SVG:
        config->svg_path = arg;
        return 0;
    case OPT_LABEL:
        config->label = arg;
        return 0;
    case OPT_QUIET:
        config->quiet = true;
        return 0;
    case OPT_SERVER_PID:
        return parse_u64(arg, 1, 1u << 30, &u) ? -1 : (config->server_pid = (int)u, 0);
    case OPT_SEED:
        return parse_u64(arg, 0, UINT64_MAX, &config->seed);
    default:
        (void)d;
        return -1;
    }
}

/* Load the catalogue: locations through liballot, then every position through the engine. */
static int catalogue_load(const bench_config_t *base, const bench_target_t *target)
{
    bench_config_t config = *base;
    config.scenario = SCENARIO_LOAD;
    config.requests = 0;
    config.rate_per_s = 0;
    config.duration_s = 3600;
    char error[512];
    static bench_run_t run;
    memset(&run, 0, sizeof(run));
    run.config = &config;
    run.target = target;
    uint64_t t0 = bench_now_ns();
    if (config.target == TARGET_ALLOT) {
        if (allot_setup_locations(&config, error, sizeof(error)) != 0) {
            fprintf(stderr, "allot-bench: load: %s\n", error);
            return -1;
        }
        run.load_total = (uint64_t)config.skus * config.sku_locations;
    } else {
        if (redis_setup(&run, error, sizeof(error)) != 0) {
            fprintf(stderr, "allot-bench: load: %s\n", error);
            return -1;
        }
        run.load_total = config.skus;
    }
    if (engine_run(&run) != 0 || run.incomplete ||
        run.stats[OP_STOCK_SET].latency_ns.count != run.load_total ||
        run.stats[OP_STOCK_SET].errors > 0) {
        fprintf(
            stderr,
            "allot-bench: load failed after %" PRIu64 " of %" PRIu64 " (%" PRIu64
            " errors%s%s): %s\n",
            run.stats[OP_STOCK_SET].latency_ns.count, run.load_total,
            run.stats[OP_STOCK_SET].errors, run.stats[OP_STOCK_SET].code_count ? ", first " : "",
            run.stats[OP_STOCK_SET].code_count ? run.stats[OP_STOCK_SET].codes[0] : "", run.error);
        return -1;
    }
    double seconds = (double)(bench_now_ns() - t0) / 1e9;
    fprintf(stderr,
            "allot-bench: loaded %u locations, %u SKUs, %" PRIu64 " positions into %s in %.2f s "
            "(%.0f positions/s)\n",
            config.locations, config.skus, (uint64_t)config.skus * config.sku_locations,
            target->name, seconds, (double)config.skus * config.sku_locations / seconds);
    return 0;
}

static int run_scenario(const bench_config_t *config, const bench_target_t *target)
{
    static bench_run_t run;
    memset(&run, 0, sizeof(run));
    run.config = config;
    run.target = target;
    char error[512];
    int rc = 0;
    if (config->scenario == SCENARIO_FLASHSALE && config->fair)
        return config->target == TARGET_REDIS ? 64 : fair_sale_run(config, stdout);
    if (config->target == TARGET_REDIS)
        rc = redis_setup(&run, error, sizeof(error));
    else if (config->scenario == SCENARIO_FLASHSALE)
        rc = allot_setup_flash(&run, error, sizeof(error));
    else if (config->scenario != SCENARIO_PING) /* ping needs no catalogue */
        rc = allot_check_catalogue(config, error, sizeof(error));
    if (rc != 0) {
        fprintf(stderr, "allot-bench: %s\n", error);
        return rc == BENCH_EXIT_UNSUPPORTED ? BENCH_EXIT_UNSUPPORTED : 1;
    }
    if (engine_run(&run) != 0) {
        fprintf(stderr, "allot-bench: %s\n", run.error);
        bench_run_free(&run);
        return 1;
    }
    if (!config->quiet)
        report_text(&run, stdout);
    int status = 0;
    if (config->scenario == SCENARIO_FLASHSALE) {
        rc = config->target == TARGET_REDIS ? redis_check_flash(&run, error, sizeof(error))
                                            : allot_check_flash(&run, error, sizeof(error));
        printf("flashsale: %s\n", error);
        if (rc != 0)
            status = 3;
    }
    const char *json_path = config->json_path;
    char tmp_json[4200];
    if (json_path == NULL && config->svg_path != NULL) {
        snprintf(tmp_json, sizeof(tmp_json), "%s.json", config->svg_path);
        json_path = tmp_json;
    }
    if (json_path != NULL && report_json(&run, json_path) != 0) {
        fprintf(stderr, "allot-bench: cannot write %s\n", json_path);
        status = 1;
    }
    if (config->svg_path != NULL && svg_plot(config->svg_path, (const char *const[]){json_path}, 1,
                                             error, sizeof(error)) != 0) {
        fprintf(stderr, "allot-bench: %s\n", error);
        status = 1;
    }
    if (run.incomplete) {
        fprintf(stderr, "allot-bench: run incomplete: %s\n",
                run.error[0] ? run.error : "requests still in flight");
        status = status ? status : 2;
    }
    if (run.stats[scenario_primary_op(config->scenario)].latency_ns.count == 0) {
        fprintf(stderr, "allot-bench: no %s completed\n",
                bench_op_names[scenario_primary_op(config->scenario)]);
        status = status ? status : 4;
    }
    bench_run_free(&run);
    return status;
}

int main(int argc, char **argv)
{
    bench_config_t config;
    config_defaults(&config);
    const char *command = "run";
    if (argc > 1 && argv[1][0] != '-') {
        command = argv[1];
        argv++, argc--;
    }
    if (strcmp(command, "run") != 0 && strcmp(command, "load") != 0 &&
        strcmp(command, "plot") != 0) {
        fprintf(stderr, "allot-bench: unknown command '%s'\n", command);
        usage(stderr);
        return 64;
    }
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        if (opt == 'h' || opt == OPT_HELP) {
            usage(stdout);
            return 0;
        }
        if (opt == '?' || option_apply(opt, optarg, &config) != 0) {
            if (opt != '?')
                fprintf(stderr, "allot-bench: bad value for --%s: '%s'\n", option_name(opt),
                        optarg ? optarg : "");
            return 64;
        }
    }
    if (strcmp(command, "plot") == 0) {
        char error[512];
        if (config.svg_path == NULL || optind >= argc) {
            fprintf(stderr, "allot-bench: plot needs --svg OUT.svg and JSON result files\n");
            return 64;
        }
        if (svg_plot(config.svg_path, (const char *const *)argv + optind, argc - optind, error,
                     sizeof(error)) != 0) {
            fprintf(stderr, "allot-bench: %s\n", error);
            return 1;
        }
        return 0;
    }
    if (optind < argc) {
        fprintf(stderr, "allot-bench: unexpected argument '%s'\n", argv[optind]);
        return 64;
    }
    if (config.sku_locations == 0)
        config.sku_locations = config.locations < 3 ? config.locations : 3;
    if (config.sku_locations > config.locations) {
        fprintf(stderr, "allot-bench: --sku-locations exceeds --locations\n");
        return 64;
    }
    if (config.promise && config.target != TARGET_ALLOT) {
        fprintf(stderr, "allot-bench: --promise needs an allot:// target\n");
        return 64;
    }
    if (config.target == TARGET_REDIS && !bench_redis_available()) {
        fprintf(stderr,
                "allot-bench: built without hiredis: the redis:// target is not available\n");
        return 64;
    }
    if (config.group_count > 0 &&
        (config.target != TARGET_ALLOT || group_leader_find(&config) != 0))
        return config.target != TARGET_ALLOT ? 64 : 1;
    config.progress = isatty(STDERR_FILENO) && !config.quiet;
    const bench_target_t *target =
        config.target == TARGET_REDIS ? &bench_target_redis : &bench_target_allot;
    if (strcmp(command, "load") == 0 || config.load)
        if (catalogue_load(&config, target) != 0)
            return 1;
    if (strcmp(command, "load") == 0)
        return 0;
    return run_scenario(&config, target);
}
