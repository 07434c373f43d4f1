/* test_docs.c - every CLI session the docs show is replayed verbatim against one fresh server, in
 * the order README.md, docs/<name>.md (alphabetical), so a document that depends on another's ids
 * or state, or an example whose output changed, fails here.
 *
 * What counts as a session: a fenced code block with lines starting `$ `. Each such line is a
 * command, run by /bin/sh exactly as written (stdout and stderr together; `allot` and
 * `./build/release/allot` are the built CLI, pointed at the test server); the lines up to the
 * next `$ ` line are what it prints. A heredoc (`<<'EOF'`) takes the lines up to `EOF` as part of
 * the command. `$ echo $?` checks the exit status of the command before it. A command shown
 * without output must exit 0. `$ allot` alone followed by prompt lines (`allot HOST:PORT> line`)
 * is an interactive session: the typed lines are sent in order and what follows each prompt is
 * compared with what allot prints for it (the banner and prompts are the terminal's).
 * Matching: `...` stands for any text (also across lines); the number after a key ending in
 * `_ms` or `_lsn` (a time, a log position) matches any number; trailing blanks are ignored.
 * A block right after `<!-- doc-test: skip (why) -->` is not replayed (e.g. it needs a token).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define DOC_LINES_MAX      4096
#define DOC_TIMEOUT_MS     20000
#define DOC_TEXT_BYTES     (64 * 1024)
#define DOC_PROMPT_MARK    "> "
#define DOC_LINE_BYTES_MAX 1024

static harness_server_t *server;
static char work_dir[64];
static size_t commands_replayed;

typedef struct doc {
    const char *name;
    char *text;
    char *lines[DOC_LINES_MAX];
    size_t count;
} doc_t;

static void doc_load(doc_t *d, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", ALLOT_SOURCE_DIR, name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    d->text = calloc(1, 1 << 20);
    size_t n = fread(d->text, 1, (1 << 20) - 1, f);
    fclose(f);
    d->name = name;
    d->count = 0;
    for (char *line = d->text; line != NULL && line < d->text + n && d->count < DOC_LINES_MAX;) {
        char *newline = strchr(line, '\n');
        if (newline != NULL)
            *newline = '\0';
        d->lines[d->count++] = line;
        line = newline != NULL ? newline + 1 : NULL;
    }
}

/* ---- matching ------------------------------------------------------------------------------ */

/* Copy text with trailing blanks of every line and trailing newlines removed, and the digits
 * after `_ms"` / `_lsn"` keys (then `:` and blanks) replaced by `N`. */
static char *normalize(const char *text)
{
    size_t len = strlen(text);
    char *out = calloc(1, len + 1);
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\r')
            continue;
        if (c == '\n')
            while (used > 0 && (out[used - 1] == ' ' || out[used - 1] == '\t'))
                used--;
        out[used++] = c;
        bool time_key = (used >= 4 && memcmp(out + used - 4, "_ms\"", 4) == 0) ||
                        (used >= 5 && memcmp(out + used - 5, "_lsn\"", 5) == 0);
        if (!time_key)
            continue;
        size_t j = i + 1;
        if (j < len && text[j] == ':') {
            while (j + 1 < len && (text[j + 1] == ' ' || text[j + 1] == ':'))
                j++;
            size_t digits = j + 1;
            while (digits < len && isdigit((unsigned char)text[digits]))
                digits++;
            if (digits > j + 1) {
                memcpy(out + used, text + i + 1, j - i);
                used += j - i;
                out[used++] = 'N';
                i = digits - 1;
            }
        }
    }
    while (used > 0 && (out[used - 1] == '\n' || out[used - 1] == ' ' || out[used - 1] == '\t'))
        used--;
    out[used] = '\0';
    return out;
}

