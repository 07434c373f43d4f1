/* test_group.c - three real allotd processes in a group (PROTOCOL.md "Cluster"): the leader killed
 * with kill -9 under a load of idempotent reservations loses no acknowledged write and applies none
 * twice, every member ends with the same state at the same applied index, availability never reads
 * negative on any member, and failover (last acknowledgement by the old leader to the first by the
 * new) stays under 5 s; a killed follower catches up from the log; a follower that fell behind the
 * leader's trailing window stops (no snapshot install yet); members restarted after raft snapshots
 * recover from state.lmdb and the log; a member whose raft port was taken while it was down says
 * which address is in use, and starts once it is free; a leader whose first barriers fail
 * (ALLOT_FAULT=barrier...) becomes writable without an election; a member restarted before any
 * checkpoint says its events come from the group's log (no "log was cut"). ALLOT_GROUP_KILLS=N
 * kills the leader N times in the load test (default 1) and prints failover p50/p99/max;
 * ALLOT_GROUP_SERVER_ARGS adds allotd arguments to every member of that test (e.g.
 * "--raft-snapshot-entries 1048576"). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness_group.h"

#define GROUP_SIZE        3
#define SKUS              4 /* S0..S3: plenty of stock */
#define SKU_ON_HAND       1000000
#define SCARCE_ON_HAND    40 /* X: every 8th reservation, sold out during the test */
#define SCARCE_EVERY      8
#define WORKERS           4
#define WRITE_GIVE_UP_MS  30000
#define FAILOVER_LIMIT_MS 5000
#define ACKS_PER_ROUND    300
#define LEADER_WAIT_MS    15000
#define CAUGHT_UP_WAIT_MS 30000
#define RETRY_PAUSE_MS    20
#define CLIENT_TIMEOUT_MS 2000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the load: workers reserving with idempotent ids -------------------------------------- */

typedef struct ack {
    int64_t at_ms;
    int member; /* who answered (index in the group) */
    bool held;  /* false: INSUFFICIENT_STOCK (the scarce SKU sold out), nothing held */
} ack_t;

typedef struct worker {
    const harness_group_t *group;
    atomic_bool *stop;
    int index;
    ack_t *acks; /* acks[n]: id "w<index>-<n>", every one up to count answered */
    atomic_size_t count;
    size_t capacity;
    uint64_t retries;
    char failure[512]; /* the first thing that went wrong ("" when nothing) */
} worker_t;

static void reservation_id(char *buf, size_t bytes, int worker, size_t n)
{
    snprintf(buf, bytes, "w%d-%zu", worker, n);
}

static bool id_is_scarce(size_t n)
{
    return n % SCARCE_EVERY == SCARCE_EVERY - 1;
}

static void sku_of(char *buf, size_t bytes, size_t n)
{
    if (id_is_scarce(n))
        snprintf(buf, bytes, "X");
    else
        snprintf(buf, bytes, "S%zu", n % SKUS);
}

static int member_of_client(const harness_group_t *g, const allot_client_t *c)
{
    const char *colon = strrchr(allot_client_peer(c), ':');
    return colon == NULL ? -1 : harness_group_member_of_port(g, (uint16_t)atoi(colon + 1));
}

/* Connect to some running member, starting with *member (rotated past unreachable ones). */
static allot_client_t *worker_connect(worker_t *w, int *member)
{
    allot_client_t *c = allot_client_create();
    for (size_t tries = 0; c != NULL && tries < w->group->count; tries++) {
        const harness_server_t *s = w->group->members[*member];
        if (allot_client_connect(c, "127.0.0.1", s->port, CLIENT_TIMEOUT_MS) == 0)
            return c;
        *member = (*member + 1) % (int)w->group->count;
    }
    allot_client_close(c);
    return NULL;
}

