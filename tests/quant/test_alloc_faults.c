/*
 * test_alloc_faults.c - every allocation of a short quantize and of a short generate made to
 * fail, one at a time: each run must end in a clean error (a status, a message on the runtime,
 * no crash), leave nothing behind (no output directory, no OUT.tmp-* directory) and, in the
 * sanitizer build, leak nothing (LeakSanitizer is asked after every run).
 *
 * The hook is awq_alloc_fail_set (core/runtime/alloc.c): it counts awq_malloc/calloc/realloc/strdup and
 * the cpu backend's buffers. The model is tests/data/awq_golden/llama_mha (2 layers, hidden 64)
 * with 4 calibration samples; the generate runs on the checkpoint the unfaulted quantize made:
 * runtime, tokenizer, model (W4A16), session, sampler, a prompt and 3 sampled tokens, decoded.
 * AWQ_FAULT_STEP=k tries every k-th allocation only (default 1: all of them).
 *
 * The quantize sweep forks: one unfaulted quantize runs with a hook on the allocation counter
 * (awq_alloc_fail_hook) that, at allocation n, forks a child in which allocation n fails; the
 * child finishes that run, makes the checks above and exits with its verdict, while the parent
 * waits and goes on with allocation n succeeding. So each faulted run costs its own tail (an
 * error unwinding) instead of a rerun of everything before allocation n (the AWQ search: under
 * ASan, ~1.5 s of CPU before each of the last ~550 of ~1340 allocations). Parent and child share
 * the file system: before each fork the scenario directory is copied as hard links, and
 * restored from them after the child (which removes the OUT.tmp-* directory the parent is writing
 * into) - the same inodes under the same names, so the parent's open descriptors stay valid. The
 * unfaulted run's output is then compared byte for byte with an ordinary quantize's.
 * AWQ_FAULT_FORK=0 reruns the quantize from the start for each n instead (slow; the reference).
 */
#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "awq.h"
#include "internal.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define AWQ_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AWQ_TEST_LSAN 1
#endif
#endif
#ifdef AWQ_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static char base[512], root[600], snap[600], model[700], calib[700], qdir[700], parent_dir[700];
static char last_msg[1024];
/* Allocations made inside awq_sampler_sample in the unfaulted generate: (lo, hi] per call. The
 * sampler documents a fallback to greedy when its scratch cannot be allocated, so a failure there
 * may end in AWQ_OK with other text. */
static int64_t sample_lo[8], sample_hi[8];
static bool recording;

static bool exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Entries of root other than the ones listed (the fixed directories of the test). */
static int stray_entries(char *first, size_t n) {
    DIR *d = opendir(root);
    int count = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "ref")) continue;
        if (!count) snprintf(first, n, "%s", e->d_name);
        count++;
    }
    closedir(d);
    return count;
}

static int leaks(void) {
#ifdef AWQ_TEST_LSAN
    return __lsan_do_recoverable_leak_check();
#else
    return 0;
#endif
}

/* One quantize of the tiny model into root/out; the runtime is created inside (counted too). */
static awq_status quantize_once(const char *out) {
    awq_runtime *rt = NULL;
    awq_runtime_params rp = awq_runtime_params_default();
    rp.load_plugins = false;
    rp.n_threads = 1;
    awq_status st = awq_runtime_create(&rt, &rp);
    last_msg[0] = '\0';
    if (st != AWQ_OK) {
        snprintf(last_msg, sizeof last_msg, "awq_runtime_create: %s", awq_status_str(st));
        return st;
    }
    awq_quant_params p = awq_quant_params_default();
    p.model_dir = model;
    p.out_dir = out;
    p.group_size = 32;
    p.calib_path = calib;
    p.calib_samples = 4;
    p.calib_seqlen = 32;
    p.device = "cpu";
    st = awq_quantize(rt, &p, NULL);
    if (st != AWQ_OK) snprintf(last_msg, sizeof last_msg, "%s", awq_runtime_last_error(rt));
    awq_runtime_destroy(rt);
    return st;
}

