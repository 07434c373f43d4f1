/* errors.h - the one table of Allot error codes.
 *
 * Contract: every function in Allot that can fail returns `int`: 0 on success or a negative
 * ALLOT_E* constant from the table below. The same table yields the wire code string sent to
 * clients (`allot_error_code`) and a default human message (`allot_error_message`).
 * Adding an error is one row. Codes are stable: the wire strings are part of protocol v1
 * (docs/protocol.md). Callable from every room; libc only.
 */
#ifndef ALLOT_CORE_ERRORS_H
#define ALLOT_CORE_ERRORS_H

/* X(name, number, wire code, default message) */
#define ALLOT_ERROR_TABLE(X)                                                                      \
    X(INVALID_ARGUMENT, -1, "INVALID_ARGUMENT", "invalid argument")                               \
    X(UNKNOWN_METHOD, -2, "UNKNOWN_METHOD", "unknown method")                                     \
    X(NOT_FOUND, -3, "NOT_FOUND", "not found")                                                    \
    X(INSUFFICIENT_STOCK, -4, "INSUFFICIENT_STOCK", "insufficient stock")                         \
    X(CONFLICT, -5, "CONFLICT", "id reused with a different request")                             \
    X(INVALID_TRANSITION, -6, "INVALID_TRANSITION", "transition not allowed in this state")       \
    X(EXPIRED, -7, "EXPIRED", "expired")                                                          \
    X(TOO_LARGE, -8, "TOO_LARGE", "request or batch over a limit")                                \
    X(OVERLOADED, -9, "OVERLOADED", "server overloaded, retry later")                             \
    X(UNAVAILABLE, -10, "UNAVAILABLE", "service unavailable for writes")                          \
    X(UNAUTHENTICATED, -11, "UNAUTHENTICATED", "authentication required")                         \
    X(INTERNAL, -12, "INTERNAL", "internal error")                                                \
    X(NOMEM, -13, "INTERNAL", "out of memory")                                                    \
    X(IO, -14, "INTERNAL", "input/output error")                                                  \
    X(CORRUPT, -15, "INTERNAL", "corrupt data")                                                   \
    X(NOT_LEADER, -16, "NOT_LEADER", "this node is not the leader; send writes there")             \
    X(LIMIT_EXCEEDED, -17, "LIMIT_EXCEEDED", "per-customer limit exceeded")                       \
    X(QUEUED, -18, "QUEUED", "queued: a valid queue token is needed")

enum allot_error {
#define ALLOT_ERROR_ENUM(name, number, wire, message) ALLOT_E##name = (number),
    ALLOT_ERROR_TABLE(ALLOT_ERROR_ENUM)
#undef ALLOT_ERROR_ENUM
};

/* Wire code string for a negative ALLOT_E* value ("INTERNAL" for anything unknown). */
const char *allot_error_code(int error);

/* Default human-readable message for a negative ALLOT_E* value. */
const char *allot_error_message(int error);

#endif