/* Send reservation n until it is answered (same id every time); false on a failure. */
static bool worker_reserve(worker_t *w, allot_client_t **c, int *member, size_t n)
{
    char id[48], sku[24], params[192];
    reservation_id(id, sizeof id, w->index, n);
    sku_of(sku, sizeof sku, n);
    snprintf(params, sizeof params,
             "{\"id\": \"%s\", \"lines\": [{\"sku\": \"%s\", \"qty\": 1}], \"ttl_s\": 86400}", id,
             sku);
    allot_reply_t reply = {0};
    int64_t give_up_ms = now_ms() + WRITE_GIVE_UP_MS;
    for (int attempt = 0; now_ms() < give_up_ms; attempt++) {
        if (attempt > 0) {
            w->retries++;
            sleep_ms(RETRY_PAUSE_MS);
        }
        if (*c == NULL && (*c = worker_connect(w, member)) == NULL)
            continue;
        if (allot_client_call_json(*c, "reserve", params, &reply) != 0) {
            allot_client_close(*c); /* the member died: another one, same id */
            *c = NULL;
            *member = (*member + 1) % (int)w->group->count;
            continue;
        }
        bool insufficient = reply.is_error && strcmp(reply.code, "INSUFFICIENT_STOCK") == 0;
        if (reply.is_error && !insufficient) {
            if (strcmp(reply.code, "UNAVAILABLE") == 0 || strcmp(reply.code, "NOT_LEADER") == 0)
                continue; /* an election, or a new leader catching up */
            snprintf(w->failure, sizeof w->failure, "reserve %s: %s %s", id, reply.code,
                     reply.message);
            allot_reply_free(&reply);
            return false;
        }
        if (insufficient && !id_is_scarce(n)) {
            snprintf(w->failure, sizeof w->failure, "reserve %s: %s", id, reply.message);
            allot_reply_free(&reply);
            return false;
        }
        w->acks[n] = (ack_t){
            .at_ms = now_ms(), .member = member_of_client(w->group, *c), .held = !insufficient};
        allot_reply_free(&reply);
        return true;
    }
    snprintf(w->failure, sizeof w->failure, "reserve %s: not answered within %d ms", id,
             WRITE_GIVE_UP_MS);
    return false;
}

static void *worker_run(void *arg)
{
    worker_t *w = arg;
    allot_client_t *c = NULL;
    int member = w->index % (int)w->group->count;
    while (!atomic_load(w->stop)) {
        size_t n = atomic_load(&w->count);
        if (n == w->capacity) {
            ack_t *grown = realloc(w->acks, 2 * w->capacity * sizeof *grown);
            if (grown == NULL) {
                snprintf(w->failure, sizeof w->failure, "out of memory");
                break;
            }
            w->acks = grown;
            w->capacity *= 2;
        }
        if (!worker_reserve(w, &c, &member, n))
            break;
        atomic_store(&w->count, n + 1);
    }
    allot_client_close(c);
    return NULL;
}

typedef struct load {
    const harness_group_t *group;
    atomic_bool stop;
    worker_t workers[WORKERS];
    pthread_t threads[WORKERS];
} load_t;

/* The workers (again) from where they stopped. */
static void load_resume(load_t *load)
{
    atomic_store(&load->stop, false);
    for (int i = 0; i < WORKERS; i++)
        cr_assert_eq(pthread_create(&load->threads[i], NULL, worker_run, &load->workers[i]), 0);
}

static void load_start(load_t *load, const harness_group_t *g)
{
    memset(load, 0, sizeof *load);
    load->group = g;
    atomic_init(&load->stop, false);
    for (int i = 0; i < WORKERS; i++) {
        worker_t *w = &load->workers[i];
        w->group = g;
        w->stop = &load->stop;
        w->index = i;
        w->capacity = 4096;
        w->acks = calloc(w->capacity, sizeof *w->acks);
        cr_assert(w->acks != NULL);
    }
    load_resume(load);
}

/* Acks answered after since_ms (every worker's answered prefix). */
static size_t load_acks_after(load_t *load, int64_t since_ms)
{
    size_t total = 0;
    for (int i = 0; i < WORKERS; i++) {
        worker_t *w = &load->workers[i];
        size_t count = atomic_load(&w->count);
        for (size_t n = count; n > 0 && w->acks[n - 1].at_ms > since_ms; n--)
            total++;
    }
    return total;
}

static void load_stop(load_t *load)
{
    atomic_store(&load->stop, true);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(load->threads[i], NULL);
    for (int i = 0; i < WORKERS; i++)
        cr_assert_str_empty(load->workers[i].failure, "worker %d: %s", i, load->workers[i].failure);
}

static void load_free(load_t *load)
{
    for (int i = 0; i < WORKERS; i++)
        free(load->workers[i].acks);
}

/* ---- the group's state, member by member -------------------------------------------------- */

static allot_client_t *member_connect(const harness_group_t *g, size_t i)
{
    allot_client_t *c = harness_connect(g->members[i]);
    allot_client_set_redirects_max(c, 0); /* reads: this member's own state */
    return c;
}

/* A write that must succeed: UNAVAILABLE (a new leader committing its barrier) and NOT_LEADER
 * after the client's redirects (an election) are retried for a while. */
static void write_ok(allot_client_t *c, const char *method, const char *params,
                     allot_reply_t *reply)
{
    int64_t give_up_ms = now_ms() + WRITE_GIVE_UP_MS;
    for (;;) {
        harness_call_json(c, method, params, reply);
        bool retry = reply->is_error && (strcmp(reply->code, "UNAVAILABLE") == 0 ||
                                         strcmp(reply->code, "NOT_LEADER") == 0);
        if (!retry || now_ms() > give_up_ms)
            break;
        sleep_ms(RETRY_PAUSE_MS);
    }
    cr_assert(!reply->is_error, "%s %s -> %s: %s", method, params, reply->code, reply->message);
}

