# Script mode (test install_consumer_find_package): install, configure the consumers
# against the install, build them, run them. Inputs: MGPU_BINARY_DIR, CONSUMER_SOURCE_DIR,
# WORK_DIR, GENERATOR, CXX, PKG_CONFIG (may be empty).
file(REMOVE_RECURSE "${WORK_DIR}")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}")
  endif()
  message(STATUS "${out}")
  set(out "${out}" PARENT_SCOPE)
endfunction()
run(${CMAKE_COMMAND} --install "${MGPU_BINARY_DIR}" --prefix "${WORK_DIR}/prefix")
run(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix" -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror")
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer")
run("${WORK_DIR}/build/consumer_all")

# The same every-algorithm translation unit compiled by hand with the flags of the
# pkg-config file's libraries only (no -Wno-psabi, no -march): GCC's psABI note (a vector
# type passed by value, compiled without the instruction set that defines its ABI) is an
# error here, so that it cannot come back through a header.
if(PKG_CONFIG)
  set(ENV{PKG_CONFIG_PATH} "${WORK_DIR}/prefix/share/pkgconfig")
  run("${PKG_CONFIG}" --libs mgpu)
  string(STRIP "${out}" libs)
  separate_arguments(libs UNIX_COMMAND "${libs}")
  run("${CXX}" -std=c++20 -O1 -Wall -Wextra -Werror -Wpsabi -fopenmp -pthread "-I${WORK_DIR}/prefix/include"
      "${CONSUMER_SOURCE_DIR}/consumer_all.cpp" ${libs} -o "${WORK_DIR}/consumer_all_direct")
  run("${WORK_DIR}/consumer_all_direct")
else()
  message(STATUS "pkg-config not found: the by-hand compile of consumer_all.cpp was not run")
endif()
