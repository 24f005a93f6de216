/*
 * emu.cc - the SIMT emulator behind emu.h: fibers (one per CUDA thread of a block), the block
 * scheduler, __syncthreads, warp collectives (shuffles, votes, ldmatrix, mma) computed by the
 * last lane to arrive from the PTX ISA tables, cp.async queues, launch checks, the host thread
 * pool that runs blocks in parallel, stream capture and graph replay.
 *
 * Scheduling: every block has a ready queue of fibers. A fiber runs until it exits or blocks
 * (barrier, collective); it then switches directly to the next ready fiber, or back to the
 * host thread's scheduler context when the queue is empty. A kernel without barriers therefore
 * costs one switch per CUDA thread. When a barrier completes, all threads of the block are
 * queued in a permuted order (seeded by AWQ_CUDA_EMU_SEED, the block index and the barrier
 * generation, so results never depend on which host thread ran the block).
 *
 * ThreadSanitizer: fibers are TSan fibers switched without synchronization; the emulator's
 * bookkeeping is uninstrumented (EMU_NOTSAN); the kernel-visible ordering is annotated:
 * block start/end, every barrier and every warp collective are release + acquire. So a kernel
 * that reads another thread's shared-memory write without __syncthreads is reported.
 * AddressSanitizer: stack switches are announced with __sanitizer_{start,finish}_switch_fiber.
 */
#include "emu.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) && !defined(AWQ_CUDA_EMU_UCONTEXT_ONLY)
#define EMU_ASM_SWITCH 1
#endif
#include <ucontext.h>

#ifdef EMU_TSAN
extern "C" {
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
}
#define EMU_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define EMU_TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define EMU_TSAN_ACQUIRE(p) ((void)0)
#define EMU_TSAN_RELEASE(p) ((void)0)
#endif
#ifdef EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

__thread emu_fiber_pub *emu_tls_cur __attribute__((tls_model("initial-exec"))) = nullptr;

extern "C" int awqk_check_launch(awqk_ctx *kc, const char *name) {
    (void)kc;
    (void)name;
    return 0; /* emulated launches report their errors themselves */
}

/* ============================== configuration ============================================== */