static void setup_stock(const harness_group_t *g, int leader)
{
    allot_client_t *c = harness_connect(g->members[(leader + 1) % (int)g->count]);
    allot_reply_t reply = {0};
    char params[160];
    /* sent to a follower on purpose: the client follows NOT_LEADER to the leader */
    write_ok(c, "location.put",
             "{\"id\": \"L1\", \"type\": \"warehouse\", \"lat\": 52, "
             "\"lon\": 13}",
             &reply);
    cr_assert_eq(member_of_client(g, c), leader, "the write was not redirected to the leader");
    for (int i = 0; i < SKUS; i++) {
        snprintf(params, sizeof params, "{\"sku\": \"S%d\", \"location\": \"L1\", \"on_hand\": %d}",
                 i, SKU_ON_HAND);
        write_ok(c, "stock.set", params, &reply);
    }
    snprintf(params, sizeof params, "{\"sku\": \"X\", \"location\": \"L1\", \"on_hand\": %d}",
             SCARCE_ON_HAND);
    write_ok(c, "stock.set", params, &reply);
    allot_reply_free(&reply);
    allot_client_close(c);
}

static int64_t result_int(const allot_reply_t *reply, const char *key)
{
    const msgpack_object *o = allot_object_map_get(&reply->result, key);
    cr_assert(o != NULL && (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                            o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER),
              "no integer %s in the reply", key);
    return o->via.i64;
}

/* {"sku": S<k>}, or X for k == SKUS. */
static void sku_params(char *buf, size_t bytes, int k)
{
    if (k == SKUS)
        snprintf(buf, bytes, "{\"sku\": \"X\"}");
    else
        snprintf(buf, bytes, "{\"sku\": \"S%d\"}", k);
}

/* Every position of every SKU on every running member has available >= 0. */
static void availability_check(const harness_group_t *g)
{
    allot_reply_t reply = {0};
    for (size_t i = 0; i < g->count; i++) {
        harness_member_info_t info;
        if (!harness_member_info(g, i, &info) || info.skus < SKUS + 1)
            continue; /* down, or not caught up with the set-up yet */
        allot_client_t *c = allot_client_create();
        if (allot_client_connect(c, "127.0.0.1", g->members[i]->port, CLIENT_TIMEOUT_MS) != 0) {
            allot_client_close(c);
            continue;
        }
        for (int k = 0; k <= SKUS; k++) {
            char params[32];
            sku_params(params, sizeof params, k);
            if (allot_client_call_json(c, "stock.get", params, &reply) != 0)
                break;
            cr_assert(!reply.is_error, "member %zu stock.get %s: %s", i + 1, params, reply.code);
            cr_assert_geq(result_int(&reply, "available"), 0,
                          "member %zu reads negative availability for %s", i + 1, params);
        }
        allot_client_close(c);
    }
    allot_reply_free(&reply);
}

/* What the test knows: every acked id (held or refused as sold out) per SKU. */
typedef struct expected {
    int64_t held[SKUS + 1]; /* index SKUS: X */
    int64_t held_total;
} expected_t;

static void expected_count(const load_t *load, expected_t *e)
{
    memset(e, 0, sizeof *e);
    for (int i = 0; i < WORKERS; i++) {
        const worker_t *w = &load->workers[i];
        for (size_t n = 0; n < w->count; n++) {
            if (!w->acks[n].held)
                continue;
            e->held[id_is_scarce(n) ? SKUS : n % SKUS]++;
            e->held_total++;
        }
    }
}

/* The reply of `method` with `params` on member i as JSON (malloc'ed). */
static char *member_read_json(allot_client_t *c, size_t i, const char *method, const char *params,
                              bool expect_ok)
{
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_call_json(c, method, params, &reply), 0, "member %zu %s: %s", i + 1,
                 method, allot_client_last_error(c));
    cr_assert(!expect_ok || !reply.is_error, "member %zu %s %s: %s %s", i + 1, method, params,
              reply.code, reply.message);
    char *json = harness_reply_json(&reply);
    allot_reply_free(&reply);
    return json;
}

/* Every running member answers `method` `params` with the same bytes. */
static void members_same(allot_client_t **clients, const harness_group_t *g, const char *method,
                         const char *params, bool expect_ok)
{
    char *first = NULL;
    for (size_t i = 0; i < g->count; i++) {
        if (clients[i] == NULL)
            continue;
        char *json = member_read_json(clients[i], i, method, params, expect_ok);
        if (first == NULL) {
            first = json;
            continue;
        }
        cr_assert_str_eq(json, first, "member %zu differs on %s %s", i + 1, method, params);
        free(json);
    }
    free(first);
}

