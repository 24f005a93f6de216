/*
 * test_resume.c - crash-safe, resumable, deterministic quantization and the checkpoint manifest,
 * on the first 3 decoder layers of SmolLM2 (a few calibration blocks, the cpu backend).
 *
 *  - determinism: the same quantization with 1 and with 2 threads gives byte-identical files;
 *  - resume: a chain of runs killed with SIGKILL at chosen points (before the first layer, after
 *    a layer's data but before its record, in the middle of a layer's writes, of its commit, of
 *    the restore of an earlier kill, of the final commit) and at random times, each rerun with
 *    the other thread count, ends in a checkpoint byte-identical to the uninterrupted run's; a
 *    recorded layer whose data was damaged on disk is detected by its hash and redone;
 *  - refusal: a rerun with another option, calibration text or weights file (mtime) is refused
 *    naming the difference;
 *    --no-resume starts over and removes the partial run;
 *  - stale directories are listed with their size, removed on request, kept while in use;
 *  - awq_checkpoint_verify and `awq-cli verify` accept the checkpoint and name a changed,
 *    a missing and an unlisted file.
 *
 * Every quantization runs in a forked child (OpenMP does not survive fork in the parent), which
 * kills itself from its progress callback (at once, or after a delay with a timer) or is killed
 * by the parent at a random time. AWQ_RESUME_SEED picks the random kill times (printed).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "awq.h"
#include "safetensors.h"
#include "test.h"

#define LAYERS 3

static awq_runtime *rt; /* parent: safetensors reading/writing only (no backend work) */
static char root[512], model[600], calib[600], calib2[600], ref[600];
static double t_ref = 10;

/* ---- helpers ---------------------------------------------------------------------------------- */

static int copy_file(const char *from, const char *to) {
    size_t n = 0;
    char *b = test_read_file(from, &n);
    if (!b) return -1;
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(b, 1, n, f) == n ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    free(b);
    return rc;
}

static int layer_of(const char *name) {
    const char *p = "model.layers.";
    if (strncmp(name, p, strlen(p)) != 0) return -1;
    return atoi(name + strlen(p));
}

/* The first `layers` decoder layers of src (config, tokenizer and tensors). */
static awq_status cut_model(const char *src, const char *dst, int layers) {
    mkdir(dst, 0755);
    static const char *files[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json"};
    char a[700], b[700];
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", dst, files[i]);
        if (copy_file(a, b) != 0 && i < 2) return AWQ_ERR_IO;
    }
    snprintf(a, sizeof a, "%s/config.json", src);
    size_t n = 0;
    char *cfg = test_read_file(a, &n);
    char *key = cfg ? strstr(cfg, "\"num_hidden_layers\"") : NULL;
    char *colon = key ? strchr(key, ':') : NULL;
    if (!colon) {
        free(cfg);
        return AWQ_ERR_FORMAT;
    }
    char *num = colon + 1;
    while (*num == ' ') num++;
    char *end = num;
    while (*end >= '0' && *end <= '9') end++;
    snprintf(b, sizeof b, "%s/config.json", dst);
    FILE *f = fopen(b, "wb");
    if (!f) {
        free(cfg);
        return AWQ_ERR_IO;
    }
    fprintf(f, "%.*s%d%s", (int)(num - cfg), cfg, layers, end);
    fclose(f);
    free(cfg);
    awq_safetensors *st = NULL;
    awq_st_writer *w = NULL;
    awq_status s = awq_st_open(rt, src, &st);
    if (s == AWQ_OK) s = awq_st_writer_create(rt, &w, dst, 0, NULL);
    for (int32_t i = 0; s == AWQ_OK && i < awq_st_count(st); i++) {
        const awq_st_tensor *t = awq_st_get(st, i);
        if (layer_of(t->name) < layers) s = awq_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape);
    }
    if (s == AWQ_OK) s = awq_st_writer_begin(w);
    for (int32_t i = 0; s == AWQ_OK && i < awq_st_count(st); i++) {
        const awq_st_tensor *t = awq_st_get(st, i);
        if (layer_of(t->name) < layers) s = awq_st_writer_write(w, t->name, t->data, t->nbytes);
    }
    if (s == AWQ_OK) s = awq_st_writer_finish(w);
    awq_st_writer_destroy(w);
    awq_st_close(st);
    return s;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* The OUT.tmp-* directories beside out (count; the first one's path in first). */
static int tmp_dirs(const char *out, char *first, size_t cap) {
    const char *slash = strrchr(out, '/');
    char parent[600], prefix[300];
    snprintf(parent, sizeof parent, "%.*s", (int)(slash - out), out);
    snprintf(prefix, sizeof prefix, "%s.tmp-", slash + 1);
    DIR *d = opendir(parent);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            if (n++ == 0 && first) snprintf(first, cap, "%s/%s", parent, e->d_name);
        }
    if (d) closedir(d);
    return n;
}

