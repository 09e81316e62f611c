# cmake/sanitizers.cmake — applies MGPU_SANITIZE to the mgpu_dev_flags interface target, so
# every test, example and benchmark built in this tree carries the same instrumentation.
#
# MGPU_SANITIZE is a comma-separated list of -fsanitize= names: typically
# "address,undefined" (ASan + UBSan) or "thread" (TSan). Errors must fail the run, so
# recovery is disabled: a UBSan finding aborts the test instead of printing and going on.
#
# ThreadSanitizer and OpenMP: GCC's libgomp is not instrumented, so TSan reports races
# between the threads of every parallel region. Clang links LLVM's libomp, which loads
# its TSan annotations (libarcher) when the program is built with -fsanitize=thread; use
# Clang for a "thread" build (the `tsan` preset does).

if(MGPU_SANITIZE STREQUAL "")
  return()
endif()

string(REPLACE "," ";" _mgpu_sanitizers "${MGPU_SANITIZE}")
set(_mgpu_known address undefined thread leak)
foreach(_s IN LISTS _mgpu_sanitizers)
  if(NOT _s IN_LIST _mgpu_known)
    message(FATAL_ERROR "MGPU_SANITIZE: unknown sanitizer '${_s}' (known: ${_mgpu_known})")
  endif()
endforeach()
if("thread" IN_LIST _mgpu_sanitizers AND "address" IN_LIST _mgpu_sanitizers)
  message(FATAL_ERROR "MGPU_SANITIZE: 'thread' and 'address' cannot be combined")
endif()
if("thread" IN_LIST _mgpu_sanitizers AND NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(WARNING "MGPU_SANITIZE=thread with ${CMAKE_CXX_COMPILER_ID}: its OpenMP runtime is not "
                  "TSan-instrumented and parallel regions will be reported as races; use Clang")
endif()

list(JOIN _mgpu_sanitizers "," _mgpu_sanitize_joined)
target_compile_options(mgpu_dev_flags INTERFACE -fsanitize=${_mgpu_sanitize_joined}
                                                -fno-omit-frame-pointer -fno-sanitize-recover=all)
target_link_options(mgpu_dev_flags INTERFACE -fsanitize=${_mgpu_sanitize_joined}
                                             -fno-sanitize-recover=all)
# Clang's -Wconversion includes -Wsign-conversion, GCC's does not; the headers are kept
# warning-free for GCC's, so a Clang build (the `tsan` preset) turns that part off. It
# must follow -Wconversion on the command line, hence here rather than in CMAKE_CXX_FLAGS.
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  target_compile_options(mgpu_dev_flags INTERFACE -Wno-sign-conversion)
endif()
message(STATUS "mgpu: tests, examples and benchmarks built with -fsanitize=${_mgpu_sanitize_joined}")