/* Every acknowledged reservation is on every running member, equal there, held once; stock and
 * counters equal; invariants hold (server.verify). */
static void members_verify(const harness_group_t *g, const load_t *load)
{
    allot_client_t *clients[HARNESS_GROUP_MEMBERS_MAX] = {0};
    for (size_t i = 0; i < g->count; i++)
        if (g->members[i]->pid != 0)
            clients[i] = member_connect(g, i);
    expected_t e;
    expected_count(load, &e);
    allot_reply_t reply = {0};
    for (size_t i = 0; i < g->count; i++) {
        if (clients[i] == NULL)
            continue;
        for (int k = 0; k <= SKUS; k++) {
            char params[32];
            sku_params(params, sizeof params, k);
            harness_call_ok(clients[i], "stock.get", params, &reply);
            cr_assert_eq(result_int(&reply, "reserved"), e.held[k],
                         "member %zu: %s reserved %lld, acknowledged %lld", i + 1, params,
                         (long long)result_int(&reply, "reserved"), (long long)e.held[k]);
            cr_assert_geq(result_int(&reply, "available"), 0);
        }
        harness_call_ok(clients[i], "server.verify", "{}", &reply);
        cr_assert(allot_object_map_get(&reply.result, "ok")->via.boolean, "member %zu: %s", i + 1,
                  harness_reply_json(&reply));
        harness_call_ok(clients[i], "server.info", "{}", &reply);
        cr_assert_eq(result_int(&reply, "reservations"), e.held_total, "member %zu", i + 1);
    }
    for (int k = 0; k <= SKUS; k++) {
        char params[32];
        sku_params(params, sizeof params, k);
        members_same(clients, g, "stock.get", params, true);
    }
    for (int w = 0; w < WORKERS; w++) {
        for (size_t n = 0; n < load->workers[w].count; n++) {
            char id[48], params[80];
            reservation_id(id, sizeof id, w, n);
            snprintf(params, sizeof params, "{\"id\": \"%s\"}", id);
            members_same(clients, g, "reservation.get", params, load->workers[w].acks[n].held);
        }
    }
    allot_reply_free(&reply);
    for (size_t i = 0; i < g->count; i++)
        allot_client_close(clients[i]);
}

/* ---- failover ----------------------------------------------------------------------------- */

/* Last ack by `old` at or before kill_ms to the first ack after it by anyone (-1: none yet). */
static int64_t failover_ms(const load_t *load, int old, int64_t kill_ms)
{
    int64_t last_old = INT64_MIN, first_new = INT64_MAX;
    for (int i = 0; i < WORKERS; i++) {
        const worker_t *w = &load->workers[i];
        size_t count = atomic_load(&w->count);
        for (size_t n = 0; n < count; n++) {
            const ack_t *a = &w->acks[n];
            if (a->at_ms <= kill_ms && a->member == old && a->at_ms > last_old)
                last_old = a->at_ms;
            if (a->at_ms > kill_ms && a->at_ms < first_new)
                first_new = a->at_ms;
        }
    }
    return last_old == INT64_MIN || first_new == INT64_MAX ? -1 : first_new - last_old;
}

