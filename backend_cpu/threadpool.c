/*
 * threadpool.c - persistent workers for the cpu backends (threadpool.h).
 *
 * Publishing a job (awq_tpool_for, the caller holding the pool):
 *   gen := odd (job being written) -> wait until no worker is inside the previous job
 *   (active == 0) -> write fn/arg/n/chunk, reset next/done -> gen := even -> wake sleepers.
 * A worker that saw an even gen g enters with active++, then re-reads gen: if it is no longer g
 * it leaves again without touching the job. Both sides use sequentially consistent atomics, so
 * either the caller sees the worker's active++ (and waits for it) or the worker sees the odd
 * gen (and leaves): a worker never reads a job while it is written. Tasks are taken with
 * atomic_fetch_add on next; done counts finished tasks (release), and the caller returns when
 * done == n (acquire), so every output a worker wrote is visible to it.
 *
 * Sleeping: a worker that found no new job for spin_ns goes to sleep under the mutex with
 * sleepers++ and re-checks gen; the caller reads sleepers after storing the even gen and
 * broadcasts under the mutex when it is non-zero (again one of the two sees the other).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TP_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define TP_PAUSE() __asm__ __volatile__("yield")
#else
#define TP_PAUSE() ((void)0)
#endif

#define TP_MAX_THREADS     256
#define TP_SPIN_US_DEFAULT 100

struct awq_tpool {
    int n;           /* threads a loop uses, the caller included */
    int64_t spin_ns; /* how long an idle worker spins before it sleeps */
    pthread_t *th;
    int n_started;

    _Atomic uint32_t gen; /* even: a job is published; odd: one is being written */
    _Atomic int active;   /* workers inside the current job */
    _Atomic int busy;     /* a caller holds the pool */
    _Atomic int stop;
    _Atomic int sleepers;
    pthread_mutex_t mu;
    pthread_cond_t cv;

    /* the job: written only while gen is odd and active == 0 */
    awq_tpool_fn fn;
    void *arg;
    int64_t n_tasks, chunk;
    _Atomic int64_t next, done;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Takes and runs chunks of the published job until none is left. */
static void run_tasks(awq_tpool *tp) {
    int64_t n = tp->n_tasks, chunk = tp->chunk;
    for (;;) {
        int64_t lo = atomic_fetch_add_explicit(&tp->next, chunk, memory_order_relaxed);
        if (lo >= n) break;
        int64_t hi = lo + chunk < n ? lo + chunk : n;
        tp->fn(tp->arg, lo, hi);
        atomic_fetch_add_explicit(&tp->done, hi - lo, memory_order_release);
    }
}

/* Waits until gen is an even value other than seen (or stop): spins, then sleeps. */
static uint32_t wait_job(awq_tpool *tp, uint32_t seen) {
    int64_t t0 = 0;
    for (unsigned i = 0;; i++) {
        uint32_t g = atomic_load(&tp->gen);
        if (atomic_load_explicit(&tp->stop, memory_order_relaxed)) return g;
        if (g != seen && !(g & 1u)) return g;
        TP_PAUSE();
        if ((i & 63u) != 63u || (g & 1u)) continue;
        if (!t0) {
            t0 = now_ns();
            continue;
        }
        if (now_ns() - t0 < tp->spin_ns) continue;
        pthread_mutex_lock(&tp->mu);
        atomic_fetch_add(&tp->sleepers, 1);
        while (atomic_load(&tp->gen) == seen && !atomic_load(&tp->stop)) pthread_cond_wait(&tp->cv, &tp->mu);
        atomic_fetch_sub(&tp->sleepers, 1);
        pthread_mutex_unlock(&tp->mu);
        t0 = 0;
    }
}

static void *worker(void *p) {
    awq_tpool *tp = p;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g = wait_job(tp, seen);
        if (atomic_load(&tp->stop)) break;
        atomic_fetch_add(&tp->active, 1);
        if (atomic_load(&tp->gen) == g) {
            seen = g;
            run_tasks(tp);
        }
        atomic_fetch_sub(&tp->active, 1);
    }
    return NULL;
}

awq_tpool *awq_tpool_create(int n_threads) {
    if (n_threads <= 1) return NULL;
    if (n_threads > TP_MAX_THREADS) n_threads = TP_MAX_THREADS;
    awq_tpool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->th = calloc((size_t)n_threads - 1, sizeof *tp->th);
    if (!tp->th || pthread_mutex_init(&tp->mu, NULL)) {
        free(tp->th);
        free(tp);
        return NULL;
    }
    if (pthread_cond_init(&tp->cv, NULL)) {
        pthread_mutex_destroy(&tp->mu);
        free(tp->th);
        free(tp);
        return NULL;
    }
    const char *e = getenv("AWQ_CPU_SPIN_US");
    long us = e && *e ? strtol(e, NULL, 10) : TP_SPIN_US_DEFAULT;
    tp->spin_ns = (us < 0 ? 0 : us > 1000000 ? 1000000 : us) * 1000;
    for (int i = 0; i < n_threads - 1; i++) {
        if (pthread_create(&tp->th[i], NULL, worker, tp)) break;
        tp->n_started++;
    }
    tp->n = tp->n_started + 1;
    if (tp->n_started == 0) {
        awq_tpool_destroy(tp);
        return NULL;
    }
    return tp;
}

void awq_tpool_destroy(awq_tpool *tp) {
    if (!tp) return;
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->stop, 1);
    pthread_cond_broadcast(&tp->cv);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 0; i < tp->n_started; i++) pthread_join(tp->th[i], NULL);
    pthread_cond_destroy(&tp->cv);
    pthread_mutex_destroy(&tp->mu);
    free(tp->th);
    free(tp);
}

int awq_tpool_threads(const awq_tpool *tp) { return tp ? tp->n : 1; }

void awq_tpool_for(awq_tpool *tp, int64_t n, int64_t chunk, awq_tpool_fn fn, void *arg) {
    if (n <= 0) return;
    if (chunk < 1) chunk = 1;
    if (!tp || n <= chunk || atomic_exchange(&tp->busy, 1)) {
        fn(arg, 0, n);
        return;
    }
    uint32_t g = atomic_load_explicit(&tp->gen, memory_order_relaxed); /* even: only we write it */
    atomic_store(&tp->gen, g + 1);
    while (atomic_load(&tp->active) != 0) TP_PAUSE();
    tp->fn = fn;
    tp->arg = arg;
    tp->n_tasks = n;
    tp->chunk = chunk;
    atomic_store_explicit(&tp->next, 0, memory_order_relaxed);
    atomic_store_explicit(&tp->done, 0, memory_order_relaxed);
    atomic_store(&tp->gen, g + 2);
    if (atomic_load(&tp->sleepers) > 0) {
        pthread_mutex_lock(&tp->mu);
        pthread_cond_broadcast(&tp->cv);
        pthread_mutex_unlock(&tp->mu);
    }
    run_tasks(tp);
    /* a worker still inside a chunk (preempted on a busy machine): spin a little, then yield */
    for (unsigned i = 0; atomic_load_explicit(&tp->done, memory_order_acquire) < n; i++) {
        if (i < 4096)
            TP_PAUSE();
        else
            sched_yield();
    }
    atomic_store(&tp->busy, 0);
}
