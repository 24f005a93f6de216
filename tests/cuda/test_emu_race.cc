/*
 * test_emu_race.cc - shows that the emulator under ThreadSanitizer reports a missing
 * __syncthreads (built with -fsanitize=thread together with backend_cuda/emu/emu.cc).
 *
 *   ./test_emu_race nosync     a kernel writes shared memory, then reads another thread's slot
 *                              without a barrier: TSan must report a data race (exit code 66
 *                              with TSAN_OPTIONS=exitcode=66)
 *   ./test_emu_race cpnosync   the same through cp.async: wait<0> but no __syncthreads: a race
 *   ./test_emu_race barnosync  every thread increments one shared word between two barriers (and,
 *   ./test_emu_race warpnosync  per warp, between two __syncwarp): a race, although each access
 *                              follows a barrier (a fast thread's arrival at the next barrier must
 *                              not order the slow threads' accesses)
 *   ./test_emu_race sync       the same kernels made correct (__syncthreads, __syncwarp between
 *                              lanes of one warp, shuffles, ldmatrix, cp.async + wait + barrier),
 *                              several blocks on 2 host threads: must be clean
 *   ./test_emu_race            (ctest) runs the three above as child processes, checks exit codes
 *                              and reports, prints "N passed, M failed"
 *
 * Built without ThreadSanitizer it skips (exit 77).
 */
#include "intrin.cuh"

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

extern char **environ;

enum { NT = 64, NB = 4 };

/* s[t] = t; (barrier?); out[t] = s[(t + 1) % n]: thread t reads thread t+1's write. */
__global__ void k_race(int use_sync, float *out) {
    AWQK_SMEM(float, s);
    int t = threadIdx.x, n = blockDim.x;
    s[t] = (float)(t + 1000 * blockIdx.x);
    if (use_sync) __syncthreads();
    out[blockIdx.x * n + t] = s[(t + 1) % n];
}

/* the exchange stays within a warp: __syncwarp suffices; then shuffles and ldmatrix */
__global__ void k_warp(float *out, uint32_t *lo) {
    AWQK_SMEM(uint16_t, h); /* 32 rows x 8 halves (16 bytes) per warp */
    int t = threadIdx.x, lane = t & 31, w = t >> 5;
    uint16_t *hw = h + w * 32 * 8;
    for (int i = 0; i < 8; i++) hw[lane * 8 + i] = (uint16_t)(lane * 8 + i);
    __syncwarp();
    uint32_t r[4];
    awqk_ldsm_x4(r, hw + lane * 8); /* reads every lane's row */
    float v = (float)(r[0] & 0xffffu);
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    out[blockIdx.x * blockDim.x + t] = v;
    lo[blockIdx.x * blockDim.x + t] = r[3];
}

/* cp.async of 16 bytes per thread, wait, (barrier?), read the neighbour's copy */
__global__ void k_cp(int use_sync, const float *src, float *out) {
    AWQK_SMEM(float, s);
    int t = threadIdx.x, n = blockDim.x;
    awqk_cp_async16(s + 4 * t, src + 4 * (blockIdx.x * n + t));
    awqk_cp_async_commit();
    awqk_cp_async_wait<0>();
    if (use_sync) __syncthreads();
    out[blockIdx.x * n + t] = s[4 * ((t + 1) % n)];
}

/* s[0] += 1 by every thread after a barrier: racy (the count is still right: fibers never interleave) */
__global__ void k_phase(int warp_level, int *out) {
    AWQK_SMEM(int, s);
    int t = threadIdx.x, w = t >> 5;
    if (t < 32) s[t] = 0;
    __syncthreads();
    if (warp_level) {
        __syncwarp();
        s[w] += 1;
        __syncwarp();
    } else {
        s[0] += 1;
        __syncthreads();
    }
    __syncthreads();
    if (t == 0) out[blockIdx.x] = s[0];
}

