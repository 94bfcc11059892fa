// The contended paths of the append lock (include/store_lock.h): a short spin that catches a holder about to
// release (the critical section is tens of nanoseconds), then a futex wait; the word becomes 2 while anyone may
// be parked, so a release knows when to wake.
#include "store_lock.h"
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

// Spins of one pause each before parking: about a microsecond, many times the critical section, so a holder
// that is running releases within the spin and one that was preempted is waited for without burning the CPU.
#define STORE_LOCK_SPINS 128

void store_lock_acquire_contended(uint32_t *word) {
    for (int spin = 0; spin < STORE_LOCK_SPINS; spin++) {
        if (__atomic_load_n(word, __ATOMIC_RELAXED) == 0 && store_lock_try(word)) return;
#if defined(__x86_64__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield");
#endif
    }
    // Mark it contended; whoever releases a word of 2 wakes one parked thread, which marks it 2 again.
    while (__atomic_exchange_n(word, 2, __ATOMIC_ACQUIRE) != 0) {
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
    }
}

void store_lock_wake(uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