static int records(const char *tmp) {
    int k = 0;
    char p[800];
    for (;; k++) {
        snprintf(p, sizeof p, "%s/progress/layer-%05d.json", tmp, k);
        if (!exists(p)) return k;
    }
}

/* Compares every file of two directories byte for byte; NULL if identical, else why. */
static const char *diff_dirs(const char *a, const char *b) {
    static char why[1024];
    int na = 0, nb = 0;
    DIR *d = opendir(a);
    struct dirent *e;
    why[0] = '\0';
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        na++;
        char pa[800], pb[800];
        snprintf(pa, sizeof pa, "%s/%s", a, e->d_name);
        snprintf(pb, sizeof pb, "%s/%s", b, e->d_name);
        size_t la = 0, lb = 0;
        char *x = test_read_file(pa, &la), *y = test_read_file(pb, &lb);
        if (!x || !y || la != lb || memcmp(x, y, la)) {
            size_t at = 0;
            while (x && y && at < la && at < lb && x[at] == y[at]) at++;
            snprintf(why, sizeof why, "%s: %s (sizes %zu, %zu; first difference at byte %zu)", e->d_name,
                     !y ? "missing in the second directory" : "differs", la, lb, at);
        }
        free(x);
        free(y);
        if (why[0]) break;
    }
    if (d) closedir(d);
    if (why[0]) return why;
    d = opendir(b);
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') nb++;
    if (d) closedir(d);
    if (na == 0 || na != nb) {
        snprintf(why, sizeof why, "%d files vs %d files", na, nb);
        return why;
    }
    return NULL;
}

/* ---- one quantization in a child process ------------------------------------------------------- */

typedef struct run {
    const char *out;
    int threads;
    int group_size;    /* 0: 64 */
    const char *calib; /* NULL: calib */
    bool no_resume;
    const char *kill_stage; /* the child kills itself when a stage containing this starts */
    int kill_delay_us;      /* 0: at once; else from a timer that long after */
    double parent_kill_s;   /* > 0: the parent kills the child after this many seconds */
    /* results */
    bool killed;
    int status; /* awq_status when not killed */
    char error[1024];
    double seconds;
} run;

static run *g_run;

static void on_alarm(int sig) {
    (void)sig;
    kill(getpid(), SIGKILL);
}

static bool child_progress(float done, const char *stage, void *user) {
    (void)done;
    (void)user;
    if (g_run->kill_stage && strstr(stage, g_run->kill_stage)) {
        if (g_run->kill_delay_us <= 0) kill(getpid(), SIGKILL);
        struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = g_run->kill_delay_us}};
        signal(SIGALRM, on_alarm);
        setitimer(ITIMER_REAL, &it, NULL);
        g_run->kill_stage = NULL;
    }
    return true;
}

static void child_log(awq_log_level level, const char *msg, void *user) {
    (void)user;
    if (level <= AWQ_LOG_LEVEL_WARN || strstr(msg, "resum")) fprintf(stderr, "    [child] %s\n", msg);
}

