/* pacer.c - open-loop intended-start schedule (see pacer.h). */
#include "pacer.h"

#include <assert.h>

void pacer_init(pacer_t *p, uint64_t start_ns, double interval_ns)
{
    assert(start_ns > 0);
    assert(interval_ns >= 0.0);
    p->start_ns = start_ns;
    p->interval_ns = interval_ns;
    p->issued = 0;
}

uint64_t pacer_next_ns(const pacer_t *p)
{
    return p->start_ns + (uint64_t)((double)p->issued * p->interval_ns);
}

uint64_t pacer_due(pacer_t *p, uint64_t now_ns)
{
    if (p->interval_ns == 0.0) {
        p->issued++;
        return now_ns;
    }
    uint64_t next = pacer_next_ns(p);
    if (next > now_ns)
        return 0;
    p->issued++;
    return next;
}

uint64_t pacer_backlog(const pacer_t *p, uint64_t now_ns)
{
    if (p->interval_ns == 0.0 || now_ns < p->start_ns)
        return 0;
    uint64_t due_total = (uint64_t)((double)(now_ns - p->start_ns) / p->interval_ns) + 1;
    return due_total > p->issued ? due_total - p->issued : 0;
}

uint64_t pacer_send_ns(const pacer_t *p, uint64_t last_send_ns, uint64_t window_ns)
{
    uint64_t next = pacer_next_ns(p);
    if (last_send_ns == 0 || last_send_ns + window_ns <= next)
        return next;
    return last_send_ns + window_ns;
}
