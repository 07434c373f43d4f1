/* handlers_admin.c - ping, server.info and server.checkpoint. */
#include <stdio.h>

#include "args.h"
#include "auth.h"
#include "command.h"
#include "core/state.h"
#include "pack.h"
#include "server.h"

int handle_ping(command_call_t *call)
{
    pack_cstr(call->result, "pong");
    return 0;
}

int handle_server_info(command_call_t *call)
{
    server_info_t info;
    server_info_get(call->server, call->now_ms, &info);
    allot_state_counters_t counts;
    allot_state_counters_get(call->state, &counts);
    msgpack_packer *pk = call->result;
    msgpack_pack_map(pk, 12);
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
