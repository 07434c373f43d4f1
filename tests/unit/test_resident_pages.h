/* test_resident_pages.h - how much of a range of memory is resident (mincore): for the tests of
 * pages faulted in ahead of use (persist/pages_warm.h) and of blocks reserved untouched. */
#ifndef ALLOT_TEST_RESIDENT_PAGES_H
#define ALLOT_TEST_RESIDENT_PAGES_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Resident base pages of [at, at + bytes) (at page-aligned). */
static inline size_t test_resident_pages(const void *at, size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = bytes / page, resident = 0;
    unsigned char *vec = malloc(pages > 0 ? pages : 1);
    cr_assert_not_null(vec);
    cr_assert_eq(mincore((void *)at, bytes, vec), 0, "mincore: %s", strerror(errno));
    for (size_t i = 0; i < pages; i++)
        resident += vec[i] & 1;
    free(vec);
    return resident;
}

#endif
