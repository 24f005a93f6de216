/*
 * test_awq_golden.c - our AWQ against AutoAWQ 0.2.9 itself, scale by scale, zero by zero and
 * packed word by word.
 *
 * tests/data/awq_golden/ (made off-CI by tools/make_autoawq_models.py golden): two tiny random
 * checkpoints in F16 (llama_mha: no GQA, so the v -> o group exists; qwen2_bias: q/k/v biases,
 * GQA), the calibration samples (calib.jsonl), and per case the options, the token blocks AutoAWQ
 * calibrated on (<case>.json) and AutoAWQ's checkpoint without the embeddings
 * (<case>.safetensors). The cases cover the defaults, `--exclude v_proj` (one linear inside the
 * q/k/v group, and the prev_op of the v -> o group), `--no-duo-scaling` with `--seed 7`, and
 * `--no-clip`; calibration drops samples longer than the block length and cuts a tail.
 *
 * Each case: (1) our calibration blocks equal AutoAWQ's token for token (splitting, dropping,
 * the --seed shuffle); (2) awq_quantize with the same options on the cpu backend; (3) every
 * quantized linear: fractions of bit-identical fp16 scales, identical zero points, identical
 * packed words, and the largest difference of a 4-bit code; every other tensor (the norms the
 * AWQ scales were folded into, the biases, an excluded linear): largest relative difference.
 * AutoAWQ ran in float32 (the precision our search runs in), except llama_mha_fp16 (AutoAWQ's
 * usual fp16: its scales s and the scaled weights W * s are rounded to fp16, so most fp16 scales
 * differ from ours by an ulp and some codes by one). llama_exclude_v's golden was made with
 * AutoAWQ scoring the group our way (docs/algorithm.md 4.2 and 9: an excluded linear takes no part
 * in w-bar and is not fake-quantized while scoring; plain AutoAWQ 0.2.9 differs in the q/k/v
 * scales of that case). Measured values and bounds are next to each case below.
 */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "awq.h"
#include "quant.h"
#include "safetensors.h"
#include "test.h"

static awq_runtime *rt;
static char data_dir[600], work[512];

typedef struct tally {
    int64_t scales, scales_same, zeros, zeros_same, words, words_same, codes, codes_same;
    int max_code_diff, max_zero_diff;
    double max_rel_other; /* non-quantized tensors: max |a - b| / max |b| */
    int n_quant, n_other;
} tally;