static void quantize_child(run *r, int fd) {
    g_run = r;
    awq_runtime_params rp = awq_runtime_params_default();
    rp.load_plugins = false;
    rp.n_threads = r->threads;
    rp.log = child_log;
    awq_runtime *crt = NULL;
    awq_status st = awq_runtime_create(&crt, &rp);
    if (st == AWQ_OK) {
        awq_quant_params p = awq_quant_params_default();
        p.model_dir = model;
        p.out_dir = r->out;
        p.group_size = r->group_size ? r->group_size : 64;
        p.calib_path = r->calib ? r->calib : calib;
        p.calib_samples = 48;
        p.calib_seqlen = 64;
        p.device = "cpu";
        p.no_resume = r->no_resume;
        p.progress = child_progress;
        st = awq_quantize(crt, &p, NULL);
    }
    char msg[1100];
    int n = snprintf(msg, sizeof msg, "%d %s", (int)st, crt ? awq_runtime_last_error(crt) : "runtime");
    if (write(fd, msg, (size_t)n) < 0) _exit(3);
    _exit(0);
}

static void do_run(run *r) {
    int fds[2];
    r->killed = false;
    r->status = -1;
    r->error[0] = '\0';
    if (pipe(fds) != 0) return;
    fflush(stdout);
    fflush(stderr);
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        quantize_child(r, fds[1]);
    }
    close(fds[1]);
    if (r->parent_kill_s > 0) {
        /* poll so a child that finishes first is not waited for the whole delay */
        while (now() - t0 < r->parent_kill_s) {
            siginfo_t si;
            memset(&si, 0, sizeof si);
            if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) break;
            usleep(2000);
        }
        kill(pid, SIGKILL);
    }
    char buf[1100];
    ssize_t k = 0, m;
    while ((m = read(fds[0], buf + k, sizeof buf - 1 - (size_t)k)) > 0) k += m;
    buf[k < 0 ? 0 : k] = '\0';
    close(fds[0]);
    int ws = 0;
    waitpid(pid, &ws, 0);
    r->seconds = now() - t0;
    if (k > 0) {
        /* the child reported a result before any kill landed */
        r->status = atoi(buf);
        const char *sp = strchr(buf, ' ');
        snprintf(r->error, sizeof r->error, "%s", sp ? sp + 1 : "");
    } else {
        r->killed = WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
    }
}

/* ---- tests ------------------------------------------------------------------------------------ */

TEST(reference_run_is_verified) {
    run r = {.out = ref, .threads = 1};
    do_run(&r);
    ASSERT_MSG(!r.killed && r.status == AWQ_OK, "reference run: status %d: %s", r.status, r.error);
    t_ref = r.seconds;
    printf("  uninterrupted run (1 thread): %.2f s\n", t_ref);
    ASSERT_EQ(tmp_dirs(ref, NULL, 0), 0);
    char p[800];
    snprintf(p, sizeof p, "%s/awq-manifest.json", ref);
    ASSERT(exists(p));
    snprintf(p, sizeof p, "%s/progress", ref);
    ASSERT(!exists(p));
    ASSERT_OK_RT(awq_checkpoint_verify(rt, ref, NULL, NULL), rt);
}

TEST(two_threads_give_identical_files) {
    char out[700];
    snprintf(out, sizeof out, "%s/t2", root);
    run r = {.out = out, .threads = 2};
    do_run(&r);
    ASSERT_MSG(!r.killed && r.status == AWQ_OK, "status %d: %s", r.status, r.error);
    const char *why = diff_dirs(ref, out);
    ASSERT_MSG(!why, "1 vs 2 threads: %s", why ? why : "");
    printf("  2 threads (%.2f s): every file byte-identical to the 1-thread run\n", r.seconds);
}

