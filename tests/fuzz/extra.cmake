# tests/fuzz: the fuzz targets' entry points (fuzz_*.c) linked into test_fuzz_replay, which
# replays the committed corpora and regression inputs as an ordinary test; with -DAWQ_FUZZ=ON
# and clang (scripts/fuzz.sh) one libFuzzer executable per target as well.
set(AWQ_FUZZ_TARGET_NAMES safetensors st_index gguf config tokenizer jinja calib server_request)
set(AWQ_FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
# sources a target needs besides libawq: the server's request parser lives in cli/
set(AWQ_FUZZ_EXTRA_server_request ${CMAKE_SOURCE_DIR}/cli/serve_request.c)
foreach(t ${AWQ_FUZZ_TARGET_NAMES})
  list(APPEND AWQ_FUZZ_SOURCES ${AWQ_FUZZ_DIR}/fuzz_${t}.c ${AWQ_FUZZ_EXTRA_${t}})
endforeach()

target_sources(test_fuzz_replay PRIVATE ${AWQ_FUZZ_SOURCES} ${AWQ_FUZZ_DIR}/fuzz_common.c)
target_include_directories(test_fuzz_replay PRIVATE ${AWQ_FUZZ_DIR} ${CMAKE_SOURCE_DIR}/cli)
set_tests_properties(test_fuzz_replay PROPERTIES TIMEOUT 300)

option(AWQ_FUZZ "Build the libFuzzer targets fuzz_<name> (needs clang; see scripts/fuzz.sh)" OFF)
if(AWQ_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "AWQ_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
  endif()
  foreach(t ${AWQ_FUZZ_TARGET_NAMES})
    add_executable(fuzz_${t} ${AWQ_FUZZ_DIR}/fuzz_${t}.c ${AWQ_FUZZ_DIR}/fuzz_common.c ${AWQ_FUZZ_EXTRA_${t}})
    target_include_directories(fuzz_${t} PRIVATE ${AWQ_FUZZ_DIR} ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/cli)
    target_compile_definitions(fuzz_${t} PRIVATE AWQ_LIBFUZZER AWQ_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
    target_link_libraries(fuzz_${t} PRIVATE awq_static awq::internal)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
    list(APPEND AWQ_FUZZ_EXES fuzz_${t})
  endforeach()
  add_custom_target(awq_fuzz_targets DEPENDS ${AWQ_FUZZ_EXES})
endif()
