/*
 * test_fallback.c - the capability query and the per-op fallbacks, with the test plugin
 * "cpu-lite" (tests/backends/lite_backend.c): the cpu kernels with most optional ops left out or
 * declined by supports_op().
 *   - awq_runtime_device_fallbacks names exactly the ops cpu-lite lacks (and nothing it has), and
 *     `awq-cli info -v` prints them;
 *   - a Gemma 2 model (gelu_tanh act_mul, final and attention soft-capping: all three fall back
 *     to the cpu kernels over host copies) gives the cpu backend's logits, bit for bit, in
 *     prefill and in decode, and each fallback is logged with the op's name;
 *   - --lm-head q8 on a device without matmul_q8 is logged and keeps the lm_head as stored;
 *   - AWQ quantization on cpu-lite (reduce(wmean_groups), scalar, clip_search and gram on the
 *     host) writes the same checkpoint as on the cpu backend, byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "test.h"

#ifndef AWQ_TEST_LITE_PLUGIN_DIR
#error "AWQ_TEST_LITE_PLUGIN_DIR must be defined (tests/backends/extra.cmake)"
#endif

#define T_PROMPT 12
#define T_DECODE 4

static awq_runtime *rt;
static char tmp[256], model_dir[512];
static char logbuf[1 << 16];

static void capture_log(awq_log_level level, const char *msg, void *user) {
    (void)user;
    if (level > AWQ_LOG_LEVEL_WARN) return;
    strncat(logbuf, msg, sizeof logbuf - strlen(logbuf) - 2);
    strncat(logbuf, "\n", sizeof logbuf - strlen(logbuf) - 1);
}

static int32_t device_index(const char *backend) {
    for (int32_t i = 0; i < awq_runtime_device_count(rt); i++) {
        awq_device_desc d;
        if (awq_runtime_device_get(rt, i, &d) == AWQ_OK && !strcmp(d.backend, backend)) return i;
    }
    return -1;
}

TEST(query_names_what_is_missing) {
    int32_t lite = device_index("cpu-lite"), cpu = device_index("cpu");
    ASSERT_MSG(lite >= 0, "cpu-lite did not load from %s", AWQ_TEST_LITE_PLUGIN_DIR);
    ASSERT(cpu >= 0);
    char fb[4096];
    ASSERT_OK_RT(awq_runtime_device_fallbacks(rt, lite, fb, sizeof fb), rt);
    printf("  cpu-lite falls back for: %s\n", fb);
    static const char *lacks[] = {"matmul_w4a16_multi ->",
                                  "weight_prepare ->",
                                  "act_mul(gelu_tanh) ->",
                                  "softcap ->",
                                  "attention_softcap ->",
                                  "matmul_q8 ->",
                                  "reduce(wmean_groups) ->",
                                  "scalar(sse) ->",
                                  "scalar(dot) ->",
                                  "clip_search ->",
                                  "gram ->"};
    for (size_t i = 0; i < sizeof lacks / sizeof lacks[0]; i++)
        ASSERT_MSG(strstr(fb, lacks[i]), "'%s' missing from cpu-lite's fallbacks", lacks[i]);
    static const char *has[] = {"act_mul(silu)", "reduce(mean_abs_cols)", "reduce(max_abs_cols)"};
    for (size_t i = 0; i < sizeof has / sizeof has[0]; i++)
        ASSERT_MSG(!strstr(fb, has[i]), "'%s' listed although cpu-lite runs it", has[i]);
    ASSERT_OK_RT(awq_runtime_device_fallbacks(rt, cpu, fb, sizeof fb), rt);
    ASSERT_MSG(!strstr(fb, "act_mul") && !strstr(fb, "clip_search") && !strstr(fb, "matmul_q8"),
               "cpu lists ops it has: %s", fb);
    /* errors */
    ASSERT(awq_runtime_device_fallbacks(rt, 9999, fb, sizeof fb) == AWQ_ERR_INVALID_ARG);
    ASSERT(awq_runtime_device_fallbacks(rt, lite, fb, 8) == AWQ_ERR_INVALID_ARG);
    ASSERT(awq_runtime_device_fallbacks(NULL, lite, fb, sizeof fb) == AWQ_ERR_INVALID_ARG);
}