namespace {

enum { FULL = 0xffffffff };
enum { SMEM_LIMIT = 48 * 1024 };

long long env_ll(const char *name, long long def) {
    const char *e = getenv(name);
    if (!e || !*e) return def;
    char *end = nullptr;
    long long v = strtoll(e, &end, 0);
    if (end == e) return def;
    if (*end == 'k' || *end == 'K')
        v <<= 10;
    else if (*end == 'm' || *end == 'M')
        v <<= 20;
    return v;
}

struct config {
    size_t stack;
    int env_threads;
    uint64_t env_seed;
    bool ucontext;
    config() {
#if defined(EMU_TSAN) || defined(EMU_ASAN)
        long long def = 256 * 1024;
#else
        long long def = 64 * 1024;
#endif
        long long s = env_ll("AWQ_CUDA_EMU_STACK", def);
        if (s < 16 * 1024) s = 16 * 1024;
        if (s > (1ll << 30)) s = 1ll << 30;
        long pg = sysconf(_SC_PAGESIZE);
        if (pg <= 0) pg = 4096;
        stack = ((size_t)s + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
        long long t = env_ll("AWQ_CUDA_EMU_THREADS", 0);
        if (t <= 0) t = (long long)std::thread::hardware_concurrency();
        if (t <= 0) t = 1;
        if (t > 256) t = 256;
        env_threads = (int)t;
        env_seed = (uint64_t)env_ll("AWQ_CUDA_EMU_SEED", 0x5eed5eedll);
        ucontext = env_ll("AWQ_CUDA_EMU_UCONTEXT", 0) != 0;
    }
};
const config &cfg() {
    static const config c;
    return c;
}
std::atomic<int> g_threads{0}; /* emu_set_threads override */
std::atomic<uint64_t> g_seed{0};
std::atomic<bool> g_seed_set{false};

std::atomic<unsigned long long> st_launches{0}, st_blocks{0}, st_threads{0}, st_switches{0}, st_barriers{0},
    st_collectives{0};

uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* ============================== contexts and fibers ======================================== */

#ifdef EMU_ASM_SWITCH
/* Saves the callee-saved registers and rsp of the running context in *save, switches to the
 * stack `to` and restores its registers (SysV x86-64). The FP control state (MXCSR, x87 CW)
 * is shared: the emulator never changes it. */
extern "C" void emu_ctx_switch(void **save, void *to);
extern "C" void emu_fiber_entry_asm(void);
asm(R"(
    .text
    .p2align 4
    .globl emu_ctx_switch
    .hidden emu_ctx_switch
    .type emu_ctx_switch, @function
emu_ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size emu_ctx_switch, .-emu_ctx_switch

    .p2align 4
    .globl emu_fiber_entry_asm
    .hidden emu_fiber_entry_asm
    .type emu_fiber_entry_asm, @function
emu_fiber_entry_asm:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    call emu_fiber_main@PLT
    ud2
    .cfi_endproc
    .size emu_fiber_entry_asm, .-emu_fiber_entry_asm
)");

/* A CPU with user-space shadow stacks (CET) enabled would fault on our ret-based switch:
 * rdsspq leaves 0 in the register when shadow stacks are off (and is a NOP on older CPUs). */
bool shadow_stack_active() {
    unsigned long long ssp = 0;
    asm volatile(".byte 0xf3, 0x48, 0x0f, 0x1e, 0xc8" /* rdsspq %rax */ : "+a"(ssp));
    return ssp != 0;
}
#endif

struct context {
    void *sp = nullptr;       /* asm switch: saved stack pointer */
    ucontext_t *uc = nullptr; /* ucontext switch */
    void *tsan = nullptr;
    void *asan_fake = nullptr;
    const void *stk_lo = nullptr; /* stack bounds (ASan) */
    size_t stk_size = 0;
};

struct fiber;
struct block;
struct worker;

enum fstate { F_IDLE, F_READY, F_RUN, F_WAIT_BAR, F_WAIT_WARP, F_DONE };

struct cp_entry {
    unsigned char *dst;
    const unsigned char *src; /* NULL: zero fill */
    long long group;
};

struct fiber : emu_fiber_pub {
    context ctx;
    worker *w = nullptr;
    int lane = 0, warp = 0;
    int state = F_IDLE;
    bool fresh = true;   /* context must be (re)initialised before the next run */
    bool midrun = false; /* inside the kernel body (abandoned on an error) */
    std::vector<cp_entry> cp;
    size_t cp_head = 0;
    long long cp_committed = 0;
    unsigned char *map = nullptr; /* stack mapping (guard page at the low end) */
    size_t map_size = 0;
    int color = 0; /* index in the pool: offsets the stack top */
};

enum wkind {
    K_NONE,
    K_SHFL, /* + mode * 2 + (bytes == 8) */
    K_SHFL_END = K_SHFL + 8,
    K_VOTE = K_SHFL_END, /* + mode */
    K_VOTE_END = K_VOTE + 3,
    K_SYNCWARP = K_VOTE_END,
    K_LDSM, /* + (nmat/2)*2 + trans: x1, x1.trans, x2, x2.trans, x4, x4.trans */
    K_LDSM_END = K_LDSM + 6,
    K_MMA16 = K_LDSM_END,
    K_MMA8,
};

const char *kind_name(int k) {
    /* (one 2-D table: GCC 12 -fsanitize=undefined miscompiles (c ? tableA : tableB)[i]) */
    static const char *shfl[2][4] = {{"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync"},
                                     {"__shfl_sync (64-bit)", "__shfl_up_sync (64-bit)",
                                      "__shfl_down_sync (64-bit)", "__shfl_xor_sync (64-bit)"}};
    static const char *vote[3] = {"__ballot_sync", "__any_sync", "__all_sync"};
    static const char *ldsm[6] = {"ldmatrix.x1",       "ldmatrix.x1.trans", "ldmatrix.x2",
                                  "ldmatrix.x2.trans", "ldmatrix.x4",       "ldmatrix.x4.trans"};
    if (k >= K_SHFL && k < K_SHFL_END) return shfl[(k - K_SHFL) & 1][(k - K_SHFL) >> 1];
    if (k >= K_VOTE && k < K_VOTE_END) return vote[k - K_VOTE];
    if (k == K_SYNCWARP) return "__syncwarp";
    if (k >= K_LDSM && k < K_LDSM_END) return ldsm[k - K_LDSM];
    if (k == K_MMA16) return "mma.m16n8k16";
    if (k == K_MMA8) return "mma.m16n8k8";
    return "?";
}

struct warp {
    int arrived = 0, kind = K_NONE, first_lane = 0, exited = 0, at_bar = 0;
    /* exchange: inputs deposited by each lane, outputs written by the last lane */
    uint64_t val[32];
    int ib[32], iw[32];
    uint32_t in[32][6];
    float acc[32][4];
    const void *addr[32];
    uint32_t out[32][4];
    uint64_t out64[32];
    unsigned gen = 0;
    /* TSan release/acquire addresses, alternating per generation: a lane that already reached the
     * next collective must not publish its new writes to lanes still leaving this one */
    char sync_obj[2];
};

struct block : emu_block_pub {
    const char *name = "";
    emu_body_fn fn = nullptr;
    const void *ctx = nullptr;
    long long lin = 0; /* linear block index */
    int n = 0, nwarps = 0;
    bool partial_warp = false;
    uint64_t seed = 0;
    bool permute = false;
    /* barrier */
    int bar_arrived = 0, bar_kind = 0, bar_first = 0, bar_acc = 0, bar_result = 0;
    unsigned bar_gen = 0;
    const char *bar_file = nullptr;
    int bar_line = 0;
    int exited = 0, done = 0;
    /* ready queue (ring of qcap >= n + 1). Raw arrays, not std::vector: the bookkeeping must
     * stay invisible to ThreadSanitizer, and vector accessors are instrumented functions. */
    int *q = nullptr;
    size_t qcap = 0, qh = 0, qt = 0;
    warp *warps = nullptr;
    int warps_cap = 0;
    fiber **fib = nullptr;
    bool err = false;
    char msg[256];
    char start_obj, end_obj, bar_obj[2]; /* TSan release/acquire addresses (bar_obj: per generation parity) */
};

struct worker {
    context sched;
    std::vector<fiber *> fibers;
    block blk;
    bool use_uc = false;
    unsigned long long switches = 0, barriers = 0, collectives = 0;
    worker();
    ~worker();
};

thread_local worker *tl_worker = nullptr;
struct worker_owner {
    ~worker_owner() {
        delete tl_worker;
        tl_worker = nullptr;
    }
};
thread_local worker_owner tl_owner;

worker *get_worker() {
    if (!tl_worker) {
        (void)&tl_owner; /* instantiate the owner so the worker is freed at thread exit */
        tl_worker = new (std::nothrow) worker();
    }
    return tl_worker;
}

worker::worker() {
#ifdef EMU_ASM_SWITCH
    use_uc = cfg().ucontext || shadow_stack_active();
#else
    use_uc = true;
#endif
    if (use_uc) sched.uc = new ucontext_t();
#ifdef EMU_TSAN
    sched.tsan = __tsan_get_current_fiber();
#endif
#ifdef EMU_ASAN
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        void *lo = nullptr;
        size_t sz = 0;
        pthread_attr_getstack(&a, &lo, &sz);
        sched.stk_lo = lo;
        sched.stk_size = sz;
        pthread_attr_destroy(&a);
    }
#endif
}

worker::~worker() {
    for (fiber *f : fibers) {
#ifdef EMU_TSAN
        if (f->ctx.tsan) __tsan_destroy_fiber(f->ctx.tsan);
#endif
        if (f->map) munmap(f->map, f->map_size);
        delete f->ctx.uc;
        delete f;
    }
    delete sched.uc;
    free(blk.q);
    delete[] blk.warps;
}

/* ---- switching ---- */

EMU_NOTSAN inline void raw_switch(worker *w, context *from, context *to, bool from_dies) {
    w->switches++;
#ifdef EMU_TSAN
    __tsan_switch_to_fiber(to->tsan, 1 /* __tsan_switch_to_fiber_no_sync */);
#endif
#ifdef EMU_ASAN
    __sanitizer_start_switch_fiber(from_dies ? nullptr : &from->asan_fake, to->stk_lo, to->stk_size);
#else
    (void)from_dies;
#endif
#ifdef EMU_ASM_SWITCH
    if (!w->use_uc)
        emu_ctx_switch(&from->sp, to->sp);
    else
#endif
        swapcontext(from->uc, to->uc);
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(from->asan_fake, nullptr, nullptr);
#endif
}

/* Switches from fiber/scheduler context `from` (identity `self`, NULL for the scheduler). */
EMU_NOTSAN inline void switch_to(worker *w, context *from, emu_fiber_pub *self, context *to,
                                 bool dies = false) {
    raw_switch(w, from, to, dies);
    emu_tls_cur = self; /* back in `from`: restore the current thread */
}

extern "C" EMU_NOTSAN __attribute__((visibility("hidden"), used)) void emu_fiber_main(fiber *f);

void uc_entry(unsigned hi, unsigned lo) { emu_fiber_main((fiber *)(((uintptr_t)hi << 32) | (uintptr_t)lo)); }

/* (Re)initialises a fiber's context so that the next switch to it enters emu_fiber_main. */
EMU_NOTSAN bool fiber_init_ctx(worker *w, fiber *f) {
    unsigned char *lo = f->map + (f->map_size - cfg().stack);
    size_t sz = cfg().stack;
#ifdef EMU_ASAN
    __asan_unpoison_memory_region(lo, sz); /* frames of an abandoned run may be left poisoned */
#endif
    f->ctx.stk_lo = lo;
    f->ctx.stk_size = sz;
    f->ctx.asan_fake = nullptr;
#ifdef EMU_TSAN
    if (f->ctx.tsan) __tsan_destroy_fiber(f->ctx.tsan);
    f->ctx.tsan = __tsan_create_fiber(0);
#endif
#ifdef EMU_ASM_SWITCH
    if (!w->use_uc) {
        /* stack tops coloured by fiber index: equal low address bits would make every switch
         * of a block hit the same L1 cache set */
        uintptr_t top = ((uintptr_t)(lo + sz) - (uintptr_t)(f->color & 63) * 64) & ~(uintptr_t)15;
        void **fr = (void **)(top - 16 - 7 * sizeof(void *)); /* after ret: rsp = top - 16 */
        fr[0] = fr[1] = fr[2] = nullptr;                      /* r15 r14 r13 */
        fr[3] = (void *)f;                                    /* r12 -> emu_fiber_main's argument */
        fr[4] = fr[5] = nullptr;                              /* rbx rbp */
        fr[6] = (void *)&emu_fiber_entry_asm;                 /* return address */
        f->ctx.sp = fr;
        f->fresh = false;
        return true;
    }
#endif
    if (!f->ctx.uc) f->ctx.uc = new (std::nothrow) ucontext_t();
    if (!f->ctx.uc || getcontext(f->ctx.uc) != 0) return false;
    f->ctx.uc->uc_stack.ss_sp = lo;
    f->ctx.uc->uc_stack.ss_size = sz;
    f->ctx.uc->uc_link = nullptr;
    uintptr_t p = (uintptr_t)f;
    makecontext(f->ctx.uc, (void (*)())uc_entry, 2, (unsigned)(p >> 32), (unsigned)(p & 0xffffffffu));
    f->fresh = false;
    return true;
}

/* Grows the worker's fiber pool to n fibers (stacks: mmap with a guard page). */
EMU_NOTSAN bool ensure_fibers(worker *w, int n, char *err, size_t cap) {
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0) pg = 4096;
    while ((int)w->fibers.size() < n) {
        fiber *f = new (std::nothrow) fiber();
        if (!f) {
            snprintf(err, cap, "out of host memory for fibers");
            return false;
        }
        f->w = w;
        f->color = (int)w->fibers.size();
        f->map_size = cfg().stack + (size_t)pg;
        void *m = mmap(nullptr, f->map_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            delete f;
            snprintf(err, cap, "cannot map a %zu-byte fiber stack: %s", cfg().stack, strerror(errno));
            return false;
        }
        f->map = (unsigned char *)m;
        mprotect(f->map, (size_t)pg, PROT_NONE); /* guard: a stack overflow faults */
        f->fresh = true;
        w->fibers.push_back(f);
    }
    return true;
}

