/* sbuffer_count.c - an LD_PRELOAD shim that counts a process's realloc(NULL, 8192) calls (the
 * first allocation of a msgpack_sbuffer: MSGPACK_SBUFFER_INIT_SIZE) and writes the count, at
 * exit, to the file named by ALLOT_SBUFFER_COUNT_FILE; test_request_timing.c runs allotd under it
 * to see that a connection's replies reuse the server's spare buffers instead of allocating one
 * per read. */
#include <dlfcn.h>
#include <msgpack.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef void *(*realloc_fn)(void *, size_t);

static _Atomic unsigned long long fresh_sbuffers;

void *realloc(void *ptr, size_t size)
{
    static realloc_fn next;
    if (next == NULL)
        next = (realloc_fn)dlsym(RTLD_NEXT, "realloc");
    if (ptr == NULL && size == MSGPACK_SBUFFER_INIT_SIZE)
        atomic_fetch_add_explicit(&fresh_sbuffers, 1, memory_order_relaxed);
    return next(ptr, size);
}

__attribute__((destructor)) static void sbuffer_count_write(void)
{
    const char *path = getenv("ALLOT_SBUFFER_COUNT_FILE");
    if (path == NULL)
        return;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    fprintf(f, "%llu\n", (unsigned long long)atomic_load(&fresh_sbuffers));
    fclose(f);
}
