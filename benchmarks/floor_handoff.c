/* The machine's floor under a pool of tiny tasks: one producer hands N
 * no-op tasks to W worker threads and waits for them all, in bare C
 * (pthreads, C11 atomics), no Python and no executor. Two ways:
 *
 *   one-lock    one FIFO behind one mutex, workers parked on one condition
 *               variable: the shape of conexe's engine (and of every
 *               Python pool) today;
 *   per-worker  a ring per worker that only the producer writes and only
 *               its worker reads (no lock: two atomic indexes), tasks dealt
 *               round-robin; a worker that runs dry parks on its own
 *               condition variable. The scheduler shape of Go, tokio and
 *               ForkJoinPool, without the stealing (every task is alike).
 *
 * Each task is a small struct whose "future" (a done flag) the worker sets
 * and the producer reads, like f.result() on every task after submitting
 * all of them. Idle workers spin SPIN_NS before parking, as conexe's do on
 * free-threaded builds. Prints tasks/s, best of `repeats`.
 *
 *   cc -O2 -pthread -o floor_handoff floor_handoff.c
 *   ./floor_handoff one-lock 4 200000 5
 *
 * benchmarks/bench_floor_handoff.py builds it and runs the table.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPIN_NS 50000LL

typedef struct {
    atomic_int done;
    long value;
} task_t;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void run_task(task_t *t) {
    t->value += 1;
    atomic_store_explicit(&t->done, 1, memory_order_release);
}

/* -- one-lock ----------------------------------------------------------- */
typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t work;
    task_t **ring;
    long cap, head, tail; /* guarded by mutex */
    int parked;
    int closing;
} one_lock_t;

static void *one_lock_worker(void *arg) {
    one_lock_t *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mutex);
        long long spin_until = now_ns() + SPIN_NS;
        while (q->head == q->tail && !q->closing) {
            if (now_ns() < spin_until) { /* spin: release and retry */
                pthread_mutex_unlock(&q->mutex);
                pthread_mutex_lock(&q->mutex);
                continue;
            }
            q->parked++;
            pthread_cond_wait(&q->work, &q->mutex);
            q->parked--;
        }
        if (q->head == q->tail) { /* closing and drained */
            pthread_mutex_unlock(&q->mutex);
            return NULL;
        }
        task_t *t = q->ring[q->head++ % q->cap];
        pthread_mutex_unlock(&q->mutex);
        run_task(t);
    }
}

static void one_lock_submit(one_lock_t *q, task_t *t) {
    pthread_mutex_lock(&q->mutex);
    q->ring[q->tail++ % q->cap] = t;
    int wake = q->parked > 0;
    pthread_mutex_unlock(&q->mutex);
    if (wake) pthread_cond_signal(&q->work);
}

/* -- per-worker ----------------------------------------------------------- */
typedef struct {
    _Alignas(64) atomic_long head; /* the worker's */
    _Alignas(64) atomic_long tail; /* the producer's */
    _Alignas(64) atomic_int parked;
    pthread_mutex_t mutex;
    pthread_cond_t work;
    task_t **ring;
    long cap;
    atomic_int *closing;
} lane_t;

static void *lane_worker(void *arg) {
    lane_t *l = arg;
    for (;;) {
        long head = atomic_load_explicit(&l->head, memory_order_relaxed);
        long long spin_until = 0;
        while (atomic_load_explicit(&l->tail, memory_order_acquire) == head) {
            if (atomic_load(l->closing)) return NULL;
            if (!spin_until) spin_until = now_ns() + SPIN_NS;
            if (now_ns() < spin_until) continue;
            pthread_mutex_lock(&l->mutex);
            atomic_store(&l->parked, 1);
            /* Checked again with parked set: the producer reads parked
             * after publishing its task (both seq_cst), so one of the two
             * sees the other. */
            while (atomic_load(&l->tail) == head && !atomic_load(l->closing))
                pthread_cond_wait(&l->work, &l->mutex);
            atomic_store(&l->parked, 0);
            pthread_mutex_unlock(&l->mutex);
            spin_until = 0;
        }
        task_t *t = l->ring[head % l->cap];
        atomic_store_explicit(&l->head, head + 1, memory_order_release);
        run_task(t);
    }
}