static float f16(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
    uint32_t bits;
    if (e == 0) {
        if (!m)
            bits = s;
        else {
            e = 127 - 15 + 1;
            while (!(m & 1024)) {
                m <<= 1;
                e--;
            }
            bits = s | (e << 23) | ((m & 1023) << 13);
        }
    } else if (e == 31)
        bits = s | 0x7f800000u | (m << 13);
    else
        bits = s | ((e + 127 - 15) << 23) | (m << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Compares tensor `name` of ours (a) and AutoAWQ's (b) into t; returns false with a message. */
static bool compare_tensor(const awq_safetensors *A, const awq_safetensors *B, const awq_st_tensor *tb,
                           tally *t, char *msg, size_t msgn) {
    const awq_st_tensor *ta = awq_st_find(A, tb->name);
    if (!ta) {
        snprintf(msg, msgn, "%s: missing in our checkpoint", tb->name);
        return false;
    }
    if (ta->ndim != tb->ndim || ta->dtype != tb->dtype || ta->nbytes != tb->nbytes) {
        snprintf(msg, msgn, "%s: dtype/shape differ (%s vs %s, %zu vs %zu bytes)", tb->name,
                 awq_dtype_name(ta->dtype), awq_dtype_name(tb->dtype), (size_t)ta->nbytes,
                 (size_t)tb->nbytes);
        return false;
    }
    const uint8_t *pa = ta->data, *pb = tb->data;
    if (ends_with(tb->name, ".qweight") || ends_with(tb->name, ".qzeros")) {
        bool z = ends_with(tb->name, ".qzeros");
        int64_t n = (int64_t)tb->nbytes / 4;
        for (int64_t i = 0; i < n; i++) {
            uint32_t wa, wb;
            memcpy(&wa, pa + 4 * i, 4);
            memcpy(&wb, pb + 4 * i, 4);
            if (z) {
                t->words += 0;
            } else {
                t->words++;
                t->words_same += wa == wb;
            }
            for (int k = 0; k < 8; k++) {
                int ca = (int)((wa >> (4 * k)) & 15), cb = (int)((wb >> (4 * k)) & 15), d = abs(ca - cb);
                if (z) {
                    t->zeros++;
                    t->zeros_same += !d;
                    if (d > t->max_zero_diff) t->max_zero_diff = d;
                } else {
                    t->codes++;
                    t->codes_same += !d;
                    if (d > t->max_code_diff) t->max_code_diff = d;
                }
            }
        }
        if (!z) t->n_quant++;
        if (getenv("AWQ_GOLDEN_VERBOSE")) {
            int64_t same = 0;
            for (int64_t i = 0; i < n; i++) same += !memcmp(pa + 4 * i, pb + 4 * i, 4);
            printf("    %s: %lld/%lld words identical\n", tb->name, (long long)same, (long long)n);
        }
        return true;
    }
    if (ends_with(tb->name, ".scales")) {
        int64_t n = (int64_t)tb->nbytes / 2;
        for (int64_t i = 0; i < n; i++) {
            uint16_t ha, hb;
            memcpy(&ha, pa + 2 * i, 2);
            memcpy(&hb, pb + 2 * i, 2);
            t->scales++;
            t->scales_same += ha == hb;
        }
        return true;
    }
    if (tb->dtype != AWQ_DTYPE_F16) {
        snprintf(msg, msgn, "%s: expected F16", tb->name);
        return false;
    }
    int64_t n = (int64_t)tb->nbytes / 2;
    double dmax = 0, bmax = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t ha, hb;
        memcpy(&ha, pa + 2 * i, 2);
        memcpy(&hb, pb + 2 * i, 2);
        double a = f16(ha), b = f16(hb);
        if (fabs(a - b) > dmax) dmax = fabs(a - b);
        if (fabs(b) > bmax) bmax = fabs(b);
    }
    double rel = dmax / (bmax > 0 ? bmax : 1);
    if (getenv("AWQ_GOLDEN_VERBOSE")) printf("    %s: max rel diff %.3g\n", tb->name, rel);
    if (rel > t->max_rel_other) t->max_rel_other = rel;
    t->n_other++;
    return true;
}

typedef struct bounds {
    double scales, zeros, words; /* fractions identical, at least */
    int code_diff;               /* largest |code difference| */
    double rel_other;            /* largest relative difference of a non-quantized tensor */
} bounds;

static void run_case(const char *name, bounds bd) {
    char path[1200], model[800], calib[800], out[800];
    snprintf(path, sizeof path, "%s/%s.json", data_dir, name);
    size_t n = 0;
    char *text = test_read_file(path, &n);
    ASSERT_MSG(text, "%s: cannot read", path);
    cJSON *m = cJSON_Parse(text);
    free(text);
    ASSERT_MSG(m, "%s: not JSON", path);
    const char *mname = cJSON_GetObjectItem(m, "model")->valuestring;
    int32_t group = cJSON_GetObjectItem(m, "group_size")->valueint;
    int32_t samples = cJSON_GetObjectItem(m, "calib_samples")->valueint;
    int32_t seqlen = cJSON_GetObjectItem(m, "calib_seqlen")->valueint;
    uint64_t seed = (uint64_t)cJSON_GetObjectItem(m, "seed")->valuedouble;
    bool duo = cJSON_IsTrue(cJSON_GetObjectItem(m, "duo_scaling"));
    bool clip = cJSON_IsTrue(cJSON_GetObjectItem(m, "clip"));
    const cJSON *ex = cJSON_GetObjectItem(m, "exclude"), *blocks = cJSON_GetObjectItem(m, "blocks");
    const char *exclude[8] = {0};
    for (int i = 0; i < cJSON_GetArraySize(ex) && i < 7; i++)
        exclude[i] = cJSON_GetArrayItem(ex, i)->valuestring;
    snprintf(model, sizeof model, "%s/%s", data_dir, mname);
    snprintf(calib, sizeof calib, "%s/calib.jsonl", data_dir);
    snprintf(out, sizeof out, "%s/%s", work, name);

    /* (1) calibration: the same token blocks as AutoAWQ's get_calib_dataset */
    awq_tokenizer *tok = NULL;
    awq_calib c = {0};
    awq_status st = awq_tokenizer_load(&tok, rt, model);
    if (st == AWQ_OK) st = awq_calib_build(rt, tok, calib, samples, seqlen, seed, &c);
    awq_tokenizer_destroy(tok);
    if (st != AWQ_OK) {
        cJSON_Delete(m);
        ASSERT_OK_RT(st, rt);
    }
    int nb = cJSON_GetArraySize(blocks), bad = -1;
    for (int b = 0; b < nb && b < c.n_blocks && bad < 0; b++) {
        const cJSON *blk = cJSON_GetArrayItem(blocks, b);
        for (int j = 0; j < seqlen; j++)
            if (cJSON_GetArrayItem(blk, j)->valueint != c.tokens[(int64_t)b * seqlen + j]) {
                bad = b * seqlen + j;
                break;
            }
    }
    int our_blocks = c.n_blocks, skipped = c.n_skipped;
    awq_calib_free(&c);
    printf("  %s: calibration %d blocks of %d (AutoAWQ %d), %d samples dropped as too long\n", name,
           our_blocks, seqlen, nb, skipped);
    if (nb != our_blocks || bad >= 0) {
        cJSON_Delete(m);
        FAIL_("%s: calibration blocks differ from AutoAWQ's (%d vs %d blocks, first token %d)", name,
              our_blocks, nb, bad);
    }

    /* (2) our quantization, same options */
    awq_quant_params p = awq_quant_params_default();
    p.model_dir = model;
    p.out_dir = out;
    p.group_size = group;
    p.calib_path = calib;
    p.calib_samples = samples;
    p.calib_seqlen = seqlen;
    p.seed = seed;
    p.clip = clip;
    p.duo_scaling = duo;
    p.exclude = exclude[0] ? exclude : NULL;
    p.device = "cpu";
    p.force = true;
    p.no_resume = true;
    st = awq_quantize(rt, &p, NULL);
    cJSON_Delete(m);
    ASSERT_OK_RT(st, rt);

    /* (3) tensor by tensor */
    awq_safetensors *A = NULL, *B = NULL;
    snprintf(path, sizeof path, "%s/%s.safetensors", data_dir, name);
    ASSERT_OK_RT(awq_st_open(rt, out, &A), rt);
    st = awq_st_open(rt, path, &B);
    if (st != AWQ_OK) {
        awq_st_close(A);
        ASSERT_OK_RT(st, rt);
    }
    tally t = {0};
    char msg[512] = "";
    bool ok = true;
    for (int32_t i = 0; ok && i < awq_st_count(B); i++)
        ok = compare_tensor(A, B, awq_st_get(B, i), &t, msg, sizeof msg);
    awq_st_close(A);
    awq_st_close(B);
    ASSERT_MSG(ok, "%s: %s", name, msg);
    double fs = (double)t.scales_same / (double)t.scales, fz = (double)t.zeros_same / (double)t.zeros,
           fw = (double)t.words_same / (double)t.words, fc = (double)t.codes_same / (double)t.codes;
    printf("  %s: %d quantized linears: scales %.4f (%lld/%lld), zeros %.4f (%lld/%lld, max diff %d), "
           "packed words %.4f (%lld/%lld), codes %.4f (max diff %d); %d other tensors: max rel diff %.3g\n",
           name, t.n_quant, fs, (long long)t.scales_same, (long long)t.scales, fz, (long long)t.zeros_same,
           (long long)t.zeros, t.max_zero_diff, fw, (long long)t.words_same, (long long)t.words, fc,
           t.max_code_diff, t.n_other, t.max_rel_other);
    fflush(stdout);
    ASSERT_MSG(t.n_quant > 0, "%s: no quantized linear compared", name);
    ASSERT_MSG(fs >= bd.scales, "%s: identical scales %.4f < %.4f", name, fs, bd.scales);
    ASSERT_MSG(fz >= bd.zeros, "%s: identical zeros %.4f < %.4f", name, fz, bd.zeros);
    ASSERT_MSG(fw >= bd.words, "%s: identical packed words %.4f < %.4f", name, fw, bd.words);
    ASSERT_MSG(t.max_code_diff <= bd.code_diff, "%s: a 4-bit code differs by %d > %d", name, t.max_code_diff,
               bd.code_diff);
    ASSERT_MSG(t.max_rel_other <= bd.rel_other,
               "%s: a norm/bias/excluded tensor differs by %.3g > %.3g (rel)", name, t.max_rel_other,
               bd.rel_other);
}

/* Bounds, with the values measured on the cpu backend (AVX-512 machine) in comments. The f32
 * cases differ only through the clip search: llama_no_clip is bit-identical; where clipping is on,
 * a few (row, group) thresholds flip at near-ties of the clip error, which AutoAWQ evaluates as
 * (x.q - x.w)^2 in the model dtype and we as (x.(q - w))^2 summed in double (AutoAWQ run in f32
 * and in f64 disagrees with itself on 3.4 % of the packed words of llama_mha, more than we
 * disagree with it). Non-quantized tensors: within one fp16 ulp. */
TEST(golden_llama_mha) { /* 0.9957 / 0.9973 / 0.9785, codes +-2, 0 */
    run_case("llama_mha", (bounds){0.99, 0.99, 0.96, 2, 1e-3});
}
TEST(golden_llama_mha_fp16) { /* AutoAWQ searching in fp16: 0.354 / 0.963 / 0.798, +-2, 1.5e-3 */
    run_case("llama_mha_fp16", (bounds){0.30, 0.93, 0.75, 2, 4e-3});
}
TEST(golden_qwen2_bias) { /* 0.9925 / 0.9979 / 0.9795, +-2, 1.7e-4 */
    run_case("qwen2_bias", (bounds){0.99, 0.99, 0.96, 2, 1e-3});
}
TEST(golden_llama_exclude_v) { /* 0.9961 / 0.9978 / 0.9827, +-2, 2.3e-4 */
    run_case("llama_exclude_v", (bounds){0.99, 0.99, 0.96, 2, 1e-3});
}
TEST(golden_llama_no_duo_seed) { /* 0.9977 / 0.9992 / 0.9927, +-2, 0 */
    run_case("llama_no_duo_seed", (bounds){0.99, 0.99, 0.96, 2, 1e-3});
}
TEST(golden_llama_no_clip) { /* bit-identical */
    run_case("llama_no_clip", (bounds){1, 1, 1, 0, 0});
}

int main(void) {
    snprintf(data_dir, sizeof data_dir, "%s/tests/data/awq_golden", AWQ_TEST_SOURCE_DIR);
    if (getenv("AWQ_GOLDEN_DIR")) snprintf(data_dir, sizeof data_dir, "%s", getenv("AWQ_GOLDEN_DIR"));
    if (test_tmpdir(work, sizeof work, "golden")) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }
    awq_runtime_params rp = awq_runtime_params_default();
    rp.load_plugins = false;
    rp.n_threads = 2;
    if (awq_runtime_create(&rt, &rp) != AWQ_OK) return 1;
    RUN(golden_llama_mha);
    RUN(golden_llama_mha_fp16);
    RUN(golden_qwen2_bias);
    RUN(golden_llama_exclude_v);
    RUN(golden_llama_no_duo_seed);
    RUN(golden_llama_no_clip);
    awq_runtime_destroy(rt);
    if (test_rmtree(work) != 0) printf("warning: could not remove %s\n", work);
    return TEST_EXIT();
}