TEST(info_verbose_prints_them) {
    char cmd[1024], out[8192] = "";
    snprintf(cmd, sizeof cmd, "AWQ_BACKEND_PATH='%s' '%s/awq-cli' info -v 2>/dev/null",
             AWQ_TEST_LITE_PLUGIN_DIR, AWQ_TEST_BIN_DIR);
    FILE *f = popen(cmd, "r");
    ASSERT(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    ASSERT(pclose(f) == 0);
    ASSERT_MSG(strstr(out, "cpu-lite:0") &&
                   strstr(out, "act_mul(gelu_tanh) -> the cpu backend over host copies") &&
                   strstr(out, "clip_search"),
               "awq-cli info -v printed:\n%s", out);
}

/* Prefill logits (T_PROMPT, V) then T_DECODE single-token steps (T_DECODE, V). */
static float *run(const char *dir, const char *device, awq_lm_head_format head, int32_t *vocab) {
    awq_model_params mp = awq_model_params_default();
    mp.device = device;
    mp.lm_head = head;
    awq_model *m = NULL;
    awq_session *s = NULL;
    float *out = NULL;
    awq_model_info info;
    if (awq_model_load(&m, rt, dir, &mp) != AWQ_OK || awq_model_get_info(m, &info) != AWQ_OK) goto done;
    int32_t V = *vocab = info.vocab_size, ids[T_PROMPT + T_DECODE];
    for (int i = 0; i < T_PROMPT + T_DECODE; i++) ids[i] = (int32_t)((i * 7919 + 13) % V);
    out = calloc((size_t)(T_PROMPT + T_DECODE) * (size_t)V, sizeof *out);
    if (!out || awq_session_create(&s, m, 64) != AWQ_OK ||
        awq_session_eval(s, ids, T_PROMPT, out, true) != AWQ_OK) {
        free(out);
        out = NULL;
        goto done;
    }
    for (int t = 0; t < T_DECODE; t++)
        if (awq_session_eval(s, &ids[T_PROMPT + t], 1, out + (size_t)(T_PROMPT + t) * V, false) != AWQ_OK) {
            free(out);
            out = NULL;
            goto done;
        }
done:
    if (!out) printf("  %s on %s: %s\n", dir, device, awq_runtime_last_error(rt));
    awq_session_destroy(s);
    awq_model_destroy(m);
    return out;
}

TEST(gemma2_on_lite_is_the_cpu_result) {
    int32_t V = 0, V2 = 0;
    float *ref = run(model_dir, "cpu", AWQ_LM_HEAD_AS_STORED, &V);
    logbuf[0] = '\0';
    float *got = run(model_dir, "cpu-lite", AWQ_LM_HEAD_AS_STORED, &V2);
    ASSERT(ref && got && V == V2);
    size_t n = (size_t)(T_PROMPT + T_DECODE) * (size_t)V, diff = 0;
    for (size_t i = 0; i < n; i++) diff += memcmp(&ref[i], &got[i], sizeof(float)) != 0;
    printf("  gemma2 tiny: %zu of %zu logits differ between cpu and cpu-lite\n", diff, n);
    ASSERT(diff == 0);
    ASSERT_MSG(strstr(logbuf, "cpu-lite:0 cannot run act_mul(gelu_tanh)") &&
                   strstr(logbuf, "cannot run softcap") && strstr(logbuf, "cannot run attention_softcap"),
               "log:\n%s", logbuf);
    free(ref);
    free(got);
}

TEST(lm_head_q8_without_matmul_q8_keeps_the_stored_head) {
    int32_t V = 0, V2 = 0;
    float *ref = run(model_dir, "cpu", AWQ_LM_HEAD_AS_STORED, &V);
    logbuf[0] = '\0';
    float *got = run(model_dir, "cpu-lite", AWQ_LM_HEAD_Q8, &V2);
    ASSERT(ref && got && V == V2);
    ASSERT(memcmp(ref, got, (size_t)(T_PROMPT + T_DECODE) * (size_t)V * sizeof(float)) == 0);
    ASSERT_MSG(
        strstr(logbuf, "cannot run matmul_q8 (lm_head q8 was asked for): using the lm_head kept as stored"),
        "log:\n%s", logbuf);
    free(ref);
    free(got);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = len > 0 ? malloc((size_t)len) : NULL;
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = b ? (size_t)len : 0;
    return b;
}

TEST(awq_on_lite_writes_the_cpu_checkpoint) {
    const char *devs[2] = {"cpu", "cpu-lite"};
    unsigned char *file[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        char out[512], path[600];
        snprintf(out, sizeof out, "%s/awq-%s", tmp, devs[k]);
        awq_quant_params p = awq_quant_params_default();
        p.model_dir = model_dir;
        p.out_dir = out;
        p.group_size = 32;
        p.calib_samples = 4;
        p.calib_seqlen = 32;
        p.device = devs[k];
        p.force = true;
        logbuf[0] = '\0';
        ASSERT_OK_RT(awq_quantize(rt, &p, NULL), rt);
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        file[k] = slurp(path, &len[k]);
        ASSERT_MSG(file[k], "cannot read %s", path);
    }
    ASSERT_MSG(strstr(logbuf, "cannot run clip_search") && strstr(logbuf, "cannot run gram") &&
                   strstr(logbuf, "cannot run reduce(wmean_groups)") &&
                   strstr(logbuf, "cannot run scalar(sse)") && !strstr(logbuf, "reduce(mean_abs_cols)"),
               "log:\n%s", logbuf);
    ASSERT(len[0] == len[1] && len[0] > 0);
    ASSERT_MSG(memcmp(file[0], file[1], len[0]) == 0, "the checkpoints written on cpu and cpu-lite differ");
    printf("  AWQ g32 checkpoint (%zu bytes) identical on cpu and cpu-lite\n", len[0]);
    free(file[0]);
    free(file[1]);
}

int main(void) {
    snprintf(model_dir, sizeof model_dir, "%s/tests/data/tiny/gemma2", AWQ_TEST_SOURCE_DIR);
    awq_runtime_params rp = awq_runtime_params_default();
    rp.backend_dir = AWQ_TEST_LITE_PLUGIN_DIR;
    rp.log = capture_log;
    unsetenv("AWQ_BACKEND_PATH"); /* the lite plugin directory only */
    if (awq_runtime_create(&rt, &rp) != AWQ_OK) return 1;
    if (test_tmpdir(tmp, sizeof tmp, "test-fallback")) return 1;
    RUN(query_names_what_is_missing);
    RUN(info_verbose_prints_them);
    RUN(gemma2_on_lite_is_the_cpu_result);
    RUN(lm_head_q8_without_matmul_q8_keeps_the_stored_head);
    RUN(awq_on_lite_writes_the_cpu_checkpoint);
    test_rmtree(tmp);
    awq_runtime_destroy(rt);
    return TEST_EXIT();
}