static int lane_submit(lane_t *l, task_t *t) {
    long tail = atomic_load_explicit(&l->tail, memory_order_relaxed);
    if (tail - atomic_load_explicit(&l->head, memory_order_acquire) >= l->cap) return 0;
    l->ring[tail % l->cap] = t;
    atomic_store(&l->tail, tail + 1);
    if (atomic_load(&l->parked)) {
        pthread_mutex_lock(&l->mutex);
        pthread_cond_signal(&l->work);
        pthread_mutex_unlock(&l->mutex);
    }
    return 1;
}

/* -- one measured round --------------------------------------------------- */
static double round_tasks_per_s(const char *mode, int workers, long n) {
    task_t *tasks = calloc((size_t)n, sizeof *tasks);
    pthread_t *threads = calloc((size_t)workers, sizeof *threads);
    long long start, end;
    if (!strcmp(mode, "one-lock")) {
        one_lock_t q = {.cap = n};
        q.ring = calloc((size_t)n, sizeof *q.ring);
        pthread_mutex_init(&q.mutex, NULL);
        pthread_cond_init(&q.work, NULL);
        for (int w = 0; w < workers; w++) pthread_create(&threads[w], NULL, one_lock_worker, &q);
        start = now_ns();
        for (long i = 0; i < n; i++) one_lock_submit(&q, &tasks[i]);
        for (long i = 0; i < n; i++)
            while (!atomic_load_explicit(&tasks[i].done, memory_order_acquire)) {}
        end = now_ns();
        pthread_mutex_lock(&q.mutex);
        q.closing = 1;
        pthread_cond_broadcast(&q.work);
        pthread_mutex_unlock(&q.mutex);
        for (int w = 0; w < workers; w++) pthread_join(threads[w], NULL);
        free(q.ring);
    } else {
        atomic_int closing = 0;
        lane_t *lanes = calloc((size_t)workers, sizeof *lanes);
        long cap = n / workers + 2;
        for (int w = 0; w < workers; w++) {
            lanes[w].cap = cap;
            lanes[w].ring = calloc((size_t)cap, sizeof *lanes[w].ring);
            lanes[w].closing = &closing;
            pthread_mutex_init(&lanes[w].mutex, NULL);
            pthread_cond_init(&lanes[w].work, NULL);
            pthread_create(&threads[w], NULL, lane_worker, &lanes[w]);
        }
        start = now_ns();
        for (long i = 0; i < n; i++) lane_submit(&lanes[i % workers], &tasks[i]);
        for (long i = 0; i < n; i++)
            while (!atomic_load_explicit(&tasks[i].done, memory_order_acquire)) {}
        end = now_ns();
        atomic_store(&closing, 1);
        for (int w = 0; w < workers; w++) {
            pthread_mutex_lock(&lanes[w].mutex);
            pthread_cond_signal(&lanes[w].work);
            pthread_mutex_unlock(&lanes[w].mutex);
        }
        for (int w = 0; w < workers; w++) {
            pthread_join(threads[w], NULL);
            free(lanes[w].ring);
        }
        free(lanes);
    }
    for (long i = 0; i < n; i++)
        if (tasks[i].value != 1) {
            fprintf(stderr, "task %ld ran %ld times\n", i, tasks[i].value);
            exit(1);
        }
    free(tasks);
    free(threads);
    return (double)n / ((double)(end - start) / 1e9);
}

int main(int argc, char **argv) {
    if (argc != 5 || (strcmp(argv[1], "one-lock") && strcmp(argv[1], "per-worker"))) {
        fprintf(stderr, "usage: %s one-lock|per-worker WORKERS TASKS REPEATS\n", argv[0]);
        return 2;
    }
    int workers = atoi(argv[2]);
    long n = atol(argv[3]);
    int repeats = atoi(argv[4]);
    if (workers < 1 || n < 1 || repeats < 1) return 2;
    double best = 0;
    for (int r = 0; r < repeats; r++) {
        double rate = round_tasks_per_s(argv[1], workers, n);
        if (rate > best) best = rate;
    }
    printf("%.0f\n", best);
    return 0;
}