/* Wait for `acks` acknowledgements after since_ms, checking availability meanwhile. */
static void load_acks_wait(load_t *load, const harness_group_t *g, int64_t since_ms, size_t acks)
{
    int64_t deadline_ms = now_ms() + WRITE_GIVE_UP_MS;
    while (load_acks_after(load, since_ms) < acks) {
        for (int i = 0; i < WORKERS; i++)
            cr_assert_str_empty(load->workers[i].failure, "worker %d: %s", i,
                                load->workers[i].failure);
        cr_assert_lt(now_ms(), deadline_ms, "the load stalled: %zu of %zu acknowledgements",
                     load_acks_after(load, since_ms), acks);
        availability_check(g);
        sleep_ms(50);
    }
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int kills_wanted(void)
{
    const char *text = getenv("ALLOT_GROUP_KILLS");
    int kills = text != NULL ? atoi(text) : 1;
    return kills > 0 ? kills : 1;
}

Test(group, leader_killed_under_load_loses_no_acknowledged_write, .timeout = 3600)
{
    int kills = kills_wanted();
    harness_group_t *g = harness_group_start(GROUP_SIZE, getenv("ALLOT_GROUP_SERVER_ARGS"));
    int leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
    setup_stock(g, leader);
    load_t load;
    load_start(&load, g);
    int64_t *failovers = calloc((size_t)kills, sizeof *failovers);
    int64_t since_ms = now_ms();
    for (int k = 0; k < kills; k++) {
        load_acks_wait(&load, g, since_ms, ACKS_PER_ROUND);
        int64_t kill_ms = now_ms();
        harness_server_kill9(g->members[leader]);
        load_acks_wait(&load, g, kill_ms, ACKS_PER_ROUND);
        failovers[k] = failover_ms(&load, leader, kill_ms);
        cr_assert_geq(failovers[k], 0, "kill %d: no acknowledgement around the kill", k + 1);
        cr_assert_lt(failovers[k], FAILOVER_LIMIT_MS, "kill %d: failover took %lld ms", k + 1,
                     (long long)failovers[k]);
        if (kills > 1)
            fprintf(stderr, "group: kill %d of %d (member %d): failover %lld ms\n", k + 1, kills,
                    leader + 1, (long long)failovers[k]);
        int old = leader;
        leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
        cr_assert_neq(leader, old);
        if (k == 0) { /* the survivors hold every acknowledged write before the old one returns */
            load_stop(&load);
            harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
            members_verify(g, &load);
            load_resume(&load);
        }
        harness_server_restart(g->members[old]);
        since_ms = now_ms();
    }
    load_stop(&load);
    harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
    members_verify(g, &load);
    qsort(failovers, (size_t)kills, sizeof *failovers, compare_int64);
    expected_t e;
    expected_count(&load, &e);
    uint64_t retries = 0;
    for (int i = 0; i < WORKERS; i++)
        retries += load.workers[i].retries;
    fprintf(stderr,
            "group: %d leader kill(s), failover ms p50 %lld p99 %lld max %lld; %lld reservations "
            "held, %llu retries\n",
            kills, (long long)failovers[kills / 2], (long long)failovers[(kills * 99) / 100],
            (long long)failovers[kills - 1], (long long)e.held_total, (unsigned long long)retries);
    free(failovers);
    load_free(&load);
    harness_group_destroy(g);
}

/* ---- followers that were away ------------------------------------------------------------- */

/* `count` reservations through a client of member `via` (it follows NOT_LEADER), recorded in the
 * worker's acks (so members_verify checks them). */
static void reserve_sequential(int via, worker_t *w, size_t count)
{
    allot_client_t *c = NULL;
    int member = via;
    for (size_t i = 0; i < count; i++) {
        size_t n = w->count;
        if (n == w->capacity) {
            w->capacity *= 2;
            w->acks = realloc(w->acks, w->capacity * sizeof *w->acks);
            cr_assert(w->acks != NULL);
        }
        cr_assert(worker_reserve(w, &c, &member, n), "%s", w->failure);
        w->count = n + 1;
    }
    allot_client_close(c);
}

/* A load_t whose workers never run: reserve_sequential fills worker 0. */
static void load_manual(load_t *load, const harness_group_t *g)
{
    memset(load, 0, sizeof *load);
    load->group = g;
    for (int i = 0; i < WORKERS; i++) {
        load->workers[i].group = g;
        load->workers[i].index = i;
        load->workers[i].capacity = 1024;
        load->workers[i].acks = calloc(1024, sizeof(ack_t));
        cr_assert(load->workers[i].acks != NULL);
    }
}

Test(group, killed_follower_catches_up_from_the_log_after_a_restart)
{
    harness_group_t *g = harness_group_start(GROUP_SIZE, NULL);
    int leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
    setup_stock(g, leader);
    load_t load;
    load_manual(&load, g);
    reserve_sequential(leader, &load.workers[0], 100);
    int follower = (leader + 1) % GROUP_SIZE;
    harness_server_kill9(g->members[follower]);
    reserve_sequential(leader, &load.workers[0], 300); /* a majority: 2 of 3 */
    harness_server_restart(g->members[follower]);
    harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
    members_verify(g, &load);
    char *log = harness_server_log_read(g->members[follower]);
    cr_assert_null(strstr(log, "group_failed"), "the follower stopped:\n%s", log);
    free(log);
    load_free(&load);
    harness_group_destroy(g);
}

/* A socket listening on 127.0.0.1:port (as another program holding it would); -1 on failure. */
static int port_hold(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 1) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* A killed member whose raft port something else took meanwhile cannot start: it says which
 * address is in use (libraft itself leaves its message empty); once the port is free again it
 * starts and catches up. */
Test(group, restart_with_the_raft_port_taken_names_the_address_in_use)
{
    harness_group_t *g = harness_group_start(GROUP_SIZE, NULL);
    int leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
    setup_stock(g, leader);
    load_t load;
    load_manual(&load, g);
    int follower = (leader + 1) % GROUP_SIZE;
    harness_server_kill9(g->members[follower]);
    int fd = port_hold(g->raft_ports[follower]);
    cr_assert_geq(fd, 0, "cannot hold port %u: %s", (unsigned)g->raft_ports[follower],
                  strerror(errno));
    cr_assert(!harness_server_restart_try(g->members[follower], HARNESS_START_TIMEOUT_MS),
              "the member started without its raft port");
    char want[96];
    snprintf(want, sizeof want, "raft start: listen on 127.0.0.1:%u: Address already in use",
             (unsigned)g->raft_ports[follower]);
    char *log = harness_server_log_read(g->members[follower]);
    cr_assert_not_null(strstr(log, want), "no \"%s\" in the log:\n%s", want, log);
    free(log);
    close(fd);
    reserve_sequential(leader, &load.workers[0], 20);
    harness_server_restart(g->members[follower]);
    harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
    members_verify(g, &load);
    load_free(&load);
    harness_group_destroy(g);
}

/* While a member is down, nothing else may take its ports: not a bind to port 0 or an outgoing
 * connection (members listen below the ephemeral range), nor another group of the tests. */
Test(group, members_ports_cannot_be_taken_while_a_member_is_down)
{
    harness_group_t *g = harness_group_start(GROUP_SIZE, NULL);
    unsigned floor = harness_port_ephemeral_floor();
    for (size_t i = 0; i < GROUP_SIZE; i++) {
        cr_assert_lt(g->members[i]->port, floor, "member %zu's client port %u", i + 1,
                     (unsigned)g->members[i]->port);
        cr_assert_lt(g->raft_ports[i], floor, "member %zu's raft port %u", i + 1,
                     (unsigned)g->raft_ports[i]);
    }
    harness_server_kill9(g->members[0]);
    for (int n = 0; n < 64; n++) {
        uint16_t port = harness_port_reserve();
        cr_assert(port != g->members[0]->port && port != g->raft_ports[0],
                  "a down member's port %u was handed out again", (unsigned)port);
    }
    harness_server_restart(g->members[0]);
    harness_group_leader_wait(g, LEADER_WAIT_MS);
    harness_group_destroy(g);
}

/* Raft snapshot files in a member's data dir (data-dir/raft/snapshot-*, not the .meta files). */
static int raft_snapshots_count(const harness_server_t *s)
{
    char dir[512];
    harness_server_path(s, "raft", dir, sizeof dir);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "no raft directory in %s", s->data_dir);
    int count = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strncmp(e->d_name, "snapshot-", 9) == 0 && strstr(e->d_name, ".meta") == NULL)
            count++;
    closedir(d);
    return count;
}

