# Install rules and the CMake package config, so an app can `find_package(tronada)`:
# - against an install (`cmake --install`, the Debian packages): headers under include/,
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

# One export set, and so one targets file, per part that links something of its own: the
# core (tronadaTargets.cmake, package tronada-dev), the gateway (libpython;
# tronadaGatewayTargets.cmake, tronada-gateway-dev) and the database layer (libpq,
# hiredis, SQLite; tronadaDbTargets.cmake, tronada-db-dev). tronadaConfig.cmake loads a
# part's file only when its component is asked for, so the core works with the other
# files absent and a native app never looks for Python.
install(TARGETS tronada llhttp EXPORT tronadaTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS tronada_gateway EXPORT tronadaGatewayTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS tronada_db EXPORT tronadaDbTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(export tronadaTargets tronadaGatewayTargets tronadaDbTargets)
  install(EXPORT ${export} NAMESPACE tronada:: DESTINATION ${TRONADA_CMAKE_DIR})
  export(EXPORT ${export} NAMESPACE tronada:: FILE ${CMAKE_BINARY_DIR}/${export}.cmake)
endforeach()
# Headers: the core's layers and db/ from src/, gateway/ from gateway/, all under
# include/tronada/; the packages split them by folder (packaging/debian/*.install).
install(DIRECTORY ${CMAKE_SOURCE_DIR}/src/tronada DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/gateway/tronada DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")

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
