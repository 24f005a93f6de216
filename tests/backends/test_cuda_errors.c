/*
 * test_cuda_errors.c - the CUDA backend fails cleanly (run on cuda-emu, whose host code and kernels
 * are the cuda plugin's; only the cudart/cuBLAS wrapper differs):
 *  - an allocation larger than the device's free memory is refused before it is tried,
 *    AWQ_ERR_DEVICE_MEMORY naming both sizes, and the instance keeps working;
 *  - a model that does not fit (an emulated device of AWQ_CUDA_EMU_MEM_MB = 64) fails to load with
 *    that message, nothing crashes;
 *  - ops outside their contract are AWQ_ERR_UNSUPPORTED naming the op; a bad device index is an error;
 *  - a failed kernel launch (here: a grid beyond CUDA's limits) becomes an awq_status naming the
 *    kernel, not a crash;
 *  - where nvcc built the real plugin on a machine without a driver, the registry lists it as
 *    skipped with the CUDA runtime's reason (what `awq-cli info` prints).
 * Skips (77) when cuda-emu is not built, unless AWQ_REQUIRE_CUDA_EMU=1.
 */
#include <stdlib.h>

#include "awq_backend.h"
#include "internal.h"
#include "test.h"

static awq_runtime *RT;

static awq_status open_emu(awq_device *dev) { return awq_device_open(RT, "cuda-emu", 0, dev); }

TEST(bad_device_index) {
    awq_device dev;
    awq_status st = awq_device_open(RT, "cuda-emu:3", 0, &dev);
    printf("  cuda-emu:3 -> %s: %s\n", awq_status_str(st), awq_runtime_last_error(RT));
    ASSERT(st != AWQ_OK);
}

TEST(allocation_beyond_free_memory_is_refused_with_sizes) {
    awq_device dev;
    ASSERT_OK_RT(open_emu(&dev), RT);
    size_t big = (size_t)dev.info.memory_bytes + (1u << 20);
    void *buf = NULL;
    awq_status st = dev.ops->buffer_alloc(dev.ctx, big, &buf);
    const char *msg = awq_runtime_last_error(RT);
    printf("  %zu bytes -> %s: %s\n", big, awq_status_str(st), msg);
    ASSERT(st == AWQ_ERR_DEVICE_MEMORY);
    ASSERT(buf == NULL);
    ASSERT(strstr(msg, "cannot allocate") != NULL && strstr(msg, "free") != NULL);
    float h[4] = {1, 2, 3, 4}, back[4] = {0};
    ASSERT_OK_RT(dev.ops->buffer_alloc(dev.ctx, sizeof h, &buf), RT);
    ASSERT_OK_RT(dev.ops->upload(dev.ctx, buf, 0, h, sizeof h), RT);
    ASSERT_OK_RT(dev.ops->download(dev.ctx, back, buf, 0, sizeof back), RT);
    ASSERT(memcmp(h, back, sizeof h) == 0);
    dev.ops->buffer_free(dev.ctx, buf);
    awq_device_close(&dev);
}

TEST(model_too_large_for_the_device_fails_to_load) {
    const char *dir = test_model_dir();
    if (!dir) {
        ASSERT_MSG(!test_required("AWQ_REQUIRE_MODEL"), "AWQ_TEST_MODEL_DIR not set (AWQ_REQUIRE_MODEL=1)");
        printf("  (no AWQ_TEST_MODEL_DIR: skipped)\n");
        return;
    }
    setenv("AWQ_CUDA_EMU_MEM_MB", "96", 1);
    awq_model *m = NULL;
    awq_model_params mp = awq_model_params_default();
    mp.device = "cuda-emu";
    awq_status st = awq_model_load(&m, RT, dir, &mp);
    const char *msg = awq_runtime_last_error(RT);
    printf("  SmolLM2 fp16 (270 MB) on a 96 MiB device -> %s: %s\n", awq_status_str(st), msg);
    unsetenv("AWQ_CUDA_EMU_MEM_MB");
    awq_model_destroy(m);
    ASSERT(st == AWQ_ERR_DEVICE_MEMORY);
    ASSERT(strstr(msg, "cannot allocate") != NULL);
}

