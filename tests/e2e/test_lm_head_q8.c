/*
 * test_lm_head_q8.c - AWQ_LM_HEAD_Q8 (awq-cli --lm-head q8) on the SmolLM2 test model (fp16, tied
 * embeddings): the model loaded with the 8-bit lm_head against the same model as stored, on
 * every cpu-family backend that loads - prefill logits (the tiled matmul_q8 path) and decode
 * logits (the GEMV path) close to the fp16 head's, the same top-1 token almost everywhere, the
 * byte accounting of awq_model_info, and the refusals (an unknown format; a backend without
 * matmul_q8). The op itself is checked against a double reference in tests/backends.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "test.h"

#define NTOK 40
#define NDEC 8

static awq_runtime *rt;

static int argmax(const float *v, int64_t n) {
    int b = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[b]) b = (int)i;
    return b;
}

/* max |a - b| / max |b| over one row of logits */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / (m > 0 ? m : 1);
}

static void compare_on(const char *device) {
    const char *dir = test_model_dir();
    awq_model_params mp = awq_model_params_default();
    mp.device = device;
    awq_model *ref = NULL, *q8 = NULL;
    awq_status st = awq_model_load(&ref, rt, dir, &mp);
    if (st == AWQ_ERR_NO_BACKEND) {
        printf("  (%s not loaded: skipped)\n", device);
        return;
    }
    ASSERT_OK_RT(st, rt);
    mp.lm_head = AWQ_LM_HEAD_Q8;
    ASSERT_OK_RT(awq_model_load(&q8, rt, dir, &mp), rt);
    awq_model_info ir, iq;
    ASSERT_OK(awq_model_get_info(ref, &ir));
    ASSERT_OK(awq_model_get_info(q8, &iq));
    int64_t V = ir.vocab_size, d = ir.d_model;
    /* tied: the q8 copy is extra memory, and a decode step reads it instead of the fp16 embedding */
    ASSERT_MSG(iq.weight_bytes == ir.weight_bytes + V * d + V * (d / 32) * 2,
               "weight_bytes %lld, stored %lld", (long long)iq.weight_bytes, (long long)ir.weight_bytes);
    ASSERT_MSG(iq.decode_weight_bytes == ir.decode_weight_bytes - V * d * 2 + V * d + V * (d / 32) * 2,
               "decode_weight_bytes %lld, stored %lld", (long long)iq.decode_weight_bytes,
               (long long)ir.decode_weight_bytes);
    awq_session *sr = NULL, *sq = NULL;
    ASSERT_OK_RT(awq_session_create(&sr, ref, NTOK + NDEC + 1), rt);
    ASSERT_OK_RT(awq_session_create(&sq, q8, NTOK + NDEC + 1), rt);
    int32_t ids[NTOK];
    unsigned long long s = 12345;
    for (int i = 0; i < NTOK; i++) ids[i] = (int32_t)(test_rng_next(&s) % (unsigned long long)V);
    float *lr = malloc((size_t)(NTOK * V) * sizeof(float)), *lq = malloc((size_t)(NTOK * V) * sizeof(float));
    if (!lr || !lq) {
        printf("  out of memory\n");
        test_failures_++;
        goto done;
    }
    ASSERT_OK_RT(awq_session_eval(sr, ids, NTOK, lr, true), rt);
    ASSERT_OK_RT(awq_session_eval(sq, ids, NTOK, lq, true), rt);
    double worst = 0;
    int agree = 0;
    for (int t = 0; t < NTOK; t++) {
        worst = fmax(worst, rel_diff(lq + t * V, lr + t * V, V));
        agree += argmax(lq + t * V, V) == argmax(lr + t * V, V);
    }
    printf("  %s prefill: max |dlogit| / max |logit| = %.2e, top-1 agreement %d/%d\n", device, worst, agree,
           NTOK);
    ASSERT_MSG(worst < 5e-3, "prefill logits differ by %.3g of their range", worst);
    ASSERT_MSG(agree >= NTOK * 9 / 10, "top-1 agreement %d/%d", agree, NTOK);
    /* decode: the stored model's greedy token fed to both (the GEMV path, one row) */
    int32_t tok = argmax(lr + (NTOK - 1) * V, V);
    worst = 0;
    agree = 0;
    for (int i = 0; i < NDEC; i++) {
        ASSERT_OK_RT(awq_session_eval(sr, &tok, 1, lr, false), rt);
        ASSERT_OK_RT(awq_session_eval(sq, &tok, 1, lq, false), rt);
        worst = fmax(worst, rel_diff(lq, lr, V));
        agree += argmax(lq, V) == argmax(lr, V);
        tok = argmax(lr, V);
    }
    printf("  %s decode: max |dlogit| / max |logit| = %.2e, top-1 agreement %d/%d\n", device, worst, agree,
           NDEC);
    ASSERT_MSG(worst < 5e-3, "decode logits differ by %.3g of their range", worst);
    ASSERT_MSG(agree >= NDEC - 1, "top-1 agreement %d/%d", agree, NDEC);
done:
    free(lr);
    free(lq);
    awq_session_destroy(sr);
    awq_session_destroy(sq);
    awq_model_destroy(ref);
    awq_model_destroy(q8);
}

TEST(q8_head_close_to_fp16_head) {
    compare_on("cpu");
    compare_on("cpu-dnnl");
}

TEST(refusals) {
    awq_model_params mp = awq_model_params_default();
    awq_model *m = NULL;
    mp.device = "cpu";
    mp.lm_head = (awq_lm_head_format)7;
    awq_status bad = awq_model_load(&m, rt, test_model_dir(), &mp);
    ASSERT_MSG(bad == AWQ_ERR_INVALID_ARG && strstr(awq_runtime_last_error(rt), "lm_head"), "%s (%s)",
               awq_status_str(bad), awq_runtime_last_error(rt));
    ASSERT(m == NULL);
    /* a backend without matmul_q8 keeps the stored lm_head and logs why: tests/backends/test_fallback.c */
}

int main(void) {
    if (!test_model_dir()) return test_skip_or_fail("AWQ_TEST_MODEL_DIR not set");
    awq_runtime_params rp = awq_runtime_params_default();
#ifdef AWQ_TEST_BIN_DIR
    rp.backend_dir = AWQ_TEST_BIN_DIR;
#endif
    if (awq_runtime_create(&rt, &rp) != AWQ_OK) return 1;
    RUN(q8_head_close_to_fp16_head);
    RUN(refusals);
    awq_runtime_destroy(rt);
    return TEST_EXIT();
}
