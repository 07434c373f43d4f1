/* unpack_count.c - an LD_PRELOAD shim that counts a process's msgpack_unpack calls and writes the
 * count, at exit, to the file named by ALLOT_UNPACK_COUNT_FILE; test_request_timing.c runs allotd
 * under it to see that requests are decoded in one pass, not framed and then unpacked. */
#include <dlfcn.h>
#include <msgpack.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef msgpack_unpack_return (*msgpack_unpack_fn)(const char *, size_t, size_t *, msgpack_zone *,
                                                   msgpack_object *);

static _Atomic unsigned long long unpack_calls;

msgpack_unpack_return msgpack_unpack(const char *data, size_t len, size_t *off,
                                     msgpack_zone *result_zone, msgpack_object *result)
{
    static msgpack_unpack_fn next;
    if (next == NULL)
        next = (msgpack_unpack_fn)dlsym(RTLD_NEXT, "msgpack_unpack");
    atomic_fetch_add_explicit(&unpack_calls, 1, memory_order_relaxed);
    return next(data, len, off, result_zone, result);
}

__attribute__((destructor)) static void unpack_count_write(void)
{
    const char *path = getenv("ALLOT_UNPACK_COUNT_FILE");
    if (path == NULL)
        return;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    fprintf(f, "%llu\n", (unsigned long long)atomic_load(&unpack_calls));
    fclose(f);
}
