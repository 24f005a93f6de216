# tests/core/extra.cmake - included from tests/CMakeLists.txt.
#
# 1. Fake backend plugins for test_registry: tests/core/fake_plugin.c built as MODULE libraries
#    with -D variants into their own directory (not bin/, where every runtime would find them),
#    plus a file that is not a shared library at all.
# 2. The public-header checks of tests/test_api.c: strict C11 (-pedantic-errors), and a C++
#    translation unit (tests/test_api_cxx.cpp) compiled with g++ when a C++ compiler exists.

set(AWQ_FAKE_PLUGIN_DIR "${CMAKE_BINARY_DIR}/fake_plugins")
file(MAKE_DIRECTORY "${AWQ_FAKE_PLUGIN_DIR}")
# Not an ELF file: dlopen must fail and the registry must say why.
file(WRITE "${AWQ_FAKE_PLUGIN_DIR}/libawq-backend-fake-garbage.so" "this is not a shared library\n")

# "variant|DEFINE,DEFINE" (FAKE_ID names the backend, see fake_plugin.c)
set(AWQ_FAKE_PLUGINS
    "good|"
    "abi|FAKE_BAD_ABI,FAKE_ID=fakeabi"
    "small|FAKE_SMALL_STRUCT,FAKE_ID=fakesmall"
    "old|FAKE_OLD_STRUCT,FAKE_ID=fakeold"
    "missing|FAKE_MISSING_OP,FAKE_ID=fakemissing"
    "probe|FAKE_PROBE_ZERO,FAKE_ID=fakeprobe"
    "noexports|FAKE_NO_EXPORTS"
    "dupcpu|FAKE_ID=cpu")
set(AWQ_FAKE_PLUGIN_TARGETS "")
foreach(spec ${AWQ_FAKE_PLUGINS})
  string(REPLACE "|" ";" parts "${spec}")
  list(GET parts 0 variant)
  list(GET parts 1 defs)
  string(REPLACE "," ";" defs "${defs}")
  set(target awq_fake_plugin_${variant})
  add_library(${target} MODULE ${CMAKE_SOURCE_DIR}/tests/core/fake_plugin.c)
  target_include_directories(${target} PRIVATE ${CMAKE_SOURCE_DIR}/core/include)
  if(defs)
    target_compile_definitions(${target} PRIVATE ${defs})
  endif()
  set_target_properties(${target} PROPERTIES
      PREFIX "lib" OUTPUT_NAME "awq-backend-fake-${variant}"
      LIBRARY_OUTPUT_DIRECTORY "${AWQ_FAKE_PLUGIN_DIR}")
  list(APPEND AWQ_FAKE_PLUGIN_TARGETS ${target})
endforeach()

if(TARGET test_registry)
  add_dependencies(test_registry ${AWQ_FAKE_PLUGIN_TARGETS})
  target_compile_definitions(test_registry PRIVATE AWQ_TEST_FAKE_PLUGIN_DIR="${AWQ_FAKE_PLUGIN_DIR}")
endif()

# ---- public header: strict C11 and C++ ------------------------------------------------------
if(TARGET test_api)
  target_compile_options(test_api PRIVATE -pedantic-errors)
  add_dependencies(test_api awq) # test_api also dlopens the shared libawq to check its exports
endif()

include(CheckLanguage)
check_language(CXX)
if(CMAKE_CXX_COMPILER AND EXISTS ${CMAKE_SOURCE_DIR}/tests/test_api_cxx.cpp)
  enable_language(CXX)
  add_executable(test_api_cxx ${CMAKE_SOURCE_DIR}/tests/test_api_cxx.cpp)
  set_target_properties(test_api_cxx PROPERTIES CXX_STANDARD 11 CXX_STANDARD_REQUIRED ON
      CXX_EXTENSIONS OFF)
  target_compile_options(test_api_cxx PRIVATE -Wall -Wextra -pedantic-errors -Werror)
  target_include_directories(test_api_cxx PRIVATE ${CMAKE_SOURCE_DIR}/core/include)
  target_link_libraries(test_api_cxx PRIVATE awq)
  add_test(NAME test_api_cxx COMMAND test_api_cxx)
  set_tests_properties(test_api_cxx PROPERTIES LABELS "api" SKIP_RETURN_CODE 77 TIMEOUT 60)
else()
  message(STATUS "No C++ compiler: the C++ compile check of awq.h (test_api_cxx) is skipped")
endif()
