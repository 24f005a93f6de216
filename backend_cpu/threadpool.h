/*
 * threadpool.h - the cpu backends' persistent worker threads for the decode-path kernels.
 *
 * One pool per backend context, created with the context (n_threads - 1 workers; the calling
 * thread is the n-th). A parallel loop publishes a job with an atomic generation counter; the
 * tasks [0, n) are taken in chunks from an atomic counter by whichever threads are running
 * (dynamic scheduling), and the call returns when every task is done - it does not wait for a
 * worker the OS has not scheduled, which then finds no task left. Between jobs a worker spins
 * for a bounded time (AWQ_CPU_SPIN_US, default 100 us of pause loops), then sleeps on a
 * condition variable, so an idle pool does not hold a core that another process needs.
 *
 * The kernels' results do not depend on the split: every task computes its outputs the same
 * way whichever thread runs it. A loop runs serially in the caller when there is no pool
 * (one thread, or the threads could not be created), when it has one chunk, or when another
 * thread already holds the pool (two host threads sharing a context).
 */
#ifndef AWQ_CPU_THREADPOOL_H
#define AWQ_CPU_THREADPOOL_H

#include <stdint.h>

typedef struct awq_tpool awq_tpool;

/* Runs tasks [lo, hi) of a loop. */
typedef void (*awq_tpool_fn)(void *arg, int64_t lo, int64_t hi);

/* A pool of n_threads - 1 workers; NULL when n_threads <= 1 or on failure (loops then run
 * serially: the same results). */
awq_tpool *awq_tpool_create(int n_threads);
void awq_tpool_destroy(awq_tpool *tp);

/* fn over tasks [0, n) in chunks of `chunk` (>= 1) tasks; returns when all have run. */
void awq_tpool_for(awq_tpool *tp, int64_t n, int64_t chunk, awq_tpool_fn fn, void *arg);

/* Threads a loop may use (1 without a pool). */
int awq_tpool_threads(const awq_tpool *tp);

#endif