/* ============================== the block scheduler ======================================== */

EMU_NOTSAN inline fiber *cur_fiber() { return static_cast<fiber *>(emu_tls_cur); }

EMU_NOTSAN inline void q_push(block *b, int i) {
    b->q[b->qt] = i;
    if (++b->qt == b->qcap) b->qt = 0;
}
EMU_NOTSAN inline int q_pop(block *b) {
    if (b->qh == b->qt) return -1;
    int i = b->q[b->qh];
    if (++b->qh == b->qcap) b->qh = 0;
    return i;
}

/* Gives up the CPU: to the next ready fiber, or to the scheduler when none is ready (or the
 * block has failed). Returns when this fiber is resumed (never, if `dies`). */
EMU_NOTSAN void yield_fiber(fiber *f, bool dies = false) {
    block *b = static_cast<block *>(f->blk);
    worker *w = f->w;
    int nx = (b->err || dies) ? -1 : q_pop(b);
    if (nx >= 0 && b->fib[nx] == f) {
        f->state = F_RUN;
        return;
    }
    context *to = &w->sched;
    if (nx >= 0) {
        fiber *g = b->fib[nx];
        g->state = F_RUN;
        to = &g->ctx;
        if (b->qh != b->qt) { /* warm up the fiber after it: struct, saved registers */
            fiber *h = b->fib[b->q[b->qh]];
            __builtin_prefetch(h);
            __builtin_prefetch(h->ctx.sp);
        }
    }
    switch_to(w, &f->ctx, f, to, dies);
}

/* Formats "<kernel>: block (x,y,z) thread (x,y,z): <msg>" for thread `lin` of the block. */
EMU_NOTSAN void set_error(block *b, int lin, const char *fmt, va_list ap) {
    if (b->err) return;
    b->err = true;
    unsigned x = (unsigned)lin % b->bdim.x, y = ((unsigned)lin / b->bdim.x) % b->bdim.y,
             z = (unsigned)lin / (b->bdim.x * b->bdim.y);
    int k = snprintf(b->msg, sizeof b->msg, "%s: block (%u,%u,%u) thread (%u,%u,%u): ", b->name, b->bid.x,
                     b->bid.y, b->bid.z, x, y, z);
    if (k < 0) k = 0;
    if ((size_t)k < sizeof b->msg) vsnprintf(b->msg + k, sizeof b->msg - (size_t)k, fmt, ap);
}

[[noreturn]] EMU_NOTSAN void fail_v(int lin, const char *fmt, va_list ap) {
    fiber *f = cur_fiber();
    block *b = static_cast<block *>(f->blk);
    set_error(b, lin, fmt, ap);
    f->state = F_IDLE;
    f->fresh = true; /* abandoned mid-run: its stack is reinitialised before reuse */
    EMU_TSAN_RELEASE(&b->end_obj);
    yield_fiber(f, true);
    __builtin_unreachable();
}

[[noreturn]] EMU_NOTSAN void fail_lane(int lin, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
[[noreturn]] EMU_NOTSAN void fail_lane(int lin, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_v(lin, fmt, ap);
}

inline const char *base_name(const char *file) {
    const char *s = strrchr(file, '/');
    return s ? s + 1 : file;
}

/* Thread exit: pending copies, divergence checks, then the next fiber. */
void finish_cp(fiber *f);

EMU_NOTSAN void thread_exit(fiber *f) {
    block *b = static_cast<block *>(f->blk);
    warp &wp = b->warps[f->warp];
    b->exited++;
    wp.exited++;
    if (b->bar_arrived > 0)
        emu_fail(
            "divergent __syncthreads: thread exited while %d thread(s) wait at the __syncthreads at %s:%d",
            b->bar_arrived, base_name(b->bar_file), b->bar_line);
    if (wp.arrived > 0)
        emu_fail("divergent warp collective: thread exited while %d lane(s) of its warp wait at %s",
                 wp.arrived, kind_name(wp.kind));
    f->state = F_DONE;
    f->midrun = false;
    b->done++;
}

/* Permutes and queues all n threads of the block (block start when gen == 0, or a barrier).
 * The queue is empty at both points, so it restarts at slot 0. */
EMU_NOTSAN void queue_all(block *b, unsigned gen) {
    int n = b->n;
    int *q = b->q;
    b->qh = 0;
    b->qt = (size_t)n;
    for (int i = 0; i < n; i++) q[i] = i;
    if (!b->permute) return;
    /* Fisher-Yates; j = floor(r * (i + 1) / 2^32) avoids a division per element */
    uint64_t s = splitmix(b->seed ^ splitmix((uint64_t)b->lin * 0x100000001b3ull + gen)) | 1;
    for (int i = n - 1; i > 0; i--) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int j = (int)(((s >> 32) * (uint64_t)(i + 1)) >> 32);
        int t = q[i];
        q[i] = q[j];
        q[j] = t;
    }
}

} /* namespace */

