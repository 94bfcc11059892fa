#define _GNU_SOURCE
#include "thread_slice.h"
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#endif

// The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1); glibc 2.36's headers do not declare it.
struct thread_slice_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
};

static int read_attr(int tid, struct thread_slice_attr *attr) {
    memset(attr, 0, sizeof *attr);
    return (int)syscall(SYS_sched_getattr, tid, attr, (unsigned)sizeof *attr, 0u);
}

int thread_slice_set(uint64_t nanos) {
    struct thread_slice_attr attr;
    if (read_attr(0, &attr) != 0) return -1;
    if (attr.sched_policy != SCHED_OTHER && attr.sched_policy != SCHED_BATCH) return -2;
    attr.size = sizeof attr;
    // Threads this one starts (a thread pool's workers) get the kernel's slice, not this one; no utilisation
    // clamps; policy and nice as read.
    attr.sched_flags = SCHED_FLAG_RESET_ON_FORK;
    attr.sched_runtime = nanos;
    attr.sched_deadline = 0;
    attr.sched_period = 0;
    return (int)syscall(SYS_sched_setattr, 0, &attr, 0u);
}

int64_t thread_slice_get(int tid) {
    struct thread_slice_attr attr;
    if (read_attr(tid, &attr) != 0) return -1;
    if (attr.sched_policy != SCHED_OTHER && attr.sched_policy != SCHED_BATCH) return 0;
    return (int64_t)attr.sched_runtime;
}
