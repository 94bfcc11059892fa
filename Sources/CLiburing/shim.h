#pragma once
// System headers first, with the default feature macros Swift's Glibc module uses: liburing.h defines
// _XOPEN_SOURCE/_GNU_SOURCE, which would otherwise give these headers a second, different shape.
#include <features.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/memfd.h>
#include <sys/eventfd.h>
// <linux/io_uring.h> comes before <liburing.h>, so a module that also sees the kernel header through
// another path does not end up with two definitions of io_uring_sqe.
#include <linux/io_uring.h>
#include <liburing.h>

// GNU extensions Swift's Glibc module does not declare (it is built without _GNU_SOURCE).
extern int fallocate(int fd, int mode, off_t offset, off_t len);
extern int memfd_create(const char *name, unsigned int flags);
extern int pthread_setname_np(pthread_t thread, const char *name);

// Helpers only for what Swift cannot import: macros, flag bits and the GNU extensions above.
static inline void cliburing_sqe_set_link(struct io_uring_sqe *sqe) { sqe->flags |= IOSQE_IO_LINK; }
static inline unsigned cliburing_fsync_datasync(void) { return IORING_FSYNC_DATASYNC; }
static inline int cliburing_fallocate(int fd, int mode, off_t offset, off_t len) { return fallocate(fd, mode, offset, len); }
static inline int cliburing_falloc_zero_range(void) { return FALLOC_FL_ZERO_RANGE; }
static inline int cliburing_falloc_punch_hole(void) { return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE; }
// Blocking (io_uring polls it for a READ; a non-blocking one would fail that READ with EAGAIN).
static inline int cliburing_eventfd(void) { return eventfd(0, EFD_CLOEXEC); }
static inline int cliburing_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }
static inline int cliburing_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

/* Line-buffered stdout (progress lines through a pipe appear at once). */
static inline void cliburing_stdout_line_buffered(void) { setvbuf(stdout, NULL, _IOLBF, 0); }