Test(group, members_restarted_after_snapshots_recover_from_the_checkpoint_and_the_log)
{
    harness_group_t *g = harness_group_start(GROUP_SIZE, "--raft-snapshot-entries 16");
    int leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
    setup_stock(g, leader);
    load_t load;
    load_manual(&load, g);
    reserve_sequential(leader, &load.workers[0], 400);
    harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
    for (size_t i = 0; i < GROUP_SIZE; i++)
        cr_assert_gt(raft_snapshots_count(g->members[i]), 0, "member %zu took no snapshot", i + 1);
    for (size_t i = 0; i < GROUP_SIZE; i++)
        harness_server_stop(g->members[i]);
    for (size_t i = 0; i < GROUP_SIZE; i++)
        harness_server_restart(g->members[i]);
    leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
    harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
    members_verify(g, &load);
    reserve_sequential(leader, &load.workers[0], 50); /* and the group still takes writes */
    harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
    members_verify(g, &load);
    load_free(&load);
    harness_group_destroy(g);
}

/* No snapshot is installed on a follower yet: one that fell behind the leader's trailing window
 * (--raft-snapshot-entries 16: 64 entries kept) stops, naming what the operator must do, rather
 * than run with a state it does not have; the others go on. */
Test(group, follower_behind_the_trailing_window_catches_up_from_the_leaders_state_image)
{
    harness_group_t *g = harness_group_start(GROUP_SIZE, "--raft-snapshot-entries 16");
    int leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
    setup_stock(g, leader);
    load_t load;
    load_manual(&load, g);
    reserve_sequential(leader, &load.workers[0], 20);
    int follower = (leader + 1) % GROUP_SIZE;
    harness_server_kill9(g->members[follower]);
    reserve_sequential(leader, &load.workers[0], 400); /* far past 16 + 64 entries */
    harness_server_t *behind = g->members[follower];
    harness_server_restart(behind);
    reserve_sequential(leader, &load.workers[0], 20);
    harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
    members_verify(g, &load);
    char *log = harness_server_log_read(behind);
    cr_assert_not_null(strstr(log, "event=snapshot_installed"), "%s", log);
    cr_assert_not_null(strstr(log, "event=snapshot_image_taken"), "%s", log);
    cr_assert_null(strstr(log, "event=group_failed"), "%s", log);
    free(log);
    load_free(&load);
    harness_group_destroy(g);
}

/* ---- a partition around the leader (the raft seam: ALLOT_RAFT_PARTITION_FILE) -----------------
 */

