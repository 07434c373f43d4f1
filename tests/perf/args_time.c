/* args_time.c - CPU time of reading the hot methods' arguments, the key check plus the getters
 * against the one-pass scan (net/args_typed.h), on the params allot-bench sends; run by hand
 * (docs/benchmarks.md), never by ctest: it measures, it checks nothing.
 *
 * usage: args_time [ROUNDS]   (each round times 200,000 reads of each path, interleaved; the
 * thread's CPU clock, so time the scheduler gives to others does not count) */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/args.h"
#include "net/args_typed.h"
#include "net/dispatch.h"

#define ARGS_TIME_READS 200000

static double thread_cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void pack_text(msgpack_packer *pk, const char *text)
{
    msgpack_pack_str_with_body(pk, text, strlen(text));
}

/* reserve as allot-bench's reserve scenario sends it: {id, lines: [{sku, qty}], ttl_s} */
static void reserve_params(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pack_text(pk, "id");
    pack_text(pk, "r-1-000123456");
    pack_text(pk, "lines");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    pack_text(pk, "sku");
    pack_text(pk, "SKU-000042");
    pack_text(pk, "qty");
    msgpack_pack_int(pk, 1);
    pack_text(pk, "ttl_s");
    msgpack_pack_int(pk, 600);
}

/* avail.get of one SKU (browse) */
static void avail_params(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pack_text(pk, "skus");
    msgpack_pack_array(pk, 1);
    pack_text(pk, "SKU-000042");
}

/* order.create from a reservation (checkout) */
static void order_create_params(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pack_text(pk, "id");
    pack_text(pk, "o-1-000123456");
    pack_text(pk, "reservation");
    pack_text(pk, "r-1-000123456");
    pack_text(pk, "customer");
    pack_text(pk, "customer-42");
}

static const char *const read_keys[] = {"min_index", "wait_ms", NULL};
static args_typed_t typed;
static volatile int sink;

/* What the dispatcher did before for one request: the key check, the getters, and for a read
 * the search for min_index. */
static int generic_read(int method, const command_t *command, const msgpack_object *params)
{
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    int rc = args_check_keys_also(params, command->allowed_keys, method == 1 ? read_keys : NULL,
                                  "params", &error);
    if (method == 0)
        return rc | args_reserve_get(params, &typed.reserve, &error);
    if (method == 1)
        return rc | args_avail_get(params, &typed.avail, &error) |
               (args_find(params, "min_index") != NULL);
    return rc | args_order_create_get(params, &typed.order_create, &error);
}

static bool scan_read(int method, const msgpack_object *params)
{
    if (method == 0)
        return args_reserve_scan(params, &typed.reserve);
    if (method == 1)
        return args_avail_scan(params, &typed.avail);
    return args_order_create_scan(params, &typed.order_create);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*params)(msgpack_packer *pk);
    } methods[] = {{"reserve", reserve_params},
                   {"avail.get", avail_params},
                   {"order.create", order_create_params}};
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    if (rounds < 1)
        rounds = 1;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    printf("%-13s %20s %20s %12s\n", "method", "getters ns (best)", "scan ns (best)",
           "scan/getters");
    for (int m = 0; m < 3; m++) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
        buffer.size = 0;
        methods[m].params(&pk);
        char *bytes = msgpack_zone_malloc(&zone, buffer.size);
        memcpy(bytes, buffer.data, buffer.size);
        msgpack_object params;
        size_t offset = 0;
        if (msgpack_unpack(bytes, buffer.size, &offset, &zone, &params) != MSGPACK_UNPACK_SUCCESS)
            return 1;
        const command_t *command = command_lookup(methods[m].name, strlen(methods[m].name));
        if (generic_read(m, command, &params) != 0 || !scan_read(m, &params))
            return 1; /* both paths must read it */
        double generic_sum = 0, scan_sum = 0, generic_best = 1e18, scan_best = 1e18;
        for (int r = 0; r < rounds; r++) {
            double t0 = thread_cpu_ns();
            for (int i = 0; i < ARGS_TIME_READS; i++)
                sink += generic_read(m, command, &params);
            double t1 = thread_cpu_ns();
            for (int i = 0; i < ARGS_TIME_READS; i++)
                sink += scan_read(m, &params);
            double t2 = thread_cpu_ns();
            double generic_ns = (t1 - t0) / ARGS_TIME_READS, scan_ns = (t2 - t1) / ARGS_TIME_READS;
            generic_sum += generic_ns;
            scan_sum += scan_ns;
            generic_best = generic_ns < generic_best ? generic_ns : generic_best;
            scan_best = scan_ns < scan_best ? scan_ns : scan_best;
        }
        printf("%-13s %11.1f (%6.1f) %11.1f (%6.1f) %12.2f\n", methods[m].name,
               generic_sum / rounds, generic_best, scan_sum / rounds, scan_best,
               scan_best / generic_best);
    }
    msgpack_sbuffer_destroy(&buffer);
    msgpack_zone_destroy(&zone);
    return 0;
}
