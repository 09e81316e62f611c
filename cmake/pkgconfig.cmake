# cmake/pkgconfig.cmake — writes ${CMAKE_CURRENT_BINARY_DIR}/mgpu.pc from cmake/mgpu.pc.in.
# Needs MGPU_PKGCONFIG_DIR (where the file is installed, relative to the prefix) and the
# results of find_package(OpenMP / BLAS / LAPACK) of the top-level CMakeLists.txt.

# The prefix, relative to the .pc file's own folder: the file stays right wherever
# `cmake --install --prefix` puts the tree.
if(IS_ABSOLUTE "${MGPU_PKGCONFIG_DIR}")
  message(FATAL_ERROR "MGPU_PKGCONFIG_DIR must be relative to the prefix: ${MGPU_PKGCONFIG_DIR}")
endif()
file(RELATIVE_PATH MGPU_PC_PREFIX_FROM_PCDIR "/prefix/${MGPU_PKGCONFIG_DIR}" "/prefix")
string(REGEX REPLACE "/$" "" MGPU_PC_PREFIX_FROM_PCDIR "${MGPU_PC_PREFIX_FROM_PCDIR}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(MGPU_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(MGPU_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# Dependencies with a pkg-config file of their own (Debian ships these four) are
# Required; BLAS/LAPACK is OpenBLAS's module when that is what CMake found.
set(_mgpu_pc_requires "simdjson libutf8proc zlib")
set(_mgpu_pc_libs "")
if("${BLAS_LIBRARIES};${LAPACK_LIBRARIES}" MATCHES "openblas")
  string(APPEND _mgpu_pc_requires " openblas")
else()
  set(_mgpu_pc_libs "-llapack -lblas")
endif()
set(MGPU_PKGCONFIG_REQUIRES "${_mgpu_pc_requires}" CACHE STRING
    "Requires: line of the installed mgpu.pc (pkg-config modules)")
set(MGPU_PKGCONFIG_LIBS "${_mgpu_pc_libs}" CACHE STRING
    "Extra Libs: of the installed mgpu.pc, beside OpenMP and -pthread (e.g. -llapack -lblas)")
string(REPLACE ";" " " MGPU_PC_OPENMP_FLAGS "${OpenMP_CXX_FLAGS}")
string(STRIP "${MGPU_PKGCONFIG_LIBS} ${MGPU_PC_OPENMP_FLAGS} -pthread" MGPU_PC_LIBS)
configure_file("${CMAKE_CURRENT_LIST_DIR}/mgpu.pc.in" "${CMAKE_CURRENT_BINARY_DIR}/mgpu.pc" @ONLY)
