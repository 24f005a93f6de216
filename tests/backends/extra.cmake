# tests/backends/extra.cmake - included from tests/CMakeLists.txt.
#
# The cpu reference op tests once more with the explicitly vectorized kernels forced down to
# AVX2 and to plain C (AWQ_CPU_ISA, backend_cpu/kernels/convert.c), so every version is checked
# against the double-precision references on an AVX-512 build machine too.
foreach(t test_cpu_ref test_cpu_ref_quant)
  if(TARGET ${t})
    foreach(isa avx2 scalar)
      add_test(NAME ${t}_${isa} COMMAND ${t})
      set_tests_properties(${t}_${isa} PROPERTIES LABELS "backends" SKIP_RETURN_CODE 77 TIMEOUT 300
          ENVIRONMENT "AWQ_BACKEND_PATH=${CMAKE_BINARY_DIR}/bin;AWQ_CPU_ISA=${isa}")
    endforeach()
  endif()
endforeach()

# The cross-backend op test once more with the OpenCL plugin's GPU kernel family (local-memory
# tiles, CLBlast) forced on the CPU OpenCL device, so both families are checked on PoCL.
if(TARGET test_ops)
  add_test(NAME test_ops_opencl_tiled COMMAND test_ops)
  set_tests_properties(test_ops_opencl_tiled PROPERTIES LABELS "backends" SKIP_RETURN_CODE 77 TIMEOUT 900
      ENVIRONMENT "AWQ_BACKEND_PATH=${CMAKE_BINARY_DIR}/bin;AWQ_OPENCL_KERNELS=tiled")
endif()

# cpu-lite: a test plugin (tests/backends/lite_backend.c) with the cpu kernels and most optional
# ops left out or declined by supports_op, in its own directory so that only test_fallback
# loads it; test_fallback checks every per-op fallback against the cpu backend.
file(GLOB AWQ_LITE_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/backend_cpu/kernels/*.c
     ${CMAKE_SOURCE_DIR}/backend_cpu/*.c)
list(FILTER AWQ_LITE_SOURCES EXCLUDE REGEX "/cpu_ops\\.c$")
add_library(awq-backend-cpu-lite MODULE ${CMAKE_SOURCE_DIR}/tests/backends/lite_backend.c
            ${AWQ_LITE_SOURCES})
target_include_directories(awq-backend-cpu-lite PRIVATE ${CMAKE_SOURCE_DIR}/core/include
    ${CMAKE_SOURCE_DIR}/backend_cpu)
target_compile_definitions(awq-backend-cpu-lite PRIVATE AWQ_CPU_PLUGIN)
target_link_libraries(awq-backend-cpu-lite PRIVATE OpenMP::OpenMP_C Threads::Threads m)
set_target_properties(awq-backend-cpu-lite PROPERTIES PREFIX "lib"
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/lite-plugin)
if(TARGET test_fallback)
  add_dependencies(test_fallback awq-backend-cpu-lite awq-cli)
  target_compile_definitions(test_fallback PRIVATE
      AWQ_TEST_LITE_PLUGIN_DIR="${CMAKE_BINARY_DIR}/tests/lite-plugin")
endif()