TEST(out_of_contract_shapes_are_unsupported) {
    awq_device dev;
    ASSERT_OK_RT(open_emu(&dev), RT);
    void *buf = NULL;
    ASSERT_OK_RT(dev.ops->buffer_alloc(dev.ctx, 1 << 16, &buf), RT);
    awq_tensor x = awq_tensor_2d(AWQ_DTYPE_F32, buf, 0, 4, 64);
    awq_tensor w = awq_tensor_2d(AWQ_DTYPE_F32, buf, 0, 8, 63);
    awq_tensor y = awq_tensor_2d(AWQ_DTYPE_F32, buf, 8192, 4, 8);
    awq_status st = dev.ops->matmul(dev.ctx, &y, &x, &w, NULL);
    printf("  matmul 4x64 * (8x63)^T -> %s: %s\n", awq_status_str(st), awq_runtime_last_error(RT));
    ASSERT(st == AWQ_ERR_UNSUPPORTED && strstr(awq_runtime_last_error(RT), "matmul") != NULL);
    awq_quant_desc q = {4, 48, true};
    st = dev.ops->fake_quant(dev.ctx, &x, &x, NULL, NULL, &q);
    printf("  fake_quant gs 48 on in 64 -> %s: %s\n", awq_status_str(st), awq_runtime_last_error(RT));
    ASSERT(st == AWQ_ERR_UNSUPPORTED);
    int64_t ne[4] = {1, 2, 2, 512};
    awq_tensor q4 = awq_tensor_make(AWQ_DTYPE_F32, buf, 0, 4, ne);
    st = dev.ops->attention(dev.ctx, &q4, &q4, &q4, &q4, 0, 1.0f, 0);
    printf("  attention head_dim 512 -> %s: %s\n", awq_status_str(st), awq_runtime_last_error(RT));
    ASSERT(st == AWQ_ERR_UNSUPPORTED && strstr(awq_runtime_last_error(RT), "attention") != NULL);
    dev.ops->buffer_free(dev.ctx, buf);
    awq_device_close(&dev);
}

TEST(failed_kernel_launch_is_a_status) {
    /* attention over 70000 sequences puts 70000 blocks on the grid's z axis, beyond CUDA's 65535:
     * the launch fails (cudaErrorInvalidConfiguration on a GPU, the emulator's check here) and the op
     * returns a status naming the kernel instead of crashing; the instance keeps working */
    awq_device dev;
    ASSERT_OK_RT(open_emu(&dev), RT);
    int64_t B = 70000, hd = 4;
    size_t bytes = (size_t)(B * hd * 4);
    void *Qb = NULL, *Ob = NULL;
    ASSERT_OK_RT(dev.ops->buffer_alloc(dev.ctx, bytes, &Qb), RT);
    ASSERT_OK_RT(dev.ops->buffer_alloc(dev.ctx, bytes, &Ob), RT);
    ASSERT_OK_RT(dev.ops->memset_zero(dev.ctx, Qb, 0, bytes), RT);
    int64_t ne[4] = {B, 1, 1, hd};
    awq_tensor q = awq_tensor_make(AWQ_DTYPE_F32, Qb, 0, 4, ne),
               o = awq_tensor_make(AWQ_DTYPE_F32, Ob, 0, 4, ne);
    awq_status st = dev.ops->attention(dev.ctx, &o, &q, &q, &q, 0, 0.5f, 0);
    const char *msg = awq_runtime_last_error(RT);
    printf("  attention over %lld sequences -> %s: %s\n", (long long)B, awq_status_str(st), msg);
    ASSERT(st == AWQ_ERR_BACKEND);
    ASSERT(strstr(msg, "kernel launch failed") != NULL);
    float h[2] = {5, 6}, back[2] = {0};
    ASSERT_OK_RT(dev.ops->upload(dev.ctx, Ob, 0, h, sizeof h), RT);
    ASSERT_OK_RT(dev.ops->download(dev.ctx, back, Ob, 0, sizeof back), RT);
    ASSERT(back[0] == 5 && back[1] == 6);
    dev.ops->buffer_free(dev.ctx, Qb);
    dev.ops->buffer_free(dev.ctx, Ob);
    awq_device_close(&dev);
}

TEST(real_plugin_without_driver_says_why) {
    char path[1024];
    snprintf(path, sizeof path, "%s/libawq-backend-cuda.so", AWQ_TEST_BIN_DIR);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("  (the cuda plugin was not built here: nothing to check)\n");
        return;
    }
    fclose(f);
    if (awq_registry_find(RT, "cuda")) {
        printf("  the cuda plugin found a device: nothing to check\n");
        return;
    }
    int found = 0;
    for (int32_t i = 0; i < awq_runtime_skipped_count(RT); i++) {
        const char *s = awq_runtime_skipped_get(RT, i);
        if (strstr(s, "libawq-backend-cuda.so")) {
            printf("  skipped: %s\n", s);
            found = strstr(s, "cuda") != NULL &&
                (strstr(s, "cudaGetDeviceCount") || strstr(s, "cannot open") || strstr(s, "libcu"));
        }
    }
    ASSERT(found);
}

int main(void) {
    awq_runtime_params p = awq_runtime_params_default();
    p.backend_dir = AWQ_TEST_BIN_DIR;
    if (awq_runtime_create(&RT, &p) != AWQ_OK) return 1;
    if (!awq_registry_find(RT, "cuda-emu")) {
        awq_runtime_destroy(RT);
        const char *req = getenv("AWQ_REQUIRE_CUDA_EMU");
        printf("%s: the cuda-emu plugin is not loaded\n", req && req[0] == '1' ? "FAIL" : "SKIP");
        return req && req[0] == '1' ? 1 : 77;
    }
    RUN(bad_device_index);
    RUN(allocation_beyond_free_memory_is_refused_with_sizes);
    RUN(model_too_large_for_the_device_fails_to_load);
    RUN(out_of_contract_shapes_are_unsupported);
    RUN(failed_kernel_launch_is_a_status);
    RUN(real_plugin_without_driver_says_why);
    awq_runtime_destroy(RT);
    return TEST_EXIT();
}
