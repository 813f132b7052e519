# The second addon, rlhf_cuda.node: CUDA kernels on device buffers (packages/native/cuda/). Included from
# CMakeLists.txt after the CPU addon is defined; it adds a target and changes nothing of rlhf_native.
#
# RLHF_CUDA_ADDON (environment or -D): auto (default) builds it when nvcc AND cuBLAS are found; on builds it
# whenever nvcc is found, without GEMM when cuBLAS is missing (the compile check of every .cu on a machine
# without cuBLAS); off never builds it.
# cuBLAS: CUDAToolkit's CUDA::cublas, or a pip-style layout given by RLHF_CUBLAS_DIR (a folder holding
# include/cublas_v2.h and lib/libcublas.so*), or RLHF_CUBLAS_INCLUDE_DIR + RLHF_CUBLAS_LIBRARY.
# RLHF_CUDA_GEMM=off leaves cuBLAS out even where it is found.
set(RLHF_CUDA_ADDON_MODE "$ENV{RLHF_CUDA_ADDON}")
if(DEFINED RLHF_CUDA_ADDON)
  set(RLHF_CUDA_ADDON_MODE "${RLHF_CUDA_ADDON}")
endif()
if(RLHF_CUDA_ADDON_MODE STREQUAL "")
  set(RLHF_CUDA_ADDON_MODE "auto")
endif()
if(NOT DEFINED RLHF_CUBLAS_DIR AND DEFINED ENV{RLHF_CUBLAS_DIR})
  set(RLHF_CUBLAS_DIR "$ENV{RLHF_CUBLAS_DIR}")
endif()
set(RLHF_CUDA_GEMM_MODE "$ENV{RLHF_CUDA_GEMM}")
if(DEFINED RLHF_CUDA_GEMM)
  set(RLHF_CUDA_GEMM_MODE "${RLHF_CUDA_GEMM}")
endif()

set(_rlhf_cublas_inc "")
set(_rlhf_cublas_lib "")
if(RLHF_WITH_CUDA AND NOT RLHF_CUDA_ADDON_MODE STREQUAL "off" AND NOT RLHF_CUDA_GEMM_MODE STREQUAL "off")
  if(RLHF_CUBLAS_INCLUDE_DIR AND RLHF_CUBLAS_LIBRARY)
    set(_rlhf_cublas_inc "${RLHF_CUBLAS_INCLUDE_DIR}")
    set(_rlhf_cublas_lib "${RLHF_CUBLAS_LIBRARY}")
  elseif(RLHF_CUBLAS_DIR)
    find_path(_rlhf_cublas_inc_found cublas_v2.h PATHS "${RLHF_CUBLAS_DIR}/include" NO_DEFAULT_PATH)
    # pip wheels ship libcublas.so.N without the unversioned link.
    find_library(_rlhf_cublas_lib_found NAMES cublas libcublas.so.13 libcublas.so.12
                 PATHS "${RLHF_CUBLAS_DIR}/lib" "${RLHF_CUBLAS_DIR}/lib64" NO_DEFAULT_PATH)
    if(_rlhf_cublas_inc_found AND _rlhf_cublas_lib_found)
      set(_rlhf_cublas_inc "${_rlhf_cublas_inc_found}")
      set(_rlhf_cublas_lib "${_rlhf_cublas_lib_found}")
    endif()
  elseif(TARGET CUDA::cublas)
    set(_rlhf_cublas_lib CUDA::cublas)
  endif()
endif()

set(RLHF_BUILD_CUDA_ADDON OFF)
if(RLHF_WITH_CUDA AND RLHF_CUDA_ADDON_MODE STREQUAL "on")
  set(RLHF_BUILD_CUDA_ADDON ON)
elseif(RLHF_WITH_CUDA AND RLHF_CUDA_ADDON_MODE STREQUAL "auto" AND _rlhf_cublas_lib)
  set(RLHF_BUILD_CUDA_ADDON ON)
elseif(RLHF_CUDA_ADDON_MODE STREQUAL "on")
  message(FATAL_ERROR "RLHF_CUDA_ADDON=on but CUDA is off or nvcc was not found")
endif()

if(RLHF_BUILD_CUDA_ADDON)
  set(_dir "${CMAKE_CURRENT_SOURCE_DIR}/cuda")
  file(GLOB RLHF_CUDA_ADDON_SOURCES CONFIGURE_DEPENDS "${_dir}/*.cu" "${_dir}/*.cc")
  if(_rlhf_cublas_lib)
    list(REMOVE_ITEM RLHF_CUDA_ADDON_SOURCES "${_dir}/gemm_stub.cc")
  else()
    list(REMOVE_ITEM RLHF_CUDA_ADDON_SOURCES "${_dir}/gemm_cublas.cu")
  endif()
  add_library(rlhf_cuda SHARED ${RLHF_CUDA_ADDON_SOURCES} ${CMAKE_JS_SRC})
  set_target_properties(rlhf_cuda PROPERTIES PREFIX "" SUFFIX ".node" CUDA_SEPARABLE_COMPILATION OFF
                                             CUDA_RUNTIME_LIBRARY Static)
  if(DEFINED ENV{RLHF_CUDA_ARCHS})
    set_target_properties(rlhf_cuda PROPERTIES CUDA_ARCHITECTURES "$ENV{RLHF_CUDA_ARCHS}")
  endif()
  target_include_directories(rlhf_cuda PRIVATE ${CMAKE_JS_INC} ${NODE_ADDON_API_DIR} "${_dir}"
                                               ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_definitions(rlhf_cuda PRIVATE NAPI_VERSION=8 NODE_ADDON_API_DISABLE_DEPRECATED NAPI_CPP_EXCEPTIONS)
  target_compile_options(rlhf_cuda PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-O3 -Wall -Wextra -Wno-unused-parameter>
                                           $<$<COMPILE_LANGUAGE:CUDA>:-O3>)
  # ${CMAKE_DL_LIBS}: NCCL is opened at run time (nccl.cc), never linked
  target_link_libraries(rlhf_cuda PRIVATE CUDA::cudart_static ${CMAKE_JS_LIB} ${CMAKE_DL_LIBS})
  if(_rlhf_cublas_lib)
    target_include_directories(rlhf_cuda PRIVATE ${_rlhf_cublas_inc})
    target_link_libraries(rlhf_cuda PRIVATE ${_rlhf_cublas_lib})
    if(NOT _rlhf_cublas_lib STREQUAL "CUDA::cublas")
      get_filename_component(_rlhf_cublas_libdir "${_rlhf_cublas_lib}" DIRECTORY)
      set_target_properties(rlhf_cuda PROPERTIES BUILD_RPATH "${_rlhf_cublas_libdir}")
    endif()
    message(STATUS "rlhf_cuda: building rlhf_cuda.node with cuBLAS (${_rlhf_cublas_lib})")
  else()
    message(STATUS "rlhf_cuda: building rlhf_cuda.node WITHOUT GEMM (no cuBLAS found)")
  endif()
else()
  message(STATUS "rlhf_cuda: not built (RLHF_CUDA_ADDON=${RLHF_CUDA_ADDON_MODE}, CUDA ${RLHF_WITH_CUDA}, cuBLAS '${_rlhf_cublas_lib}')")
endif()
