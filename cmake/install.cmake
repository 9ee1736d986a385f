# Install rules and the CMake package config, so an app can `find_package(tronada)`:
# - against an install (`cmake --install`, the Debian package): headers under include/,
#   static libraries and lib/cmake/tronada/, the `tronada` program, the templates that
#   `tronada new` copies under share/tronada/templates, and a pkg-config file;
# - against this build tree without installing (`-Dtronada_DIR=<build dir>`): what
#   `tronada new`/`run` and the integration tests use, so a scaffolded app compiles its
#   own sources only and links the libraries already built here.
# Kept out of CMakeLists.txt so the build rules stay readable; included at its end.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(TRONADA_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tronada)

# Headers are found from src/ and gateway/ while building and include/ once installed.
set_target_properties(tronada PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
  "$<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/src>;$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
set_target_properties(tronada_gateway PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
  "$<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/gateway>;$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
# llhttp is compiled into its own static library; no public header includes llhttp.h, so
# installed users need the archive only. Renamed so it cannot shadow a distro libllhttp.
set_target_properties(llhttp PROPERTIES OUTPUT_NAME tronada_llhttp
  INTERFACE_INCLUDE_DIRECTORIES "$<BUILD_INTERFACE:${LLHTTP_INCLUDE_DIR}>"
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "$<BUILD_INTERFACE:${LLHTTP_INCLUDE_DIR}>")
# A sanitizer build's libraries need the sanitizer runtime in whatever links them; only
# the build-tree export carries this (an installed tronada is never a sanitizer build).
if(TRONADA_SANITIZE)
  target_compile_options(tronada INTERFACE
    "$<BUILD_INTERFACE:-fsanitize=${TRONADA_SANITIZE};-fno-omit-frame-pointer>")
  target_link_options(tronada INTERFACE "$<BUILD_INTERFACE:-fsanitize=${TRONADA_SANITIZE}>")
endif()

install(TARGETS tronada tronada_gateway llhttp EXPORT tronadaTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/src/tronada DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/gateway/tronada DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(EXPORT tronadaTargets NAMESPACE tronada:: DESTINATION ${TRONADA_CMAKE_DIR})
export(EXPORT tronadaTargets NAMESPACE tronada:: FILE ${CMAKE_BINARY_DIR}/tronadaTargets.cmake)

configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/tronadaConfig.cmake.in
  ${CMAKE_BINARY_DIR}/tronadaConfig.cmake INSTALL_DESTINATION ${TRONADA_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/tronadaConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/tronadaConfig.cmake
              ${CMAKE_BINARY_DIR}/tronadaConfigVersion.cmake
        DESTINATION ${TRONADA_CMAKE_DIR})

# pkg-config, for Makefiles and Meson (static linking: the dependencies are Requires).
configure_file(${CMAKE_SOURCE_DIR}/cmake/tronada.pc.in ${CMAKE_BINARY_DIR}/tronada.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/tronada.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(TARGET tronada_bin)
  install(TARGETS tronada_bin RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(DIRECTORY ${CMAKE_SOURCE_DIR}/templates/ DESTINATION ${CMAKE_INSTALL_DATADIR}/tronada/templates)
# `tronada new` looks for templates at <program dir>/../share/tronada/templates; in the
# build tree that is a link to the source folder, so edits show up without a rebuild.
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/share/tronada)
file(CREATE_LINK ${CMAKE_SOURCE_DIR}/templates ${CMAKE_BINARY_DIR}/share/tronada/templates SYMBOLIC)
