/*
 * test_cuda_e2e.c - issue 9's end-to-end checks of the CUDA backend without a GPU: the real
 * kernels and host code run as the "cuda-emu" plugin (SIMT emulator) on SmolLM2-135M-Instruct and
 * are compared with the cpu reference backend.
 *
 *  1. AWQ g64 checkpoint (made on the cpu): greedy generation on cuda-emu gives the same first 16
 *     tokens as on cpu, with the decode steps captured as graphs (the default) and without;
 *  2. its WikiText-2 perplexity on a short window (ctx 256: the Tensor-Core GEMM path for the
 *     prefill, flash attention) agrees with the cpu within 0.1%;
 *  3. a quantization run on cuda-emu (every search op on the emulated GPU) agrees with the same
 *     run on cpu: perplexity of the two checkpoints (evaluated on cpu) within 0.5%, and the share
 *     of identical 4-bit scales is printed. To fit CI time this runs on the model's first
 *     AWQ_CUDA_E2E_LAYERS (default 4) decoder layers, a real checkpoint cut down by this test.
 *
 * Environment: AWQ_CUDA_E2E_DEVICE (default cuda-emu; scripts/gpu-check.sh sets cuda), AWQ_TEST_MODEL_DIR (converted fp16 model, required), AWQ_TEST_AWQ_DIR (an AWQ g64
 * checkpoint of it; made here with 6 calibration samples when unset), AWQ_CUDA_E2E_SAMPLES
 * (calibration samples of step 3, default 4). Skips (77) when cuda-emu is not built, unless
 * AWQ_REQUIRE_CUDA_EMU=1.
 */
#include <math.h>
#include <sys/stat.h>
#include <time.h>

#include "awq.h"
#include "safetensors.h"
#include "test.h"

static awq_runtime *rt;
static char root[256], awq_dir[320], small_dir[320], small_cpu[320], small_emu[320];
static char *wiki;
static size_t wiki_len;
static const char *DEV = "cuda-emu"; /* AWQ_CUDA_E2E_DEVICE=cuda on a machine with a GPU */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double ppl(const char *dir, const char *device, int ctx) {
    awq_model *m = NULL;
    awq_tokenizer *tok = NULL;
    awq_model_params mp = awq_model_params_default();
    mp.device = device;
    if (awq_tokenizer_load(&tok, rt, dir) || awq_model_load(&m, rt, dir, &mp)) {
        printf("  load %s on %s: %s\n", dir, device, awq_runtime_last_error(rt));
        awq_tokenizer_destroy(tok);
        return -1;
    }
    awq_ppl_result r;
    double t0 = now();
    awq_status st = awq_eval_perplexity(m, tok, wiki, wiki_len, ctx, 1, NULL, NULL, &r);
    awq_model_destroy(m);
    awq_tokenizer_destroy(tok);
    if (st != AWQ_OK) {
        printf("  eval %s on %s: %s\n", dir, device, awq_runtime_last_error(rt));
        return -1;
    }
    printf("  ppl (ctx %d) of %s on %s: %.6f (%.1f s)\n", ctx, dir, device, r.ppl, now() - t0);
    return r.ppl;
}

static awq_status quantize(const char *model, const char *device, const char *out, int samples, int seqlen) {
    awq_quant_params p = awq_quant_params_default();
    p.model_dir = model;
    p.out_dir = out;
    p.group_size = 64;
    p.calib_samples = samples;
    if (seqlen) p.calib_seqlen = seqlen;
    p.device = device;
    awq_quant_report rep;
    double t0 = now();
    awq_status st = awq_quantize(rt, &p, &rep);
    if (st == AWQ_OK)
        printf("  quantized %s on %s: %d block(s), %.1f s, %.3f TFLOP\n", model, device, rep.n_blocks,
               now() - t0, rep.search_flops / 1e12);
    else
        printf("  quantize %s on %s: %s\n", model, device, awq_runtime_last_error(rt));
    return st;
}

/* Greedy continuation of the prompt on device: n token ids into out. */
static int greedy(awq_model *m, const int32_t *prompt, int np, int n, int32_t *out) {
    static float logits[1 << 17];
    awq_model_info info;
    if (awq_model_get_info(m, &info) != AWQ_OK || info.vocab_size > (1 << 17)) return -1;
    awq_session *s = NULL;
    if (awq_session_create(&s, m, 128) != AWQ_OK) return -1;
    awq_status st = awq_session_eval(s, prompt, np, logits, false);
    for (int i = 0; i < n && st == AWQ_OK; i++) {
        int best = 0;
        for (int j = 1; j < info.vocab_size; j++) best = logits[j] > logits[best] ? j : best;
        out[i] = best;
        st = awq_session_eval(s, &out[i], 1, logits, false);
    }
    if (st != AWQ_OK) printf("  greedy: %s\n", awq_runtime_last_error(rt));
    awq_session_destroy(s);
    return st == AWQ_OK ? 0 : -1;
}

