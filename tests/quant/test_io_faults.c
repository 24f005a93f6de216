/*
 * test_io_faults.c - quantize into a full disk, onto read-only storage, and interrupted by
 * SIGTERM, SIGINT and SIGHUP while it writes: each ends in a clean error and leaves nothing
 * behind (no output directory, no OUT.tmp-* directory).
 *
 *  - full disk: a tmpfs of 4, 12, 20, ... KiB mounted by the test in a private mount namespace
 *    (a forked child does unshare(CLONE_NEWNS), so nothing is visible outside and the mount goes
 *    away with the child), growing until the quantization fits. Where mounting is not permitted
 *    (no CAP_SYS_ADMIN), RLIMIT_FSIZE with SIGXFSZ ignored stands in (write fails with EFBIG).
 *  - read-only: the same tmpfs remounted read-only (root ignores file modes; a read-only mount
 *    stops root too); without mount permission and not root: a directory with mode 0555.
 *  - signals: `awq-cli quantize` of SmolLM2 (RTN, which is mostly writing) is sent the signal
 *    as soon as its temporary directory holds a file with data (so the directory is proven to
 *    have existed), and must exit with 130 leaving nothing.
 * The model of the first two is tests/data/awq_golden/llama_mha (2 layers, hidden 64).
 * AWQ_REQUIRE_FAULT_MOUNT=1 fails instead of falling back when mounting is not permitted;
 * AWQ_FAULT_NO_MOUNT=1 takes the fallbacks even where mounting works (to test them).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "awq.h"
#include "test.h"

static char root[512], model[700], calib[700], cli[700];

/* Entries in dir (. and .. excluded); first receives one of them. */
static int entries(const char *dir, char *first, size_t n) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!count && first) snprintf(first, n, "%s", e->d_name);
        count++;
    }
    closedir(d);
    return count;
}

static awq_status quantize_into(const char *out, char *msg, size_t n) {
    awq_runtime *rt = NULL;
    awq_runtime_params rp = awq_runtime_params_default();
    rp.load_plugins = false;
    rp.n_threads = 1;
    awq_status st = awq_runtime_create(&rt, &rp);
    if (st != AWQ_OK) return st;
    awq_quant_params p = awq_quant_params_default();
    p.model_dir = model;
    p.out_dir = out;
    p.group_size = 32;
    p.calib_path = calib;
    p.calib_samples = 4;
    p.calib_seqlen = 32;
    p.device = "cpu";
    st = awq_quantize(rt, &p, NULL);
    snprintf(msg, n, "%s", st == AWQ_OK ? "" : awq_runtime_last_error(rt));
    awq_runtime_destroy(rt);
    return st;
}

enum { MODE_FULL, MODE_READONLY };
enum { HOW_MOUNT = 1, HOW_RLIMIT = 2, HOW_CHMOD = 3 };

/* The child: prepares dir (mount or limit), quantizes into dir/out, checks, exits with
 * 0 (fitted), 10 + how (clean failure), 1 (a problem, printed). exit(), not _exit(), so that
 * LeakSanitizer checks the child too (its failure exit code is 23). */
static void child(int mode, const char *dir, long kib) {
    int how = 0;
    char opts[64];
    snprintf(opts, sizeof opts, "size=%ldk,mode=0755", kib);
    if (!test_required("AWQ_FAULT_NO_MOUNT") && unshare(CLONE_NEWNS) == 0 &&
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
        mount("tmpfs", dir, "tmpfs", 0, opts) == 0) {
        how = HOW_MOUNT;
        if (mode == MODE_READONLY && mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL) != 0) {
            printf("  remount read-only: %s\n", strerror(errno));
            exit(1);
        }
    } else if (test_required("AWQ_REQUIRE_FAULT_MOUNT")) {
        printf("  cannot mount a tmpfs: %s (AWQ_REQUIRE_FAULT_MOUNT=1)\n", strerror(errno));
        exit(1);
    } else if (mode == MODE_FULL) {
        how = HOW_RLIMIT;
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit r = {(rlim_t)kib * 1024, (rlim_t)kib * 1024};
        if (setrlimit(RLIMIT_FSIZE, &r) != 0) exit(1);
    } else if (geteuid() != 0) {
        how = HOW_CHMOD;
        if (chmod(dir, 0555) != 0) exit(1);
    } else {
        printf("  SKIP: root without mount permission: no read-only storage to test on\n");
        exit(77);
    }
    char out[800], msg[1024], stray[256] = "";
    snprintf(out, sizeof out, "%s/out", dir);
    awq_status st = quantize_into(out, msg, sizeof msg);
    int left = entries(dir, stray, sizeof stray);
    if (st == AWQ_OK) exit(mode == MODE_FULL ? 0 : 1);
    const char *why = mode == MODE_READONLY
        ? (how == HOW_CHMOD ? "Permission denied" : "Read-only file system")
        : how == HOW_RLIMIT ? "File too large"
                            : "No space left on device";
    if (getenv("AWQ_FAULT_VERBOSE")) printf("  %ld KiB: %s: %s\n", kib, awq_status_str(st), msg);
    if (st != AWQ_ERR_IO || !strstr(msg, why)) {
        printf("  %ld KiB: expected AWQ_ERR_IO naming \"%s\", got %s: %s\n", kib, why, awq_status_str(st),
               msg);
        exit(1);
    }
    if (left != 0) {
        printf("  %ld KiB: %s: %d entries left behind, e.g. %s\n", kib, msg, left, stray);
        exit(1);
    }
    exit(10 + how);
}

