/* memlat.c - dependent random reads over a large array (pointer chase): the memory latency that
 * bounds every hash and array lookup of a large state (allot-recovery-bench memlat). */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#include "rb.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static double cpu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ns per step of wall time and (*cpu_ns) of CPU time (the machine is shared). */
static double chase(uint32_t *next, uint64_t steps, double *cpu_ns)
{
    uint32_t i = 0;
    double t0 = rb_now_s(), c0 = cpu_now_s();
    for (uint64_t k = 0; k < steps; k++)
        i = next[i];
    double dt = rb_now_s() - t0;
    *cpu_ns = (cpu_now_s() - c0) / (double)steps * 1e9;
    if (i == UINT32_MAX) /* keep the loop */
        printf("%u\n", i);
    return dt / (double)steps * 1e9;
}

int rb_memlat(uint32_t mib)
{
    size_t n = (size_t)mib * 1024 * 1024 / sizeof(uint32_t);
    for (int huge = 0; huge < 2; huge++) {
        size_t bytes = n * sizeof(uint32_t);
        uint32_t *next =
            mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (next == MAP_FAILED)
            return 1;
        madvise(next, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        /* one random cycle through every element (Sattolo) */
        for (size_t i = 0; i < n; i++)
            next[i] = (uint32_t)i;
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)(rng_next() % i);
            uint32_t t = next[i];
            next[i] = next[j];
            next[j] = t;
        }
        double cpu_ns;
        double ns = chase(next, 20000000, &cpu_ns);
        printf("RESULT memlat mib=%u pages=%s ns_per_dependent_read=%.1f (cpu %.1f)\n", mib,
               huge ? "huge(madvise)" : "4k", ns, cpu_ns);
        munmap(next, bytes);
    }
    return 0;
}
