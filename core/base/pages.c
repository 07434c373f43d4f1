/* pages.c - large tables in huge-page-aligned anonymous mappings, small ones from malloc. */
#include "core/pages.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGES_BASE_BYTES 4096u

static allot_pages_hooks_t pages_hooks; /* no callbacks until the server installs them */

void allot_pages_hooks_set(const allot_pages_hooks_t *hooks)
{
    pages_hooks = hooks != NULL ? *hooks : (allot_pages_hooks_t){0};
}

static void pages_fresh(char *at, size_t bytes)
{
    if (pages_hooks.fresh_cb != NULL && bytes > 0)
        pages_hooks.fresh_cb(pages_hooks.ctx, at, bytes);
}

static void pages_retire(void *at, size_t bytes)
{
    if (pages_hooks.retire_cb != NULL)
        pages_hooks.retire_cb(pages_hooks.ctx, at, bytes);
}

static size_t pages_round(size_t bytes)
{
    return (bytes + ALLOT_PAGES_HUGE_BYTES - 1) & ~(size_t)(ALLOT_PAGES_HUGE_BYTES - 1);
}

static int pages_mapped(size_t bytes)
{
    return bytes >= ALLOT_PAGES_HUGE_BYTES;
}

/* A mapping of `bytes` (whole huge pages) at a huge-page-aligned address, or NULL (no memory
 * is touched: pages come on first use). The kernel aligns large anonymous mappings itself on
 * recent versions; this does it on all of them. */
static char *pages_map_aligned(size_t bytes, int prot)
{
    size_t span = bytes + ALLOT_PAGES_HUGE_BYTES;
    char *base = mmap(NULL, span, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    uintptr_t at =
        ((uintptr_t)base + ALLOT_PAGES_HUGE_BYTES - 1) & ~(uintptr_t)(ALLOT_PAGES_HUGE_BYTES - 1);
    char *aligned = (char *)at;
    if (aligned > base)
        munmap(base, (size_t)(aligned - base));
    if (base + span > aligned + bytes)
        munmap(aligned + bytes, (size_t)(base + span - (aligned + bytes)));
    return aligned;
}

static void *pages_map(size_t mapped_bytes)
{
    char *p = pages_map_aligned(mapped_bytes, PROT_READ | PROT_WRITE);
    if (p == NULL)
        return NULL;
    (void)madvise(p, mapped_bytes, MADV_HUGEPAGE); /* a hint: EINVAL without THP support */
    pages_fresh(p, mapped_bytes);
    return p;
}

void *allot_pages_alloc(size_t bytes)
{
    if (!pages_mapped(bytes))
        return calloc(1, bytes ? bytes : 1);
    return pages_map(pages_round(bytes));
}

/* A mapping moved to a new huge-page-aligned place of new_mapped bytes (its pages move with
 * it, huge ones whole); NULL when out of memory, the old one unchanged. */
static void *pages_remap(void *block, size_t old_mapped, size_t new_mapped)
{
    pages_retire(block, old_mapped);
    void *p = mremap(block, old_mapped, new_mapped, 0); /* grow or shrink in place */
    if (p != MAP_FAILED)
        return p;
    char *at = pages_map_aligned(new_mapped, PROT_NONE); /* the place, replaced below */
    if (at == NULL)
        return NULL;
    p = mremap(block, old_mapped, new_mapped, MREMAP_MAYMOVE | MREMAP_FIXED, at);
    if (p == MAP_FAILED) {
        munmap(at, new_mapped);
        return NULL;
    }
    return p; /* the mapping keeps its MADV_HUGEPAGE */
}

void *allot_pages_resize(void *block, size_t old_bytes, size_t new_bytes, size_t lead_bytes)
{
    if (block == NULL)
        return allot_pages_alloc(new_bytes);
    if (pages_mapped(old_bytes) && pages_mapped(new_bytes)) {
        size_t old_mapped = pages_round(old_bytes), new_mapped = pages_round(new_bytes);
        if (old_mapped == new_mapped)
            return block;
        char *p = pages_remap(block, old_mapped, new_mapped);
        if (p != NULL && new_mapped > old_mapped) {
            /* from the base page the old size ends in (its huge page may be untouched yet), a
             * lead's worth: the fill reports the rest as it gets there (allot_pages_filled) */
            size_t from = old_bytes & ~(size_t)(PAGES_BASE_BYTES - 1);
            size_t to = from + lead_bytes < new_mapped ? from + lead_bytes : new_mapped;
            pages_fresh(p + from, to - from);
        }
        return p;
    }
    if (!pages_mapped(old_bytes) && !pages_mapped(new_bytes))
        return realloc(block, new_bytes ? new_bytes : 1);
    void *p = allot_pages_alloc(new_bytes); /* across the threshold: one copy */
    if (p == NULL)
        return NULL;
    memcpy(p, block, old_bytes < new_bytes ? old_bytes : new_bytes);
    allot_pages_free(block, old_bytes);
    return p;
}

void allot_pages_fill_crossed(void *block, size_t bytes, size_t lead_bytes, size_t filled_bytes)
{
    size_t mapped = pages_round(bytes);
    size_t at = (filled_bytes + lead_bytes) & ~(size_t)(ALLOT_PAGES_HUGE_BYTES - 1);
    if (at < mapped)
        pages_fresh((char *)block + at, ALLOT_PAGES_HUGE_BYTES);
}

void allot_pages_free(void *block, size_t bytes)
{
    if (block == NULL)
        return;
    if (!pages_mapped(bytes)) {
        free(block);
        return;
    }
    pages_retire(block, pages_round(bytes));
    int rc = munmap(block, pages_round(bytes));
    assert(rc == 0);
    (void)rc;
}