/* Flips one byte inside a tensor's data in a shard (test of the resume's hash check). */
static bool damage_tensor(const char *shard, const char *name) {
    size_t n = 0;
    char *b = test_read_file(shard, &n);
    if (!b || n < 8) {
        free(b);
        return false;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)(uint8_t)b[i] << (8 * i);
    cJSON *h = cJSON_ParseWithLength(b + 8, (size_t)hl);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(h, name);
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    bool ok = false;
    if (cJSON_IsArray(off)) {
        size_t at = 8 + (size_t)hl + (size_t)cJSON_GetArrayItem(off, 0)->valuedouble + 5;
        FILE *f = fopen(shard, "r+b");
        if (f && fseek(f, (long)at, SEEK_SET) == 0) {
            unsigned char c = (unsigned char)b[at] ^ 0x5a;
            ok = fwrite(&c, 1, 1, f) == 1;
        }
        if (f) fclose(f);
    }
    cJSON_Delete(h);
    free(b);
    return ok;
}

TEST(killed_runs_resume_to_identical_checkpoint) {
    char out[700], tmp[800];
    snprintf(out, sizeof out, "%s/chain", root);
    unsigned long long seed = 20261123;
    if (getenv("AWQ_RESUME_SEED")) seed = strtoull(getenv("AWQ_RESUME_SEED"), NULL, 10);
    printf("  AWQ_RESUME_SEED=%llu\n", seed);
    unsigned long long rng = seed ? seed : 1;
    struct {
        const char *stage;
        int delay_us;
        double parent_frac;
        const char *what;
    } kills[] = {
        {"layer 1/3: quantize + write", 0, 0, "before the first layer is written"},
        {"layer 2/3: commit", 0, 0, "after layer 2's data, before its record"},
        {"resuming: verifying layer 1/3", 300, 0, "while restoring the recorded layers"},
        {"layer 2/3: quantize + write", 1500, 0, "in the middle of layer 2's writes"},
        {"layer 3/3: commit", 400, 0, "in the middle of layer 3's commit (fsync, record)"},
        {NULL, 0, -1, "at a random time"},
        {NULL, 0, -1, "at a random time"},
        {"writing config and tokenizer", 1500, 0, "in the middle of the final commit"},
    };
    int n_killed = 0, n_resumed_records = 0;
    double total = 0;
    for (size_t i = 0; i < sizeof kills / sizeof kills[0]; i++) {
        run r = {.out = out,
                 .threads = 1 + (int)(i % 2),
                 .kill_stage = kills[i].stage,
                 .kill_delay_us = kills[i].delay_us};
        if (kills[i].parent_frac < 0)
            r.parent_kill_s = 0.05 + (double)(test_rng_next(&rng) % 1000) / 1000.0 * 0.3 * t_ref;
        int before = tmp_dirs(out, tmp, sizeof tmp) ? records(tmp) : -1;
        do_run(&r);
        total += r.seconds;
        int after = tmp_dirs(out, tmp, sizeof tmp) == 1 ? records(tmp) : -1;
        if (r.killed) {
            n_killed++;
            printf("  kill %zu (%d thread%s) %s%s: %s%.3f s; layers recorded %d -> %d\n", i + 1, r.threads,
                   r.threads > 1 ? "s" : "", kills[i].what, r.parent_kill_s > 0 ? " " : "",
                   r.parent_kill_s > 0 ? "after " : "at ", r.parent_kill_s > 0 ? r.parent_kill_s : r.seconds,
                   before, after);
            ASSERT_MSG(!exists(out), "kill %zu: %s exists after a kill", i + 1, out);
            ASSERT_EQ(tmp_dirs(out, NULL, 0), 1);
            if (before > 0) n_resumed_records++;
        } else {
            ASSERT_MSG(r.status == AWQ_OK, "run %zu: status %d: %s", i + 1, r.status, r.error);
            printf("  run %zu finished before its kill (%s) in %.2f s\n", i + 1, kills[i].what, r.seconds);
            break;
        }
        if (i == 3 && after >= 1) {
            /* damage the data of a recorded layer: the rerun must notice and redo it */
            char shard[900];
            snprintf(shard, sizeof shard, "%s/model.safetensors", tmp);
            if (!exists(shard)) snprintf(shard, sizeof shard, "%s/model.safetensors.prev", tmp);
            ASSERT(damage_tensor(shard, "model.layers.0.mlp.down_proj.qweight"));
            printf("  damaged model.layers.0.mlp.down_proj.qweight in %s\n", shard);
        }
    }
    if (!exists(out)) {
        run r = {.out = out, .threads = 2};
        do_run(&r);
        total += r.seconds;
        ASSERT_MSG(!r.killed && r.status == AWQ_OK, "final run: status %d: %s", r.status, r.error);
    }
    printf("  %d kills (%d of them with layers already recorded), %.1f s of quantization in all\n", n_killed,
           n_resumed_records, total);
    ASSERT(n_killed >= 6);
    ASSERT(n_resumed_records >= 3);
    ASSERT_EQ(tmp_dirs(out, NULL, 0), 0);
    const char *why = diff_dirs(ref, out);
    ASSERT_MSG(!why, "resumed vs uninterrupted: %s", why ? why : "");
    ASSERT_OK_RT(awq_checkpoint_verify(rt, out, NULL, NULL), rt);
    printf("  every file of the resumed checkpoint is byte-identical to the uninterrupted run's\n");
}

