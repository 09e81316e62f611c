# Script mode (test install_from_source_examples_pkgconfig). Everything is written under
# WORK_DIR. Inputs: MGPU_SOURCE_DIR, CONSUMER_SOURCE, WORK_DIR, GENERATOR, CXX, PKG_CONFIG.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out
                  WORKING_DIRECTORY "${WORK_DIR}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}")
  endif()
  message(STATUS "${out}")
  set(out "${out}" PARENT_SCOPE)
endfunction()

# 1. The README's install line: only the library's dependencies are needed (no Catch2,
#    no CLI11, no nvcc).
run(${CMAKE_COMMAND} -S "${MGPU_SOURCE_DIR}" -B "${WORK_DIR}/mgpu-build" -G "${GENERATOR}"
    -DMGPU_BUILD_TESTS=OFF -DMGPU_BUILD_EXAMPLES=OFF -DMGPU_ENABLE_CUDA=OFF)
run(${CMAKE_COMMAND} --install "${WORK_DIR}/mgpu-build" --prefix "${prefix}")
foreach(f include/mgpu/mgpu.hpp share/cmake/mgpu/mgpu-config.cmake share/pkgconfig/mgpu.pc
          share/mgpu/examples/pagerank/CMakeLists.txt share/mgpu/examples/pagerank/pagerank.cpp
          share/mgpu/examples/document_similarity/CMakeLists.txt
          share/mgpu/examples/knn_classify/CMakeLists.txt
          share/mgpu/examples/als_recommend/CMakeLists.txt)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()

# 2. An installed example, built out of the tree against the prefix (find_package(mgpu),
#    mgpu::native by default), run on a 5-node graph: edges 0->1 0->2 1->2 2->0 3->0 3->2
#    3->4, node 4 dangling. Expected ranks: networkx.pagerank(alpha=0.85), 100 iterations.
run(${CMAKE_COMMAND} -S "${prefix}/share/mgpu/examples/pagerank" -B "${WORK_DIR}/pagerank-build"
    -G "${GENERATOR}" "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${WORK_DIR}/pagerank-build")
file(WRITE "${WORK_DIR}/graph.mtx" "%%MatrixMarket matrix coordinate pattern general
5 5 7
1 2
1 3
2 3
3 1
4 1
4 3
4 5
")
run("${WORK_DIR}/pagerank-build/pagerank" --input "${WORK_DIR}/graph.mtx" --iterations 100
    --devices cpu:2 --output "${WORK_DIR}/ranks.tsv")
file(STRINGS "${WORK_DIR}/ranks.tsv" ranks)
set(expected "0\t0.3582" "1\t0.1906" "2\t0.3635" "3\t0.0383" "4\t0.0492")
list(LENGTH ranks n)
if(NOT n EQUAL 5)
  message(FATAL_ERROR "ranks.tsv: ${n} lines, expected 5:\n${ranks}")
endif()
foreach(i RANGE 4)
  list(GET ranks ${i} line)
  list(GET expected ${i} want)
  string(FIND "${line}" "${want}" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "ranks.tsv line ${i}: '${line}', expected it to start with '${want}'")
  endif()
endforeach()

# 3. pkg-config: a one-file program compiled with `pkg-config --cflags --libs mgpu`,
#    warnings as errors, no -march.
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "pkg-config not found (Debian: pkg-config)")
endif()
set(ENV{PKG_CONFIG_PATH} "${prefix}/share/pkgconfig")
run("${PKG_CONFIG}" --cflags --libs mgpu)
string(STRIP "${out}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run("${CXX}" -std=c++20 -O1 -Wall -Wextra -Werror "${CONSUMER_SOURCE}" ${flags}
    -o "${WORK_DIR}/consumer-pkgconfig")
run("${WORK_DIR}/consumer-pkgconfig")
