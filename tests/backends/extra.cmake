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