TEST(changed_inputs_are_refused_and_no_resume_starts_over) {
    char out[700], tmp[800];
    snprintf(out, sizeof out, "%s/changed", root);
    run r = {.out = out, .threads = 2, .kill_stage = "layer 2/3: quantize + write"};
    do_run(&r);
    ASSERT(r.killed);
    ASSERT_EQ(tmp_dirs(out, tmp, sizeof tmp), 1);
    ASSERT_EQ(records(tmp), 1);

    run g = {.out = out, .threads = 2, .group_size = 32};
    do_run(&g);
    ASSERT_EQ(g.status, AWQ_ERR_EXISTS);
    printf("  other group size: %s\n", g.error);
    ASSERT(strstr(g.error, "option --group-size: 64 -> 32"));
    ASSERT(strstr(g.error, "--no-resume"));

    run c = {.out = out, .threads = 2, .calib = calib2};
    do_run(&c);
    ASSERT_EQ(c.status, AWQ_ERR_EXISTS);
    printf("  other calibration text: %s\n", c.error);
    ASSERT(strstr(c.error, "calibration text sha256"));
    ASSERT(!strstr(c.error, "option --"));
    /* the model's weights file rewritten (same size and header, new mtime) */
    char shard[700];
    snprintf(shard, sizeof shard, "%s/model.safetensors", model);
    struct stat sb;
    ASSERT(stat(shard, &sb) == 0);
    struct timespec times[2] = {sb.st_atim, sb.st_mtim};
    times[1].tv_sec -= 3600;
    ASSERT(utimensat(AT_FDCWD, shard, times, 0) == 0);
    run m = {.out = out, .threads = 2};
    do_run(&m);
    times[1] = sb.st_mtim;
    ASSERT(utimensat(AT_FDCWD, shard, times, 0) == 0);
    ASSERT_EQ(m.status, AWQ_ERR_EXISTS);
    printf("  model file touched: %s\n", m.error);
    ASSERT(strstr(m.error, "input model.safetensors mtime"));

    ASSERT_EQ(tmp_dirs(out, NULL, 0), 1); /* refusals leave the partial run alone */
    ASSERT_EQ(records(tmp), 1);

    run n = {.out = out,
             .threads = 2,
             .calib = calib2,
             .no_resume = true,
             .kill_stage = "layer 1/3: quantize + write"};
    do_run(&n);
    ASSERT(n.killed);
    char tmp2[800];
    ASSERT_EQ(tmp_dirs(out, tmp2, sizeof tmp2), 1);
    ASSERT_MSG(strcmp(tmp, tmp2) != 0, "--no-resume kept %s", tmp);
    ASSERT(!exists(tmp));
}

static void count_stale(const awq_stale_info *info, void *user) {
    int *c = user;
    printf("  stale: %s %lld bytes, %d/%d layers, resumable %d, in use %d, removed %d\n", info->path,
           (long long)info->bytes, info->layers_done, info->n_layers, info->resumable, info->in_use,
           info->removed);
    if (info->removed) c[0]++;
    if (info->in_use) c[1]++;
    if (info->resumable) c[2]++;
    if (!info->resumable && info->bytes >= (1 << 20)) c[3]++;
}