static char partition_dir[] = "/tmp/allot-partition-XXXXXX";

static void partition_path(char *buf, size_t bytes, int member)
{
    snprintf(buf, bytes, "%s/partition-%d", partition_dir, member + 1);
}

/* A write on the isolated leader: never acknowledged (the connection waits, then the leader
 * steps down, rebuilds and closes it). */
static bool isolated_write_acknowledged(const harness_group_t *g, int leader)
{
    allot_client_t *c = member_connect(g, (size_t)leader);
    allot_reply_t reply = {0};
    int rc = allot_client_call_json(c, "reserve",
                                    "{\"id\": \"isolated-1\", \"lines\": [{\"sku\": \"S0\", "
                                    "\"qty\": 1}]}",
                                    &reply);
    bool acknowledged = rc == 0 && !reply.is_error;
    allot_reply_free(&reply);
    allot_client_close(c);
    return acknowledged;
}

Test(group, isolated_leader_acknowledges_nothing_and_the_group_keeps_one_history)
{
    cr_assert_not_null(mkdtemp(partition_dir));
    char setting[128];
    snprintf(setting, sizeof(setting), "%s/partition-%%u", partition_dir);
    setenv("ALLOT_RAFT_PARTITION_FILE", setting, 1);
    harness_group_t *g = harness_group_start(GROUP_SIZE, NULL);
    unsetenv("ALLOT_RAFT_PARTITION_FILE");
    int leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
    setup_stock(g, leader);
    load_t load;
    load_manual(&load, g);
    reserve_sequential(leader, &load.workers[0], 50);
    char path[256];
    partition_path(path, sizeof(path), leader);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert(!isolated_write_acknowledged(g, leader),
              "the leader cut off from its group acknowledged a write");
    int other = (leader + 1) % GROUP_SIZE;
    reserve_sequential(other, &load.workers[0], 50); /* the majority elects and commits */
    cr_assert_eq(unlink(path), 0);
    harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
    members_verify(g, &load); /* every acknowledged write, nothing else, equal on all three */
    char *log = harness_server_log_read(g->members[leader]);
    cr_assert_not_null(strstr(log, "event=leadership_lost"), "%s", log);
    free(log);
    load_free(&load);
    harness_group_destroy(g);
    rmdir(partition_dir);
}

/* ---- a new leader's barrier (persist/fault.h: ALLOT_FAULT=barrier, barrier_cb) ----------- */

