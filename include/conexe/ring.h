/* conexe/ring.h -- a growable ring buffer of owned PyObject pointers.
 *
 * One ring per priority lane. The engine's lock guards every call; none
 * of these functions touches the GIL-protected object state beyond moving
 * pointers, so they are safe to call with that lock held.
 *
 * Ownership: push takes its own reference to the item; pop hands that
 * reference to the caller (who must DECREF it or keep it). Push counts it
 * as one another thread will drop (conexe/refs.h). The buffer's
 * capacity is a power of two so an index wraps with a mask.
 */
#ifndef CONEXE_RING_H
#define CONEXE_RING_H

#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "conexe/refs.h"

typedef struct {
    PyObject **buf;     /* capacity slots, NULL when capacity is 0 */
    Py_ssize_t mask;    /* capacity - 1 (capacity is a power of two) */
    Py_ssize_t head;    /* index of the oldest item */
    Py_ssize_t size;    /* number of items */
} conexe_ring;

static inline void conexe_ring_init(conexe_ring *r) {
    r->buf = NULL;
    r->mask = -1;
    r->head = 0;
    r->size = 0;
}

/* Double the capacity (at least 16 slots), keeping order.
 * Returns 0 on success or -1 if memory ran out (the ring is unchanged). */
static inline int conexe_ring_grow(conexe_ring *r) {
    Py_ssize_t cap = r->mask + 1;
    Py_ssize_t ncap = cap ? cap * 2 : 16;
    PyObject **nbuf = (PyObject **)malloc((size_t)ncap * sizeof(PyObject *));
    if (nbuf == NULL) return -1;
    for (Py_ssize_t i = 0; i < r->size; i++)
        nbuf[i] = r->buf[(r->head + i) & r->mask];
    free(r->buf);
    r->buf = nbuf;
    r->mask = ncap - 1;
    r->head = 0;
    return 0;
}

/* Append at the tail. Returns 0, or -1 with MemoryError set. */
static inline int conexe_ring_push(conexe_ring *r, PyObject *item) {
    if (r->size == r->mask + 1 && conexe_ring_grow(r) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(item);
    conexe_hand_over(item);  /* popped by a worker, most likely */
    r->buf[(r->head + r->size) & r->mask] = item;
    r->size++;
    return 0;
}

/* Insert at the head (a retried task goes first). Returns 0, or -1 with
 * MemoryError set. */
static inline int conexe_ring_push_front(conexe_ring *r, PyObject *item) {
    if (r->size == r->mask + 1 && conexe_ring_grow(r) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(item);
    conexe_hand_over(item);  /* popped by a worker, most likely */
    r->head = (r->head - 1) & r->mask;
    r->buf[r->head] = item;
    r->size++;
    return 0;
}

/* Remove and return the head (an owned reference), or NULL if empty;
 * never sets an exception. */
static inline PyObject *conexe_ring_pop(conexe_ring *r) {
    if (r->size == 0) return NULL;
    PyObject *item = r->buf[r->head];
    r->buf[r->head] = NULL;
    r->head = (r->head + 1) & r->mask;
    r->size--;
    return item;
}

/* Free the buffer; the ring must be empty (pop everything first). */
static inline void conexe_ring_free(conexe_ring *r) {
    free(r->buf);
    conexe_ring_init(r);
}

/* A new instance of a (Python subclass of a) Cython type without calling
 * __init__: the fast future is created this way on every submit. */
static inline PyObject *conexe_new_instance(PyObject *type) {
    static PyObject *empty = NULL;
    if (empty == NULL) {
        empty = PyTuple_New(0);
        if (empty == NULL) return NULL;
    }
    return ((PyTypeObject *)type)->tp_new((PyTypeObject *)type, empty, NULL);
}

#endif /* CONEXE_RING_H */
