/* server_check.c - the start-up checks of a configuration, run by --check-config and first thing
 * by server_run (see server.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "core/errors.h"
#include "metrics_http.h"
#include "persist/checkpoint.h"
#include "server_internal.h"

int server_listen_address(const server_config_t *config, struct sockaddr_storage *address)
{
    const char *host = config->listen_host;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (uv_ip4_addr(host, config->listen_port, (struct sockaddr_in *)address) == 0)
        return 0;
    if (uv_ip6_addr(host, config->listen_port, (struct sockaddr_in6 *)address) == 0)
        return 0;
    return ALLOT_EINVALID_ARGUMENT;
}

static int check_fail(server_check_t *check, const char *event, const char *format, const char *a,
                      const char *b)
{
    check->event = event;
    snprintf(check->message, sizeof(check->message), format, a, b);
    return ALLOT_EINVALID_ARGUMENT;
}

/* path, when it exists, is a directory (want_dir) or a regular file this process may read and
 * write (and enter); *exists tells whether it does. */
static int path_check(server_check_t *check, const char *path, bool want_dir, bool *exists)
{
    struct stat st;
    *exists = stat(path, &st) == 0;
    if (!*exists && errno == ENOENT)
        return 0;
    if (!*exists)
        return check_fail(check, "data_dir_failed", "%s: %s", path, strerror(errno));
    if (want_dir && !S_ISDIR(st.st_mode))
        return check_fail(check, "data_dir_failed", "%s: %s", path, "not a directory");
    if (!want_dir && !S_ISREG(st.st_mode))
        return check_fail(check, "data_dir_failed", "%s: %s", path, "not a regular file");
    if (access(path, want_dir ? R_OK | W_OK | X_OK : R_OK | W_OK) != 0)
        return check_fail(check, "data_dir_failed", "%s: %s", path, strerror(errno));
    return 0;
}

/* The data directory, its wal/ and state.lmdb can be created or are usable by this user: what
 * start-up's mkdir and opens would find, short of opening anything. */
static int data_dir_check(const server_config_t *config, server_check_t *check)
{
    bool exists;
    int rc = path_check(check, config->data_dir, true, &exists);
    if (rc != 0)
        return rc;
    char path[SERVER_PATH_BYTES_MAX + 32];
    if (!exists) { /* start-up creates it: its parent must take a new directory */
        snprintf(path, sizeof(path), "%s", config->data_dir);
        size_t len = strlen(path);
        while (len > 1 && path[len - 1] == '/')
            path[--len] = '\0';
        char *slash = strrchr(path, '/');
        if (slash == path)
            slash[1] = '\0';
        else if (slash != NULL)
            *slash = '\0';
        else
            snprintf(path, sizeof(path), ".");
        if (access(path, W_OK | X_OK) != 0)
            return check_fail(check, "data_dir_failed", "%s: cannot create it: %s",
                              config->data_dir, strerror(errno));
        return 0;
    }
    snprintf(path, sizeof(path), "%s/wal", config->data_dir);
    rc = path_check(check, path, true, &exists);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/%s", config->data_dir, CHECKPOINT_FILE_NAME);
        rc = path_check(check, path, false, &exists);
    }
    return rc;
}

/* A group: this node among three or five (at most seven) members, or no group at all. */
static int group_check(const server_config_t *config, server_check_t *check)
{
    bool self = false;
    for (size_t i = 0; i < config->member_count; i++)
        self = self || config->members[i].id == config->node_id;
    if (config->member_count == 0 ? config->node_id == 0 : self)
        return 0;
    check->event = "group_config_failed";
    if (config->member_count == 0)
        snprintf(check->message, sizeof(check->message),
                 "--node-id %u needs the group's members (--peer, one per member)",
                 config->node_id);
    else
        snprintf(check->message, sizeof(check->message),
                 "--node-id %u is not among the %zu members given with --peer", config->node_id,
                 config->member_count);
    return ALLOT_EINVALID_ARGUMENT;
}

int server_config_check(const server_config_t *config, server_check_t *check)
{
    check->event = NULL;
    check->message[0] = '\0';
    struct sockaddr_storage address;
    if (server_listen_address(config, &address) != 0)
        return check_fail(check, "listen_failed", "listen host '%s' is not an IP address%s",
                          config->listen_host, " (nor localhost)");
    if (config->metrics_host[0] != '\0' &&
        metrics_http_address_check(config->metrics_host, check->message, sizeof(check->message)) !=
            0) {
        check->event = "metrics_listen_failed";
        return ALLOT_EINVALID_ARGUMENT;
    }
    struct in_addr http_address;
    if (config->http_host[0] != '\0' && strcmp(config->http_host, "localhost") != 0 &&
        inet_pton(AF_INET, config->http_host, &http_address) != 1)
        return check_fail(check, "http_listen_failed",
                          "--http needs an IPv4 HOST:PORT (or localhost), got host '%s'%s",
                          config->http_host, "");
    if (config->auth_token_file[0] != '\0') {
        auth_token_t token;
        int rc = auth_token_load(&token, config->auth_token_file, check->message,
                                 sizeof(check->message));
        explicit_bzero(&token, sizeof(token));
        if (rc != 0) {
            check->event = "auth_config_failed";
            return ALLOT_EINVALID_ARGUMENT;
        }
    }
    int rc = group_check(config, check);
    return rc != 0 ? rc : data_dir_check(config, check);
}