static awq_status generate_once(char *text, size_t cap) {
    awq_runtime *rt = NULL;
    awq_tokenizer *tok = NULL;
    awq_model *m = NULL;
    awq_session *s = NULL;
    awq_sampler *smp = NULL;
    float *logits = NULL;
    awq_runtime_params rp = awq_runtime_params_default();
    rp.load_plugins = false;
    rp.n_threads = 1;
    last_msg[0] = '\0';
    awq_status st = awq_runtime_create(&rt, &rp);
    if (st != AWQ_OK) {
        snprintf(last_msg, sizeof last_msg, "awq_runtime_create: %s", awq_status_str(st));
        return st;
    }
    awq_model_params mp = awq_model_params_default();
    mp.device = "cpu";
    awq_sampler_params sp = awq_sampler_params_default();
    sp.seed = 1;
    sp.temperature = 0.8f;
    sp.top_k = 20;
    sp.top_p = 0.9f;
    int32_t ids[64], out[8];
    int64_t n = 0;
    if ((st = awq_tokenizer_load(&tok, rt, qdir)) ||
        (st = awq_tokenizer_encode(tok, "To be, or not", 13, true, ids, 64, &n)) ||
        (st = awq_model_load(&m, rt, qdir, &mp)) || (st = awq_session_create(&s, m, 32)) ||
        (st = awq_sampler_create(&smp, &sp)))
        goto done;
    awq_model_info info;
    if ((st = awq_model_get_info(m, &info))) goto done;
    logits = malloc((size_t)info.vocab_size * sizeof *logits);
    if (!logits) {
        st = AWQ_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if ((st = awq_session_eval(s, ids, (int32_t)n, logits, false))) goto done;
    for (int i = 0; i < 3; i++) {
        if (recording) sample_lo[i] = awq_alloc_counted();
        out[i] = awq_sampler_sample(smp, logits, info.vocab_size);
        if (recording) sample_hi[i] = awq_alloc_counted();
        if (out[i] < 0) {
            st = AWQ_ERR_INVALID_ARG;
            snprintf(last_msg, sizeof last_msg, "sampler returned -1");
            goto done;
        }
        if ((st = awq_session_eval(s, &out[i], 1, logits, false))) goto done;
    }
    size_t len = 0;
    st = awq_tokenizer_decode(tok, out, 3, true, text, cap, &len);
done:
    if (st != AWQ_OK) snprintf(last_msg, sizeof last_msg, "%s", awq_runtime_last_error(rt));
    free(logits);
    awq_sampler_destroy(smp);
    awq_session_destroy(s);
    awq_model_destroy(m);
    awq_tokenizer_destroy(tok);
    awq_runtime_destroy(rt);
    return st;
}

static int64_t step(void) {
    const char *e = getenv("AWQ_FAULT_STEP");
    return e && atoll(e) > 0 ? atoll(e) : 1;
}

/* ---- the forking sweep ---------------------------------------------------------------- */

/* Copies the tree src into dst (made), files as hard links; top: skip the entry "ref". */
static int link_tree(const char *src, const char *dst, bool top) {
    DIR *d = opendir(src);
    if (!d) return -1;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || (top && !strcmp(e->d_name, "ref")))
            continue;
        char a[1024], b[1024];
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
        struct stat sb;
        if (lstat(a, &sb) != 0)
            rc = -1;
        else if (S_ISDIR(sb.st_mode))
            rc = mkdir(b, sb.st_mode & 07777) == 0 ? link_tree(a, b, false) : -1;
        else
            rc = link(a, b);
    }
    closedir(d);
    return rc;
}

/* Removes everything in dir except the entry "ref". */
static int clear_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "ref")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (test_rmtree(p) != 0) rc = -1;
    }
    closedir(d);
    return rc;
}

enum { CHILD_ERROR = 0, CHILD_OOM = 1, CHILD_RECOVERED = 2, CHILD_BAD = 3 };

static bool in_child;
static int64_t fork_first = 1, fork_step = 1, child_nth;
static int64_t n_forked, n_failed, n_oom, n_ok, n_bad;
static char bad_msg[1200];

