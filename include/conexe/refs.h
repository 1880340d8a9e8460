/* conexe/refs.h -- references that one thread takes and another drops.
 *
 * A free-threaded CPython counts an object's references in two fields: a
 * plain one for the thread that made the object (its owner) and an atomic
 * one for every other thread. When another thread drops a reference the
 * owner took, the shared field goes negative; the object is then queued to
 * its owner (a lock and a queue entry), and the owner, when it next looks,
 * merges both fields and gives the object up: from then on every thread,
 * the owner included, counts its references with atomic operations, and
 * the object is freed by whichever thread drops it last.
 *
 * That is the engine's way with every task: the producer puts a future on a
 * lane and stores the task's function and arguments in it, and a worker
 * drops all of those references once it has run the task. So every future
 * was queued to its producer and merged, and every later result(), wait()
 * and set operation on it paid atomic reference counting (a fifth of a
 * cf.wait() over done futures on 3.13.5t); a fresh argument tuple per
 * submit was queued too.
 *
 * conexe_hand_over(op) moves one reference the calling thread just took
 * from the owner's field to the shared one, as if another thread had taken
 * it: the worker's drop then brings the shared field back to zero and
 * nothing is queued or merged. Which thread drops it in the end does not
 * matter for correctness: the two fields only ever add up to the true
 * count, and an owner that drops a reference counted in the shared field
 * merely reaches zero in its own field earlier, where CPython merges as it
 * always does. It moves a reference only while the owner's field holds
 * another one as well (the caller's), so that field never reaches zero
 * here. GIL builds have one field: there it does nothing.
 */
#ifndef CONEXE_REFS_H
#define CONEXE_REFS_H

#include <Python.h>

static inline void conexe_hand_over(PyObject *op)
{
#ifdef Py_GIL_DISABLED
    uint32_t local;
    if (_Py_IsImmortal(op) || !_Py_IsOwnedByCurrentThread(op)) {
        return;  /* immortal: never counted; not ours: already shared */
    }
    local = _Py_atomic_load_uint32_relaxed(&op->ob_ref_local);
    if (local < 2) {
        return;
    }
    /* Shared first: the sum never dips below the true count. */
    _Py_atomic_add_ssize(&op->ob_ref_shared, (Py_ssize_t)1 << _Py_REF_SHARED_SHIFT);
    _Py_atomic_store_uint32_relaxed(&op->ob_ref_local, local - 1);
#else
    (void)op;
#endif
}

#endif /* CONEXE_REFS_H */
