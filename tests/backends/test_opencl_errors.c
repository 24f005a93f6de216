/*
 * test_opencl_errors.c - the OpenCL plugin fails cleanly: an allocation beyond the device's
 * limit is AWQ_ERR_DEVICE_MEMORY with a message naming the size and the device, a bad device
 * index is AWQ_ERR_NO_BACKEND, ops given shapes outside their contract return
 * AWQ_ERR_UNSUPPORTED with the op's name, and the instance keeps working afterwards.
 * Skips (77) without an OpenCL device unless AWQ_REQUIRE_OPENCL=1.
 */
#include "awq_backend.h"
#include "internal.h"
#include "test.h"

static awq_runtime *RT;

TEST(bad_device_index) {
    awq_device dev;
    awq_status st = awq_device_open(RT, "opencl:999", 0, &dev);
    printf("  opencl:999 -> %s: %s\n", awq_status_str(st), awq_runtime_last_error(RT));
    ASSERT(st != AWQ_OK);
}

TEST(oversized_allocation_is_a_clean_device_memory_error) {
    awq_device dev;
    ASSERT_OK_RT(awq_device_open(RT, "opencl", 0, &dev), RT);
    ASSERT(dev.info.max_alloc_bytes > 0);
    void *buf = NULL;
    awq_status st = dev.ops->buffer_alloc(dev.ctx, (size_t)dev.info.max_alloc_bytes + 4096, &buf);
    const char *msg = awq_runtime_last_error(RT);
    printf("  %lld bytes -> %s: %s\n", (long long)dev.info.max_alloc_bytes + 4096, awq_status_str(st), msg);
    ASSERT(st == AWQ_ERR_DEVICE_MEMORY);
    ASSERT(buf == NULL);
    ASSERT(strstr(msg, "MiB") != NULL);
    /* the instance still works */
    float h[4] = {1, 2, 3, 4}, back[4] = {0};
    ASSERT_OK_RT(dev.ops->buffer_alloc(dev.ctx, sizeof h, &buf), RT);
    ASSERT_OK_RT(dev.ops->upload(dev.ctx, buf, 0, h, sizeof h), RT);
    ASSERT_OK_RT(dev.ops->download(dev.ctx, back, buf, 0, sizeof back), RT);
    ASSERT(memcmp(h, back, sizeof h) == 0);
    dev.ops->buffer_free(dev.ctx, buf);
    awq_device_close(&dev);
}

TEST(out_of_contract_shapes_are_unsupported) {
    awq_device dev;
    ASSERT_OK_RT(awq_device_open(RT, "opencl", 0, &dev), RT);
    void *buf = NULL;
    ASSERT_OK_RT(dev.ops->buffer_alloc(dev.ctx, 1 << 16, &buf), RT);
    awq_tensor x = awq_tensor_2d(AWQ_DTYPE_F32, buf, 0, 4, 64);
    awq_tensor w = awq_tensor_2d(AWQ_DTYPE_F32, buf, 0, 8, 63); /* in mismatch */
    awq_tensor y = awq_tensor_2d(AWQ_DTYPE_F32, buf, 8192, 4, 8);
    awq_status st = dev.ops->matmul(dev.ctx, &y, &x, &w, NULL);
    printf("  matmul 4x64 * (8x63)^T -> %s: %s\n", awq_status_str(st), awq_runtime_last_error(RT));
    ASSERT(st == AWQ_ERR_UNSUPPORTED);
    ASSERT(strstr(awq_runtime_last_error(RT), "matmul") != NULL);
    awq_quant_desc q = {4, 48, true}; /* 64 % 48 != 0 */
    st = dev.ops->fake_quant(dev.ctx, &x, &x, NULL, NULL, &q);
    printf("  fake_quant gs 48 on in 64 -> %s: %s\n", awq_status_str(st), awq_runtime_last_error(RT));
    ASSERT(st == AWQ_ERR_UNSUPPORTED);
    awq_tensor odd = x;
    odd.offs = 2; /* not element-aligned */
    st = dev.ops->silu_mul(dev.ctx, &odd, &x, &x);
    printf("  silu_mul into byte offset 2 -> %s: %s\n", awq_status_str(st), awq_runtime_last_error(RT));
    ASSERT(st == AWQ_ERR_UNSUPPORTED);
    ASSERT_OK_RT(dev.ops->silu_mul(dev.ctx, &x, &x, &x), RT);
    ASSERT_OK_RT(dev.ops->synchronize(dev.ctx), RT);
    dev.ops->buffer_free(dev.ctx, buf);
    awq_device_close(&dev);
}

int main(void) {
    awq_runtime_params p = awq_runtime_params_default();
    p.backend_dir = AWQ_TEST_BIN_DIR;
    if (awq_runtime_create(&RT, &p) != AWQ_OK) return 1;
    if (!awq_registry_find(RT, "opencl")) {
        awq_runtime_destroy(RT);
        return test_opencl_missing("the opencl plugin is not loaded");
    }
    RUN(bad_device_index);
    RUN(oversized_allocation_is_a_clean_device_memory_error);
    RUN(out_of_contract_shapes_are_unsupported);
    awq_runtime_destroy(RT);
    return TEST_EXIT();
}
