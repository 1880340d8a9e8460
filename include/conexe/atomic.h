/* Acquire/release access to a future's state word (conexe/_core.pyx).
 *
 * result(), done() and friends read the state without taking the
 * future's lock. A reader that sees a done state must also see the result
 * and exception written before it: the writer stores the state with
 * release ordering after them, the reader loads it with acquire ordering.
 * On x86 both are plain moves; on a free-threaded build this is what makes
 * the lock-free reads correct (and what ThreadSanitizer checks).
 */
#ifndef CONEXE_ATOMIC_H
#define CONEXE_ATOMIC_H

static inline int conexe_load_acquire(const int *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void conexe_store_release(int *p, int value)
{
    __atomic_store_n(p, value, __ATOMIC_RELEASE);
}

#endif /* CONEXE_ATOMIC_H */