/* Glob match: "..." in pattern matches any text. Iterative with one backtrack point. */
static bool glob_match(const char *pattern, const char *text)
{
    const char *star = NULL, *resume = NULL;
    while (*text != '\0') {
        if (strncmp(pattern, "...", 3) == 0) {
            star = pattern += 3;
            resume = text;
        } else if (*pattern == *text) {
            pattern++;
            text++;
        } else if (star != NULL) {
            pattern = star;
            text = ++resume;
        } else {
            return false;
        }
    }
    while (strncmp(pattern, "...", 3) == 0)
        pattern += 3;
    return *pattern == '\0';
}

static void expect_output(const doc_t *d, size_t line, const char *command, const char *expected,
                          const char *actual)
{
    char *e = normalize(expected), *a = normalize(actual);
    cr_expect(glob_match(e, a), "%s:%zu: `%s` printed\n%s\nbut the document shows\n%s", d->name,
              line + 1, command, a, e);
    free(e);
    free(a);
}

/* ---- running ------------------------------------------------------------------------------- */

/* Run a command as the document writes it, in the work dir where `allot` and
 * `./build/release/allot` reach the test server; stdout and stderr together. */
static int command_run(const char *command, const char *stdin_text, char **output)
{
    size_t bytes = strlen(command) + 512;
    char *script = malloc(bytes);
    snprintf(script, bytes, "cd %s && PATH=%s/bin:$PATH && {\n%s\n} 2>&1", work_dir, work_dir,
             command);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    char *err = NULL;
    int status = harness_run(argv, stdin_text, DOC_TIMEOUT_MS, output, &err);
    free(err);
    free(script);
    commands_replayed++;
    return status;
}

static void wrapper_write(const char *path)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fprintf(f, "#!/bin/sh\nexec %s -p %u \"$@\"\n", ALLOT_CLI_PATH, (unsigned)server->port);
    fclose(f);
    cr_assert_eq(chmod(path, 0755), 0);
}

static void setup(void)
{
    server = harness_server_start(NULL);
    snprintf(work_dir, sizeof(work_dir), "/tmp/allot-docs-XXXXXX");
    cr_assert_not_null(mkdtemp(work_dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/bin", work_dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/bin/allot", work_dir);
    wrapper_write(path);
    snprintf(path, sizeof(path), "%s/build", work_dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/build/release", work_dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/build/release/allot", work_dir);
    wrapper_write(path);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", work_dir);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", work_dir);
    harness_server_destroy(server);
}

/* ---- sessions ------------------------------------------------------------------------------ */

static bool is_command(const char *line)
{
    return strncmp(line, "$ ", 2) == 0;
}

static bool is_fence(const char *line)
{
    return strncmp(line, "```", 3) == 0 || strncmp(line, "  ```", 5) == 0;
}

/* Wait (DOC_TIMEOUT_MS at most) until the terminal shows the prompt again (after what `shown`
 * holds already), or closes; appends what it showed to shown. False when it closed. */
static bool terminal_read_until_prompt(int master, char *shown, size_t bytes, const char *prompt)
{
    size_t since = strlen(shown); /* a new prompt, after what was shown before */
    for (int waited_ms = 0; waited_ms < DOC_TIMEOUT_MS;) {
        size_t used = strlen(shown);
        size_t plen = strlen(prompt);
        if (used >= since + plen && strcmp(shown + used - plen, prompt) == 0)
            return true;
        struct pollfd p = {.fd = master, .events = POLLIN};
        if (poll(&p, 1, 50) == 0) {
            waited_ms += 50;
            continue;
        }
        ssize_t n = read(master, shown + used, bytes - used - 1);
        if (n <= 0)
            return false;
        shown[used + (size_t)n] = '\0';
    }
    cr_assert_fail("no prompt on the terminal; it showed: %s", shown);
    return false;
}

/* Typed text that reaches the terminal before the line editor has it is echoed twice (by the
 * terminal, then by the editor): keep one. */