#if defined(EMU_TSAN)
static int child(const char *mode) {
    awqk_ctx kc = {};
    emu_set_threads(2);
    std::vector<float> out(NB * NT), src(NB * NT * 4);
    std::vector<uint32_t> lo(NB * NT);
    for (size_t i = 0; i < src.size(); i++) src[i] = (float)i;
    float *op = out.data();
    uint32_t *lp = lo.data();
    const float *sp = src.data();
    int bad = 0;
    if (!strcmp(mode, "nosync") || !strcmp(mode, "sync")) {
        int sync = !strcmp(mode, "sync");
        if (emu_launch_kernel(&kc, "k_race", dim3(NB), dim3(NT), NT * 4, [=] { k_race(sync, op); })) {
            fprintf(stderr, "launch failed: %s\n", kc.err);
            return 1;
        }
        for (int b = 0; b < NB; b++)
            for (int t = 0; t < NT; t++) bad += sync && out[b * NT + t] != (float)((t + 1) % NT + 1000 * b);
    }
    if (!strcmp(mode, "sync")) {
        if (emu_launch_kernel(&kc, "k_warp", dim3(NB), dim3(NT), NT * 16, [=] { k_warp(op, lp); })) {
            fprintf(stderr, "launch failed: %s\n", kc.err);
            return 1;
        }
        for (int i = 0; i < NB * NT; i++) {
            int lane = i & 31;
            /* r[0] of lane l = element 2(l%4) of row l/4 (matrix 0); partner lane ^ 1 */
            float a = (float)((lane / 4) * 8 + 2 * (lane % 4)),
                  b = (float)(((lane ^ 1) / 4) * 8 + 2 * ((lane ^ 1) % 4));
            bad += out[(size_t)i] != a + b;
        }
    }
    if (!strcmp(mode, "cpnosync") || !strcmp(mode, "sync")) {
        int sync = !strcmp(mode, "sync");
        if (emu_launch_kernel(&kc, "k_cp", dim3(NB), dim3(NT), NT * 16, [=] { k_cp(sync, sp, op); })) {
            fprintf(stderr, "launch failed: %s\n", kc.err);
            return 1;
        }
        for (int b = 0; b < NB; b++)
            for (int t = 0; t < NT; t++)
                bad += sync && out[b * NT + t] != src[(size_t)4 * (b * NT + (t + 1) % NT)];
    }
    if (!strcmp(mode, "barnosync") || !strcmp(mode, "warpnosync")) {
        int wl = !strcmp(mode, "warpnosync");
        int *ip = (int *)lp;
        if (emu_launch_kernel(&kc, "k_phase", dim3(NB), dim3(NT), 32 * 4, [=] { k_phase(wl, ip); })) {
            fprintf(stderr, "launch failed: %s\n", kc.err);
            return 1;
        }
        for (int b = 0; b < NB; b++) bad += ip[b] != (wl ? 32 : NT);
    }
    if (bad) fprintf(stderr, "%d wrong results\n", bad);
    return bad != 0;
}

/* Runs this program with `mode` under TSAN_OPTIONS=exitcode=66; returns the exit status and
 * the child's stderr. */
static int spawn_self(const char *mode, std::string &log) {
    char path[] = "/tmp/test_emu_race_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    std::vector<std::string> env;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "TSAN_OPTIONS=", 13)) env.push_back(*e);
    env.push_back("TSAN_OPTIONS=exitcode=66 halt_on_error=0 history_size=4");
    std::vector<char *> envp;
    for (std::string &s : env) envp.push_back(&s[0]);
    envp.push_back(nullptr);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    char *argv[] = {self, (char *)mode, nullptr};
    pid_t pid;
    int rc = posix_spawn(&pid, self, &fa, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    int st = -1;
    if (rc == 0) waitpid(pid, &st, 0);
    FILE *f = fopen(path, "r");
    log.clear();
    if (f) {
        char buf[4096];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, f)) > 0) log.append(buf, k);
        fclose(f);
    }
    unlink(path);
    return rc == 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
#endif

int main(int argc, char **argv) {
#if !defined(EMU_TSAN)
    (void)argc;
    (void)argv;
    printf("test_emu_race: not built with -fsanitize=thread: skipped\n");
    return 77;
#else
    if (argc > 1) return child(argv[1]);
    int pass = 0, fail = 0;
    struct {
        const char *mode;
        int want_rc;
        bool want_race;
        const char *in_stack;
    } cases[] = {{"nosync", 66, true, "k_race"},
                 {"cpnosync", 66, true, "k_cp"},
                 {"barnosync", 66, true, "k_phase"},
                 {"warpnosync", 66, true, "k_phase"},
                 {"sync", 0, false, nullptr}};
    for (auto &c : cases) {
        std::string log;
        int rc = spawn_self(c.mode, log);
        bool race = log.find("WARNING: ThreadSanitizer: data race") != std::string::npos;
        bool any = log.find("ThreadSanitizer") != std::string::npos;
        bool ok = rc == c.want_rc && (c.want_race ? race : !any) &&
            (!c.in_stack || log.find(c.in_stack) != std::string::npos);
        printf("%s: %s: exit %d, %s\n", ok ? "ok" : "FAIL", c.mode, rc,
               race      ? "TSan reported a data race"
                   : any ? "TSan reported something else"
                         : "TSan clean");
        if (!ok) printf("---- child stderr ----\n%s\n----------------------\n", log.c_str());
        (ok ? pass : fail)++;
    }
    printf("%d passed, %d failed\n", pass, fail);
    return fail != 0;
#endif
}
