#!/usr/bin/env bash
# Runs the test suite under sanitizers (RELIABILITY.md, "Beyond unit tests"); any report
# fails the run. Extra arguments go to both ctest runs (e.g. -R reliability).
#
# 1. build-asan (GCC): every test except the install test, under AddressSanitizer +
#    UndefinedBehaviorSanitizer, leaks included. Configured with MGPU_NATIVE=OFF: the
#    suite is built without -march=native, as a downstream project builds it, so the
#    code the compiler generates for a baseline x86-64 is what runs (the hand-written
#    AVX2 / AVX-512 kernels are still chosen at run time by the CPU, see
#    include/mgpu/backend/cpu/simd/isa.hpp). ASAN_OPTIONS has
#    allocator_may_return_null=1 so that an allocation no allocator can satisfy fails as
#    it does without ASan (null from nothrow new, std::bad_alloc from new) instead of
#    aborting: the tests of RELIABILITY.md rows 11 and 18 provoke exactly that.
# 2. build-tsan (Clang): the tests of host devices, streams, events, device sets, policies
#    and fork_join (ctest label `core`, or `concurrency` for tests elsewhere that run
#    `cpu:N`), under ThreadSanitizer. Clang because its OpenMP runtime (libomp) loads
#    TSan annotations (libarcher); GCC's libgomp is uninstrumented and every parallel
#    region would be reported as a race. TSAN_OPTIONS has ignore_noninstrumented_modules=1,
#    as libarcher asks: libomp's own internals (and the system's simdjson and utf8proc)
#    are not instrumented, and accesses made inside them are otherwise reported as races;
#    races in mgpu's and the tests' code, including inside parallel regions, are still
#    reported. There are no suppressions. MGPU_SIMD=scalar: the run takes the portable
#    kernels instead of the CPU's best (tokenizer, row sort, SpMV), so they run under a
#    sanitizer too.
#
# Both builds leave the CUDA backend out (MGPU_ENABLE_CUDA=OFF in the presets): the
# sanitizers instrument host code, and the GPU tests could only report "skipped" here.
#
# The sanitizer options live in the test presets of CMakePresets.json, so that
# `ctest --preset asan` or `ctest --preset tsan` by hand runs the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in g++ clang++; do
  command -v "$tool" >/dev/null || { echo "run-sanitizers.sh: $tool is missing" >&2; exit 1; }
done
jobs=$(nproc)

cmake --preset asan -DMGPU_NATIVE=OFF
cmake --build --preset asan --parallel "$jobs"
ctest --preset asan --parallel "$jobs" "$@"

cmake --preset tsan
cmake --build --preset tsan --parallel "$jobs"
MGPU_SIMD=scalar ctest --preset tsan --parallel "$jobs" --no-tests=error "$@"