static void typed_echo_once(char *shown, const char *typed)
{
    char twice[2 * DOC_LINE_BYTES_MAX];
    snprintf(twice, sizeof(twice), "%s\r\n%s\r\n", typed, typed);
    char *at = strstr(shown, twice);
    if (at != NULL)
        memmove(at + strlen(typed) + 2, at + 2 * (strlen(typed) + 2),
                strlen(at + 2 * (strlen(typed) + 2)) + 1);
}

/* `$ allot` alone, then prompt lines: on a real terminal (a pseudo-terminal), type each line
 * once the prompt shows, and compare the whole screen with the document (whose address
 * 127.0.0.1:7411 stands for the test server's). */
static size_t interactive_replay(const doc_t *d, size_t at, size_t end)
{
    char *expected = calloc(1, DOC_TEXT_BYTES), *shown = calloc(1, DOC_TEXT_BYTES);
    char address[32], prompt[64];
    snprintf(address, sizeof(address), "127.0.0.1:%u", (unsigned)server->port);
    snprintf(prompt, sizeof(prompt), "allot %s> ", address);
    size_t i = at + 1;
    for (; i < end && !is_command(d->lines[i]); i++) {
        const char *line = d->lines[i];
        const char *doc_address = strstr(line, "127.0.0.1:7411");
        size_t used = strlen(expected);
        if (doc_address != NULL)
            snprintf(expected + used, DOC_TEXT_BYTES - used, "%.*s%s%s\n",
                     (int)(doc_address - line), line, address, doc_address + 14);
        else
            snprintf(expected + used, DOC_TEXT_BYTES - used, "%s\n", line);
    }
    struct winsize size = {.ws_row = 50, .ws_col = 1000};
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, &size);
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char wrapper[128];
        snprintf(wrapper, sizeof(wrapper), "%s/bin/allot", work_dir);
        setenv("HOME", "/nonexistent", 1); /* no history file */
        setenv("TERM", "dumb", 1);
        execl(wrapper, "allot", (char *)NULL);
        _exit(127);
    }
    /* type each line the document shows after a prompt, once the prompt is there */
    for (size_t k = at + 1; k < i; k++) {
        const char *mark = strstr(d->lines[k], DOC_PROMPT_MARK);
        if (strncmp(d->lines[k], "allot ", 6) != 0 || mark == NULL)
            continue;
        if (!terminal_read_until_prompt(master, shown, DOC_TEXT_BYTES, prompt))
            break;
        const char *typed = mark + strlen(DOC_PROMPT_MARK);
        cr_assert_eq(write(master, typed, strlen(typed)), (ssize_t)strlen(typed));
        cr_assert_eq(write(master, "\n", 1), 1);
    }
    while (terminal_read_until_prompt(master, shown, DOC_TEXT_BYTES, "\x01never"))
        ;
    close(master);
    int status;
    waitpid(pid, &status, 0);
    for (size_t k = at + 1; k < i; k++)
        if (strncmp(d->lines[k], "allot ", 6) == 0 && strstr(d->lines[k], DOC_PROMPT_MARK) != NULL)
            typed_echo_once(shown, strstr(d->lines[k], DOC_PROMPT_MARK) + 2);
    commands_replayed++;
    expect_output(d, at, "allot (interactive session)", expected, shown);
    free(shown);
    free(expected);
    return i;
}

/* The command starting at line `at` (with its heredoc lines); returns the next line. */
static size_t command_text(const doc_t *d, size_t at, size_t end, char *command, size_t bytes)
{
    snprintf(command, bytes, "%s", d->lines[at] + 2);
    size_t i = at + 1;
    if (strstr(command, "<<'EOF'") == NULL && strstr(command, "<<EOF") == NULL)
        return i;
    for (; i < end; i++) {
        size_t used = strlen(command);
        snprintf(command + used, bytes - used, "\n%s", d->lines[i]);
        if (strcmp(d->lines[i], "EOF") == 0)
            return i + 1;
    }
    cr_assert_fail("%s:%zu: a heredoc without EOF", d->name, at + 1);
    return end;
}

