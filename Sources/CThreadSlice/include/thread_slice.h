#pragma once
#include <stdint.h>

/// The calling thread's EEVDF slice (Linux 6.12+): how long it may run before the scheduler picks again, and how
/// soon after waking it may preempt a thread with a longer one. glibc before 2.41 has no sched_setattr wrapper,
/// and Swift cannot call the variadic syscall(): these two do it. Policy and nice are kept; only SCHED_OTHER and
/// SCHED_BATCH threads are changed (the kernel keeps a slice only for those).

/// Sets the calling thread's slice to `nanos` (the kernel clamps it to 0.1-100 ms); threads it starts later get the
/// kernel's default (reset on fork). Returns 0, -1 with errno, or
/// -2 when the thread runs under another policy (real-time, deadline, idle) and was left alone.
int thread_slice_set(uint64_t nanos);

/// The slice the kernel reports for thread `tid` (0: the calling thread) in nanoseconds; 0 on a kernel without
/// per-thread slices (before 6.12) or a thread under another policy; -1 with errno on failure.
int64_t thread_slice_get(int tid);
