/* harness.h - starts the real allotd for integration tests and talks to it through liballot.
 *
 * Contract (Criterion tests only; functions that "assert" fail the current test with a message):
 *   - harness_server_start makes a fresh data dir (/tmp/allot-test-XXXXXX), picks a free port on
 *     127.0.0.1 below the ephemeral range (harness_port_reserve), runs `ALLOTD_PATH --listen
 * 127.0.0.1:PORT --data-dir DIR [extra args]` with stdout/stderr appended to DIR/allotd.log, and
 * returns once `ping` answers "pong" (10 s limit; on failure the log is dumped to stderr and the
 * test fails). A port taken between probing and binding is retried with another port.
 *   - Extra args are split on blanks (no quoting). The server never outlives the test process:
 *     it gets PR_SET_PDEATHSIG=SIGKILL, and an atexit hook kills and reaps every server still
 *     running and removes its data dir. SIGPIPE is ignored in the test process.
 *   - Set ALLOT_TEST_KEEP_DATA=1 to keep data dirs (and logs) for debugging.
 *   - Exit statuses are decoded: the exit code, or 128 + signal number.
 */
#ifndef ALLOT_TESTS_HARNESS_H
#define ALLOT_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "client/client.h"

#define HARNESS_START_TIMEOUT_MS 10000
#define HARNESS_STOP_TIMEOUT_MS  10000
#define HARNESS_ARGS_MAX         32

typedef struct harness_server {
    pid_t pid; /* 0 when not running */
    uint16_t port;
    char data_dir[256];
    char log_path[300];
    char *argv[HARNESS_ARGS_MAX + 8]; /* the command line of the last start (owned) */
    int exit_status;                  /* of the last stop / kill / failed start; -1 before */
} harness_server_t;

/* Start a server (asserts it came up). extra_args may be NULL. */
harness_server_t *harness_server_start(const char *extra_args);
/* Same with extra arguments given as a NULL-terminated array. */
harness_server_t *harness_server_start_argv(const char *const *extra_argv);

/* SIGTERM, wait (asserts exit within HARNESS_STOP_TIMEOUT_MS, else SIGKILL); asserts status 0.
 * Returns the exit status. */
int harness_server_stop(harness_server_t *s);
/* As stop, without asserting the status. */
int harness_server_stop_unchecked(harness_server_t *s);
/* SIGKILL and reap; returns the status (137). */
int harness_server_kill9(harness_server_t *s);
/* Stop (if running, asserting a clean exit) and start again on the same data dir and port. */
void harness_server_restart(harness_server_t *s);
/* Start again (the server must not be running) without asserting: true when it answered ping,
 * false when it exited (s->exit_status set) or did not answer in time (then it is killed). */
bool harness_server_restart_try(harness_server_t *s, int timeout_ms);
/* A free port on 127.0.0.1 below the kernel's ephemeral range (from 20000), as
 * harness_server_start picks one: no bind to port 0 and no outgoing connection can take it while
 * a server that listens there is down (killed, restarting); locked under /tmp/allot-test-ports/
 * for the life of the test process, so other test processes using this harness skip it. Asserts
 * one is found. */
uint16_t harness_port_reserve(void);
/* The lowest port of the kernel's ephemeral range (bind to port 0 and outgoing connections take
 * theirs from it); 32768 when it cannot be read. */
unsigned harness_port_ephemeral_floor(void);
/* Make a server's data dir and command line for `port` without starting it: a member of a group,
 * whose ports every member must know before any of them starts. Start it with
 * harness_server_restart_try or harness_server_restart. */
harness_server_t *harness_server_prepare_argv(uint16_t port, const char *const *extra_argv);
/* Wait up to timeout_ms for a running server to exit on its own: true with s->exit_status set. */
bool harness_server_exit_wait(harness_server_t *s, int timeout_ms);
/* Kill if running, remove the data dir (unless ALLOT_TEST_KEEP_DATA), free. NULL is fine. */
void harness_server_destroy(harness_server_t *s);

/* VmRSS of the running server in KiB (asserts it can be read). */
long harness_server_rss_kb(const harness_server_t *s);
const char *harness_server_log(const harness_server_t *s);
/* The whole log as a malloc'ed string (caller frees; "" when missing). */
char *harness_server_log_read(const harness_server_t *s);
/* DIR/relative written into buf; returns buf. */
const char *harness_server_path(const harness_server_t *s, const char *relative, char *buf,
                                size_t buf_bytes);

/* Connect a client with the default timeout (asserts). Free with allot_client_close. */
allot_client_t *harness_connect(const harness_server_t *s);
/* A bare TCP socket connected to 127.0.0.1:port (asserts), for tests that write raw bytes; sends
 * time out after 5 s so that a server that stops reading fails the test instead of hanging it. */
int harness_socket_connect(uint16_t port);
/* Call and assert the transport worked (the reply may still be an error reply). Returns 0. */
int harness_call_json(allot_client_t *c, const char *method, const char *params_json,
                      allot_reply_t *reply);
/* Call and assert a successful reply. */
void harness_call_ok(allot_client_t *c, const char *method, const char *params_json,
                     allot_reply_t *reply);
/* Call and assert an error reply with this code (e.g. "NOT_FOUND"). */
void harness_call_error(allot_client_t *c, const char *method, const char *params_json,
                        const char *code, allot_reply_t *reply);
/* The reply's result (or error when is_error) as compact JSON (malloc'ed; caller frees). */
char *harness_reply_json(const allot_reply_t *reply);

/* Run a program to completion (killed after timeout_ms): argv[0] is a path, stdin_text (may be
 * NULL) is fed to its stdin, stdout/stderr are captured into malloc'ed strings (either out
 * pointer may be NULL). Returns the decoded exit status. Asserts it could be run. */
int harness_run(const char *const *argv, const char *stdin_text, int timeout_ms, char **out,
                char **err);

#endif
