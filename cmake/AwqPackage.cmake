# AwqPackage.cmake - installs what an application needs to build against libawq:
#   <libdir>/pkgconfig/awq.pc                     pkg-config --cflags --libs awq
#   <libdir>/cmake/awq/awqConfig.cmake            find_package(awq) -> imported target awq::awq
#   <libdir>/cmake/awq/awqConfigVersion.cmake     semver compatibility (docs/install.md)
# Included from the top CMakeLists.txt after core/ (the awq target) exists.
include(CMakePackageConfigHelpers)

# One version, three places: project(), awq.h's AWQ_VERSION_* and awq_version() in core/status.c.
file(READ ${CMAKE_SOURCE_DIR}/core/include/awq.h AWQ_H_TEXT)
set(AWQ_H_VERSION "")
foreach(part MAJOR MINOR PATCH)
  string(REGEX MATCH "#define AWQ_VERSION_${part} ([0-9]+)" _ "${AWQ_H_TEXT}")
  list(APPEND AWQ_H_VERSION "${CMAKE_MATCH_1}")
endforeach()
string(REPLACE ";" "." AWQ_H_VERSION "${AWQ_H_VERSION}")
file(STRINGS ${CMAKE_SOURCE_DIR}/core/runtime/status.c AWQ_C_VERSION REGEX "awq_version\\(void\\)")
string(REGEX REPLACE ".*return \"([0-9.]+)\".*" "\\1" AWQ_C_VERSION "${AWQ_C_VERSION}")
if(NOT AWQ_H_VERSION STREQUAL PROJECT_VERSION OR NOT AWQ_C_VERSION STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "version mismatch: project() says ${PROJECT_VERSION}, awq.h ${AWQ_H_VERSION}, "
                      "awq_version() in core/runtime/status.c ${AWQ_C_VERSION}")
endif()

# The plugin ABI version is separate from the library version (awq_backend.h).
file(STRINGS ${CMAKE_SOURCE_DIR}/core/include/awq_backend.h AWQ_BACKEND_ABI_VERSION
     REGEX "^#define AWQ_BACKEND_ABI_VERSION ")
string(REGEX REPLACE ".*AWQ_BACKEND_ABI_VERSION ([0-9]+).*" "\\1" AWQ_BACKEND_ABI_VERSION
       "${AWQ_BACKEND_ABI_VERSION}")

# Install directories relative to the prefix (what a relocatable package can express).
foreach(kind BACKEND DATA)
  set(dir "${AWQ_${kind}_INSTALL_DIR}")
  if(IS_ABSOLUTE "${dir}")
    file(RELATIVE_PATH dir "${CMAKE_INSTALL_PREFIX}" "${dir}")
    if(dir MATCHES "^\\.\\./")
      message(WARNING "AWQ_${kind}_INSTALL_DIR is outside CMAKE_INSTALL_PREFIX: the installed tree "
                      "is not relocatable")
    endif()
  endif()
  set(AWQ_${kind}_INSTALL_DIR_REL "${dir}")
endforeach()

get_target_property(AWQ_SOVERSION awq SOVERSION)
set(AWQ_LIBRARY_FILE "${CMAKE_SHARED_LIBRARY_PREFIX}awq${CMAKE_SHARED_LIBRARY_SUFFIX}.${PROJECT_VERSION}")
set(AWQ_LIBRARY_SONAME "${CMAKE_SHARED_LIBRARY_PREFIX}awq${CMAKE_SHARED_LIBRARY_SUFFIX}.${AWQ_SOVERSION}")

set(AWQ_PACKAGE_DIR "${CMAKE_BINARY_DIR}/package")

# pkg-config: prefix = ${pcfiledir}/<the way up from <libdir>/pkgconfig to the prefix>
file(RELATIVE_PATH AWQ_PC_PREFIX_FROM_PCDIR "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" AWQ_PC_PREFIX_FROM_PCDIR "${AWQ_PC_PREFIX_FROM_PCDIR}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/awq.pc.in ${AWQ_PACKAGE_DIR}/awq.pc @ONLY)
install(FILES ${AWQ_PACKAGE_DIR}/awq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

set(AWQ_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/awq")
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/awqConfig.cmake.in
    ${AWQ_PACKAGE_DIR}/awqConfig.cmake
    INSTALL_DESTINATION ${AWQ_CMAKE_INSTALL_DIR}
    PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR AWQ_BACKEND_INSTALL_DIR_REL
              AWQ_DATA_INSTALL_DIR_REL)
# Before 1.0 a minor release may break the API (semver), so 0.1 accepts only 0.1.x.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(AWQ_COMPATIBILITY SameMinorVersion)
else()
  set(AWQ_COMPATIBILITY SameMajorVersion)
endif()
write_basic_package_version_file(${AWQ_PACKAGE_DIR}/awqConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY ${AWQ_COMPATIBILITY})
install(FILES ${AWQ_PACKAGE_DIR}/awqConfig.cmake ${AWQ_PACKAGE_DIR}/awqConfigVersion.cmake
        DESTINATION ${AWQ_CMAKE_INSTALL_DIR})