/* The threads of this process. */
static int threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* awq_alloc_fail_hook: at allocation n, a child in which it fails; the parent goes on. */
static bool fork_at(int64_t n, void *user) {
    (void)user;
    if (in_child || n < fork_first || (n - fork_first) % fork_step) return false;
    if (n_bad) return false; /* stop at the first problem (reported once the run is over) */
    if (threads() != 1) {    /* a child of a threaded process (an OpenMP pool) would deadlock */
        n_bad++;
        snprintf(bad_msg, sizeof bad_msg, "allocation %lld: %d threads at the fork (OpenMP pool?)",
                 (long long)n, threads());
        return false;
    }
    if (clear_dir(snap) != 0 || link_tree(root, snap, true) != 0) {
        n_bad++;
        snprintf(bad_msg, sizeof bad_msg, "allocation %lld: cannot copy %s to %s (errno %d)", (long long)n,
                 root, snap, errno);
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        in_child = true;
        child_nth = n;
        return true;
    }
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    int code = pid < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    n_forked++;
    if (code == CHILD_ERROR || code == CHILD_OOM) n_failed++;
    n_oom += code == CHILD_OOM;
    n_ok += code == CHILD_RECOVERED;
    if (code < 0 || code > CHILD_RECOVERED) {
        n_bad++;
        snprintf(bad_msg, sizeof bad_msg, "allocation %lld: the faulted run %s %d (its report is above)",
                 (long long)n,
                 code < 0         ? "could not fork: errno"
                     : code > 128 ? "died of signal"
                                  : "exited with",
                 code < 0         ? errno
                     : code > 128 ? code - 128
                                  : code);
    }
    if (clear_dir(root) != 0 || link_tree(snap, root, true) != 0) {
        n_bad++;
        snprintf(bad_msg, sizeof bad_msg, "allocation %lld: cannot restore %s from %s (errno %d)",
                 (long long)n, root, snap, errno);
    }
    return false;
}

/* The child's checks after its run (the plain sweep's, below); returns its exit code. */
static int child_verdict(awq_status st, const char *out) {
    char stray[256];
    int code = st == AWQ_OK ? CHILD_RECOVERED : st == AWQ_ERR_OUT_OF_MEMORY ? CHILD_OOM : CHILD_ERROR;
    if (st == AWQ_OK && (!exists(out) || test_rmtree(out) != 0)) {
        printf("FAIL allocation %lld: AWQ_OK but no output\n", (long long)child_nth);
        code = CHILD_BAD;
    }
    if (st != AWQ_OK && !last_msg[0]) {
        printf("FAIL allocation %lld: %s without a message\n", (long long)child_nth, awq_status_str(st));
        code = CHILD_BAD;
    }
    if (st != AWQ_OK && st != AWQ_ERR_OUT_OF_MEMORY)
        printf("  allocation %lld: %s: %s\n", (long long)child_nth, awq_status_str(st), last_msg);
    int k = stray_entries(stray, sizeof stray);
    if (k != 0) {
        printf("FAIL allocation %lld (%s): %d entries left behind in %s, e.g. %s\n", (long long)child_nth,
               awq_status_str(st), k, root, stray);
        code = CHILD_BAD;
    }
    if (leaks()) {
        printf("FAIL allocation %lld (%s: %s): leaks (report above)\n", (long long)child_nth,
               awq_status_str(st), last_msg);
        code = CHILD_BAD;
    }
    fflush(stdout);
    return code;
}

static bool same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = test_read_file(a, &na), *y = test_read_file(b, &nb);
    bool same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static bool fork_mode(void) {
    const char *e = getenv("AWQ_FAULT_FORK");
    return !e || strcmp(e, "0") != 0;
}

