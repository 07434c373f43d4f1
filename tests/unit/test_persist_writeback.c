/* test_persist_writeback.c - the paced write-out (persist/writeback.h): it leaves no dirty page
 * in the range it is given, written with pwrite or through a shared map (state.lmdb's
 * MDB_WRITEMAP), touches nothing past it, and reports a bad descriptor. The page cache's own
 * count of a file's dirty pages (cachestat, Linux 6.5) is the witness; without it the tests are
 * skipped. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/limits.h"
#include "persist/writeback.h"

#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif

/* The kernel's cachestat(2) structures (linux/mman.h from 6.5 on). */
typedef struct page_cache_range {
    uint64_t offset;
    uint64_t length;
} page_cache_range_t;

typedef struct page_cache_stat {
    uint64_t cached;
    uint64_t dirty;
    uint64_t writeback;
    uint64_t evicted;
    uint64_t recently_evicted;
} page_cache_stat_t;

#define FILE_BYTES (8u * PERSIST_WRITEBACK_WINDOW_BYTES + 12345u) /* not whole windows */

static char path[64];
static int fd = -1;

static void setup(void)
{
    snprintf(path, sizeof path, "/tmp/allot-writeback-XXXXXX");
    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
}

static void teardown(void)
{
    close(fd);
    unlink(path);
}

/* Dirty pages (and pages under writeback) of [offset, offset + length). */
static uint64_t pages_not_clean(uint64_t offset, uint64_t length)
{
    page_cache_range_t range = {offset, length};
    page_cache_stat_t stat;
    if (syscall(SYS_cachestat, fd, &range, &stat, 0) != 0) {
        cr_skip_test("no cachestat on this kernel (%s)", strerror(errno));
    }
    return stat.dirty + stat.writeback;
}

static void fill_with_pwrite(uint64_t bytes)
{
    static uint8_t block[64 * 1024];
    memset(block, 0x5a, sizeof block);
    for (uint64_t at = 0; at < bytes; at += sizeof block) {
        size_t n = bytes - at < sizeof block ? (size_t)(bytes - at) : sizeof block;
        cr_assert_eq(pwrite(fd, block, n, (off_t)at), (ssize_t)n);
    }
}

Test(writeback, leaves_no_dirty_page_in_a_file_written_with_pwrite, .init = setup, .fini = teardown)
{
    fill_with_pwrite(FILE_BYTES);
    if (pages_not_clean(0, FILE_BYTES) == 0)
        cr_skip_test("the kernel wrote the pages out by itself: nothing to see");
    cr_assert_eq(persist_writeback_paced(fd, FILE_BYTES), 0);
    cr_assert_eq(pages_not_clean(0, FILE_BYTES), 0, "the last, partial window too");
}

Test(writeback, leaves_no_dirty_page_in_a_shared_map, .init = setup, .fini = teardown)
{
    cr_assert_eq(ftruncate(fd, FILE_BYTES), 0);
    uint8_t *map = mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert_neq(map, MAP_FAILED);
    for (uint64_t at = 0; at < FILE_BYTES; at += 4096)
        map[at] = (uint8_t)at; /* every page dirtied through the map, as LMDB's writes are */
    if (pages_not_clean(0, FILE_BYTES) == 0)
        cr_skip_test("the kernel wrote the pages out by itself: nothing to see");
    cr_assert_eq(persist_writeback_paced(fd, FILE_BYTES), 0);
    cr_assert_eq(pages_not_clean(0, FILE_BYTES), 0);
    munmap(map, FILE_BYTES);
}

Test(writeback, writes_nothing_past_the_bytes_it_is_given, .init = setup, .fini = teardown)
{
    fill_with_pwrite(FILE_BYTES);
    const uint64_t half = 4u * PERSIST_WRITEBACK_WINDOW_BYTES;
    if (pages_not_clean(half, FILE_BYTES - half) == 0)
        cr_skip_test("the kernel wrote the pages out by itself: nothing to see");
    cr_assert_eq(persist_writeback_paced(fd, half), 0);
    cr_assert_eq(pages_not_clean(0, half), 0);
    cr_assert_gt(pages_not_clean(half, FILE_BYTES - half), 0, "the rest is the caller's sync's");
    cr_assert_eq(persist_writeback_paced(fd, 0), 0, "nothing to do");
}