/* The body of every fiber: run the block's thread, give the CPU away, repeat for later blocks. */
extern "C" EMU_NOTSAN __attribute__((visibility("hidden"), used)) void emu_fiber_main(fiber *f) {
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
    emu_tls_cur = f;
    for (;;) {
        block *b = static_cast<block *>(f->blk);
        EMU_TSAN_ACQUIRE(&b->start_obj);
        f->cp.clear();
        f->cp_head = 0;
        f->cp_committed = 0;
        f->midrun = true;
        b->fn(b->ctx);
        finish_cp(f);
        thread_exit(f);
        EMU_TSAN_RELEASE(&b->end_obj);
        yield_fiber(f);
    }
}

/* ============================== errors ===================================================== */

void emu_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_v(cur_fiber()->lin, fmt, ap);
}

void emu_trap() { emu_fail("__trap() called (cudaErrorLaunchFailure: unspecified launch failure)"); }

/* ============================== barriers =================================================== */

EMU_NOTSAN int emu_syncthreads(int kind, int pred, const char *file, int line) {
    fiber *f = cur_fiber();
    block *b = static_cast<block *>(f->blk);
    warp &wp = b->warps[f->warp];
    static const char *names[4] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and",
                                   "__syncthreads_or"};
    if (b->exited > 0)
        emu_fail(
            "divergent __syncthreads at %s:%d: %d thread(s) of the block have already exited (it can never "
            "complete)",
            base_name(file), line, b->exited);
    if (wp.arrived > 0)
        emu_fail("divergent: %s at %s:%d while %d lane(s) of this warp wait at %s", names[kind],
                 base_name(file), line, wp.arrived, kind_name(wp.kind));
    if (b->bar_arrived == 0) {
        b->bar_file = file;
        b->bar_line = line;
        b->bar_kind = kind;
        b->bar_first = f->lin;
        b->bar_acc = kind == EMU_BAR_AND ? 1 : 0;
    } else if (line != b->bar_line || kind != b->bar_kind ||
               (file != b->bar_file && strcmp(file, b->bar_file))) {
        fiber *g = b->fib[b->bar_first];
        emu_fail("divergent __syncthreads: this thread is at %s (%s:%d) while thread (%u,%u,%u) waits at %s "
                 "(%s:%d)",
                 names[kind], base_name(file), line, g->tid.x, g->tid.y, g->tid.z, names[b->bar_kind],
                 base_name(b->bar_file), b->bar_line);
    }
    if (kind == EMU_BAR_COUNT)
        b->bar_acc += pred;
    else if (kind == EMU_BAR_AND)
        b->bar_acc &= pred;
    else if (kind == EMU_BAR_OR)
        b->bar_acc |= pred;
    [[maybe_unused]] unsigned gen = b->bar_gen; /* (TSan only) */
    EMU_TSAN_RELEASE(&b->bar_obj[gen & 1]);
    if (++b->bar_arrived < b->n) {
        wp.at_bar++;
        f->state = F_WAIT_BAR;
        yield_fiber(f);
    } else { /* last: release everyone (in a permuted order, this thread included) */
        b->bar_arrived = 0;
        b->bar_result = b->bar_acc;
        b->bar_gen++;
        f->w->barriers++;
        for (int i = 0; i < b->nwarps; i++) b->warps[i].at_bar = 0;
        for (int i = 0; i < b->n; i++) b->fib[i]->state = F_READY;
        queue_all(b, b->bar_gen);
        yield_fiber(f);
    }
    EMU_TSAN_ACQUIRE(&b->bar_obj[gen & 1]);
    return b->bar_result;
}

/* ============================== warp collectives ============================================ */

namespace {

/* Arrival at a warp collective after the lane has deposited its inputs. Returns true in the
 * last lane, which must then compute all outputs and call warp_release(); the other lanes
 * return once the outputs are there. */
EMU_NOTSAN bool warp_arrive(fiber *f, warp &wp, int kind, unsigned mask) {
    block *b = static_cast<block *>(f->blk);
    if (mask != FULL)
        emu_fail(
            "%s with mask 0x%08x: the emulator (and this project) supports only the full warp 0xffffffff",
            kind_name(kind), mask);
    if (b->partial_warp)
        emu_fail("%s in a block of %d threads (not a multiple of 32): a warp collective needs all 32 lanes",
                 kind_name(kind), b->n);
    if (wp.exited > 0)
        emu_fail("divergent warp collective: %s reached after %d lane(s) of this warp exited",
                 kind_name(kind), wp.exited);
    if (wp.at_bar > 0)
        emu_fail("divergent: %s while %d lane(s) of this warp wait at the __syncthreads at %s:%d",
                 kind_name(kind), wp.at_bar, base_name(b->bar_file), b->bar_line);
    if (wp.arrived == 0) {
        wp.kind = kind;
        wp.first_lane = f->lane;
    } else if (wp.kind != kind) {
        emu_fail("divergent warp collective: lane %d is at %s while lane %d waits at %s", f->lane,
                 kind_name(kind), wp.first_lane, kind_name(wp.kind));
    }
    [[maybe_unused]] unsigned gen = wp.gen; /* (TSan only) */
    EMU_TSAN_RELEASE(&wp.sync_obj[gen & 1]);
    if (++wp.arrived < 32) {
        f->state = F_WAIT_WARP;
        yield_fiber(f);
        EMU_TSAN_ACQUIRE(&wp.sync_obj[gen & 1]);
        return false;
    }
    EMU_TSAN_ACQUIRE(&wp.sync_obj[gen & 1]);
    return true;
}

EMU_NOTSAN void warp_release(fiber *f, warp &wp) {
    block *b = static_cast<block *>(f->blk);
    wp.arrived = 0;
    f->w->collectives++;
    int base = f->warp * 32;
    for (int l = 0; l < 32; l++)
        if (l != f->lane) {
            b->fib[base + l]->state = F_READY;
            q_push(b, base + l);
        }
    EMU_TSAN_RELEASE(&wp.sync_obj[wp.gen & 1]);
    wp.gen++;
}

EMU_NOTSAN inline warp &my_warp(fiber *f) { return static_cast<block *>(f->blk)->warps[f->warp]; }

} /* namespace */

