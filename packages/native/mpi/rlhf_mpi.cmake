# The MPI addon, rlhf_mpi.node: collectives for data-parallel training on CPU ranks (packages/native/mpi/).
# Included from CMakeLists.txt after the CPU addon is defined; it adds a target and changes nothing of
# rlhf_native, which never links libmpi (a machine without MPI builds and loads the CPU addon as before).
#
# RLHF_MPI (environment or -D): auto (default) builds it where MPI's C headers and library are found (Debian:
# libopenmpi-dev, which scripts/setup-openmpi.sh installs); on fails the build when they are not; off never builds it.
set(RLHF_MPI_MODE "$ENV{RLHF_MPI}")
if(DEFINED RLHF_MPI)
  set(RLHF_MPI_MODE "${RLHF_MPI}")
endif()
if(RLHF_MPI_MODE STREQUAL "")
  set(RLHF_MPI_MODE "auto")
endif()

set(RLHF_BUILD_MPI_ADDON OFF)
if(NOT RLHF_MPI_MODE STREQUAL "off")
  # the C API from C++ (MPI::MPI_CXX without the removed C++ bindings)
  set(MPI_CXX_SKIP_MPICXX ON)
  find_package(MPI COMPONENTS CXX QUIET)
  find_package(Threads QUIET)
  if(MPI_CXX_FOUND AND Threads_FOUND)
    set(RLHF_BUILD_MPI_ADDON ON)
  elseif(RLHF_MPI_MODE STREQUAL "on")
    message(FATAL_ERROR "RLHF_MPI=on but MPI's C headers and library were not found (Debian: apt-get install libopenmpi-dev)")
  endif()
endif()

if(RLHF_BUILD_MPI_ADDON)
  set(_dir "${CMAKE_CURRENT_SOURCE_DIR}/mpi")
  file(GLOB RLHF_MPI_SOURCES CONFIGURE_DEPENDS "${_dir}/*.cc")
  add_library(rlhf_mpi SHARED ${RLHF_MPI_SOURCES} ${CMAKE_JS_SRC})
  set_target_properties(rlhf_mpi PROPERTIES PREFIX "" SUFFIX ".node")
  target_include_directories(rlhf_mpi PRIVATE ${CMAKE_JS_INC} ${NODE_ADDON_API_DIR} "${_dir}")
  target_compile_definitions(rlhf_mpi PRIVATE NAPI_VERSION=8 NODE_ADDON_API_DISABLE_DEPRECATED NAPI_CPP_EXCEPTIONS)
  target_compile_options(rlhf_mpi PRIVATE -O2 -Wall -Wextra -Wno-unused-parameter)
  target_link_libraries(rlhf_mpi PRIVATE MPI::MPI_CXX Threads::Threads ${CMAKE_JS_LIB})
  # The communication thread lives as long as the process: the addon must never be unloaded under it.
  target_link_options(rlhf_mpi PRIVATE "LINKER:-z,nodelete")
  message(STATUS "rlhf_mpi: building rlhf_mpi.node with ${MPI_CXX_LIBRARIES}")
else()
  message(STATUS "rlhf_mpi: not built (RLHF_MPI=${RLHF_MPI_MODE}; MPI found: '${MPI_CXX_FOUND}')")
endif()
