/* The engine lock (conexe/_core.pyx): a PyMutex on CPython >= 3.13, a
 * PyThread lock before.
 *
 * On a free-threaded build the producer and every worker take the engine
 * lock for each task, in parallel, so it is contended for real. A PyThread
 * lock is a POSIX semaphore: a contended acquire goes to the kernel at once
 * (a futex wait and a wake-up per hand-off). A PyMutex spins briefly first,
 * and the critical sections here are a few hundred instructions, so most
 * contended acquires finish while spinning; when it must block it parks on
 * CPython's parking lot with the thread state detached (the GIL released on
 * a GIL build), so a stop-the-world pause or a GIL waiter is never held up.
 * On a GIL build the lock is never contended: its holder never lets the
 * GIL go while holding it.
 */
#ifndef CONEXE_MUTEX_H
#define CONEXE_MUTEX_H

#include <Python.h>
#include <pythread.h>

#if PY_VERSION_HEX >= 0x030D0000

typedef struct { PyMutex m; } conexe_mutex;

static inline int conexe_mutex_init(conexe_mutex *mx)
{
    mx->m = (PyMutex){0};
    return 0;
}

static inline void conexe_mutex_free(conexe_mutex *mx) { (void)mx; }

static inline void conexe_mutex_lock(conexe_mutex *mx) { PyMutex_Lock(&mx->m); }

static inline void conexe_mutex_unlock(conexe_mutex *mx) { PyMutex_Unlock(&mx->m); }

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