uint64_t emu_shfl(int mode, unsigned mask, uint64_t v, int bval, int width, int bytes) {
    fiber *f = cur_fiber();
    warp &wp = my_warp(f);
    int kind = K_SHFL + mode * 2 + (bytes == 8);
    if (width < 1 || width > 32 || (width & (width - 1)))
        emu_fail("%s: width %d is not a power of two in 1..32", kind_name(kind), width);
    wp.val[f->lane] = v;
    wp.ib[f->lane] = bval;
    wp.iw[f->lane] = width;
    if (warp_arrive(f, wp, kind, mask)) {
        /* PTX ISA shfl.sync: c = ((32 - width) << 8) | (mode == up ? 0 : 31); each lane its own b, c */
        for (int l = 0; l < 32; l++) {
            int seg = 32 - wp.iw[l], b = wp.ib[l];
            int cl = mode == EMU_SHFL_UP ? 0 : 31;
            int minl = l & seg, maxl = minl | (cl & ~seg), j;
            bool ok;
            switch (mode) {
            case EMU_SHFL_UP:
                j = l - b;
                ok = j >= maxl;
                break;
            case EMU_SHFL_DOWN:
                j = l + b;
                ok = j <= maxl;
                break;
            case EMU_SHFL_BFLY:
                j = l ^ (b & 31);
                ok = j <= maxl;
                break;
            default:
                j = minl | (b & ~seg & 31);
                ok = j <= maxl;
                break;
            }
            wp.out64[l] = wp.val[ok ? j : l];
        }
        warp_release(f, wp);
    }
    return wp.out64[f->lane];
}

unsigned emu_vote(int mode, unsigned mask, int pred) {
    fiber *f = cur_fiber();
    warp &wp = my_warp(f);
    wp.ib[f->lane] = pred != 0;
    if (warp_arrive(f, wp, K_VOTE + mode, mask)) {
        uint32_t bal = 0;
        for (int l = 0; l < 32; l++) bal |= (uint32_t)wp.ib[l] << l;
        uint32_t r = mode == EMU_VOTE_BALLOT ? bal : mode == EMU_VOTE_ANY ? (bal != 0) : (bal == FULL);
        for (int l = 0; l < 32; l++) wp.out[l][0] = r;
        warp_release(f, wp);
    }
    return wp.out[f->lane][0];
}

void emu_syncwarp(unsigned mask) {
    fiber *f = cur_fiber();
    warp &wp = my_warp(f);
    if (warp_arrive(f, wp, K_SYNCWARP, mask)) warp_release(f, wp);
}

/* ============================== shared memory, ldmatrix, mma ================================ */

namespace {
EMU_NOTSAN inline bool in_smem(const block *b, const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)b->smem;
    return b->smem && a >= lo && a - lo <= b->smem_bytes && n <= b->smem_bytes - (a - lo);
}
} /* namespace */

uint32_t awqk_smem_u32(const void *p) {
    fiber *f = cur_fiber();
    if (!f) return 0;
    block *b = static_cast<block *>(f->blk);
    if (!in_smem(b, p, 0))
        emu_fail("awqk_smem_u32: %p is not in the block's shared memory [%p, +%zu)", p, (void *)b->smem,
                 b->smem_bytes);
    return (uint32_t)((uintptr_t)p - (uintptr_t)b->smem);
}

/* ldmatrix.sync.aligned.m8n8.x{1,2,4}{.trans}.shared.b16 (PTX ISA "ldmatrix"): lanes 8m..8m+7
 * give the row addresses of matrix m; register m of lane l = {M_m[l/4][2(l%4)], M_m[l/4][2(l%4)+1]},
 * .trans: {M_m[2(l%4)][l/4], M_m[2(l%4)+1][l/4]}. */
void emu_ldsm(uint32_t *r, const void *p, int nmat, bool trans) {
    fiber *f = cur_fiber();
    warp &wp = my_warp(f);
    int kind = K_LDSM + (nmat == 4 ? 4 : nmat == 2 ? 2 : 0) + (trans ? 1 : 0);
    wp.addr[f->lane] = p;
    if (warp_arrive(f, wp, kind, FULL)) {
        block *b = static_cast<block *>(f->blk);
        for (int l = 0; l < 8 * nmat; l++) {
            const void *a = wp.addr[l];
            if ((uintptr_t)a & 15u)
                fail_lane(f->warp * 32 + l, "%s: row address %p of lane %d is not 16-byte aligned",
                          kind_name(kind), a, l);
            if (!in_smem(b, a, 16))
                fail_lane(f->warp * 32 + l,
                          "%s: row address %p of lane %d is outside the block's shared memory "
                          "[%p, +%zu)",
                          kind_name(kind), a, l, (void *)b->smem, b->smem_bytes);
        }
        for (int l = 0; l < 32; l++) {
            int g = l >> 2, c = 2 * (l & 3);
            for (int m = 0; m < nmat; m++) {
                uint16_t e0, e1;
                if (!trans) {
                    const uint16_t *row = (const uint16_t *)wp.addr[8 * m + g];
                    e0 = row[c];
                    e1 = row[c + 1];
                } else {
                    e0 = ((const uint16_t *)wp.addr[8 * m + c])[g];
                    e1 = ((const uint16_t *)wp.addr[8 * m + c + 1])[g];
                }
                wp.out[l][m] = (uint32_t)e0 | ((uint32_t)e1 << 16);
            }
        }
        warp_release(f, wp);
    }
    for (int m = 0; m < nmat; m++) r[m] = wp.out[f->lane][m];
}

/* mma.sync.aligned.m16n8k{16,8}.row.col.f32.f16.f16.f32 (PTX ISA "Matrix Fragments for
 * mma.m16n8k16 / m16n8k8 with floating point type"); g = lane >> 2, t = lane & 3:
 * A: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..] (k16 only);
 * B: b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g] (k16 only); C/D: c0,c1 = C[g][2t..], c2,c3 = C[g+8][2t..]. */
