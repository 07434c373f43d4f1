/* failover_probe.c - allot-failover-probe: writes to a group one reservation at a time (the same
 * id again after UNAVAILABLE, NOT_LEADER or a lost connection; liballot follows NOT_LEADER) and
 * prints a line for every change of the member that acknowledges: the failover time, from the
 * last acknowledgement by the old leader to the first by the new one. bench/group/failover.sh
 * kills the leaders. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "core/limits.h"

#define PROBE_TIMEOUT_MS     1000
#define PROBE_RETRY_PAUSE_MS 5

static volatile sig_atomic_t probe_stop;

static void probe_on_signal(int signum)
{
    (void)signum;
    probe_stop = 1;
}

static int64_t probe_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void probe_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct probe {
    char hosts[ALLOT_GROUP_MEMBERS_MAX][BENCH_HOST_BYTES];
    unsigned ports[ALLOT_GROUP_MEMBERS_MAX];
    size_t count;
    size_t next; /* the member tried after a lost connection */
    const char *sku;
    allot_client_t *client;
} probe_t;

static int probe_members_parse(probe_t *p, char *list)
{
    char *save = NULL;
    for (char *item = strtok_r(list, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(item, ':');
        if (p->count == ALLOT_GROUP_MEMBERS_MAX || colon == NULL ||
            (size_t)(colon - item) >= BENCH_HOST_BYTES)
            return -1;
        *colon = '\0';
        snprintf(p->hosts[p->count], BENCH_HOST_BYTES, "%s", item);
        p->ports[p->count] = (unsigned)strtoul(colon + 1, NULL, 10);
        if (p->ports[p->count] == 0 || p->ports[p->count] > 65535)
            return -1;
        p->count++;
    }
    return p->count > 0 ? 0 : -1;
}

/* Connected to some member (trying each once), or false. */
static bool probe_connect(probe_t *p)
{
    if (allot_client_connected(p->client))
        return true;
    for (size_t tries = 0; tries < p->count; tries++) {
        size_t i = p->next;
        p->next = (p->next + 1) % p->count;
        if (allot_client_connect(p->client, p->hosts[i], (uint16_t)p->ports[i], PROBE_TIMEOUT_MS) ==
            0)
            return true;
    }
    return false;
}

/* Reserve `id` until a member acknowledges it (true), or the probe is stopped (false). */
static bool probe_reserve(probe_t *p, uint64_t n, char *acked_by, size_t bytes)
{
    char params[256];
    snprintf(params, sizeof params,
             "{\"id\": \"probe-%d-%" PRIu64 "\", \"lines\": [{\"sku\": \"%s\", \"qty\": 1}], "
             "\"ttl_s\": 86400}",
             (int)getpid(), n, p->sku);
    allot_reply_t reply = {0};
    bool acked = false;
    while (!acked && !probe_stop) {
        if (!probe_connect(p)) {
            probe_sleep_ms(PROBE_RETRY_PAUSE_MS);
            continue;
        }
        if (allot_client_call_json(p->client, "reserve", params, &reply) != 0) {
            allot_client_connect(p->client, "", 0, 0); /* drop it: the next member */
            continue;
        }
        if (reply.is_error && strcmp(reply.code, "UNAVAILABLE") != 0 &&
            strcmp(reply.code, "NOT_LEADER") != 0) {
            fprintf(stderr, "allot-failover-probe: reserve: %s: %s\n", reply.code, reply.message);
            probe_stop = 1;
            break;
        }
        acked = !reply.is_error;
        if (!acked)
            probe_sleep_ms(PROBE_RETRY_PAUSE_MS);
    }
    if (acked)
        snprintf(acked_by, bytes, "%s", allot_client_peer(p->client));
    allot_reply_free(&reply);
    return acked;
}

int main(int argc, char **argv)
{
    probe_t p = {.sku = argc > 2 ? argv[2] : "FAILOVER"};
    if (argc < 2 || argc > 3 || probe_members_parse(&p, argv[1]) != 0) {
        fprintf(stderr, "usage: allot-failover-probe HOST:PORT,HOST:PORT,... [SKU]\n"
                        "  reserves 1 unit of SKU (default FAILOVER) after another until SIGTERM;\n"
                        "  prints `failover_ms=N from=ADDR to=ADDR` when the acknowledging member "
                        "changes\n");
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, probe_on_signal);
    signal(SIGINT, probe_on_signal);
    p.client = allot_client_create();
    if (p.client == NULL)
        return 1;
    allot_client_set_timeout(p.client, PROBE_TIMEOUT_MS);
    char last_by[300] = "", by[300];
    int64_t last_ms = 0;
    uint64_t n = 0;
    while (!probe_stop && probe_reserve(&p, n, by, sizeof by)) {
        int64_t at_ms = probe_now_ms();
        if (last_by[0] != '\0' && strcmp(by, last_by) != 0) {
            printf("failover_ms=%" PRId64 " from=%s to=%s\n", at_ms - last_ms, last_by, by);
            fflush(stdout);
        }
        snprintf(last_by, sizeof last_by, "%s", by);
        last_ms = at_ms;
        n++;
    }
    printf("acks=%" PRIu64 "\n", n);
    allot_client_close(p.client);
    return 0;
}
