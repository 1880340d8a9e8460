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

/* The owner of a future's _condition (FutureCondition), read without its
 * lock by take(): relaxed is enough, since a thread only compares it with
 * its own ident, which only it stores, so it sees that value exactly when
 * it holds the lock. The access must be atomic all the same: another
 * thread may be storing its own ident, or 0, at that moment.
 */
static inline unsigned long conexe_load_relaxed_ulong(const unsigned long *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void conexe_store_relaxed_ulong(unsigned long *p, unsigned long value)
{
    __atomic_store_n(p, value, __ATOMIC_RELAXED);
}

/* Whether a future the engine made untracked by the cyclic GC still is
 * (see gc_track in conexe/_core.pyx): cleared by exactly one thread, the one
 * that then tracks it. PyObject_GC_Track() aborts the process on an object
 * already tracked, and on a free-threaded build two threads (the worker
 * completing the future and a waiter registering on it) can both find it
 * untracked: the exchange lets only one of them track it.
 */
static inline int conexe_load_relaxed(const int *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline int conexe_exchange(int *p, int value)
{
    return __atomic_exchange_n(p, value, __ATOMIC_ACQ_REL);
}

/* When a worker's current task started (Worker.run_since in
 * conexe/_core.pyx): stored by the worker, read by the engine's watcher
 * under the engine lock, which the worker does not hold then.
 */
static inline long long conexe_load_relaxed_ll(const long long *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void conexe_store_relaxed_ll(long long *p, long long value)
{
    __atomic_store_n(p, value, __ATOMIC_RELAXED);
}

/* A future's _condition (the `cond` field of FutureBase in
 * conexe/_core.pyx): set once, from None to a FutureCondition, under the
 * future's lock, and never changed again while the future lives. So a reader
 * that finds it set may use it without the lock: the pointer cannot be
 * replaced under it, and the release store makes the condition's own fields
 * visible before the pointer. Macros, since Cython cannot take the address
 * of an object field; `fut` is the FutureBase struct pointer Cython passes.
 */
#define conexe_load_cond(fut) \
    ((PyObject *)__atomic_load_n((void **)&(fut)->cond, __ATOMIC_ACQUIRE))
#define conexe_store_cond(fut, value) \
    __atomic_store_n((void **)&(fut)->cond, (void *)(value), __ATOMIC_RELEASE)

#endif /* CONEXE_ATOMIC_H */
