/*
 * test_threadpool.c - the cpu backends' worker pool (backend_cpu/threadpool.h): every task of a
 * loop runs exactly once whatever the thread count, chunk size and spin time (including workers
 * that went to sleep between loops, and loops issued back to back); two host threads sharing a
 * pool each get all their tasks run; a loop's writes are visible to the caller on return.
 * Also run under ThreadSanitizer (scripts/test.sh).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "test.h"
#include "threadpool.h"

struct count_job {
    _Atomic int *hits; /* per task: how many times it ran */
    int64_t *value;    /* per task: written by the task (plain stores, read by the caller) */
    int64_t salt;
};

static void count_tasks(void *arg, int64_t lo, int64_t hi) {
    struct count_job *j = arg;
    for (int64_t i = lo; i < hi; i++) {
        atomic_fetch_add_explicit(&j->hits[i], 1, memory_order_relaxed);
        j->value[i] = i * 7 + j->salt;
    }
}

/* Runs `loops` loops of n tasks on tp and checks each task ran once and its write is seen. */
static int run_loops(awq_tpool *tp, int64_t n, int64_t chunk, int loops, int sleep_us) {
    _Atomic int *hits = calloc((size_t)n, sizeof *hits);
    int64_t *value = calloc((size_t)n, sizeof *value);
    int bad = !hits || !value;
    for (int l = 0; l < loops && !bad; l++) {
        for (int64_t i = 0; i < n; i++) atomic_store_explicit(&hits[i], 0, memory_order_relaxed);
        struct count_job j = {hits, value, l};
        awq_tpool_for(tp, n, chunk, count_tasks, &j);
        for (int64_t i = 0; i < n; i++)
            if (atomic_load_explicit(&hits[i], memory_order_relaxed) != 1 || value[i] != i * 7 + l) {
                printf("  loop %d task %lld: ran %d times, value %lld\n", l, (long long)i,
                       atomic_load(&hits[i]), (long long)value[i]);
                bad = 1;
                break;
            }
        if (sleep_us) {
            struct timespec ts = {0, sleep_us * 1000L};
            nanosleep(&ts, NULL);
        }
    }
    free(hits);
    free(value);
    return !bad;
}

TEST(tasks_run_once) {
    for (int nt = 1; nt <= 5; nt++) {
        awq_tpool *tp = awq_tpool_create(nt);
        ASSERT(nt == 1 ? tp == NULL : tp != NULL);
        ASSERT_EQ(awq_tpool_threads(tp), nt);
        const int64_t sizes[] = {1, 2, 3, 7, 64, 1000};
        const int64_t chunks[] = {1, 3, 128};
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++)
                ASSERT_MSG(run_loops(tp, sizes[s], chunks[c], 20, 0), "%d threads, n %lld, chunk %lld", nt,
                           (long long)sizes[s], (long long)chunks[c]);
        awq_tpool_destroy(tp);
    }
}

/* Workers that slept (spin time 0) are woken for every loop; pauses longer than the spin. */
TEST(wakes_sleeping_workers) {
    setenv("AWQ_CPU_SPIN_US", "0", 1);
    awq_tpool *tp = awq_tpool_create(3);
    unsetenv("AWQ_CPU_SPIN_US");
    ASSERT(tp != NULL);
    ASSERT(run_loops(tp, 97, 1, 200, 0));
    ASSERT(run_loops(tp, 97, 2, 20, 300));
    awq_tpool_destroy(tp);
    tp = awq_tpool_create(2); /* default spin, pauses of 1 ms: workers sleep in between */
    ASSERT(run_loops(tp, 33, 1, 10, 1000));
    awq_tpool_destroy(tp);
}

struct host_arg {
    awq_tpool *tp;
    int ok;
};

static void *host_thread(void *p) {
    struct host_arg *a = p;
    a->ok = run_loops(a->tp, 257, 2, 300, 0);
    return NULL;
}

/* Two host threads issuing loops on one pool at once: one of them runs serially each time. */
TEST(two_callers) {
    awq_tpool *tp = awq_tpool_create(2);
    ASSERT(tp != NULL);
    struct host_arg a[2] = {{tp, 0}, {tp, 0}};
    pthread_t th[2];
    int started = 0;
    for (int i = 0; i < 2; i++) started += pthread_create(&th[i], NULL, host_thread, &a[i]) == 0;
    ASSERT_EQ(started, 2);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    awq_tpool_destroy(tp);
    ASSERT(a[0].ok && a[1].ok);
}

/* Destroying a pool right after creating it, and with workers asleep. */
TEST(create_destroy) {
    for (int i = 0; i < 50; i++) awq_tpool_destroy(awq_tpool_create(4));
    awq_tpool_destroy(NULL);
    setenv("AWQ_CPU_SPIN_US", "0", 1);
    awq_tpool *tp = awq_tpool_create(4);
    unsetenv("AWQ_CPU_SPIN_US");
    ASSERT(run_loops(tp, 10, 1, 1, 2000));
    awq_tpool_destroy(tp);
}

int main(void) {
    RUN(tasks_run_once);
    RUN(wakes_sleeping_workers);
    RUN(two_callers);
    RUN(create_destroy);
    return TEST_EXIT();
}
