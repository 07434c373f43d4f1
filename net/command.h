/* command.h - the command table: what a handler receives and how it answers.
 *
 * Contract: every RPC method is one row in net/commands.def:
 *     COMMAND(wire_name, handler_function, flags, allowed_keys...)
 * The dispatcher (net/dispatch.c) looks the method up, checks the params shape (exactly one map,
 * only the row's allowed keys, each at most once; an unknown or repeated key -> INVALID_ARGUMENT
 * naming it), refuses WRITE
 * commands while the WAL cannot accept records (UNAVAILABLE), and only then calls the handler.
 * For reserve, avail.get and order.create the key check is first a one-pass scan that also
 * reads the arguments into call->args (net/args_typed.h); when it declines, the key check and
 * the handler's getters run as for every method and name the fault, so the replies are the same.
 * A handler validates every argument before changing anything, then either
 *   - packs exactly one msgpack object (the result) into call->result and returns 0, or
 *   - returns a negative ALLOT_E* code with call->error filled (field, message, details),
 *     having changed nothing and packed nothing.
 * A WRITE command's reply is held until every WAL record appended before it returned is durable.
 * A handler that can only answer later (server.checkpoint) hands call->reply_to to the server,
 * packs nothing and returns COMMAND_DEFERRED; the server then sends exactly one response for
 * that msgid itself (connection_reply_deferred), or none if the connection closes first.
 */
#ifndef ALLOT_NET_COMMAND_H
#define ALLOT_NET_COMMAND_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/errors.h"

struct allot_state;
struct auth_session;
struct connection;
struct http_exchange;
struct server;
union args_typed;

enum command_flags {
    COMMAND_READ = 1 << 0,  /* reads state only: answered at once */
    COMMAND_WRITE = 1 << 1, /* may append WAL records: answered once they are durable */
    COMMAND_ADMIN = 1 << 2, /* operational (server.*) */
    COMMAND_NOAUTH = 1 << 3, /* allowed before `auth` when a token is required (ping, auth) */
};

/* Handler return value: no reply now, the server answers call->reply_to later. */
#define COMMAND_DEFERRED 1

/* Where a deferred reply goes: an RPC connection's msgid, or an HTTP request (net/http.h);
 * both NULL for notifications (nobody to answer). */
typedef struct command_reply_to {
    struct connection *conn;
    uint32_t msgid;
    struct http_exchange *http;
} command_reply_to_t;

typedef struct command_call {
    struct allot_state *state;    /* the domain state (core/state.h) */
    struct server *server;        /* the server, for server.* commands */
    int64_t now_ms;               /* wall-clock time taken once per loop iteration */
    const msgpack_object *params; /* the request's single params map (type MAP) */
    const union args_typed *args; /* reserve, avail.get, order.create: their typed arguments
                                   * when the dispatcher's one-pass scan read them
                                   * (net/args_typed.h), else NULL: read params */
    msgpack_packer *result;       /* pack exactly one object here on success */
    allot_error_detail_t *error;  /* fill on failure (cleared before the handler runs) */
    command_reply_to_t reply_to;  /* for COMMAND_DEFERRED only */
    struct auth_session *session; /* the connection's authentication state (NULL: none) */
    bool close_connection;        /* set by a handler: close after this reply */
} command_call_t;

typedef int (*command_handler_fn)(command_call_t *call);

typedef struct command {
    const char *name;
    size_t name_len; /* strlen(name), from the table */
    command_handler_fn handler;
    unsigned flags;
    const char *const *allowed_keys; /* NULL-terminated */
} command_t;

/* Look a method up by name; NULL when unknown. */
const command_t *command_lookup(const char *name, size_t name_len);

/* The command table as an array (for metrics): rows 0..command_count()-1. */
size_t command_count(void);
const command_t *command_at(size_t index);
size_t command_index(const command_t *command);

/* Every handler named in commands.def is declared here. */
#define COMMAND(wire_name, handler, flags, ...) int handler(command_call_t *call);
#include "commands.def"
#undef COMMAND

#endif