void emu_mma(float d[4], const uint32_t *a, const uint32_t *bm, int k) {
    fiber *f = cur_fiber();
    warp &wp = my_warp(f);
    int na = k == 16 ? 4 : 2, nb = k == 16 ? 2 : 1;
    for (int i = 0; i < na; i++) wp.in[f->lane][i] = a[i];
    for (int i = 0; i < nb; i++) wp.in[f->lane][4 + i] = bm[i];
    for (int i = 0; i < 4; i++) wp.acc[f->lane][i] = d[i];
    if (warp_arrive(f, wp, k == 16 ? K_MMA16 : K_MMA8, FULL)) {
        double A[16][16], B[16][8];
        for (int l = 0; l < 32; l++) {
            int g = l >> 2, t = l & 3;
            for (int i = 0; i < na; i++) {
                uint32_t v = wp.in[l][i];
                int row = (i & 1) ? g + 8 : g, col = 2 * t + ((i & 2) ? 8 : 0);
                A[row][col] = awqk_h2f((uint16_t)(v & 0xffffu));
                A[row][col + 1] = awqk_h2f((uint16_t)(v >> 16));
            }
            for (int i = 0; i < nb; i++) {
                uint32_t v = wp.in[l][4 + i];
                int row = 2 * t + 8 * i;
                B[row][g] = awqk_h2f((uint16_t)(v & 0xffffu));
                B[row + 1][g] = awqk_h2f((uint16_t)(v >> 16));
            }
        }
        for (int l = 0; l < 32; l++) {
            int g = l >> 2, t = l & 3;
            for (int i = 0; i < 4; i++) {
                int row = i < 2 ? g : g + 8, col = 2 * t + (i & 1);
                double s = 0.0;
                for (int kk = 0; kk < k; kk++) s += A[row][kk] * B[kk][col];
                float r = (float)(s + (double)wp.acc[l][i]);
                memcpy(&wp.out[l][i], &r, 4);
            }
        }
        warp_release(f, wp);
    }
    for (int i = 0; i < 4; i++) memcpy(&d[i], &wp.out[f->lane][i], 4);
}

/* ============================== cp.async ==================================================== */

void emu_cp_async(void *dst, const void *src, bool pred) {
    fiber *f = cur_fiber();
    block *b = static_cast<block *>(f->blk);
    if ((uintptr_t)dst & 15u) emu_fail("cp.async: destination %p is not 16-byte aligned", dst);
    if (!in_smem(b, dst, 16))
        emu_fail("cp.async: destination %p is outside the block's shared memory [%p, +%zu)", dst,
                 (void *)b->smem, b->smem_bytes);
    if (pred && ((uintptr_t)src & 15u)) emu_fail("cp.async: source %p is not 16-byte aligned", src);
    memset(dst, 0xff, 16); /* poison until a wait retires the group: NaN in fp16 and fp32 */
    f->cp.push_back(
        cp_entry{(unsigned char *)dst, pred ? (const unsigned char *)src : nullptr, f->cp_committed});
}

void emu_cp_commit() { cur_fiber()->cp_committed++; }

namespace {
inline void cp_do(const cp_entry &e) {
    if (e.src)
        memcpy(e.dst, e.src, 16);
    else
        memset(e.dst, 0, 16);
}
} /* namespace */

/* cp.async.wait_group n: every committed group but the newest n completes. */
void emu_cp_wait(int n) {
    fiber *f = cur_fiber();
    long long limit = f->cp_committed - n;
    while (f->cp_head < f->cp.size() && f->cp[f->cp_head].group < limit) cp_do(f->cp[f->cp_head++]);
    if (f->cp_head == f->cp.size()) {
        f->cp.clear();
        f->cp_head = 0;
    }
}

namespace {
void finish_cp(fiber *f) {
    while (f->cp_head < f->cp.size()) cp_do(f->cp[f->cp_head++]);
    f->cp.clear();
    f->cp_head = 0;
}
} /* namespace */

/* ============================== launching ==================================================== */