static int run_child(int mode, const char *dir, long kib) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) child(mode, dir, kib);
    int st = 0;
    waitpid(pid, &st, 0);
    chmod(dir, 0755); /* undo the chmod fallback */
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static const char *how_name(int how) {
    return how == HOW_MOUNT ? "a tmpfs mounted with size=" : how == HOW_RLIMIT ? "RLIMIT_FSIZE" : "mode 0555";
}

TEST(full_disk_fails_cleanly_at_every_size) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/full", root);
    ASSERT(mkdir(dir, 0755) == 0);
    int how = 0, failures = 0;
    long kib = 4;
    for (; kib <= 4096; kib += kib < 128 ? 8 : 64) {
        int rc = run_child(MODE_FULL, dir, kib);
        if (rc == 0) break;
        ASSERT_MSG(rc == 10 + HOW_MOUNT || rc == 10 + HOW_RLIMIT, "%ld KiB: child exit %d%s", kib, rc,
                   rc == 23 ? " (LeakSanitizer found leaks)" : "");
        how = rc - 10;
        failures++;
        ASSERT_EQ(entries(dir, NULL, 0), 0);
    }
    ASSERT_MSG(kib <= 4096, "the quantization never fit");
    ASSERT(failures >= 3);
    printf("  full disk (%s): %d sizes failed cleanly, fits from %ld KiB\n", how_name(how), failures, kib);
}

TEST(read_only_output_fails_cleanly) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/ro", root);
    ASSERT(mkdir(dir, 0755) == 0);
    int rc = run_child(MODE_READONLY, dir, 1024);
    if (rc == 77) return;
    ASSERT_MSG(rc >= 10 + HOW_MOUNT && rc <= 10 + HOW_CHMOD, "child exit %d%s", rc,
               rc == 23 ? " (LeakSanitizer found leaks)" : "");
    ASSERT_EQ(entries(dir, NULL, 0), 0);
    printf("  read-only output directory (%s): clean AWQ_ERR_IO, nothing written\n", how_name(rc - 10));
}

/* A file with data in a OUT.tmp-* directory of parent: its path in found. */
static bool tmp_with_data(const char *parent, const char *base, char *found, size_t n) {
    DIR *d = opendir(parent);
    if (!d) return false;
    struct dirent *e;
    bool ok = false;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s.tmp-", base);
    while (!ok && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix))) continue;
        char sub[1200];
        snprintf(sub, sizeof sub, "%s/%s", parent, e->d_name);
        DIR *s = opendir(sub);
        struct dirent *f;
        while (s && !ok && (f = readdir(s))) {
            char p[1500];
            struct stat sb;
            snprintf(p, sizeof p, "%s/%s", sub, f->d_name);
            if (f->d_name[0] != '.' && stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_blocks > 0) {
                snprintf(found, n, "%s (%lld bytes allocated)", p, (long long)sb.st_blocks * 512);
                ok = true;
            }
        }
        if (s) closedir(s);
    }
    closedir(d);
    return ok;
}

static void signal_mid_write(int sig) {
    const char *mdir = test_model_dir();
    if (!mdir) {
        ASSERT_MSG(!test_required("AWQ_REQUIRE_MODEL"), "AWQ_TEST_MODEL_DIR not set (AWQ_REQUIRE_MODEL=1)");
        printf("  (AWQ_TEST_MODEL_DIR not set: skipped)\n");
        return;
    }
    char parent[600], out[700], found[1600] = "";
    snprintf(parent, sizeof parent, "%s/sig%d", root, sig);
    ASSERT(mkdir(parent, 0755) == 0);
    snprintf(out, sizeof out, "%s/q", parent);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(cli, cli, "quantize", mdir, out, "--method", "rtn", "--group-size", "64", "--threads", "1",
              (char *)NULL);
        _exit(127);
    }
    bool seen = false;
    struct timespec ts = {0, 200000}; /* 0.2 ms */
    for (int i = 0; i < 300000 && !seen; i++) {
        seen = tmp_with_data(parent, "q", found, sizeof found);
        if (!seen) {
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                pid = -1;
                break;
            }
            nanosleep(&ts, NULL);
        }
    }
    if (seen) kill(pid, sig);
    int st = 0;
    if (pid > 0) waitpid(pid, &st, 0);
    ASSERT_MSG(seen, "signal %d: never saw the temporary directory with data in %s", sig, parent);
    ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 130, "signal %d: exit status %d (signal %d), expected 130",
               sig, WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    char stray[256] = "";
    int left = entries(parent, stray, sizeof stray);
    ASSERT_MSG(left == 0, "signal %d: %d entries left in %s, e.g. %s", sig, left, parent, stray);
    printf("  %s while %s existed: exit 130, nothing left\n", strsignal(sig), found);
}

TEST(sigterm_mid_write_leaves_nothing) { signal_mid_write(SIGTERM); }
TEST(sigint_mid_write_leaves_nothing) { signal_mid_write(SIGINT); }
TEST(sighup_mid_write_leaves_nothing) { signal_mid_write(SIGHUP); }

int main(void) {
    if (test_tmpdir(root, sizeof root, "iofault")) return 1;
    snprintf(model, sizeof model, "%s/tests/data/awq_golden/llama_mha", AWQ_TEST_SOURCE_DIR);
    snprintf(calib, sizeof calib, "%s/tests/data/awq_golden/calib.jsonl", AWQ_TEST_SOURCE_DIR);
    snprintf(cli, sizeof cli, "%s/awq-cli", AWQ_TEST_BIN_DIR);
    RUN(full_disk_fails_cleanly_at_every_size);
    RUN(read_only_output_fails_cleanly);
    RUN(sigterm_mid_write_leaves_nothing);
    RUN(sigint_mid_write_leaves_nothing);
    RUN(sighup_mid_write_leaves_nothing);
    if (test_rmtree(root) != 0) printf("warning: cannot remove %s\n", root);
    return TEST_EXIT();
}