TEST(stale_directories_listed_and_removed) {
    /* `changed` holds one partial, resumable run (the previous test) */
    char out[700], junk[800], busy[800], p[900];
    snprintf(out, sizeof out, "%s/changed", root);
    snprintf(junk, sizeof junk, "%s.tmp-AbCdEf", out);
    snprintf(busy, sizeof busy, "%s.tmp-BuSy01", out);
    mkdir(junk, 0700);
    snprintf(p, sizeof p, "%s/model.safetensors", junk);
    FILE *f = fopen(p, "wb");
    ASSERT(f);
    static char mb[1 << 20];
    memset(mb, 7, sizeof mb);
    fwrite(mb, 1, sizeof mb, f);
    fclose(f);
    mkdir(busy, 0700);
    snprintf(p, sizeof p, "%s/progress", busy);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/progress/lock", busy);
    int fd = open(p, O_RDWR | O_CREAT, 0644);
    ASSERT(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    int c[4] = {0};
    int32_t n = 0;
    ASSERT_OK_RT(awq_quantize_stale(rt, out, false, count_stale, c, &n), rt);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(c[0], 0);
    ASSERT_EQ(c[1], 1);
    ASSERT_EQ(c[2], 1);
    ASSERT_EQ(c[3], 1);
    /* the command line: lists, removes all but the one in use */
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "'%s/awq-cli' quantize --clean-stale '%s' > '%s/clean.txt' 2>&1",
             AWQ_TEST_BIN_DIR, out, root);
    int rc = system(cmd);
    snprintf(p, sizeof p, "%s/clean.txt", root);
    char *txt = test_read_file(p, NULL);
    printf("  awq-cli quantize --clean-stale: exit %d\n%s", WEXITSTATUS(rc), txt ? txt : "");
    ASSERT_EQ(WEXITSTATUS(rc), 0);
    ASSERT(txt && strstr(txt, "removed") && strstr(txt, "in use"));
    free(txt);
    ASSERT(!exists(junk));
    ASSERT(exists(busy));
    ASSERT_EQ(tmp_dirs(out, NULL, 0), 1);
    close(fd);
    memset(c, 0, sizeof c);
    ASSERT_OK_RT(awq_quantize_stale(rt, out, true, count_stale, c, &n), rt);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(c[0], 1);
    ASSERT_EQ(tmp_dirs(out, NULL, 0), 0);
}

typedef struct vcount {
    int ok, bad, extra;
    char bad_files[256];
} vcount;

static void on_verify(const awq_verify_item *it, void *user) {
    vcount *v = user;
    if (!it->problem)
        v->ok++;
    else if (!it->expected)
        v->extra++;
    else {
        v->bad++;
        size_t n = strlen(v->bad_files);
        snprintf(v->bad_files + n, sizeof v->bad_files - n, "%s%s=%s", n ? "," : "", it->file, it->problem);
    }
}

