/* test_persist_pages_warm.c - fresh table pages faulted in off the writing thread, and never at
 * an address whose mapping went away. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "test_resident_pages.h"

#include "core/pages.h"
#include "persist/pages_warm.h"

#define MIB (1024u * 1024u)

/* Until the warmer has nothing queued or in flight (a guard of minutes, not a timing). */
static pages_warm_stats_t warm_idle_wait(pages_warm_t *warm)
{
    const struct timespec pause = {0, 1000 * 1000};
    for (int i = 0; i < 120000; i++) {
        pages_warm_stats_t stats = pages_warm_stats(warm);
        if (stats.bytes_pending == 0)
            return stats;
        nanosleep(&pause, NULL);
    }
    cr_assert_fail("the warmer never went idle");
    return (pages_warm_stats_t){0};
}

Test(pages_warm, fresh_table_pages_are_resident_before_anything_writes_them)
{
    /* without the warmer a new mapping has no page until it is written (the old way) */
    unsigned char *cold = allot_pages_alloc(8 * MIB);
    cr_assert_not_null(cold);
    cr_assert_eq(test_resident_pages(cold, 8 * MIB), 0);
    allot_pages_free(cold, 8 * MIB);

    pages_warm_t *warm = pages_warm_start();
    cr_assert_not_null(warm);
    unsigned char *block = allot_pages_alloc(8 * MIB);
    cr_assert_not_null(block);
    pages_warm_stats_t stats = warm_idle_wait(warm);
    if (stats.bytes_warmed == 0 && stats.ranges_dropped > 0)
        cr_skip_test("no MADV_POPULATE_WRITE in this kernel");
    cr_assert_eq(test_resident_pages(block, 8 * MIB), 8 * MIB / 4096,
                 "all faulted in, none written");
    cr_assert_geq(stats.bytes_warmed, 8 * MIB);
    for (size_t i = 0; i < 8 * MIB; i += 4096)
        cr_assert_eq(block[i], 0, "still zeroed at %zu", i);
    block[5] = 7;
    /* a growth's first lead is faulted in too, and what the block held stays; then the fill
     * moves the window: coming within a lead of a huge page faults that one in */
    const size_t lead = 2 * MIB; /* whole pages: what is resident does not depend on THP */
    unsigned char *grown = allot_pages_resize(block, 8 * MIB, 24 * MIB, lead);
    cr_assert_not_null(grown);
    stats = warm_idle_wait(warm);
    cr_assert_eq(test_resident_pages(grown, 24 * MIB), (8 * MIB + lead) / 4096);
    cr_assert_eq(grown[5], 7);
    size_t next = 12 * MIB; /* a huge page above the growth's first lead */
    allot_pages_filled(grown, 24 * MIB, lead, next - lead - 16, next - lead);
    stats = warm_idle_wait(warm);
    cr_assert_eq(test_resident_pages(grown + next, 2 * MIB), 2 * MIB / 4096);
    cr_assert_eq(test_resident_pages(grown + next + 2 * MIB, 24 * MIB - next - 2 * MIB), 0,
                 "nothing beyond the window");
    cr_assert_geq(stats.bytes_warmed, 8 * MIB + lead + 2 * MIB);
    cr_assert_eq(stats.ranges_dropped, 0);
    allot_pages_free(grown, 24 * MIB);
    pages_warm_stop(warm);
}

Test(pages_warm, a_range_unmapped_before_its_turn_is_never_populated_at_its_old_address)
{
    pages_warm_t *warm = pages_warm_start();
    cr_assert_not_null(warm);
    /* queued: 4 x 64 MiB; the last three go away (retired) before the warmer can reach them */
    unsigned char *blocks[4];
    for (int i = 0; i < 4; i++) {
        blocks[i] = allot_pages_alloc(64 * MIB);
        cr_assert_not_null(blocks[i]);
    }
    for (int i = 1; i < 4; i++)
        allot_pages_free(blocks[i], 64 * MIB);
    /* a mapping of someone else's at the same addresses (as LMDB's could be) */
    unsigned char *other[4];
    for (int i = 1; i < 4; i++) {
        other[i] = mmap(blocks[i], 64 * MIB, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        cr_assert_eq(other[i], blocks[i]);
    }
    warm_idle_wait(warm);
    for (int i = 1; i < 4; i++)
        cr_assert_eq(test_resident_pages(other[i], 64 * MIB), 0, "mapping %d was populated", i);
    for (int i = 1; i < 4; i++)
        munmap(other[i], 64 * MIB);
    allot_pages_free(blocks[0], 64 * MIB);
    pages_warm_stop(warm);
}

Test(pages_warm, stops_at_once_with_ranges_queued_and_removes_its_hooks)
{
    pages_warm_t *warm = pages_warm_start();
    cr_assert_not_null(warm);
    unsigned char *a = allot_pages_alloc(128 * MIB), *b = allot_pages_alloc(128 * MIB);
    cr_assert(a != NULL && b != NULL);
    pages_warm_stop(warm); /* joins the thread; frees its queue (ASan: nothing leaks) */
    allot_pages_free(a, 128 * MIB);
    allot_pages_free(b, 128 * MIB);
    unsigned char *c = allot_pages_alloc(8 * MIB);
    cr_assert_not_null(c);
    cr_assert_eq(test_resident_pages(c, 8 * MIB), 0, "no hooks: nothing warms it");
    allot_pages_free(c, 8 * MIB);
    pages_warm_stop(NULL);
}
