#!/usr/bin/env bash
# Builds mgpu's tests and examples and runs the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${MGPU_BUILD_DIR:-build}
# The CUDA Toolkit's default location, when nvcc is not on PATH: the GPU backend's tests
# are then compiled (for sm_80 and sm_90) and report "skipped" without a GPU.
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMGPU_BUILD_TESTS=ON -DMGPU_BUILD_EXAMPLES=ON
cmake --build "$build" --parallel "$(nproc)"
ctest --test-dir "$build" --output-on-failure --parallel "$(nproc)" "$@"
