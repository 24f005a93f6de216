# tests/install/extra.cmake - included from tests/CMakeLists.txt.
#
# check_install: configure + build + install libawq into a temporary prefix, move it, delete the
# build tree, then build examples/ against the installed prefix (pkg-config and find_package) and
# run them (check_install.sh says what exactly). It builds the project once more from scratch
# (-DAWQ_CUDA=OFF -DAWQ_TESTS=OFF), so it takes a few minutes: `ctest -LE install` leaves it out.
find_program(AWQ_BASH bash)
if(AWQ_BASH)
  add_test(NAME check_install COMMAND ${AWQ_BASH} ${CMAKE_SOURCE_DIR}/tests/install/check_install.sh)
  set_tests_properties(check_install PROPERTIES LABELS "install" SKIP_RETURN_CODE 77 TIMEOUT 1800
      RUN_SERIAL TRUE)
endif()
