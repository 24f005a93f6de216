// test_api_cxx.cpp - the public headers compile as C++11 (-pedantic-errors -Werror) and the C
// API links from C++ (extern "C"). Built only when a C++ compiler exists (tests/core/extra.cmake).
#include "awq.h"
#include "awq_backend.h"
#include "awq_pack.h"

#include <cstdio>
#include <cstring>

int main() {
    int failures = 0;
    if (std::strcmp(awq_status_str(AWQ_OK), "success") != 0) failures++;
    if (std::strcmp(awq_version(), "0.1.0") != 0 && AWQ_VERSION_MAJOR == 0) failures++;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    awq_runtime *rt = NULL;
    if (awq_runtime_create(&rt, &p) != AWQ_OK || !rt) failures++;
    if (awq_runtime_device_count(rt) < 1) failures++;
    awq_runtime_destroy(rt);
    awq_runtime_destroy(NULL);
    // The header-only helpers work in C++ too.
    if (awq_f32_to_f16(1.0f) != 0x3c00 || awq_f16_to_f32(0xc000) != -2.0f) failures++;
    const uint8_t v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    if (static_cast<uint32_t>(awq_pack_word(v)) != 0x86427531u) failures++;
    awq_tensor t = awq_tensor_2d(AWQ_DTYPE_F32, NULL, 0, 3, 4);
    if (awq_tensor_rows(&t) != 3 || awq_tensor_cols(&t) != 4 || t.nb[0] != 16) failures++;
    std::printf("%s test_api_cxx (%d failures)\n", failures ? "FAIL" : "ok  ", failures);
    return failures ? 1 : 0;
}
