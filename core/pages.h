/* pages.h - the memory of large tables (the holds' slab, the id hash, the heaps) and of other
 * large blocks (persist/'s checkpoint batch chunks): anonymous mappings the kernel may back with
 * transparent huge pages.
 *
 * Contract: a block of `bytes` from allot_pages_alloc() is zeroed; allot_pages_resize() keeps its
 * first min(old, new) bytes (the rest is unspecified) and may move it; the caller keeps the
 * block's size and passes it back exactly (the functions choose the kind of memory by size). A
 * block under ALLOT_PAGES_HUGE_BYTES comes from malloc; a larger one is its own mapping, whole
 * 2 MiB pages, which the kernel is asked (madvise MADV_HUGEPAGE, a hint) to fault in 2 MiB at a
 * time: one page fault and one TLB entry where 4 KiB pages take 512 (a table of millions of
 * slots probed at random misses the TLB on nearly every probe otherwise). Growth moves the pages
 * (mremap), it never copies them. NULL when out of memory, nothing changed. libc only; a block may
 * be freed on another thread than the one that allocated it, but is not thread-safe otherwise.
 *
 * FRESH PAGES. The first write to a fresh page makes the kernel zero it on the writing thread (on
 * the benchmark VM several milliseconds for a 2 MiB page), so a table the loop grows into stalls
 * the loop once per huge page. The server may install hooks (allot_pages_hooks_set, before any
 * other thread uses this module, and removed after they stopped): pages nobody has touched yet are
 * reported to fresh_cb (so another thread can fault them in ahead of use, as below), and every
 * mapping is reported to retire_cb before it is unmapped or moved; retire_cb returns only
 * once nothing touches that range on the hooks' behalf any more (an address range unmapped is
 * reused by later mappings, the checkpoint store's shared file map among them). A new mapping is
 * reported whole (the hash's tables are written at random); a growth by allot_pages_resize (the
 * tables filled in order) reports only a lead after the old size, and the table reports its fill
 * (allot_pages_filled) so the window moves ahead of it. Such tables grow allot_pages_lead_items()
 * before they are full, so the window exists before the fill reaches it: resident memory runs
 * between the lead and the lead plus one huge page ahead of each table's fill (a hold pays its
 * share: docs/benchmarks.md, "Hold memory and the lead").
 */
#ifndef ALLOT_CORE_PAGES_H
#define ALLOT_CORE_PAGES_H

#include <stddef.h>

/* Blocks of at least this many bytes are mappings of whole huge pages (x86-64, arm64 with
 * 4 KiB base pages). */
#define ALLOT_PAGES_HUGE_BYTES (2u * 1024 * 1024)

/* How far ahead of its fill a table filled in order has its pages faulted in, and grows, in
 * items: the next ALLOT_PAGES_LEAD_ITEMS inserts (at most a quarter of the table; none while the
 * table is small enough for malloc). Items, not bytes: each hold takes one item of every such
 * table, so the same time ahead is 1.9 MiB of the holds' slab (120-byte records) and 256 KiB of
 * the expiry heap (16-byte entries). 16384 holds take 25-35 ms at the closed-loop peaks measured
 * here, time enough for the page warmer to fault in the next huge page; with half that much of
 * the slab the loop faulted some in itself (more faults in every run at that peak), and 4 MiB of
 * every table kept its next page resident a page early (docs/benchmarks.md, "Hold memory and
 * the lead"). */
#define ALLOT_PAGES_LEAD_ITEMS 16384u

static inline size_t allot_pages_lead_bytes(size_t item_bytes)
{
    return (size_t)ALLOT_PAGES_LEAD_ITEMS * item_bytes;
}

typedef struct allot_pages_hooks {
    void (*fresh_cb)(void *ctx, void *at, size_t bytes);  /* nobody has touched it yet */
    void (*retire_cb)(void *ctx, void *at, size_t bytes); /* about to be unmapped or moved */
    void *ctx;
} allot_pages_hooks_t;

/* Install hooks (copied), or remove them (NULL). */
void allot_pages_hooks_set(const allot_pages_hooks_t *hooks);

static inline size_t allot_pages_lead_items(size_t capacity, size_t item_bytes)
{
    if (capacity * item_bytes < ALLOT_PAGES_HUGE_BYTES)
        return 0;
    return ALLOT_PAGES_LEAD_ITEMS < capacity / 4 ? ALLOT_PAGES_LEAD_ITEMS : capacity / 4;
}

/* A table filled in order (allot_pages_resize's blocks) reports its fill: when the fill comes
 * within lead_bytes (allot_pages_lead_bytes of its items) of a new huge page, that huge page
 * (inside the block) is reported fresh, so a window ahead of the fill is faulted in, not the
 * whole capacity. */
void allot_pages_fill_crossed(void *block, size_t bytes, size_t lead_bytes, size_t filled_bytes);
static inline void allot_pages_filled(void *block, size_t bytes, size_t lead_bytes,
                                      size_t filled_before, size_t filled_after)
{
    const size_t huge = ALLOT_PAGES_HUGE_BYTES;
    if (bytes >= huge && (filled_before + lead_bytes) / huge != (filled_after + lead_bytes) / huge)
        allot_pages_fill_crossed(block, bytes, lead_bytes, filled_after);
}

void *allot_pages_alloc(size_t bytes);
/* A growth reports the first lead_bytes after the old size fresh (0: nothing; the fill reports
 * the rest as it gets there). */
void *allot_pages_resize(void *block, size_t old_bytes, size_t new_bytes, size_t lead_bytes);
void allot_pages_free(void *block, size_t bytes);

#endif
