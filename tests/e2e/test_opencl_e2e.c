/*
 * test_opencl_e2e.c - issue 5's end-to-end checks on the real model (SmolLM2-135M-Instruct, AWQ
 * g64) with the OpenCL backend (PoCL in CI) against the cpu reference backend:
 *
 *  1. the same small-calibration quantization run on cpu and on opencl gives checkpoints whose
 *     WikiText-2 perplexity (evaluated on the cpu) agrees within 0.5%;
 *  2. the AWQ model's greedy generation on opencl produces the same first 32 tokens as on cpu;
 *  3. its WikiText-2 perplexity on the first chunk(s) agrees with the cpu within 0.1%.
 *
 * Environment: AWQ_TEST_MODEL_DIR (converted fp16 model), AWQ_OCL_E2E_SAMPLES (calibration
 * samples, default 6: one block of 512 tokens), AWQ_OCL_E2E_CHUNKS (default 1 window of 2048).
 * Skips (77) when the opencl plugin finds no device, unless AWQ_REQUIRE_OPENCL=1.
 */
#include <math.h>
#include <time.h>

#include "awq.h"
#include "test.h"

static awq_runtime *rt;
static char root[256], cpu_dir[320], ocl_dir[320];
static char *wiki;
static size_t wiki_len;
static int chunks = 1;
static bool quantized_ok;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool quant_progress(float done, const char *stage, void *user) {
    static char last[32];
    if (strncmp(stage, last, 10)) {
        printf("    [%s %3.0f%%] %s\n", (const char *)user, done * 100, stage);
        fflush(stdout);
        snprintf(last, sizeof last, "%s", stage);
    }
    return true;
}

static double ppl(const char *dir, const char *device) {
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
    awq_status st = awq_eval_perplexity(m, tok, wiki, wiki_len, 2048, chunks, NULL, NULL, &r);
    awq_model_destroy(m);
    awq_tokenizer_destroy(tok);
    if (st != AWQ_OK) {
        printf("  eval %s on %s: %s\n", dir, device, awq_runtime_last_error(rt));
        return -1;
    }
    printf("  ppl %s on %s: %.6f (%.1f s)\n", dir, device, r.ppl, now() - t0);
    return r.ppl;
}

static awq_status quantize(const char *device, const char *out, int samples) {
    awq_quant_params p = awq_quant_params_default();
    p.model_dir = test_model_dir();
    p.out_dir = out;
    p.group_size = 64;
    p.calib_samples = samples;
    p.device = device;
    p.progress = quant_progress;
    p.progress_user = (void *)device;
    awq_quant_report rep;
    awq_status st = awq_quantize(rt, &p, &rep);
    if (st == AWQ_OK)
        printf("  quantized on %s: %d block(s), %.1f s, %.2f TFLOP\n", device, rep.n_blocks, rep.seconds,
               rep.search_flops / 1e12);
    return st;
}

TEST(quantize_on_opencl_matches_cpu) {
    int samples = getenv("AWQ_OCL_E2E_SAMPLES") ? atoi(getenv("AWQ_OCL_E2E_SAMPLES")) : 6;
    ASSERT_OK_RT(quantize("cpu", cpu_dir, samples), rt);
    ASSERT_OK_RT(quantize("opencl", ocl_dir, samples), rt);
    quantized_ok = true;
    double p_cpu = ppl(cpu_dir, "cpu"), p_ocl = ppl(ocl_dir, "cpu");
    ASSERT(p_cpu > 1 && p_ocl > 1);
    double rel = fabs(p_ocl - p_cpu) / p_cpu;
    printf("  checkpoint made on opencl vs on cpu: ppl %.6f vs %.6f (%.4f%%, limit 0.5%%)\n", p_ocl, p_cpu,
           rel * 100);
    ASSERT(rel < 0.005);
}

/* Greedy continuation of the prompt on device: n token ids into out. */
static int greedy(awq_model *m, const int32_t *prompt, int np, int n, int32_t *out) {
    static float logits[1 << 17];
    awq_model_info info;
    if (awq_model_get_info(m, &info) != AWQ_OK || info.vocab_size > (1 << 17)) return -1;
    awq_session *s = NULL;
    if (awq_session_create(&s, m, 256) != AWQ_OK) return -1;
    awq_status st = awq_session_eval(s, prompt, np, logits, false);
    for (int i = 0; i < n && st == AWQ_OK; i++) {
        int best = 0;
        for (int j = 1; j < info.vocab_size; j++) best = logits[j] > logits[best] ? j : best;
        out[i] = best;
        st = awq_session_eval(s, &out[i], 1, logits, false);
    }
    awq_session_destroy(s);
    return st == AWQ_OK ? 0 : -1;
}

