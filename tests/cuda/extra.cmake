# tests/cuda/extra.cmake - included from tests/CMakeLists.txt: the CUDA backend's tests that need
# no GPU (label "cuda").
#
#  1. tests/cuda/test_*.cc: the SIMT emulator and the kernels, C++ programs linked with the
#     emulator (awq_cuda_emu_sim) that include the kernel families they test; test_emu_race.cc is built a second way,
#     with ThreadSanitizer, to show that a missing __syncthreads is reported.
#  2. The cross-backend op test (tests/backends/test_ops.c) on cuda-emu once per kernel family,
#     forced through AWQ_CUDA_W4 / AWQ_CUDA_DENSE, and once as an sm_75 device (m16n8k8 path).
#  3. gates.py on the real plugin when nvcc built it: resource budgets and SASS per architecture.
if(TARGET awq_cuda_emu_sim)
  file(GLOB AWQ_CUDA_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/cuda/test_*.cc)
  foreach(src ${AWQ_CUDA_TESTS})
    get_filename_component(name ${src} NAME_WE)
    if(name STREQUAL "test_emu_race")
      continue()
    endif()
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE awq_cuda_emu_sim)
    target_compile_options(${name} PRIVATE -O2)
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES LABELS "cuda" SKIP_RETURN_CODE 77 TIMEOUT 900)
  endforeach()

  # the race check: the emulator and the test kernel under ThreadSanitizer's fiber API
  set(race_src ${CMAKE_SOURCE_DIR}/tests/cuda/test_emu_race.cc)
  if(EXISTS ${race_src})
    add_executable(test_emu_race ${race_src} ${CMAKE_SOURCE_DIR}/backend_cuda/emu/emu.cc)
    target_compile_features(test_emu_race PRIVATE cxx_std_17)
    target_compile_definitions(test_emu_race PRIVATE AWQ_CUDA_EMU)
    target_include_directories(test_emu_race PRIVATE ${CMAKE_SOURCE_DIR}/core/include
        ${CMAKE_SOURCE_DIR}/backend_cuda ${CMAKE_SOURCE_DIR}/backend_cuda/kernels)
    target_compile_options(test_emu_race PRIVATE -O1 -g -fsanitize=thread)
    target_link_options(test_emu_race PRIVATE -fsanitize=thread)
    target_link_libraries(test_emu_race PRIVATE Threads::Threads)
    add_test(NAME test_emu_race COMMAND test_emu_race)
    set_tests_properties(test_emu_race PROPERTIES LABELS "cuda" SKIP_RETURN_CODE 77 TIMEOUT 300)
  endif()
endif()

if(TARGET awq-backend-cuda-emu AND TARGET test_ops)
  add_dependencies(test_ops awq-backend-cuda-emu)
  set(gemm_groups "matmul,matmul_w4a16,matmul_w4a16_shapes,matmul_w4a16_exact,gram")
  foreach(spec "w4_gemv|AWQ_CUDA_W4=gemv" "w4_tc|AWQ_CUDA_W4=tc" "w4_dequant|AWQ_CUDA_W4=dequant"
               "dense_gemv|AWQ_CUDA_DENSE=gemv" "dense_simt|AWQ_CUDA_DENSE=simt" "dense_blas|AWQ_CUDA_DENSE=blas"
               "sm75|AWQ_CUDA_EMU_SM=75")
    string(REPLACE "|" ";" parts "${spec}")
    list(GET parts 0 tag)
    list(GET parts 1 env)
    add_test(NAME test_ops_cuda_emu_${tag} COMMAND test_ops)
    set_tests_properties(test_ops_cuda_emu_${tag} PROPERTIES LABELS "cuda" SKIP_RETURN_CODE 77 TIMEOUT 900
        ENVIRONMENT "AWQ_BACKEND_PATH=${CMAKE_BINARY_DIR}/bin;AWQ_TEST_OPS_BACKEND=cuda-emu;AWQ_TEST_OPS_ONLY=${gemm_groups};${env}")
  endforeach()
endif()

if(TARGET awq-backend-cuda)
  find_package(Python3 COMPONENTS Interpreter QUIET)
  if(Python3_FOUND)
    add_test(NAME cuda_gates COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/cuda/gates.py
             $<TARGET_FILE:awq-backend-cuda>)
    set_tests_properties(cuda_gates PROPERTIES LABELS "cuda" SKIP_RETURN_CODE 77 TIMEOUT 600)
  endif()
endif()
