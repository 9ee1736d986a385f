# The allocator the programs we ship are linked with (the `tronada` binary, the examples,
# the bench programs). jemalloc by default: what is left of malloc per request on the
# proxy, FastCGI and HTTP/2 paths (promises, nghttp2's stream state, header strings) costs
# about half the instructions in jemalloc's thread cache that it costs in glibc's malloc
# (figures in docs/benchmarks.md).
# The library itself never picks an allocator for an application that links it.
#
# Sanitizer and fuzz builds keep the system allocator: ASan, TSan and libFuzzer bring
# their own, and the allocation-counting tests count glibc's.
set(TRONADA_ALLOCATOR "jemalloc" CACHE STRING "Allocator the programs link: jemalloc or system")
set_property(CACHE TRONADA_ALLOCATOR PROPERTY STRINGS jemalloc system)

add_library(tronada_allocator INTERFACE)
if(TRONADA_ALLOCATOR STREQUAL "jemalloc" AND NOT TRONADA_SANITIZE AND NOT TRONADA_FUZZ)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
  # Linked as a whole library ahead of libc, so its malloc and free are the ones that
  # every other library of the process (libstdc++, nghttp2, OpenSSL, CPython) resolves.
  target_link_libraries(tronada_allocator INTERFACE PkgConfig::JEMALLOC)
  message(STATUS "Programs are linked with jemalloc")
elseif(NOT TRONADA_ALLOCATOR STREQUAL "system" AND NOT TRONADA_ALLOCATOR STREQUAL "jemalloc")
  message(FATAL_ERROR "TRONADA_ALLOCATOR must be jemalloc or system, not ${TRONADA_ALLOCATOR}")
endif()
