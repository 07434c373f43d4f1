/* dispatch.h - turns one decoded MessagePack-RPC object into one reply.
 *
 * Contract: dispatch_object checks the envelope (rpc.h), looks the method up in the command
 * table (commands.def), checks the params shape and the allowed keys, refuses WRITE commands
 * while the WAL cannot take records, runs the handler and packs the response into `out`.
 * It never fails: every problem becomes an error reply (or, for an unreadable envelope, a
 * request to close the connection). The caller decides when the bytes leave (WRITE replies wait
 * for durability).
 */
#ifndef ALLOT_NET_DISPATCH_H
#define ALLOT_NET_DISPATCH_H

#include <msgpack.h>
#include <stdbool.h>

#include "command.h"
#include "rpc.h"

/* Whether WRITE commands may run now, and why not (see dispatch_env_t.writes_check_cb). */
typedef struct dispatch_writes {
    bool allowed;
    int refused_error;          /* UNAVAILABLE, OVERLOADED or NOT_LEADER */
    const char *leader_address; /* NOT_LEADER: the leader's client address (NULL: unknown) */
    bool leader_elected;        /* a group's new leader still commits its first barrier */
} dispatch_writes_t;

typedef struct dispatch_env {
    struct allot_state *state;
    struct server *server;
    struct connection *conn;    /* the requesting connection (deferred replies) */
    struct http_exchange *http; /* or the HTTP request (net/http.h); NULL on the RPC port */
    int64_t now_ms;
    bool writes_allowed;      /* false while the WAL cannot accept records: WRITE -> UNAVAILABLE */
    int writes_refused_error; /* the error for refused writes (UNAVAILABLE, OVERLOADED or
                               * NOT_LEADER) */
    const char *leader_address; /* NOT_LEADER: the leader's client address (NULL: unknown) */
    bool leader_elected;        /* a group's new leader still commits its first barrier */
    /* Asked only when the method is a WRITE (a read never pays for the question): fills in
     * whether writes may run now; NULL: the four fields above say it. */
    void (*writes_check_cb)(const struct dispatch_env *env, dispatch_writes_t *writes);
    uint64_t applied_index;       /* a group: raft's applied index (min_index); UINT64_MAX alone */
    bool read_wait_over;          /* a read waited for min_index already: answer it now */
    bool auth_required;           /* a token is configured */
    struct auth_session *session; /* this connection's authentication state */
} dispatch_env_t;

typedef struct dispatch_outcome {
    bool replied;         /* bytes were packed into out (false for notifications) */
    bool close;           /* the envelope was unusable: close the connection after replying */
    bool write;           /* a WRITE command ran: hold its reply until the WAL is durable */
    bool deferred;        /* the handler answers later (COMMAND_DEFERRED); nothing was packed */
    int error;            /* 0, or the error that was answered */
    size_t command_index; /* the method's row in the command table; SIZE_MAX if none */
    bool wait;            /* a read waits for min_index: nothing packed; dispatch it again */
    uint64_t wait_index;  /* ... once applied_index reaches this */
    uint32_t wait_ms;     /* ... or this long has passed (then it is answered UNAVAILABLE) */
} dispatch_outcome_t;

/* Internal to dispatch_object: a read that must wait for min_index. */
#define DISPATCH_WAIT 1

void dispatch_object(const dispatch_env_t *env, const msgpack_object *object, msgpack_sbuffer *out,
                     dispatch_outcome_t *outcome);

/* dispatch_object for a request whose envelope the decoder has checked already (checked: what
 * decode_request_envelope gave with *checked true, net/decode.h; its params, when NULL, are
 * checked here): the same reply and outcome, without checking the head twice. checked NULL: the
 * same as dispatch_object. */
void dispatch_request(const dispatch_env_t *env, const msgpack_object *object,
                      rpc_envelope_t *checked, msgpack_sbuffer *out, dispatch_outcome_t *outcome);

/* Pack an error reply that carries no msgid context beyond `msgid` (used by the server for
 * frame-level errors such as TOO_LARGE). */
void dispatch_pack_error(msgpack_sbuffer *out, uint32_t msgid, int error, const char *field,
                         const char *message);

#endif
