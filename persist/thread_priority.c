/* thread_priority.c - background threads below the loop (persist/thread_priority.h). */
#include "thread_priority.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

void persist_thread_idle(void)
{
    struct sched_param param = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) != 0)
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), PERSIST_THREAD_IDLE_NICE);
}

void persist_thread_nice(int increment)
{
    id_t tid = (id_t)gettid();
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, tid);
    if (errno == 0)
        (void)setpriority(PRIO_PROCESS, tid, nice_now + increment);
}

void persist_thread_step_aside(size_t done, size_t every)
{
    if (done % every == every - 1)
        (void)sched_yield();
}
