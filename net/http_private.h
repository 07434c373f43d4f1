/* http_private.h - the HTTP front door's state, shared by http.c, http_routes.c and
 * http_events.c only. Not part of any contract. */
#ifndef ALLOT_NET_HTTP_PRIVATE_H
#define ALLOT_NET_HTTP_PRIVATE_H

#include <microhttpd.h>
#include <msgpack.h>
#include <stdbool.h>
#include <uv.h>

#include "auth.h"
#include "dispatch.h"
#include "http.h"
#include "server_internal.h"

/* "ip:port" of a client, with its NUL. */
#define HTTP_PEER_BYTES_MAX 56

enum http_route {
    HTTP_ROUTE_CALL,    /* POST /v1/METHOD */
    HTTP_ROUTE_OPENAPI, /* GET /v1/openapi.json */
    HTTP_ROUTE_EVENTS,  /* GET /v1/events */
    HTTP_ROUTE_HEALTH,  /* GET /healthz */
    HTTP_ROUTE_READY,   /* GET /readyz */
    HTTP_ROUTE_CONSOLE, /* GET / and the console's files */
};

enum http_phase {
    HTTP_PHASE_READING,  /* the body is arriving */
    HTTP_PHASE_HELD,     /* a WRITE reply waits for durability (suspended) */
    HTTP_PHASE_DEFERRED, /* the handler answers later (suspended) */
    HTTP_PHASE_STREAM,   /* an event stream */
    HTTP_PHASE_DONE,     /* answered */
};

/* One TCP connection: its authentication state survives keep-alive requests (back-off). */
typedef struct http_client {
    auth_session_t auth;
    char peer[HTTP_PEER_BYTES_MAX];
} http_client_t;

typedef struct http_stream http_stream_t; /* http_events.c */

struct http_exchange {
    http_t *http;
    struct MHD_Connection *connection;
    http_client_t *client;
    uint8_t route;
    uint8_t phase;
    bool close; /* answer with Connection: close */
    char *body;
    size_t body_len, body_capacity;
    struct MHD_Response *response; /* a held reply, queued when released */
    unsigned status;
    uint64_t lsn;                 /* HELD: durable from this LSN on */
    uint64_t started_ns;          /* uv_hrtime() when the call ran (latency metrics) */
    size_t command_index;         /* the method's row (metrics); SIZE_MAX: none */
    bool error;                   /* the call answered an error (metrics) */
    http_exchange_t *prev, *next; /* held or waiting streams */
    http_stream_t *stream;        /* HTTP_ROUTE_EVENTS */
    char command[HTTP_COMMAND_BYTES_MAX];
};

struct http {
    server_t *server;
    struct MHD_Daemon *daemon;
    uv_poll_t poll;   /* MHD's epoll descriptor */
    uv_timer_t timer; /* MHD's next timeout */
    uv_timer_t pace;  /* waiting event streams poll again */
    unsigned handles_open;
    bool stopping;
    msgpack_zone zone;       /* decoded requests and replies of one exchange step */
    msgpack_sbuffer request; /* the MessagePack-RPC request being built */
    uint32_t next_msgid;
    http_exchange_t *held_first, *held_last; /* HELD and DEFERRED, in arrival order */
    http_exchange_t *waiting;                /* event streams with nothing to send */
    char *openapi;
    size_t openapi_len;
    uint64_t requests, refused; /* counters for the log at exit */
};

/* http.c */
struct MHD_Response *http_response_text(char *text, size_t len, const char *content_type);
struct MHD_Response *http_response_from_reply(http_t *http, const char *bytes, size_t len,
                                              unsigned *status);
struct MHD_Response *http_response_error(http_t *http, int error, const char *field,
                                         const char *message, unsigned *status);
/* Have MHD_run called soon (after resuming a connection). */
void http_kick(http_t *http);
/* With a token configured, check this request's `Authorization: Bearer TOKEN` for the method
 * ex->command (server_auth_attempt); 0, or UNAUTHENTICATED with error filled. */
int http_authenticate(http_exchange_t *ex, allot_error_detail_t *error);
const msgpack_object *http_map_get(const msgpack_object *map, const char *name);
/* Run `method` with the params map packed in params_bytes (NULL: {}) through dispatch_object as
 * this exchange's request; the reply is left in server->scratch. */
void http_dispatch(http_exchange_t *ex, const char *method, const char *params_bytes,
                   size_t params_len, dispatch_outcome_t *outcome);

/* http_routes.c: GET /healthz, /readyz, /v1/openapi.json and the console. */
enum MHD_Result http_routes_get(http_exchange_t *ex, const char *url);

/* http_events.c: GET /v1/events. */
enum MHD_Result http_events_begin(http_exchange_t *ex);
void http_events_wake(http_t *http);
void http_events_free(http_exchange_t *ex);

#endif
