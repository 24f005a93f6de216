/*
 * test_batch.c - batched decoding through the library API (awq_session_decode_batch): several
 * sessions with prompts of different lengths, joining and leaving at different steps
 * (continuous batching), give the same greedy tokens as each session decoded alone, on the fp16
 * model and on a 4-bit (W4A16) checkpoint made here with round-to-nearest; plus the argument
 * checks. The logits are compared too: on the cpu backend they are bit-identical.
 *
 * Environment: AWQ_TEST_MODEL_DIR (converted fp16 SmolLM2), AWQ_BATCH_BACKEND (default cpu; the
 * ctest entry test_batch_opencl runs it on the OpenCL plugin, skipped without it unless
 * AWQ_REQUIRE_OPENCL=1).
 */
#include "awq.h"
#include "test.h"

#define NSEQ 5
#define NGEN 24

static awq_runtime *rt;
static awq_tokenizer *tok;
static char root[256], rtn_dir[320];
static const char *backend = "cpu";

static const char *prompts[NSEQ] = {
    "The capital of France is",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    "def fibonacci(n):",
    "1, 2, 3, 4,",
    "The quick brown fox",
};
/* step at which sequence i joins the batch (continuous batching) */
static const int join_at[NSEQ] = {0, 0, 3, 7, 7};

/* Greedy tokens of every prompt decoded alone, then all of them batched; compares. */
static void check_model(const char *dir, double *max_diff, int *mismatch) {
    awq_model *m = NULL;
    awq_model_params mp = awq_model_params_default();
    mp.device = backend;
    *mismatch = -1;
    if (awq_model_load(&m, rt, dir, &mp) != AWQ_OK) {
        printf("  load %s: %s\n", dir, awq_runtime_last_error(rt));
        return;
    }
    int32_t vocab = awq_tokenizer_vocab_size(tok);
    awq_model_info info;
    awq_model_get_info(m, &info);
    vocab = info.vocab_size;
    int32_t ids[NSEQ][128], n_ids[NSEQ], ref[NSEQ][NGEN], got[NSEQ][NGEN];
    float *ref_l = malloc((size_t)NSEQ * NGEN * vocab * sizeof(float));
    float *l = malloc((size_t)NSEQ * vocab * sizeof(float));
    awq_session *s[NSEQ] = {0};
    *max_diff = 0;
    int bad = 0;
    for (int i = 0; i < NSEQ; i++) {
        int64_t n = 0;
        awq_tokenizer_encode(tok, prompts[i], strlen(prompts[i]), true, ids[i], 128, &n);
        n_ids[i] = (int32_t)n;
        awq_session_create(&s[i], m, 256);
    }
    /* alone */
    for (int i = 0; i < NSEQ; i++) {
        awq_session_eval(s[i], ids[i], n_ids[i], l, false);
        for (int t = 0; t < NGEN; t++) {
            float *row = ref_l + ((size_t)i * NGEN + t) * vocab;
            memcpy(row, l, (size_t)vocab * sizeof(float));
            int32_t best = 0;
            for (int32_t j = 1; j < vocab; j++)
                if (l[j] > l[best]) best = j;
            ref[i][t] = best;
            if (t + 1 < NGEN) awq_session_eval(s[i], &best, 1, l, false);
        }
        awq_session_reset(s[i]);
    }
    /* batched: at each step, sequences that join prefill alone (as the server does), then every
     * active sequence decodes its next token in one batch */
    int pos[NSEQ] = {0};
    int32_t next[NSEQ];
    for (int step = 0; step < 64; step++) {
        awq_session *bs[NSEQ];
        int32_t bt[NSEQ], who[NSEQ], nb = 0;
        for (int i = 0; i < NSEQ; i++) {
            if (join_at[i] == step) {
                awq_session_eval(s[i], ids[i], n_ids[i], l, false);
                float *row = l;
                double d = 0;
                for (int32_t j = 0; j < vocab; j++) {
                    double e = fabs((double)row[j] - ref_l[((size_t)i * NGEN) * vocab + j]);
                    d = e > d ? e : d;
                }
                *max_diff = d > *max_diff ? d : *max_diff;
                int32_t best = 0;
                for (int32_t j = 1; j < vocab; j++)
                    if (l[j] > l[best]) best = j;
                got[i][0] = best;
                next[i] = best;
                pos[i] = 1;
            } else if (join_at[i] < step && pos[i] < NGEN) {
                bs[nb] = s[i];
                bt[nb] = next[i];
                who[nb++] = i;
            }
        }
        if (nb == 0) continue;
        awq_status st = awq_session_decode_batch(bs, nb, bt, l);
        if (st != AWQ_OK) {
            printf("  decode_batch: %s\n", awq_runtime_last_error(rt));
            bad = 1000;
            break;
        }
        for (int b = 0; b < nb; b++) {
            int i = who[b];
            const float *row = l + (size_t)b * vocab;
            const float *rr = ref_l + ((size_t)i * NGEN + pos[i]) * vocab;
            double d = 0;
            int32_t best = 0;
            for (int32_t j = 0; j < vocab; j++) {
                double e = fabs((double)row[j] - rr[j]);
                d = e > d ? e : d;
                if (row[j] > row[best]) best = j;
            }
            *max_diff = d > *max_diff ? d : *max_diff;
            got[i][pos[i]] = best;
            next[i] = best;
            pos[i]++;
        }
    }
    for (int i = 0; i < NSEQ; i++)
        for (int t = 0; t < NGEN; t++) bad += got[i][t] != ref[i][t];
    *mismatch = bad;
    for (int i = 0; i < NSEQ; i++) awq_session_destroy(s[i]);
    free(ref_l);
    free(l);
    awq_model_destroy(m);
}