namespace {

struct job {
    const char *name;
    dim3 grid, bdim;
    size_t smem;
    emu_body_fn fn;
    const void *ctx;
    long long nblocks;
    uint64_t seed;
    std::atomic<long long> next{0};
    std::atomic<long long> err_block{INT64_MAX};
    std::mutex m;
    char msg[256];
};

/* Runs block `lin` of the job on this host thread; 0, or -1 with msg set. */
EMU_NOTSAN int run_block(worker *w, job *j, long long lin, char *msg, size_t cap) {
    block *b = &w->blk;
    int n = (int)(j->bdim.x * j->bdim.y * j->bdim.z);
    if (!ensure_fibers(w, n, msg, cap)) return -1;
    b->name = j->name;
    b->fn = j->fn;
    b->ctx = j->ctx;
    b->lin = lin;
    b->n = n;
    b->nwarps = (n + 31) / 32;
    b->partial_warp = (n & 31) != 0;
    b->bdim = j->bdim;
    b->gdim = j->grid;
    b->bid.x = (unsigned)(lin % j->grid.x);
    b->bid.y = (unsigned)((lin / j->grid.x) % j->grid.y);
    b->bid.z = (unsigned)(lin / ((long long)j->grid.x * j->grid.y));
    b->seed = j->seed;
    b->permute = j->seed != 0;
    b->bar_arrived = 0;
    b->bar_gen = 0;
    b->exited = 0;
    b->done = 0;
    b->err = false;
    b->msg[0] = 0;
    if (b->qcap < (size_t)n + 1) {
        int *nq = (int *)realloc(b->q, ((size_t)n + 1) * sizeof(int));
        if (!nq) return snprintf(msg, cap, "%s: out of host memory", j->name), -1;
        b->q = nq;
        b->qcap = (size_t)n + 1;
    }
    b->qh = b->qt = 0;
    if (b->warps_cap < b->nwarps) {
        warp *nw = new (std::nothrow) warp[(size_t)b->nwarps];
        if (!nw) return snprintf(msg, cap, "%s: out of host memory", j->name), -1;
        delete[] b->warps;
        b->warps = nw;
        b->warps_cap = b->nwarps;
    }
    for (int i = 0; i < b->nwarps; i++) {
        warp &x = b->warps[i];
        x.arrived = 0;
        x.exited = 0;
        x.at_bar = 0;
    }
    b->fib = w->fibers.data();
    /* a fresh, exactly sized, poisoned shared memory (so ASan sees overruns) */
    b->smem = nullptr;
    b->smem_bytes = j->smem;
    void *sm = nullptr;
    if (posix_memalign(&sm, 128, j->smem) != 0) {
        snprintf(msg, cap, "%s: cannot allocate %zu bytes of shared memory", j->name, j->smem);
        return -1;
    }
    b->smem = (unsigned char *)sm;
    if (j->smem) memset(sm, 0xff, j->smem);
    unsigned bx = j->bdim.x, by = j->bdim.y, tx = 0, ty = 0, tz = 0;
    for (int i = 0; i < n; i++) {
        fiber *f = w->fibers[(size_t)i];
        f->tid.x = tx;
        f->tid.y = ty;
        f->tid.z = tz;
        if (++tx == bx) {
            tx = 0;
            if (++ty == by) ty = 0, tz++;
        }
        f->lin = i;
        f->lane = i & 31;
        f->warp = i >> 5;
        f->blk = b;
        f->state = F_READY;
        if (f->fresh && !fiber_init_ctx(w, f)) {
            snprintf(msg, cap, "%s: cannot create a fiber context", j->name);
            free(sm);
            b->smem = nullptr;
            return -1;
        }
    }
    queue_all(b, 0);
    EMU_TSAN_RELEASE(&b->start_obj);
    int first = q_pop(b);
    fiber *f0 = w->fibers[(size_t)first];
    f0->state = F_RUN;
    switch_to(w, &w->sched, nullptr, &f0->ctx);
    EMU_TSAN_ACQUIRE(&b->end_obj);
    int rc = 0;
    if (!b->err && b->done < n) { /* nobody is ready, yet threads wait: a deadlock */
        int nbar = 0, nw = 0, any = -1;
        for (int i = 0; i < n; i++) {
            int s = w->fibers[(size_t)i]->state;
            if (s == F_WAIT_BAR) nbar++;
            if (s == F_WAIT_WARP) nw++;
            if ((s == F_WAIT_BAR || s == F_WAIT_WARP) && any < 0) any = i;
        }
        char tmp[200];
        snprintf(tmp, sizeof tmp,
                 "deadlock (divergent control flow): %d thread(s) wait at the __syncthreads at "
                 "%s:%d, %d at warp collectives",
                 nbar, b->bar_file ? base_name(b->bar_file) : "?", b->bar_line, nw);
        b->err = true;
        unsigned x = (unsigned)any % bx, y = ((unsigned)any / bx) % by, z = (unsigned)any / (bx * by);
        snprintf(b->msg, sizeof b->msg, "%s: block (%u,%u,%u) thread (%u,%u,%u): %s", b->name, b->bid.x,
                 b->bid.y, b->bid.z, x, y, z, tmp);
    }
    if (b->err) {
        /* abandon every fiber that did not finish: its stack is reset before the next use */
        for (int i = 0; i < n; i++) {
            fiber *f = w->fibers[(size_t)i];
            if (f->midrun) {
                f->fresh = true;
#ifdef EMU_TSAN
                /* it never released end_obj: a synchronising TSan switch there and back gives the
                 * scheduler its history (no stack switch happens) */
                __tsan_switch_to_fiber(f->ctx.tsan, 0);
                __tsan_switch_to_fiber(w->sched.tsan, 0);
#endif
            }
            f->midrun = false;
            if (f->fresh) {
                f->cp.clear();
                f->cp_head = 0;
            }
            f->state = F_IDLE;
        }
        snprintf(msg, cap, "%s", b->msg);
        rc = -1;
    } else {
        for (int i = 0; i < n; i++) w->fibers[(size_t)i]->state = F_IDLE;
    }
    free(sm);
    b->smem = nullptr;
    return rc;
}

/* Takes blocks of the job until none is left (or an earlier block failed). */
void run_blocks(job *j) {
    worker *w = get_worker();
    char msg[256];
    long long done = 0;
    for (;;) {
        long long lin = j->next.fetch_add(1, std::memory_order_relaxed);
        if (lin >= j->nblocks || lin > j->err_block.load(std::memory_order_relaxed)) break;
        int rc;
        if (!w) {
            snprintf(msg, sizeof msg, "%s: out of host memory for the emulator", j->name);
            rc = -1;
        } else {
            rc = run_block(w, j, lin, msg, sizeof msg);
        }
        done++;
        if (rc != 0) {
            std::lock_guard<std::mutex> lk(j->m);
            if (lin < j->err_block.load()) {
                j->err_block.store(lin);
                snprintf(j->msg, sizeof j->msg, "%s", msg);
            }
        }
    }
    if (w) {
        st_switches.fetch_add(w->switches, std::memory_order_relaxed);
        st_barriers.fetch_add(w->barriers, std::memory_order_relaxed);
        st_collectives.fetch_add(w->collectives, std::memory_order_relaxed);
        w->switches = w->barriers = w->collectives = 0;
    }
    st_blocks.fetch_add((unsigned long long)done, std::memory_order_relaxed);
}

/* The host threads that run blocks besides the launching thread. */
struct pool {
    std::mutex launch_m; /* one parallel launch at a time */
    std::mutex m;
    std::condition_variable cv, cv_done;
    std::vector<std::thread> th;
    job *cur = nullptr;
    unsigned long long seq = 0;
    int want = 0, claimed = 0, finished = 0;
    bool stop = false;

    void loop() {
        std::unique_lock<std::mutex> lk(m);
        unsigned long long seen = 0;
        for (;;) {
            cv.wait(lk, [&] { return stop || (seq != seen && claimed < want); });
            if (stop) return;
            seen = seq;
            claimed++;
            job *j = cur;
            lk.unlock();
            run_blocks(j);
            lk.lock();
            finished++;
            cv_done.notify_all();
        }
    }
    bool ensure(int n) {
        try {
            while ((int)th.size() < n) th.emplace_back([this] { loop(); });
        } catch (...) {
            return th.size() > 0;
        }
        return true;
    }
    /* runs j on the calling thread plus up to extra pool threads */
    void run(job *j, int extra) {
        {
            std::lock_guard<std::mutex> lk(m);
            if (!ensure(extra)) extra = 0;
            if ((int)th.size() < extra) extra = (int)th.size();
            cur = j;
            want = extra;
            claimed = finished = 0;
            seq++;
        }
        cv.notify_all();
        run_blocks(j);
        std::unique_lock<std::mutex> lk(m);
        want = claimed; /* the blocks are all taken: nobody else needs to start */
        cv_done.wait(lk, [&] { return finished == claimed; });
        cur = nullptr;
    }
    ~pool() {
        {
            std::lock_guard<std::mutex> lk(m);
            stop = true;
        }
        cv.notify_all();
        for (std::thread &t : th)
            if (t.joinable()) t.join();
    }
};

pool &the_pool() {
    static pool p;
    return p;
}

void put_err(awqk_ctx *kc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void put_err(awqk_ctx *kc, const char *fmt, ...) {
    if (!kc) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kc->err, sizeof kc->err, fmt, ap);
    va_end(ap);
}

/* CUDA's launch limits (compute capability 7.5 .. 9.0). */
int check_config(const char *name, dim3 g, dim3 bl, size_t smem, char *err, size_t cap) {
    const char *inv = "(cudaErrorInvalidConfiguration: invalid configuration argument)";
    unsigned long long nt = (unsigned long long)bl.x * bl.y * bl.z;
    if (!g.x || !g.y || !g.z || !bl.x || !bl.y || !bl.z)
        return snprintf(err, cap, "%s: grid (%u,%u,%u) or block (%u,%u,%u) has a zero dimension %s", name,
                        g.x, g.y, g.z, bl.x, bl.y, bl.z, inv),
               -1;
    if (nt > 1024)
        return snprintf(err, cap, "%s: block (%u,%u,%u) has %llu threads, more than 1024 %s", name, bl.x,
                        bl.y, bl.z, nt, inv),
               -1;
    if (bl.x > 1024 || bl.y > 1024 || bl.z > 64)
        return snprintf(err, cap,
                        "%s: block (%u,%u,%u) exceeds the maximum block dimensions (1024,1024,64) %s", name,
                        bl.x, bl.y, bl.z, inv),
               -1;
    if (g.x > 2147483647u || g.y > 65535 || g.z > 65535)
        return snprintf(err, cap,
                        "%s: grid (%u,%u,%u) exceeds the maximum grid dimensions (2147483647,65535,65535) %s",
                        name, g.x, g.y, g.z, inv),
               -1;
    if (smem > SMEM_LIMIT)
        return snprintf(err, cap,
                        "%s: %zu bytes of dynamic shared memory exceed the %d-byte limit without opt-in "
                        "(cudaErrorInvalidValue: invalid argument)",
                        name, smem, (int)SMEM_LIMIT),
               -1;
    return 0;
}

} /* namespace */

