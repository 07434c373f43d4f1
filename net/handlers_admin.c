/* handlers_admin.c - ping, server.info and server.checkpoint. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "auth.h"
#include "command.h"
#include "core/state.h"
#include "pack.h"
#include "server.h"

int handle_ping(command_call_t *call)
{
    static const char pong[] = {(char)0xa4, 'p', 'o', 'n', 'g'}; /* "pong", packed: one write */
    pack_bytes(call->result, pong, sizeof(pong));
    return 0;
}

/* server.info in a group: node_id, leader, commit_index, applied_index, peers. */
static void pack_group(msgpack_packer *pk, const server_group_info_t *group)
{
    pack_key_int(pk, "node_id", group->node_id);
    pack_cstr(pk, "leader");
    if (group->leader != NULL)
        pack_cstr(pk, group->leader);
    else
        msgpack_pack_nil(pk);
    pack_key_int(pk, "commit_index", (int64_t)group->commit_index);
    pack_key_int(pk, "applied_index", (int64_t)group->applied_index);
    pack_cstr(pk, "peers");
    msgpack_pack_array(pk, group->member_count);
    for (size_t i = 0; i < group->member_count; i++) {
        msgpack_pack_map(pk, 4);
        pack_key_int(pk, "id", group->members[i].id);
        pack_key_cstr(pk, "raft", group->members[i].raft_address);
        pack_key_cstr(pk, "client", group->members[i].client_address);
        pack_key_cstr(pk, "role", group->member_roles[i]);
    }
}

int handle_server_info(command_call_t *call)
{
    server_info_t info;
    server_info_get(call->server, call->now_ms, &info);
    allot_state_counters_t counts;
    allot_state_counters_get(call->state, &counts);
    msgpack_packer *pk = call->result;
    server_group_info_t group;
    server_group_info(call->server, &group);
    bool in_group = strcmp(group.role, "standalone") != 0;
    msgpack_pack_map(pk, 13 + (in_group ? 5 : 0));
    pack_key_cstr(pk, "version", info.version);
    pack_key_int(pk, "uptime_s", info.uptime_s);
    pack_key_int(pk, "connections", info.connections);
    pack_key_int(pk, "skus", (int64_t)counts.skus);
    pack_key_int(pk, "positions", (int64_t)counts.positions);
    pack_key_int(pk, "locations", (int64_t)counts.locations);
    pack_key_int(pk, "reservations", (int64_t)counts.reservations);
    pack_key_int(pk, "orders", (int64_t)counts.orders);
    pack_key_int(pk, "wal_lsn", (int64_t)info.wal_lsn);
    pack_key_int(pk, "durable_lsn", (int64_t)info.durable_lsn);
    pack_key_int(pk, "checkpoint_lsn", (int64_t)info.checkpoint_lsn);
    pack_key_cstr(pk, "fsync", info.fsync);
    pack_key_cstr(pk, "role", group.role);
    if (in_group)
        pack_group(pk, &group);
    return 0;
}

int handle_server_checkpoint(command_call_t *call)
{
    return server_checkpoint_request(call->server, call->reply_to.conn, call->reply_to.msgid,
                                     call->reply_to.http, call->error);
}

int handle_auth(command_call_t *call)
{
    allot_str_t token;
    int rc = args_str(call->params, "token", AUTH_TOKEN_BYTES_MAX, &token, NULL, call->error);
    if (rc != 0)
        return rc;
    rc = server_auth_attempt(call->server, call->session, token.ptr, token.len,
                             &call->close_connection, call->error);
    if (rc != 0)
        return rc;
    msgpack_pack_map(call->result, 1);
    pack_key_bool(call->result, "authenticated", true);
    return 0;
}

int handle_server_stats(command_call_t *call)
{
    server_stats_pack(call->server, call->result);
    return 0;
}

/* Walks the whole state and the whole of state.lmdb (O(size)): for diagnostics and crash tests,
 * not for routine polling. */
int handle_server_verify(command_call_t *call)
{
    char message[ALLOT_ERROR_MESSAGE_BYTES_MAX];
    int rc = allot_state_check_invariants(call->state, message, sizeof(message));
    if (rc == ALLOT_ENOMEM)
        return allot_error_set(call->error, ALLOT_EINTERNAL, NULL, "out of memory");
    uint64_t records = 0;
    char store_message[512], violation[sizeof(store_message) + 16];
    int store_rc =
        server_store_verify(call->server, &records, store_message, sizeof(store_message));
    if (rc != 0)
        snprintf(violation, sizeof(violation), "%s", message);
    else if (store_rc != 0)
        snprintf(violation, sizeof(violation), "state.lmdb: %s", store_message);
    bool ok = rc == 0 && store_rc == 0;
    msgpack_pack_map(call->result, ok ? 2 : 3);
    pack_key_bool(call->result, "ok", ok);
    pack_key_int(call->result, "store_records", (int64_t)records);
    if (!ok)
        pack_key_cstr(call->result, "violation", violation);
    return 0;
}

/* cluster.*: the group's membership and leadership (net/server_group.c). */
static int member_args(command_call_t *call, consensus_member_t *member, bool need_addresses)
{
    int64_t id;
    int rc = args_int64(call->params, "id", 1, ALLOT_NODE_ID_MAX, &id, NULL, call->error);
    memset(member, 0, sizeof(*member));
    member->id = (uint32_t)id;
    allot_str_t raft = {0}, client = {0};
    if (rc == 0 && need_addresses)
        rc = args_str(call->params, "raft", ALLOT_ADDRESS_BYTES_MAX - 1, &raft, NULL, call->error);
    if (rc == 0 && need_addresses)
        rc = args_str(call->params, "client", ALLOT_ADDRESS_BYTES_MAX - 1, &client, NULL,
                      call->error);
    if (rc != 0)
        return rc;
    memcpy(member->raft_address, raft.ptr, raft.len);
    memcpy(member->client_address, client.ptr, client.len);
    return 0;
}

static int cluster_done(command_call_t *call, int rc, const char *state, uint32_t id)
{
    if (rc != 0)
        return server_cluster_error(call->server, rc, call->error);
    msgpack_pack_map(call->result, 2);
    pack_key_cstr(call->result, "state", state);
    pack_key_int(call->result, "id", id);
    return 0;
}

int handle_cluster_transfer(command_call_t *call)
{
    int64_t to = 0;
    bool present = false;
    int rc = args_int64(call->params, "to", 1, ALLOT_NODE_ID_MAX, &to, &present, call->error);
    if (rc != 0)
        return rc;
    return cluster_done(call, server_cluster_transfer(call->server, (uint32_t)to), "transferring",
                        (uint32_t)to);
}

int handle_cluster_add(command_call_t *call)
{
    consensus_member_t member;
    int rc = member_args(call, &member, true);
    if (rc != 0)
        return rc;
    return cluster_done(call, server_cluster_add(call->server, &member), "adding", member.id);
}

int handle_cluster_remove(command_call_t *call)
{
    consensus_member_t member;
    int rc = member_args(call, &member, false);
    if (rc != 0)
        return rc;
    return cluster_done(call, server_cluster_remove(call->server, member.id), "removing",
                        member.id);
}
