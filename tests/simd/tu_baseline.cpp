// Compiled with -march=x86-64 (tests/simd/CMakeLists.txt): SSE2 only.
#define SIMD_LINK_FUNCTION run_baseline_tu
#include "simd_link_body.hpp"