TEST(greedy_16_tokens_match_cpu) {
    awq_tokenizer *tok = NULL;
    ASSERT_OK_RT(awq_tokenizer_load(&tok, rt, awq_dir), rt);
    const char *text = "The capital of France is";
    int32_t prompt[64];
    int64_t np = 0;
    ASSERT_OK_RT(awq_tokenizer_encode(tok, text, strlen(text), true, prompt, 64, &np), rt);
    enum { N = 16 };
    int32_t ids[3][N];
    const char *devs[3] = {"cpu", DEV, DEV};
    char w1[64], w2[64];
    snprintf(w1, sizeof w1, "%s (decode steps as graphs)", DEV);
    snprintf(w2, sizeof w2, "%s (AWQ_CUDA_GRAPHS=0)", DEV);
    const char *what[3] = {"cpu", w1, w2};
    for (int d = 0; d < 3; d++) {
        setenv("AWQ_CUDA_GRAPHS", d == 2 ? "0" : "1", 1);
        awq_model *m = NULL;
        awq_model_params mp = awq_model_params_default();
        mp.device = devs[d];
        ASSERT_OK_RT(awq_model_load(&m, rt, awq_dir, &mp), rt);
        double t0 = now();
        int rc = greedy(m, prompt, (int)np, N, ids[d]);
        awq_model_destroy(m);
        ASSERT(rc == 0);
        char piece[4096];
        size_t len = 0;
        if (awq_tokenizer_decode(tok, ids[d], N, false, piece, sizeof piece, &len) == AWQ_OK)
            printf("  %-34s \"%s%.*s\" (%.1f s)\n", what[d], text, (int)len, piece, now() - t0);
    }
    unsetenv("AWQ_CUDA_GRAPHS");
    for (int d = 1; d < 3; d++) {
        int same = 0;
        while (same < N && ids[0][same] == ids[d][same]) same++;
        printf("  greedy tokens identical on cpu and %s: %d/%d\n", what[d], same, N);
        ASSERT(same == N);
    }
    awq_tokenizer_destroy(tok);
}

TEST(perplexity_short_window_matches_cpu) {
    double p_cpu = ppl(awq_dir, "cpu", 256), p_emu = ppl(awq_dir, DEV, 256);
    ASSERT(p_cpu > 1 && p_emu > 1);
    double rel = fabs(p_emu - p_cpu) / p_cpu;
    printf("  ppl on %s vs cpu (1 window of 256): %.6f vs %.6f (%.5f%%, limit 0.1%%)\n", DEV, p_emu, p_cpu,
           rel * 100);
    ASSERT(rel < 0.001);
}

/* ---- a real checkpoint cut to its first n layers -------------------------------------------- */

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

/* Layer index of "model.layers.<i>.", or -1. */
static int layer_of(const char *name) {
    const char *p = "model.layers.";
    if (strncmp(name, p, strlen(p)) != 0) return -1;
    return atoi(name + strlen(p));
}

