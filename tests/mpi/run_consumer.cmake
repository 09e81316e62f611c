# Script mode: install mgpu from the build tree into a scratch prefix, build the consumer
# with find_package(mgpu COMPONENTS mpi) (and the NCCL one, where the package has it) and again with `pkg-config mgpu-mpi`, and run both
# under mpiexec with 2 ranks.
# Needs: MGPU_BINARY_DIR, CONSUMER_SOURCE_DIR, WORK_DIR, GENERATOR, CXX, PKG_CONFIG,
# MPIEXEC (a ;-list: the launcher, its rank-count flag and options before the program).
file(REMOVE_RECURSE "${WORK_DIR}")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}")
  endif()
  message(STATUS "${out}")
endfunction()
set(prefix "${WORK_DIR}/prefix")
run(${CMAKE_COMMAND} --install "${MGPU_BINARY_DIR}" --prefix "${prefix}")
run(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror")
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run(${MPIEXEC} "${WORK_DIR}/build/consumer")
# Built where the installed package has the NCCL component (CUDA Toolkit and NCCL found);
# without a GPU per rank it only says so.
if(EXISTS "${WORK_DIR}/build/consumer_nccl")
  run(${MPIEXEC} "${WORK_DIR}/build/consumer_nccl")
endif()

set(ENV{PKG_CONFIG_PATH} "${prefix}/share/pkgconfig")
execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs mgpu-mpi RESULT_VARIABLE rc OUTPUT_VARIABLE flags
                ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config mgpu-mpi failed: ${err}")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
run("${CXX}" -std=c++20 -O1 -Wall -Wextra -Werror "${CONSUMER_SOURCE_DIR}/consumer.cpp" ${flags}
    -o "${WORK_DIR}/consumer-pkgconfig")
run(${MPIEXEC} "${WORK_DIR}/consumer-pkgconfig")