TEST(quantize_every_allocation_fails_cleanly_forked) {
    if (!fork_mode()) {
        printf("  skipped: AWQ_FAULT_FORK=0 (the plain sweep below instead)\n");
        return;
    }
    char out[800], plain[800];
    snprintf(out, sizeof out, "%s/out", root);
    snprintf(plain, sizeof plain, "%s/plain", base);
    /* an ordinary quantize: the allocation count and the output to compare with */
    awq_alloc_fail_set(INT64_MAX);
    awq_status st = quantize_once(out);
    int64_t total = awq_alloc_counted();
    awq_alloc_fail_set(0);
    ASSERT_MSG(st == AWQ_OK, "quantize without faults: %s (%s)", awq_status_str(st), last_msg);
    ASSERT(rename(out, plain) == 0);
    printf("  quantize: %lld allocations counted\n", (long long)total);
    ASSERT(total > 10);
    fork_first = getenv("AWQ_FAULT_FIRST") && atoll(getenv("AWQ_FAULT_FIRST")) > 0
        ? atoll(getenv("AWQ_FAULT_FIRST"))
        : 1;
    fork_step = step();
    awq_alloc_fail_hook(fork_at, NULL);
    st = quantize_once(out);
    int64_t total2 = awq_alloc_counted();
    awq_alloc_fail_hook(NULL, NULL);
    if (in_child) _exit(child_verdict(st, out));
    ASSERT_MSG(!n_bad, "%s", bad_msg);
    ASSERT_MSG(st == AWQ_OK, "the forking parent's quantize: %s (%s)", awq_status_str(st), last_msg);
    ASSERT_MSG(total2 == total, "the forking parent counted %lld allocations, an ordinary run %lld",
               (long long)total2, (long long)total);
    int64_t expect = total >= fork_first ? (total - fork_first) / fork_step + 1 : 0;
    ASSERT_MSG(n_forked == expect, "%lld faulted runs, %lld expected", (long long)n_forked,
               (long long)expect);
    char a[900], b[900];
    snprintf(a, sizeof a, "%s/model.safetensors", out);
    snprintf(b, sizeof b, "%s/model.safetensors", plain);
    ASSERT_MSG(same_file(a, b), "the forking parent's %s differs from an ordinary quantize's", a);
    ASSERT(test_rmtree(plain) == 0);
    ASSERT(rename(out, qdir) == 0);
    printf(
        "  quantize: %lld runs with one failed allocation (forked): %lld errors (%lld out-of-memory), %lld "
        "recovered\n",
        (long long)n_forked, (long long)n_failed, (long long)n_oom, (long long)n_ok);
}

TEST(quantize_every_allocation_fails_cleanly) {
    if (fork_mode()) return; /* done by the forking sweep */
    char out[800], stray[256];
    snprintf(out, sizeof out, "%s/out", root);
    /* the count without faults (fail_at beyond any run) */
    awq_alloc_fail_set(INT64_MAX);
    awq_status st = quantize_once(out);
    int64_t total = awq_alloc_counted();
    awq_alloc_fail_set(0);
    ASSERT_MSG(st == AWQ_OK, "quantize without faults: %s (%s)", awq_status_str(st), last_msg);
    ASSERT(exists(out));
    ASSERT(rename(out, qdir) == 0);
    printf("  quantize: %lld allocations counted\n", (long long)total);
    ASSERT(total > 10);
    int64_t failed = 0, oom = 0, ok = 0;
    int64_t first = getenv("AWQ_FAULT_FIRST") ? atoll(getenv("AWQ_FAULT_FIRST")) : 1;
    for (int64_t nth = first > 0 ? first : 1; nth <= total; nth += step()) {
        if (getenv("AWQ_FAULT_VERBOSE")) fprintf(stderr, "quantize: allocation %lld\n", (long long)nth);
        awq_alloc_fail_set(nth);
        st = quantize_once(out);
        awq_alloc_fail_set(0);
        if (st == AWQ_OK) { /* an allocation whose failure has a fallback */
            ok++;
            ASSERT_MSG(exists(out), "allocation %lld: AWQ_OK but no output", (long long)nth);
            ASSERT(test_rmtree(out) == 0);
        } else {
            failed++;
            oom += st == AWQ_ERR_OUT_OF_MEMORY;
            ASSERT_MSG(last_msg[0], "allocation %lld: %s without a message", (long long)nth,
                       awq_status_str(st));
            if (st != AWQ_ERR_OUT_OF_MEMORY)
                printf("  allocation %lld: %s: %s\n", (long long)nth, awq_status_str(st), last_msg);
        }
        int k = stray_entries(stray, sizeof stray);
        ASSERT_MSG(k == 0, "allocation %lld (%s): %d entries left behind in %s, e.g. %s", (long long)nth,
                   awq_status_str(st), k, root, stray);
        ASSERT_MSG(!leaks(), "allocation %lld (%s: %s): leaks (report above)", (long long)nth,
                   awq_status_str(st), last_msg);
    }
    printf("  quantize: %lld runs with one failed allocation: %lld errors (%lld out-of-memory), %lld "
           "recovered\n",
           (long long)(failed + ok), (long long)failed, (long long)oom, (long long)ok);
}