static awq_status cut_model(const char *src, const char *dst, int layers) {
    mkdir(dst, 0755);
    static const char *files[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json"};
    char a[600], b[600];
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", dst, files[i]);
        if (copy_file(a, b) != 0 && i < 2) return AWQ_ERR_IO;
    }
    /* config.json with num_hidden_layers replaced */
    snprintf(a, sizeof a, "%s/config.json", src);
    size_t n = 0;
    char *cfg = test_read_file(a, &n);
    if (!cfg) return AWQ_ERR_IO;
    char *key = strstr(cfg, "\"num_hidden_layers\"");
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
    /* the tensors of the kept layers */
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

/* Share of identical 16-bit scales between two checkpoints' layer-0..n scales tensors. */
static double same_scales(const char *d1, const char *d2) {
    awq_safetensors *a = NULL, *b = NULL;
    double same = 0, total = 0;
    if (awq_st_open(rt, d1, &a) == AWQ_OK && awq_st_open(rt, d2, &b) == AWQ_OK) {
        for (int32_t i = 0; i < awq_st_count(a); i++) {
            const awq_st_tensor *t = awq_st_get(a, i), *u = awq_st_find(b, t->name);
            size_t len = strlen(t->name);
            if (!u || len < 7 || strcmp(t->name + len - 7, ".scales") != 0 || u->nbytes != t->nbytes)
                continue;
            const uint16_t *x = t->data, *y = u->data;
            for (uint64_t j = 0; j < t->nbytes / 2; j++) same += x[j] == y[j];
            total += (double)(t->nbytes / 2);
        }
    }
    awq_st_close(a);
    awq_st_close(b);
    return total > 0 ? same / total : -1;
}

TEST(quantize_on_cuda_emu_matches_cpu) {
    int layers = getenv("AWQ_CUDA_E2E_LAYERS") ? atoi(getenv("AWQ_CUDA_E2E_LAYERS")) : 4;
    int samples = getenv("AWQ_CUDA_E2E_SAMPLES") ? atoi(getenv("AWQ_CUDA_E2E_SAMPLES")) : 4;
    ASSERT_OK_RT(cut_model(test_model_dir(), small_dir, layers), rt);
    printf("  %s: the first %d decoder layers of %s\n", small_dir, layers, test_model_dir());
    ASSERT_OK_RT(quantize(small_dir, "cpu", small_cpu, samples, 0), rt);
    ASSERT_OK_RT(quantize(small_dir, DEV, small_emu, samples, 0), rt);
    double p_cpu = ppl(small_cpu, "cpu", 512), p_emu = ppl(small_emu, "cpu", 512);
    ASSERT(p_cpu > 1 && p_emu > 1);
    double rel = fabs(p_emu - p_cpu) / p_cpu, same = same_scales(small_cpu, small_emu);
    printf("  checkpoint made on %s vs on cpu: ppl %.6f vs %.6f (%.4f%%, limit 0.5%%), %.2f%% of the "
           "scales identical\n",
           DEV, p_emu, p_cpu, rel * 100, same * 100);
    ASSERT(rel < 0.005);
}

int main(void) {
    if (!test_model_dir()) return test_skip_or_fail("AWQ_TEST_MODEL_DIR not set");
    if (getenv("AWQ_CUDA_E2E_DEVICE") && *getenv("AWQ_CUDA_E2E_DEVICE")) DEV = getenv("AWQ_CUDA_E2E_DEVICE");
    awq_runtime_params rp = awq_runtime_params_default();
    rp.backend_dir = AWQ_TEST_BIN_DIR;
    if (awq_runtime_create(&rt, &rp) != AWQ_OK) return 1;
    bool have = false;
    for (int32_t i = 0; i < awq_runtime_device_count(rt); i++) {
        awq_device_desc d;
        if (awq_runtime_device_get(rt, i, &d) == AWQ_OK && strcmp(d.backend, DEV) == 0) {
            printf("%s device: %s\n", DEV, d.name);
            have = true;
        }
    }
    if (!have) {
        awq_runtime_destroy(rt);
        const char *req = getenv("AWQ_REQUIRE_CUDA_EMU");
        printf("%s: the %s plugin is not loaded or has no device (see awq-cli info)\n",
               req && req[0] == '1' ? "FAIL" : "SKIP", DEV);
        return req && req[0] == '1' ? 1 : 77;
    }
    char wpath[1024];
    snprintf(wpath, sizeof wpath, "%s/wikitext-2/wiki.test.raw", test_shared_data());
    wiki = test_read_file(wpath, &wiki_len);
    if (!wiki) return test_skip_or_fail("wiki.test.raw not found");
    if (test_tmpdir(root, sizeof root, "cuda-e2e")) return 1;
    snprintf(small_dir, sizeof small_dir, "%s/small-f16", root);
    snprintf(small_cpu, sizeof small_cpu, "%s/small-awq-cpu", root);
    snprintf(small_emu, sizeof small_emu, "%s/small-awq-cuda-emu", root);
    const char *given = getenv("AWQ_TEST_AWQ_DIR");
    if (given && *given) {
        snprintf(awq_dir, sizeof awq_dir, "%s", given);
    } else {
        snprintf(awq_dir, sizeof awq_dir, "%s/awq-g64", root);
        if (quantize(test_model_dir(), "auto", awq_dir, 6, 0) != AWQ_OK) return 1;
    }
    RUN(greedy_16_tokens_match_cpu);
    RUN(perplexity_short_window_matches_cpu);
    RUN(quantize_on_cuda_emu_matches_cpu);
    awq_runtime_destroy(rt);
    if (test_rmtree(root) != 0) printf("warning: cannot remove %s\n", root);
    free(wiki);
    return TEST_EXIT();
}