/* Replay the session in lines [begin, end) of a fenced block. */
static void block_replay(const doc_t *d, size_t begin, size_t end)
{
    int last_status = 0;
    char *command = calloc(1, DOC_TEXT_BYTES), *expected = calloc(1, DOC_TEXT_BYTES);
    for (size_t i = begin; i < end;) {
        if (!is_command(d->lines[i])) {
            i++;
            continue;
        }
        size_t at = i;
        if (strcmp(d->lines[i], "$ allot") == 0 ||
            strcmp(d->lines[i], "$ ./build/release/allot") == 0) {
            i = interactive_replay(d, at, end);
            continue;
        }
        i = command_text(d, at, end, command, DOC_TEXT_BYTES);
        expected[0] = '\0';
        for (; i < end && !is_command(d->lines[i]); i++) {
            size_t used = strlen(expected);
            snprintf(expected + used, DOC_TEXT_BYTES - used, "%s\n", d->lines[i]);
        }
        if (strcmp(command, "echo $?") == 0) {
            char status_text[16];
            snprintf(status_text, sizeof(status_text), "%d", last_status);
            expect_output(d, at, "echo $?", expected, status_text);
            continue;
        }
        char *output = NULL;
        last_status = command_run(command, NULL, &output);
        bool status_shown = i < end && strcmp(d->lines[i], "$ echo $?") == 0;
        if (expected[0] != '\0')
            expect_output(d, at, command, expected, output);
        else if (!status_shown)
            cr_expect_eq(last_status, 0, "%s:%zu: `%s` exited %d (the document shows no error): %s",
                         d->name, at + 1, command, last_status, output);
        free(output);
    }
    free(command);
    free(expected);
}

/* Every session of one document; returns how many blocks were replayed. */
static size_t doc_replay(const char *name)
{
    doc_t d;
    doc_load(&d, name);
    size_t blocks = 0;
    for (size_t i = 0; i < d.count; i++) {
        if (!is_fence(d.lines[i]))
            continue;
        size_t end = i + 1;
        while (end < d.count && !is_fence(d.lines[end]))
            end++;
        bool skip = false;
        for (size_t back = i; back > 0 && back + 3 > i; back--)
            skip = skip || strstr(d.lines[back - 1], "<!-- doc-test: skip") != NULL;
        bool session = false;
        for (size_t k = i + 1; k < end; k++)
            session = session || is_command(d.lines[k]);
        if (session && !skip) {
            block_replay(&d, i + 1, end);
            blocks++;
        }
        i = end;
    }
    free(d.text);
    return blocks;
}

static int name_compare(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

Test(docs, every_documented_cli_session_replays_verbatim_on_one_fresh_server, .init = setup,
     .fini = teardown, .timeout = 120)
{
    size_t blocks = doc_replay("README.md");
    DIR *dir = opendir(ALLOT_SOURCE_DIR "/docs");
    cr_assert_not_null(dir);
    char *names[64];
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && count < 64) {
        size_t len = strlen(entry->d_name);
        if (len > 3 && strcmp(entry->d_name + len - 3, ".md") == 0) {
            names[count] = malloc(len + 8);
            snprintf(names[count++], len + 8, "docs/%s", entry->d_name);
        }
    }
    closedir(dir);
    qsort(names, count, sizeof(names[0]), name_compare);
    for (size_t i = 0; i < count; i++) {
        blocks += doc_replay(names[i]);
        free(names[i]);
    }
    cr_log_info("replayed %zu commands in %zu sessions", commands_replayed, blocks);
    cr_expect_geq(blocks, 6, "the docs hold sessions");
    cr_expect_geq(commands_replayed, 30, "the docs hold commands (%zu)", commands_replayed);
}
