/* harness_group.c - integration-test harness: a group of allotd members on loopback. */
#include "tests/integration/harness_group.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t group_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void group_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* argv of member `index`: --node-id, the --peer list, then the extra args (in `words`). */
static void group_member_argv(const harness_group_t *g, size_t index, char *words, char peers[][96],
                              const char **argv)
{
    static char node_id[HARNESS_GROUP_MEMBERS_MAX][24]; /* any size_t */
    size_t argc = 0;
    snprintf(node_id[index], sizeof node_id[index], "%zu", index + 1);
    argv[argc++] = "--node-id";
    argv[argc++] = node_id[index];
    for (size_t i = 0; i < g->count; i++) {
        argv[argc++] = "--peer";
        argv[argc++] = peers[i];
    }
    char *save = NULL;
    for (char *word = strtok_r(words, " \t\n", &save); word != NULL;
         word = strtok_r(NULL, " \t\n", &save)) {
        cr_assert(argc < HARNESS_ARGS_MAX, "too many extra server arguments");
        argv[argc++] = word;
    }
    argv[argc] = NULL;
}

harness_group_t *harness_group_start(size_t count, const char *extra_args)
{
    cr_assert(count >= 1 && count <= HARNESS_GROUP_MEMBERS_MAX);
    harness_group_t *g = calloc(1, sizeof *g);
    cr_assert(g != NULL);
    g->count = count;
    uint16_t client_ports[HARNESS_GROUP_MEMBERS_MAX];
    char peers[HARNESS_GROUP_MEMBERS_MAX][96];
    for (size_t i = 0; i < count; i++) {
        client_ports[i] = harness_port_reserve();
        g->raft_ports[i] = harness_port_reserve();
        snprintf(peers[i], sizeof peers[i], "%zu=127.0.0.1:%u/127.0.0.1:%u", i + 1,
                 (unsigned)g->raft_ports[i], (unsigned)client_ports[i]);
    }
    for (size_t i = 0; i < count; i++) {
        char words[1024];
        const char *argv[HARNESS_ARGS_MAX + 1];
        cr_assert(extra_args == NULL || strlen(extra_args) < sizeof words);
        snprintf(words, sizeof words, "%s", extra_args != NULL ? extra_args : "");
        group_member_argv(g, i, words, peers, argv);
        g->members[i] = harness_server_prepare_argv(client_ports[i], argv);
    }
    for (size_t i = 0; i < count; i++)
        harness_server_restart(g->members[i]);
    return g;
}

void harness_group_destroy(harness_group_t *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->count; i++)
        harness_server_destroy(g->members[i]);
    free(g);
}

static int64_t info_int(const allot_reply_t *reply, const char *key)
{
    const msgpack_object *o = allot_object_map_get(&reply->result, key);
    if (o == NULL)
        return -1;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64 : -1;
}

/* server.info's fields into info. */
static void member_info_read(const allot_reply_t *reply, harness_member_info_t *info)
{
    memset(info, 0, sizeof *info);
    const msgpack_object *role = allot_object_map_get(&reply->result, "role");
    if (role != NULL && role->type == MSGPACK_OBJECT_STR && role->via.str.size < sizeof info->role)
        memcpy(info->role, role->via.str.ptr, role->via.str.size);
    const msgpack_object *leader = allot_object_map_get(&reply->result, "leader");
    if (leader != NULL && leader->type == MSGPACK_OBJECT_STR) {
        const char *colon = memrchr(leader->via.str.ptr, ':', leader->via.str.size);
        if (colon != NULL)
            info->leader_port = (uint16_t)strtoul(colon + 1, NULL, 10);
    }
    info->commit_index = (uint64_t)info_int(reply, "commit_index");
    info->applied_index = (uint64_t)info_int(reply, "applied_index");
    info->wal_lsn = info_int(reply, "wal_lsn");
    info->skus = info_int(reply, "skus");
    info->positions = info_int(reply, "positions");
    info->reservations = info_int(reply, "reservations");
}

bool harness_member_info(const harness_group_t *g, size_t i, harness_member_info_t *info)
{
    const harness_server_t *s = g->members[i];
    if (s->pid == 0)
        return false;
    allot_client_t *c = allot_client_create();
    allot_reply_t reply = {0};
    cr_assert(c != NULL);
    bool ok = allot_client_connect(c, "127.0.0.1", s->port, 2000) == 0;
    if (ok && g->token[0] != '\0') {
        char params[192];
        snprintf(params, sizeof params, "{\"token\": \"%s\"}", g->token);
        ok = allot_client_call_json(c, "auth", params, &reply) == 0 && !reply.is_error;
    }
    ok = ok && allot_client_call_json(c, "server.info", "{}", &reply) == 0 && !reply.is_error;
    if (ok)
        member_info_read(&reply, info);
    allot_reply_free(&reply);
    allot_client_close(c);
    return ok;
}

int harness_group_member_of_port(const harness_group_t *g, uint16_t port)
{
    for (size_t i = 0; i < g->count; i++)
        if (g->members[i]->port == port)
            return (int)i;
    return -1;
}

/* The index every running member agrees is the leader (and that says so itself); -1. */
static int group_leader_agreed(const harness_group_t *g)
{
    int leader = -1;
    for (size_t i = 0; i < g->count; i++) {
        harness_member_info_t info;
        if (g->members[i]->pid == 0)
            continue;
        if (!harness_member_info(g, i, &info) || info.leader_port == 0)
            return -1;
        int named = harness_group_member_of_port(g, info.leader_port);
        if (named < 0 || (leader >= 0 && named != leader))
            return -1;
        leader = named;
        if ((size_t)named == i && strcmp(info.role, "leader") != 0)
            return -1;
    }
    return leader >= 0 && g->members[leader]->pid != 0 ? leader : -1;
}

int harness_group_leader_wait(const harness_group_t *g, int timeout_ms)
{
    int64_t deadline_ms = group_now_ms() + timeout_ms;
    for (;;) {
        int leader = group_leader_agreed(g);
        if (leader >= 0)
            return leader;
        cr_assert(group_now_ms() < deadline_ms, "no leader agreed on within %d ms", timeout_ms);
        group_sleep_ms(20);
    }
}

/* The applied index every running member reports, equal to its commit index; 0 otherwise. */
static uint64_t group_applied_agreed(const harness_group_t *g)
{
    uint64_t applied = 0;
    for (size_t i = 0; i < g->count; i++) {
        harness_member_info_t info;
        if (g->members[i]->pid == 0)
            continue;
        if (!harness_member_info(g, i, &info) || info.applied_index == 0 ||
            info.applied_index != info.commit_index ||
            (applied != 0 && info.applied_index != applied))
            return 0;
        applied = info.applied_index;
    }
    return applied;
}

uint64_t harness_group_caught_up_wait(const harness_group_t *g, int timeout_ms)
{
    int64_t deadline_ms = group_now_ms() + timeout_ms;
    for (;;) {
        uint64_t applied = group_applied_agreed(g);
        if (applied != 0)
            return applied;
        cr_assert(group_now_ms() < deadline_ms,
                  "the members did not reach the same applied index within %d ms", timeout_ms);
        group_sleep_ms(20);
    }
}
