/* The engine lock (conexe/_units/engine.pxi): a PyMutex on CPython >= 3.13, a
 * PyThread lock before, and on a free-threaded Linux build a choice of two.
 *
 * On a free-threaded build the producer and every worker take the engine
 * lock for each task, in parallel, so it is contended for real. A PyThread
 * lock is a POSIX semaphore: a contended acquire goes to the kernel at once
 * (a futex wait and a wake-up per hand-off). A PyMutex (on a free-threaded
 * build) first yields its CPU up to 40 times (sched_yield), then parks on
 * CPython's parking lot with the thread state detached (the GIL released on
 * a GIL build), so a stop-the-world pause or a GIL waiter is never held up;
 * after a 1 ms wait the unlocker hands it the lock directly. On a GIL build
 * the lock is never contended: its holder never lets the GIL go while
 * holding it.
 *
 * Those yields suit a pool that fits the cores: the waiter gives its CPU to
 * the thread that will release the lock. With more threads than cores the
 * yields go to other waiters, and the hand-off to a parked thread waits for
 * the scheduler to run it, and a pool of tiny tasks spends its time in
 * context switches (docs/freethreading.md has the measurements). So where
 * the pool has more workers than usable cores the engine
 * switches (conexe_mutex_sleep_at_once, called with the lock held) to a
 * futex lock whose waiters sleep at once and never yield, and that any
 * running thread may take as soon as it is free. Both locks live in the
 * struct; which one guards the engine is the `sleeps` flag, changed only by
 * a thread holding both, so a thread that took the other one re-checks the
 * flag and retries.
 */
#ifndef CONEXE_MUTEX_H
#define CONEXE_MUTEX_H

#include <Python.h>
#include <pythread.h>

#if defined(Py_GIL_DISABLED) && defined(__linux__)

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
    PyMutex m;   /* guards the engine while `sleeps` is 0 */
    int word;    /* guards it while `sleeps` is 1: 0 free, 1 held, 2 held with sleepers */
    int sleeps;
} conexe_mutex;

static inline int conexe_mutex_init(conexe_mutex *mx)
{
    /* Also called in a forked child, where the parent's holder is gone:
     * `sleeps` is kept. */
    mx->m = (PyMutex){0};
    mx->word = 0;
    return 0;
}

static inline void conexe_mutex_free(conexe_mutex *mx) { (void)mx; }

static inline int conexe__word_cas(int *word, int expected, int desired)
{
    return __atomic_compare_exchange_n(word, &expected, desired, 0,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static void conexe__word_lock_slow(int *word)
{
    /* Mark the lock as having a sleeper (2) and sleep until it is free;
     * detached, so a stop-the-world pause need not wait for this thread. */
    Py_BEGIN_ALLOW_THREADS
    while (__atomic_exchange_n(word, 2, __ATOMIC_ACQUIRE) != 0) {
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
    }
    Py_END_ALLOW_THREADS
}

static inline void conexe__word_lock(int *word)
{
    if (!conexe__word_cas(word, 0, 1)) {
        conexe__word_lock_slow(word);
    }
}

static inline void conexe__word_unlock(int *word)
{
    if (__atomic_exchange_n(word, 0, __ATOMIC_RELEASE) == 2) {
        syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

static inline void conexe__take(conexe_mutex *mx, int sleeps)
{
    if (sleeps) {
        conexe__word_lock(&mx->word);
    } else {
        PyMutex_Lock(&mx->m);
    }
}

static inline void conexe__give(conexe_mutex *mx, int sleeps)
{
    if (sleeps) {
        conexe__word_unlock(&mx->word);
    } else {
        PyMutex_Unlock(&mx->m);
    }
}

static inline void conexe_mutex_lock(conexe_mutex *mx)
{
    for (;;) {
        int sleeps = __atomic_load_n(&mx->sleeps, __ATOMIC_ACQUIRE);
        conexe__take(mx, sleeps);
        /* Taking the lock ordered this read after any switch its last
         * holder made. */
        if (__atomic_load_n(&mx->sleeps, __ATOMIC_RELAXED) == sleeps) {
            return;
        }
        conexe__give(mx, sleeps);  /* switched meanwhile: take the other */
    }
}

static inline void conexe_mutex_unlock(conexe_mutex *mx)
{
    conexe__give(mx, __atomic_load_n(&mx->sleeps, __ATOMIC_RELAXED));
}

/* With the lock held: make the futex lock (sleeps=1) or the PyMutex (0)
 * guard the engine from now on. Holds both while it switches. */
static inline void conexe_mutex_sleep_at_once(conexe_mutex *mx, int sleeps)
{
    int now = __atomic_load_n(&mx->sleeps, __ATOMIC_RELAXED);
    sleeps = sleeps != 0;
    if (sleeps == now) {
        return;
    }
    conexe__take(mx, sleeps);
    __atomic_store_n(&mx->sleeps, sleeps, __ATOMIC_RELEASE);
    conexe__give(mx, now);
}

#elif PY_VERSION_HEX >= 0x030D0000

typedef struct { PyMutex m; } conexe_mutex;

static inline int conexe_mutex_init(conexe_mutex *mx)
{
    mx->m = (PyMutex){0};
    return 0;
}

static inline void conexe_mutex_free(conexe_mutex *mx) { (void)mx; }

static inline void conexe_mutex_lock(conexe_mutex *mx) { PyMutex_Lock(&mx->m); }

static inline void conexe_mutex_unlock(conexe_mutex *mx) { PyMutex_Unlock(&mx->m); }

static inline void conexe_mutex_sleep_at_once(conexe_mutex *mx, int sleeps)
{
    (void)mx;
    (void)sleeps;
}

#else

typedef struct { PyThread_type_lock l; } conexe_mutex;

static inline int conexe_mutex_init(conexe_mutex *mx)
{
    mx->l = PyThread_allocate_lock();
    return mx->l == NULL ? -1 : 0;
}

static inline void conexe_mutex_free(conexe_mutex *mx)
{
    if (mx->l != NULL) {
        PyThread_free_lock(mx->l);
        mx->l = NULL;
    }
}

static inline void conexe_mutex_lock(conexe_mutex *mx)
{
    /* Uncontended (always, on a GIL build): no GIL release at all. */
    if (PyThread_acquire_lock(mx->l, 0)) {
        return;
    }
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(mx->l, 1);
    Py_END_ALLOW_THREADS
}

static inline void conexe_mutex_unlock(conexe_mutex *mx) { PyThread_release_lock(mx->l); }

static inline void conexe_mutex_sleep_at_once(conexe_mutex *mx, int sleeps)
{
    (void)mx;
    (void)sleeps;
}

#endif

/* 1 on a free-threaded (--disable-gil) build, where an idle worker may spin. */
#ifdef Py_GIL_DISABLED
#define CONEXE_FREE_THREADED 1
#else
#define CONEXE_FREE_THREADED 0
#endif

/* One step of a spin-wait: tells the CPU (and its sibling hyperthread). */
static inline void conexe_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif /* CONEXE_MUTEX_H */