Test(writeback, reports_a_descriptor_it_cannot_use)
{
    cr_assert_eq(persist_writeback_paced(-1, 4096), -EBADF);
}

/* THE PACED MAP: an msync(MS_SYNC) of the registered map is written out a window at a time
 * first (counted), and still syncs; the registration finds the map by its file. */
Test(writeback, an_msync_of_the_registered_map_is_paced_and_syncs, .init = setup, .fini = teardown)
{
    cr_assert_eq(ftruncate(fd, FILE_BYTES), 0);
    cr_assert_eq(persist_writeback_map_set(fd, FILE_BYTES), -ENOENT, "not mapped yet");
    void *reader = mmap(NULL, FILE_BYTES, PROT_READ, MAP_SHARED, fd, 0);
    cr_assert_neq(reader, MAP_FAILED);
    cr_assert_eq(persist_writeback_map_set(fd, FILE_BYTES), -ENOENT, "a reader's map is not it");
    uint8_t *map = mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert_neq(map, MAP_FAILED);
    cr_assert_eq(persist_writeback_map_set(fd, FILE_BYTES), 0);
    for (uint64_t at = 0; at < FILE_BYTES; at += 4096)
        map[at] = (uint8_t)(at >> 12);
    uint64_t syncs = persist_writeback_map_syncs();
    cr_assert_eq(msync(map, FILE_BYTES, MS_SYNC), 0);
    cr_assert_eq(persist_writeback_map_syncs(), syncs + 1);
    cr_assert_eq(pages_not_clean(0, FILE_BYTES), 0);
    cr_assert_eq(msync(map, FILE_BYTES, MS_ASYNC), 0);
    cr_assert_eq(persist_writeback_map_syncs(), syncs + 1, "MS_ASYNC writes nothing itself");
    persist_writeback_map_clear(fd);
    map[0] = 1;
    cr_assert_eq(msync(map, 4096, MS_SYNC), 0);
    cr_assert_eq(persist_writeback_map_syncs(), syncs + 1, "no map registered: the system call");
    cr_assert_eq(pages_not_clean(0, 4096), 0, "which syncs as always");
    munmap(map, FILE_BYTES);
    munmap(reader, FILE_BYTES);
}

/* THE FLUSH GATE: while the WAL commits, a walk writes a window per WAL flush (a window that
 * finds no new flush waits, counted); clean windows need no flush; idle, nothing waits. Each
 * test runs in a process of its own: no flush has happened before it. */
Test(writeback, while_the_wal_commits_each_dirty_window_waits_for_its_next_flush, .init = setup,
     .fini = teardown)
{
    fill_with_pwrite(FILE_BYTES);
    if (pages_not_clean(0, FILE_BYTES) == 0)
        cr_skip_test("the kernel wrote the pages out by itself: nothing to see");
    persist_writeback_flush_done(); /* the WAL has just flushed, and flushes no more */
    uint64_t waits = persist_writeback_gate_waits();
    cr_assert_eq(persist_writeback_paced(fd, FILE_BYTES), 0);
    cr_assert_eq(pages_not_clean(0, FILE_BYTES), 0);
    cr_assert_geq(persist_writeback_gate_waits() - waits, 1, "the window after the first waited");
    waits = persist_writeback_gate_waits();
    persist_writeback_flush_done();
    cr_assert_eq(persist_writeback_paced(fd, FILE_BYTES), 0);
    cr_assert_eq(persist_writeback_gate_waits(), waits, "clean windows: nothing to wait for");
}

Test(writeback, with_no_wal_flush_a_walk_waits_for_none, .init = setup, .fini = teardown)
{
    fill_with_pwrite(FILE_BYTES);
    cr_assert_eq(persist_writeback_paced(fd, FILE_BYTES), 0);
    cr_assert_eq(persist_writeback_gate_waits(), 0);
}