TEST(greedy_tokens_and_perplexity_agree_with_cpu) {
    ASSERT(quantized_ok);
    awq_tokenizer *tok = NULL;
    ASSERT_OK_RT(awq_tokenizer_load(&tok, rt, ocl_dir), rt);
    const char *text = "The capital of France is";
    int32_t prompt[64];
    int64_t np = 0;
    ASSERT_OK_RT(awq_tokenizer_encode(tok, text, strlen(text), true, prompt, 64, &np), rt);
    int32_t ids[2][32];
    const char *devs[2] = {"cpu", "opencl"};
    for (int d = 0; d < 2; d++) {
        awq_model *m = NULL;
        awq_model_params mp = awq_model_params_default();
        mp.device = devs[d];
        ASSERT_OK_RT(awq_model_load(&m, rt, ocl_dir, &mp), rt);
        ASSERT(greedy(m, prompt, (int)np, 32, ids[d]) == 0);
        awq_model_destroy(m);
    }
    int same = 0;
    while (same < 32 && ids[0][same] == ids[1][same]) same++;
    char piece[4096];
    size_t len = 0;
    if (awq_tokenizer_decode(tok, ids[1], 32, false, piece, sizeof piece, &len) == AWQ_OK)
        printf("  opencl greedy: \"%s%.*s\"\n", text, (int)len, piece);
    printf("  greedy tokens identical on cpu and opencl: %d/32\n", same);
    ASSERT(same == 32);
    awq_tokenizer_destroy(tok);

    double p_cpu = ppl(ocl_dir, "cpu"), p_ocl = ppl(ocl_dir, "opencl");
    ASSERT(p_cpu > 1 && p_ocl > 1);
    double rel = fabs(p_ocl - p_cpu) / p_cpu;
    printf("  ppl on opencl vs cpu (%d window(s) of 2048): %.6f vs %.6f (%.5f%%, limit 0.1%%)\n", chunks,
           p_ocl, p_cpu, rel * 100);
    ASSERT(rel < 0.001);
}

int main(void) {
    if (!test_model_dir()) return test_skip_or_fail("AWQ_TEST_MODEL_DIR not set");
    if (getenv("AWQ_OCL_E2E_CHUNKS")) chunks = atoi(getenv("AWQ_OCL_E2E_CHUNKS"));
    awq_runtime_params rp = awq_runtime_params_default();
    rp.backend_dir = AWQ_TEST_BIN_DIR;
    if (awq_runtime_create(&rt, &rp) != AWQ_OK) return 1;
    bool have = false;
    for (int32_t i = 0; i < awq_runtime_device_count(rt); i++) {
        awq_device_desc d;
        if (awq_runtime_device_get(rt, i, &d) == AWQ_OK && strcmp(d.backend, "opencl") == 0) {
            if (!have) printf("opencl device: %s\n", d.name);
            have = true;
        }
    }
    if (!have) {
        awq_runtime_destroy(rt);
        return test_opencl_missing("no opencl device is loaded");
    }
    char wpath[1024];
    snprintf(wpath, sizeof wpath, "%s/wikitext-2/wiki.test.raw", test_shared_data());
    wiki = test_read_file(wpath, &wiki_len);
    if (!wiki) return test_skip_or_fail("wiki.test.raw not found");
    if (test_tmpdir(root, sizeof root, "ocl-e2e")) return 1;
    snprintf(cpu_dir, sizeof cpu_dir, "%s/awq-cpu", root);
    snprintf(ocl_dir, sizeof ocl_dir, "%s/awq-opencl", root);
    RUN(quantize_on_opencl_matches_cpu);
    RUN(greedy_tokens_and_perplexity_agree_with_cpu);
    awq_runtime_destroy(rt);
    if (test_rmtree(root) != 0) printf("warning: cannot remove %s\n", root);
    free(wiki);
    return TEST_EXIT();
}
