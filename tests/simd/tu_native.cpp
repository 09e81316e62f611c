// Compiled with -march=native (tests/simd/CMakeLists.txt): whatever this CPU has.
#define SIMD_LINK_FUNCTION run_native_tu
#include "simd_link_body.hpp"
