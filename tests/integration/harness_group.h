/* harness_group.h - a group of real allotd processes on loopback for integration tests
 * (PROTOCOL.md "Cluster"), built on harness.h.
 *
 * Contract (Criterion tests only; functions that "assert" fail the current test):
 *   - harness_group_start reserves two ports per member (client and raft) with
 *     harness_port_reserve (harness.h), makes each member's data dir, and starts member i as node
 * id i + 1 with `--node-id`, one `--peer` per member and the extra args (split on blanks); it
 *     returns once every member answers ping (the group may still be electing its first
 *     leader). Members are harness_server_t: kill -9, stop and restart them with harness.h (same
 *     data dir, ports and command line).
 *   - harness_member_info reads member i's server.info (after `auth` with g->token when it is
 *     set); false when the member does not answer.
 *   - harness_group_leader_wait: the index of the running member that reports itself leader and
 *     that every other running member names as leader (asserts one appears in time).
 *   - harness_group_caught_up_wait: every running member reports the same applied_index, equal
 *     to its commit_index (asserts they converge in time); returns that index.
 *   - Clients connect with liballot, which follows NOT_LEADER (client/client.h).
 */
#ifndef ALLOT_TESTS_HARNESS_GROUP_H
#define ALLOT_TESTS_HARNESS_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/integration/harness.h"

#define HARNESS_GROUP_MEMBERS_MAX 5

typedef struct harness_group {
    size_t count;
    harness_server_t *members[HARNESS_GROUP_MEMBERS_MAX]; /* node id = index + 1 */
    uint16_t raft_ports[HARNESS_GROUP_MEMBERS_MAX];
    char token[128]; /* when the members run with --auth-token-file: the harness's reads auth */
} harness_group_t;

typedef struct harness_member_info {
    char role[16];
    uint16_t leader_port; /* the leader's client port; 0 when none is known */
    uint64_t commit_index;
    uint64_t applied_index;
    int64_t wal_lsn;
    int64_t skus;
    int64_t positions;
    int64_t reservations;
} harness_member_info_t;

harness_group_t *harness_group_start(size_t count, const char *extra_args);
/* Kill every member, remove the data dirs, free. NULL is fine. */
void harness_group_destroy(harness_group_t *g);
bool harness_member_info(const harness_group_t *g, size_t i, harness_member_info_t *info);
int harness_group_leader_wait(const harness_group_t *g, int timeout_ms);
uint64_t harness_group_caught_up_wait(const harness_group_t *g, int timeout_ms);
/* The index of the member listening on client port `port`; -1 when none. */
int harness_group_member_of_port(const harness_group_t *g, uint16_t port);

#endif