static int log_count(const char *log, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(log, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

Test(group, leader_whose_first_barriers_fail_becomes_writable_without_an_election)
{
    /* every member: its first barrier is refused, the callback of the next reports a failure */
    setenv("ALLOT_FAULT", "barrier:EIO:times=1,barrier_cb:EIO:times=1", 1);
    harness_group_t *g = harness_group_start(GROUP_SIZE, NULL);
    unsetenv("ALLOT_FAULT");
    int leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
    allot_client_t *c = member_connect(g, (size_t)leader); /* no redirect: the leader itself */
    allot_reply_t reply = {0};
    write_ok(c, "location.put",
             "{\"id\": \"L1\", \"type\": \"warehouse\", \"lat\": 52, \"lon\": 13}", &reply);
    allot_reply_free(&reply);
    allot_client_close(c);
    cr_assert_eq(harness_group_leader_wait(g, LEADER_WAIT_MS), leader,
                 "the write waited for another leader");
    char *log = harness_server_log_read(g->members[leader]);
    cr_assert_eq(log_count(log, "event=leader_barrier_failed"), 1, "once per term:\n%s", log);
    cr_assert_not_null(strstr(log, "raft_barrier: I/O error"), "%s", log);
    cr_assert_null(strstr(log, "event=leadership_lost"), "%s", log);
    free(log);
    harness_group_destroy(g);
}

/* ---- a member restarted before any checkpoint -------------------------------------------- */

Test(group, member_restarted_before_a_checkpoint_says_its_events_come_from_the_group_log)
{
    harness_group_t *g = harness_group_start(GROUP_SIZE, "--checkpoint-interval-s 0");
    int leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
    setup_stock(g, leader);
    harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
    int follower = (leader + 1) % GROUP_SIZE;
    /* a read stores the follower's events (unread ones may wait in memory, net/events.h): its
     * stream is ahead of its checkpoint when it dies */
    allot_client_t *c = member_connect(g, (size_t)follower);
    allot_reply_t reply = {0};
    harness_call_ok(c, "events.read", "{\"after\": 0, \"limit\": 1}", &reply);
    allot_client_close(c);
    harness_server_kill9(g->members[follower]);
    harness_server_restart(g->members[follower]);
    harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
    char *log = harness_server_log_read(g->members[follower]);
    cr_assert_null(strstr(log, "events_ahead_of_log"), "%s", log);
    cr_assert_not_null(strstr(log, "event=events_ahead_of_checkpoint"), "%s", log);
    cr_assert_null(strstr(log, "--accept-data-loss"), "%s", log);
    free(log);
    /* its stream holds each event once: the records applied again derived none */
    c = member_connect(g, (size_t)follower);
    harness_call_ok(c, "events.read", "{\"after\": 0, \"limit\": 100}", &reply);
    char *json = harness_reply_json(&reply);
    cr_assert_eq(log_count(json, "\"stock.changed\""), SKUS + 1, "%s", json);
    free(json);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_group_destroy(g);
}

/* ---- the CLI given a follower's address --------------------------------------------------- */

#define GROUP_TOKEN "group-test-token-0123456789"

static void cli_expect_ok(const char *const *argv, const char *want)
{
    char *out = NULL, *err = NULL;
    int status = harness_run(argv, NULL, 20000, &out, &err);
    cr_assert_eq(status, 0, "allot exited %d; stdout: %s; stderr: %s", status, out, err);
    cr_assert_not_null(strstr(out, want), "stdout: %s", out);
    free(out);
    free(err);
}

Test(group, cli_sent_to_a_follower_writes_on_the_leader_with_its_token)
{
    char token_path[] = "/tmp/allot-group-token-XXXXXX";
    int fd = mkstemp(token_path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, GROUP_TOKEN "\n", strlen(GROUP_TOKEN) + 1),
                 (ssize_t)strlen(GROUP_TOKEN) + 1);
    close(fd);
    char args[128];
    snprintf(args, sizeof args, "--auth-token-file %s", token_path);
    harness_group_t *g = harness_group_start(GROUP_SIZE, args);
    snprintf(g->token, sizeof g->token, "%s", GROUP_TOKEN);
    int leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)g->members[(leader + 1) % GROUP_SIZE]->port);
    const char *put[] = {ALLOT_CLI_PATH,
                         "-p",
                         port,
                         "--token-file",
                         token_path,
                         "--raw",
                         "location.put",
                         "{\"id\": \"L1\", \"type\": \"warehouse\", \"lat\": 1, \"lon\": 2}",
                         NULL};
    cli_expect_ok(put, "\"id\":\"L1\"");
    const char *set[] = {ALLOT_CLI_PATH,
                         "-p",
                         port,
                         "--token-file",
                         token_path,
                         "--raw",
                         "stock.set",
                         "{\"sku\": \"A\", \"location\": \"L1\", \"on_hand\": 7}",
                         NULL};
    cli_expect_ok(set, "\"on_hand\":7");
    /* the write is on the follower the CLI was given, once it caught up */
    harness_group_caught_up_wait(g, CAUGHT_UP_WAIT_MS);
    const char *get[] = {
        ALLOT_CLI_PATH,     "-p", port, "--token-file", token_path, "--raw", "stock.get",
        "{\"sku\": \"A\"}", NULL};
    cli_expect_ok(get, "\"available\":7");
    unlink(token_path);
    harness_group_destroy(g);
}

/* ---- shutdown ------------------------------------------------------------------------------ */

typedef struct unanswered_write {
    const harness_group_t *group;
    int member;
} unanswered_write_t;

/* A reserve on a leader without a majority: never committed (the reply, if any, is an error or
 * a closed connection). */
static void *unanswered_write_run(void *arg)
{
    unanswered_write_t *w = arg;
    allot_client_t *c = member_connect(w->group, (size_t)w->member);
    allot_reply_t reply = {0};
    (void)allot_client_call_json(c, "reserve",
                                 "{\"id\": \"never-committed\", \"lines\": [{\"sku\": \"S0\", "
                                 "\"qty\": 1}]}",
                                 &reply);
    allot_reply_free(&reply);
    allot_client_close(c);
    return NULL;
}

/* SIGTERM while the last record can no longer commit: the final checkpoint (the state as of that
 * record) would wait for ever for the log to be durable; the member drops it at the shutdown
 * deadline and exits (the log holds what it would have covered). */
Test(group, a_leader_that_lost_its_majority_still_exits_on_sigterm, .timeout = 120)
{
    harness_group_t *g = harness_group_start(GROUP_SIZE, NULL);
    int leader = harness_group_leader_wait(g, LEADER_WAIT_MS);
    setup_stock(g, leader);
    for (int i = 0; i < GROUP_SIZE; i++)
        if (i != leader)
            harness_server_kill9(g->members[i]);
    unanswered_write_t write = {g, leader};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, unanswered_write_run, &write), 0);
    sleep_ms(200); /* the record is in the leader's log, uncommitted */
    harness_server_stop_unchecked(g->members[leader]); /* asserts an exit within 10 s */
    pthread_join(thread, NULL);
    harness_group_destroy(g);
}