TEST(verify_names_changed_missing_and_extra_files) {
    char dir[700], cmd[2000], p[900];
    snprintf(dir, sizeof dir, "%s/tampered", root);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", ref, dir);
    ASSERT_EQ(system(cmd), 0);
    vcount v = {0};
    ASSERT_OK_RT(awq_checkpoint_verify(rt, dir, on_verify, &v), rt);
    ASSERT(v.ok >= 5 && v.bad == 0 && v.extra == 0);
    int files = v.ok;
    snprintf(cmd, sizeof cmd, "'%s/awq-cli' verify -q '%s' > /dev/null 2>&1", AWQ_TEST_BIN_DIR, dir);
    ASSERT_EQ(WEXITSTATUS(system(cmd)), 0);
    /* one flipped byte deep in the shard, a removed file, an added one */
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    ASSERT(damage_tensor(p, "model.layers.2.self_attn.v_proj.scales"));
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    ASSERT_EQ(unlink(p), 0);
    snprintf(p, sizeof p, "%s/README.md", dir);
    FILE *f = fopen(p, "w");
    ASSERT(f);
    fputs("notes\n", f);
    fclose(f);
    memset(&v, 0, sizeof v);
    awq_status st = awq_checkpoint_verify(rt, dir, on_verify, &v);
    printf("  tampered: %s; %s\n", awq_status_str(st), v.bad_files);
    ASSERT_EQ(st, AWQ_ERR_FORMAT);
    ASSERT_EQ(v.bad, 2);
    ASSERT_EQ(v.extra, 1);
    ASSERT_EQ(v.ok, files - 2);
    ASSERT(strstr(v.bad_files, "model.safetensors=content differs"));
    ASSERT(strstr(v.bad_files, "tokenizer_config.json=missing"));
    ASSERT(strstr(awq_runtime_last_error(rt), "2 of"));
    snprintf(cmd, sizeof cmd, "'%s/awq-cli' verify '%s' > '%s/verify.txt' 2>&1", AWQ_TEST_BIN_DIR, dir, root);
    int rc = system(cmd);
    snprintf(p, sizeof p, "%s/verify.txt", root);
    char *txt = test_read_file(p, NULL);
    printf("  awq-cli verify (tampered): exit %d\n%s", WEXITSTATUS(rc), txt ? txt : "");
    ASSERT_EQ(WEXITSTATUS(rc), 1);
    ASSERT(txt && strstr(txt, "BAD") && strstr(txt, "MISSING") && strstr(txt, "extra"));
    free(txt);
}

int main(void) {
    if (!test_model_dir()) return test_skip_or_fail("AWQ_TEST_MODEL_DIR not set");
    awq_runtime_params rp = awq_runtime_params_default();
    rp.load_plugins = false;
    if (awq_runtime_create(&rt, &rp) != AWQ_OK) return 1;
    if (test_tmpdir(root, sizeof root, "resume")) return 1;
    snprintf(model, sizeof model, "%s/small", root);
    snprintf(ref, sizeof ref, "%s/ref", root);
    if (cut_model(test_model_dir(), model, LAYERS) != AWQ_OK) {
        printf("FAIL: cannot cut %s: %s\n", test_model_dir(), awq_runtime_last_error(rt));
        return 1;
    }
    /* calibration text: the bundled corpus's first 64 KiB, and a copy with one word changed */
    char src[700];
    snprintf(src, sizeof src, "%s/data/calibration/wiki.valid.raw", AWQ_TEST_SOURCE_DIR);
    size_t n = 0;
    char *text = test_read_file(src, &n);
    if (!text || n < 70000) return test_skip_or_fail("data/calibration/wiki.valid.raw missing");
    n = 65536;
    snprintf(calib, sizeof calib, "%s/calib.txt", root);
    snprintf(calib2, sizeof calib2, "%s/calib2.txt", root);
    FILE *f = fopen(calib, "wb");
    fwrite(text, 1, n, f);
    fclose(f);
    char *w = strstr(text + 1000, " the ");
    if (w) memcpy(w, " THE ", 5);
    f = fopen(calib2, "wb");
    fwrite(text, 1, n, f);
    fclose(f);
    free(text);
    printf("model: the first %d layers of %s; calibration: 48 samples, blocks of 64 tokens\n", LAYERS,
           test_model_dir());
    double t0 = now();
    RUN(reference_run_is_verified);
    RUN(two_threads_give_identical_files);
    RUN(killed_runs_resume_to_identical_checkpoint);
    RUN(changed_inputs_are_refused_and_no_resume_starts_over);
    RUN(stale_directories_listed_and_removed);
    RUN(verify_names_changed_missing_and_extra_files);
    printf("total %.1f s\n", now() - t0);
    awq_runtime_destroy(rt);
    if (!test_failures_) {
        if (test_rmtree(root) != 0) printf("warning: cannot remove %s\n", root);
    } else {
        printf("kept %s for inspection\n", root);
    }
    return TEST_EXIT();
}
