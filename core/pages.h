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
 */
#ifndef ALLOT_CORE_PAGES_H
#define ALLOT_CORE_PAGES_H

#include <stddef.h>

/* Blocks of at least this many bytes are mappings of whole huge pages (x86-64, arm64 with
 * 4 KiB base pages). */
#define ALLOT_PAGES_HUGE_BYTES (2u * 1024 * 1024)

void *allot_pages_alloc(size_t bytes);
void *allot_pages_resize(void *block, size_t old_bytes, size_t new_bytes);
void allot_pages_free(void *block, size_t bytes);

#endif