int emu_launch(awqk_ctx *kc, const char *name, dim3 grid, dim3 block, size_t smem, emu_body_fn fn,
               const void *ctx) {
    if (!name) name = "kernel";
    char err[256];
    if (check_config(name, grid, block, smem, err, sizeof err)) {
        put_err(kc, "%s", err);
        return -1;
    }
    if (emu_tls_cur) {
        put_err(kc, "%s: launched from inside a kernel (dynamic parallelism is not supported)", name);
        return -1;
    }
    job j;
    j.name = name;
    j.grid = grid;
    j.bdim = block;
    j.smem = smem;
    j.fn = fn;
    j.ctx = ctx;
    j.nblocks = (long long)grid.x * grid.y * grid.z;
    j.seed = g_seed_set.load() ? g_seed.load() : cfg().env_seed;
    j.msg[0] = 0;
    st_launches.fetch_add(1, std::memory_order_relaxed);
    st_threads.fetch_add((unsigned long long)j.nblocks * block.x * block.y * block.z,
                         std::memory_order_relaxed);
    long long T = emu_get_threads();
    if (T > j.nblocks) T = j.nblocks;
    pool &p = the_pool();
    if (T > 1 && p.launch_m.try_lock()) {
        p.run(&j, (int)T - 1);
        p.launch_m.unlock();
    } else {
        run_blocks(&j); /* one host thread (or the pool is busy with another launch) */
    }
    if (j.err_block.load() != INT64_MAX) {
        put_err(kc, "%s", j.msg);
        return -1;
    }
    return 0;
}

void emu_set_threads(int n) { g_threads.store(n < 0 ? 0 : n > 256 ? 256 : n); }
int emu_get_threads(void) {
    int n = g_threads.load();
    return n > 0 ? n : cfg().env_threads;
}
void emu_set_seed(uint64_t seed) {
    g_seed.store(seed);
    g_seed_set.store(true);
}
void emu_get_stats(emu_stats *st) {
    st->launches = st_launches.load();
    st->blocks = st_blocks.load();
    st->threads = st_threads.load();
    st->switches = st_switches.load();
    st->barriers = st_barriers.load();
    st->collectives = st_collectives.load();
}
const char *emu_switch_kind(void) {
    worker *w = get_worker();
    return w && !w->use_uc ? "x86-64 asm" : "ucontext";
}

/* ============================== streams and graphs =========================================== */

namespace {
struct item {
    bool kernel;
    std::string name;
    dim3 grid, block;
    size_t smem;
    std::function<void()> body;
    std::function<int(char *, size_t)> host;
};
void put(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void put(char *err, size_t cap, const char *fmt, ...) {
    if (!err || !cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}
} /* namespace */

struct emu_stream {
    bool capturing = false;
    std::vector<item> items;
};
struct emu_graph {
    std::vector<item> items;
};

emu_stream *emu_stream_create(void) { return new (std::nothrow) emu_stream(); }
void emu_stream_destroy(emu_stream *s) { delete s; }
bool emu_stream_capturing(const emu_stream *s) { return s && s->capturing; }

int emu_stream_begin_capture(emu_stream *s, char *err, size_t cap) {
    if (!s)
        return put(err, cap, "emu_stream_begin_capture: no stream (cudaErrorStreamCaptureUnsupported)"), -1;
    if (s->capturing)
        return put(err, cap,
                   "cudaStreamBeginCapture: the stream is already capturing "
                   "(cudaErrorIllegalState: operation not permitted when stream is capturing)"),
               -1;
    s->items.clear();
    s->capturing = true;
    return 0;
}

int emu_stream_end_capture(emu_stream *s, emu_graph **g, char *err, size_t cap) {
    if (g) *g = nullptr;
    if (!s || !s->capturing)
        return put(err, cap, "cudaStreamEndCapture: the stream is not capturing (cudaErrorIllegalState)"), -1;
    s->capturing = false;
    emu_graph *r = new (std::nothrow) emu_graph();
    if (!r) return put(err, cap, "cudaStreamEndCapture: out of host memory"), -1;
    r->items.swap(s->items);
    if (g)
        *g = r;
    else
        delete r;
    return 0;
}

int emu_stream_record_kernel(awqk_ctx *kc, emu_stream *s, const char *name, dim3 grid, dim3 block,
                             size_t smem, std::function<void()> body) {
    if (!name) name = "kernel";
    char err[256];
    if (check_config(name, grid, block, smem, err, sizeof err)) {
        put_err(kc, "%s", err);
        return -1;
    }
    try {
        s->items.push_back(item{true, name, grid, block, smem, std::move(body), nullptr});
    } catch (...) {
        put_err(kc, "%s: out of host memory while capturing", name);
        return -1;
    }
    return 0;
}

int emu_stream_enqueue(emu_stream *s, std::function<int(char *, size_t)> fn, char *err, size_t cap) {
    if (s && s->capturing) {
        try {
            s->items.push_back(item{false, std::string(), dim3(), dim3(), 0, nullptr, std::move(fn)});
        } catch (...) {
            return put(err, cap, "out of host memory while capturing"), -1;
        }
        return 0;
    }
    char tmp[256] = "";
    int rc = fn(err && cap ? err : tmp, err && cap ? cap : sizeof tmp);
    return rc == 0 ? 0 : -1;
}

int emu_graph_launch(awqk_ctx *kc, emu_graph *g) {
    if (!g) return put_err(kc, "cudaGraphLaunch: no graph (cudaErrorInvalidValue)"), -1;
    for (item &it : g->items) {
        if (it.kernel) {
            if (emu_launch(
                    kc, it.name.c_str(), it.grid, it.block, it.smem,
                    [](const void *c) { (*static_cast<const std::function<void()> *>(c))(); }, &it.body))
                return -1;
        } else {
            char tmp[256] = "";
            if (it.host(kc ? kc->err : tmp, kc ? sizeof kc->err : sizeof tmp) != 0) {
                if (kc && !kc->err[0]) put_err(kc, "graph replay: a host operation failed");
                return -1;
            }
        }
    }
    return 0;
}

size_t emu_graph_size(const emu_graph *g) { return g ? g->items.size() : 0; }
void emu_graph_destroy(emu_graph *g) { delete g; }