TEST(generate_every_allocation_fails_cleanly) {
    ASSERT_MSG(exists(qdir), "no quantized model (the quantize test failed)");
    char ref_text[256] = "", text[256];
    awq_alloc_fail_set(INT64_MAX);
    recording = true;
    awq_status st = generate_once(ref_text, sizeof ref_text);
    recording = false;
    int64_t total = awq_alloc_counted();
    awq_alloc_fail_set(0);
    ASSERT_MSG(st == AWQ_OK, "generate without faults: %s (%s)", awq_status_str(st), last_msg);
    printf("  generate: %lld allocations counted, text \"%s\"\n", (long long)total, ref_text);
    int64_t failed = 0, ok = 0;
    for (int64_t nth = 1; nth <= total; nth += step()) {
        awq_alloc_fail_set(nth);
        text[0] = '\0';
        st = generate_once(text, sizeof text);
        awq_alloc_fail_set(0);
        if (st == AWQ_OK) {
            ok++;
            bool in_sampler = false;
            for (int i = 0; i < 3; i++) in_sampler |= nth > sample_lo[i] && nth <= sample_hi[i];
            ASSERT_MSG(in_sampler || !strcmp(text, ref_text), "allocation %lld: AWQ_OK but \"%s\" != \"%s\"",
                       (long long)nth, text, ref_text);
            if (strcmp(text, ref_text))
                printf("  allocation %lld (sampler scratch): greedy fallback\n", (long long)nth);
        } else {
            failed++;
            ASSERT_MSG(last_msg[0] || st == AWQ_ERR_OUT_OF_MEMORY, "allocation %lld: %s without a message",
                       (long long)nth, awq_status_str(st));
            if (st != AWQ_ERR_OUT_OF_MEMORY)
                printf("  allocation %lld: %s: %s\n", (long long)nth, awq_status_str(st), last_msg);
        }
        ASSERT_MSG(!leaks(), "allocation %lld (%s: %s): leaks (report above)", (long long)nth,
                   awq_status_str(st), last_msg);
    }
    printf("  generate: %lld runs with one failed allocation: %lld errors, %lld recovered\n",
           (long long)(failed + ok), (long long)failed, (long long)ok);
}

int main(void) {
    /* one thread: OpenMP regions without a thread count (weight packing) would otherwise start a
     * pool, and a process forked while it exists deadlocks in libgomp */
    omp_set_num_threads(1);
    /* on a tmpfs where there is one: each quantize fsyncs its layers and manifest */
    snprintf(base, sizeof base, "/dev/shm/awq-allocfault-XXXXXX");
    if (!mkdtemp(base)) {
        if (test_tmpdir(base, sizeof base, "allocfault")) return 1;
    }
    /* root: the runs' directory; snap: its hard-linked copy while a forked child runs */
    snprintf(root, sizeof root, "%s/run", base);
    snprintf(snap, sizeof snap, "%s/snap", base);
    if (mkdir(root, 0700) != 0 || mkdir(snap, 0700) != 0) return 1;
    snprintf(model, sizeof model, "%s/tests/data/awq_golden/llama_mha", AWQ_TEST_SOURCE_DIR);
    snprintf(calib, sizeof calib, "%s/tests/data/awq_golden/calib.jsonl", AWQ_TEST_SOURCE_DIR);
    snprintf(qdir, sizeof qdir, "%s/ref", root);
    snprintf(parent_dir, sizeof parent_dir, "%s", root);
    RUN(quantize_every_allocation_fails_cleanly_forked);
    RUN(quantize_every_allocation_fails_cleanly);
    RUN(generate_every_allocation_fails_cleanly);
    if (test_rmtree(base) != 0) printf("warning: cannot remove %s\n", base);
    return TEST_EXIT();
}
