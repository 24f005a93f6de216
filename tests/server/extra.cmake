# tests/server/extra.cmake - included from tests/CMakeLists.txt.
#
# test_server runs the built awq-cli; its --openai mode (the official `openai` Python client,
# PyPI, test tooling only) is a second entry so that it can skip alone when the package is
# missing (it fails instead under AWQ_REQUIRE_SERVER_TOOLS=1).
if(TARGET test_server)
  add_dependencies(test_server awq-cli)
  add_test(NAME test_server_openai COMMAND test_server --openai)
  set_tests_properties(test_server_openai PROPERTIES LABELS "server" SKIP_RETURN_CODE 77 TIMEOUT 600
      ENVIRONMENT "AWQ_BACKEND_PATH=${CMAKE_BINARY_DIR}/bin")
endif()

# Batched decoding on the OpenCL plugin too (PoCL in CI): the per-sequence attention views and
# the M-row GEMMs of another backend against its own single-sequence results.
if(TARGET test_batch)
  add_test(NAME test_batch_opencl COMMAND test_batch)
  set_tests_properties(test_batch_opencl PROPERTIES LABELS "server" SKIP_RETURN_CODE 77 TIMEOUT 900
      ENVIRONMENT "AWQ_BACKEND_PATH=${CMAKE_BINARY_DIR}/bin;AWQ_BATCH_BACKEND=opencl")
endif()
