#pragma once
#include <stddef.h>
#include <stdint.h>

/// A lock of one 32-bit word for short critical sections shared by more threads than cores (the commit log's
/// append lock): 0 free, 1 held, 2 held with a thread parked (or about to park) on it. Release never hands the
/// lock to a parked thread: a running thread may take it first (no convoy behind a waiter that has yet to be
/// scheduled, which a priority-inheritance futex does). A contended lock spins briefly, then parks on a futex.
static inline int store_lock_try(uint32_t *word) {
    uint32_t expected = 0;
    return __atomic_compare_exchange_n(word, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/// Spins, then parks, until the lock is taken (the contended path of `store_lock_acquire`).
void store_lock_acquire_contended(uint32_t *word);
/// Wakes one parked thread (the contended path of `store_lock_release`).
void store_lock_wake(uint32_t *word);

static inline void store_lock_acquire(uint32_t *word) {
    if (!store_lock_try(word)) store_lock_acquire_contended(word);
}

static inline void store_lock_release(uint32_t *word) {
    if (__atomic_exchange_n(word, 0, __ATOMIC_RELEASE) == 2) store_lock_wake(word);
}

/// Asks the CPU to fetch `[address, address + count)` for writing ahead of the stores that will fill it, so
/// they do not stall on cache misses when a fence follows them.
static inline void store_prefetch_for_write(void *address, size_t count) {
    for (size_t at = 0; at < count; at += 64) __builtin_prefetch((char *)address + at, 1, 3);
}

/// Asks the CPU to fetch the cache line holding `address` for reading (a hint: it never faults).
static inline void store_prefetch_for_read(const void *address) { __builtin_prefetch(address, 0, 3); }