TEST(batched_equals_alone_fp16) {
    double d;
    int bad;
    check_model(test_model_dir(), &d, &bad);
    printf("  fp16 on %s: %d of %d greedy tokens differ, max |logit diff| %.3g\n", backend, bad, NSEQ * NGEN,
           d);
    ASSERT_EQ(bad, 0);
    ASSERT(d <= 1e-3);
}

TEST(batched_equals_alone_w4a16) {
    awq_quant_params p = awq_quant_params_default();
    p.model_dir = test_model_dir();
    p.out_dir = rtn_dir;
    p.group_size = 64;
    p.method = AWQ_METHOD_RTN;
    ASSERT_OK_RT(awq_quantize(rt, &p, NULL), rt);
    double d;
    int bad;
    check_model(rtn_dir, &d, &bad);
    printf("  W4A16 g64 on %s: %d of %d greedy tokens differ, max |logit diff| %.3g\n", backend, bad,
           NSEQ * NGEN, d);
    ASSERT_EQ(bad, 0);
    ASSERT(d <= 1e-3);
}

TEST(argument_checks) {
    awq_model *m = NULL;
    awq_model_params mp = awq_model_params_default();
    mp.device = backend;
    ASSERT_OK_RT(awq_model_load(&m, rt, test_model_dir(), &mp), rt);
    awq_session *a = NULL, *b = NULL;
    ASSERT_OK_RT(awq_session_create(&a, m, 4), rt);
    ASSERT_OK_RT(awq_session_create(&b, m, 8), rt);
    int32_t t[3] = {1, 2, 3};
    awq_session *dup[2] = {a, a}, *two[2] = {a, b}, *null[2] = {a, NULL};
    ASSERT_ERR_RT(awq_session_decode_batch(dup, 2, t, NULL), rt, AWQ_ERR_INVALID_ARG, "twice");
    ASSERT_EQ(awq_session_decode_batch(null, 2, t, NULL), AWQ_ERR_INVALID_ARG);
    ASSERT_EQ(awq_session_decode_batch(two, 0, t, NULL), AWQ_ERR_INVALID_ARG);
    int32_t badtok[2] = {1, -5};
    ASSERT_EQ(awq_session_decode_batch(two, 2, badtok, NULL), AWQ_ERR_INVALID_ARG);
    for (int i = 0; i < 4; i++) ASSERT_OK_RT(awq_session_decode_batch(two, 2, t, NULL), rt);
    ASSERT_EQ(awq_session_n_past(a), 4);
    ASSERT_EQ(awq_session_n_past(b), 4);
    /* a is full (n_ctx 4): refused, and nobody advanced */
    ASSERT_ERR_RT(awq_session_decode_batch(two, 2, t, NULL), rt, AWQ_ERR_INVALID_ARG, "context full");
    ASSERT_EQ(awq_session_n_past(b), 4);
    awq_session_destroy(a);
    awq_session_destroy(b);
    awq_model_destroy(m);
}

int main(void) {
    if (!test_model_dir()) return test_skip_or_fail("AWQ_TEST_MODEL_DIR not set");
    if (getenv("AWQ_BATCH_BACKEND")) backend = getenv("AWQ_BATCH_BACKEND");
    awq_runtime_params rp = awq_runtime_params_default();
    if (awq_runtime_create(&rt, &rp) != AWQ_OK) return 1;
    bool found = false;
    for (int32_t i = 0; i < awq_runtime_device_count(rt); i++) {
        awq_device_desc d;
        if (awq_runtime_device_get(rt, i, &d) == AWQ_OK && !strncmp(backend, d.backend, strlen(d.backend)))
            found = true;
    }
    if (!found) {
        awq_runtime_destroy(rt);
        if (!strncmp(backend, "opencl", 6)) return test_opencl_missing("the opencl backend is not loaded");
        printf("%s: backend %s is not loaded\n", test_backend_required(backend) ? "FAIL" : "SKIP", backend);
        return test_backend_required(backend) ? 1 : 77;
    }
    if (awq_tokenizer_load(&tok, rt, test_model_dir()) != AWQ_OK) {
        printf("tokenizer: %s\n", awq_runtime_last_error(rt));
        return 1;
    }
    if (test_tmpdir(root, sizeof root, "test-batch")) return 1;
    snprintf(rtn_dir, sizeof rtn_dir, "%s/rtn", root);
    RUN(batched_equals_alone_fp16);
    RUN(batched_equals_alone_w4a16);
    RUN(argument_checks);
    if (test_rmtree(root) != 0) printf("warning: cannot remove %s\n", root);
    awq_tokenizer_destroy(tok);
    awq_runtime_destroy(rt);
    return TEST_EXIT();
}
