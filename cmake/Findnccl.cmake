# Findnccl.cmake — NVIDIA's NCCL (nccl.h and libnccl), for the mgpu::mpi_nccl target.
#
# Looks beside the CUDA Toolkit first (CUDAToolkit_INCLUDE_DIRS / CUDAToolkit_LIBRARY_DIR
# when find_package(CUDAToolkit) ran: the toolkit's own copy, e.g. /usr/local/cuda), then
# in NCCL_ROOT / $ENV{NCCL_ROOT} / $ENV{NCCL_HOME} and the system's paths (Debian's
# libnccl-dev).
#
# Result: nccl_FOUND, nccl_VERSION (from NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH in nccl.h),
# NCCL_INCLUDE_DIR, NCCL_LIBRARY, and the imported target nccl::nccl (shared library).
find_path(NCCL_INCLUDE_DIR nccl.h
  HINTS ${CUDAToolkit_INCLUDE_DIRS} ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME}
  PATH_SUFFIXES include)
find_library(NCCL_LIBRARY NAMES nccl
  HINTS ${CUDAToolkit_LIBRARY_DIR} ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME}
  PATH_SUFFIXES lib lib64)

if(NCCL_INCLUDE_DIR AND EXISTS "${NCCL_INCLUDE_DIR}/nccl.h")
  file(STRINGS "${NCCL_INCLUDE_DIR}/nccl.h" nccl_version_lines REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) ")
  foreach(part MAJOR MINOR PATCH)
    string(REGEX MATCH "NCCL_${part} +([0-9]+)" _ "${nccl_version_lines}")
    set(nccl_version_${part} "${CMAKE_MATCH_1}")
  endforeach()
  set(nccl_VERSION "${nccl_version_MAJOR}.${nccl_version_MINOR}.${nccl_version_PATCH}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(nccl
  REQUIRED_VARS NCCL_LIBRARY NCCL_INCLUDE_DIR
  VERSION_VAR nccl_VERSION)

if(nccl_FOUND AND NOT TARGET nccl::nccl)
  add_library(nccl::nccl UNKNOWN IMPORTED)
  set_target_properties(nccl::nccl PROPERTIES
    IMPORTED_LOCATION "${NCCL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
endif()
mark_as_advanced(NCCL_INCLUDE_DIR NCCL_LIBRARY)
