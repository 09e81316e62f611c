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

# The same every-algorithm translation unit compiled by hand, without the package's
# -Wno-psabi: reports whether GCC's psABI note (AVX-512 vectors passed by value while
# compiling without AVX-512) is still emitted. Reported, not failed, while
# psabi_note_is_fatal is OFF; every other warning is an error.
set(psabi_note_is_fatal OFF)
if(PKG_CONFIG)
  set(ENV{PKG_CONFIG_PATH} "${WORK_DIR}/prefix/share/pkgconfig")
  run("${PKG_CONFIG}" --libs mgpu)
  string(STRIP "${out}" libs)
  separate_arguments(libs UNIX_COMMAND "${libs}")
  set(psabi_flag -Wno-error=psabi)
  if(psabi_note_is_fatal)
    set(psabi_flag)
  endif()
  run("${CXX}" -std=c++20 -O1 -Wall -Wextra -Werror ${psabi_flag} -fopenmp -pthread "-I${WORK_DIR}/prefix/include"
      "${CONSUMER_SOURCE_DIR}/consumer_all.cpp" ${libs} -o "${WORK_DIR}/consumer_all_direct")
  if(out MATCHES "psabi")
    message(WARNING "consumer_all.cpp without -Wno-psabi: GCC still emits the psABI note:\n${out}")
  else()
    message(STATUS "consumer_all.cpp without -Wno-psabi: no psABI note")
  endif()
  run("${WORK_DIR}/consumer_all_direct")
else()
  message(STATUS "pkg-config not found: the compile without -Wno-psabi was not run")
endif()
