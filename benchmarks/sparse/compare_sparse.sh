#!/usr/bin/env bash
# Side-by-side SpMV: mgpu (spmv_bench), SuiteSparse:GraphBLAS GrB_mxv, Eigen, SciPy and a
# STREAM triad probe, on the same generated matrices (sparse_gen.h), in one run, printing
# the ratios the sparse-core targets are stated in (shared/PERFORMANCE.md).
#
#   benchmarks/sparse/compare_sparse.sh [ROWS] [NNZ_PER_ROW] [BAND] [REPEAT]
#
# Defaults: 4194304 rows, 16 per row, band 1000, 9 repetitions. Each system reports the
# median of its repetitions; bytes are counted the same way for all (8 per nonzero +
# row offsets + x + y). The triad runs before and after; mgpu's bandwidth is given as a
# share of both (the box is shared, so the two differ when its load changes). Set
# MGPU_BUILD_DIR to reuse a configured build (it is configured only if it is not). Peak
# memory ≈ 1.8 GB (mgpu keeps the tiled / sell copy of the matrix).
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-4194304}
k=${2:-16}
band=${3:-1000}
repeat=${4:-9}
build=${MGPU_BUILD_DIR:-build-bench}
py=/usr/bin/python3
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMGPU_BUILD_BENCHMARKS=ON -DMGPU_BUILD_TESTS=OFF \
    -DMGPU_BUILD_EXAMPLES=OFF -DMGPU_ENABLE_CUDA=OFF >/dev/null
fi
cmake --build "$build" --target spmv_bench stream_triad graphblas_spmv eigen_spmv >/dev/null
bin="$build/benchmarks/sparse"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }

echo "# $(date -u +%F) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
triad=$("$bin/stream_triad" --repeat 10)
echo "$triad"
triad_gbps=$(echo "$triad" | field GBps)
for b in -1 "$band"; do
  label=$([ "$b" -lt 0 ] && echo random || echo "band=$b")
  echo "## $rows x $rows, $k per row, $label"
  if [ "$b" -lt 0 ]; then band_arg=(); else band_arg=(--band "$b"); fi
  mg=$("$bin/spmv_bench" --rows "$rows" --nnz-per-row "$k" "${band_arg[@]}" --repeat "$repeat" --save-csr "$tmp/a.bin")
  gb=$("$bin/graphblas_spmv" "$rows" "$k" "$b" "$repeat")
  eg=$("$bin/eigen_spmv" "$rows" "$k" "$b" "$repeat")
  sp=$($py benchmarks/sparse/scipy_spmv.py "$tmp/a.bin" "$repeat")
  rm -f "$tmp/a.bin"
  printf '%s\n%s\n%s\n%s\n' "$mg" "$gb" "$eg" "$sp"
  m=$(echo "$mg" | field median_ms)
  awk -v m="$m" -v g="$(echo "$gb" | field median_ms)" -v e="$(echo "$eg" | field median_ms)" \
      -v s="$(echo "$sp" | field median_ms)" -v bw="$(echo "$mg" | field GBps)" -v t="$triad_gbps" \
      -v t2="$("$bin/stream_triad" --repeat 10 | field GBps)" \
      'BEGIN { printf "ratios: mgpu vs GraphBLAS %.2fx, vs Eigen %.2fx, vs SciPy %.2fx; mgpu bandwidth %.0f%% of the triad before, %.0f%% of the triad after (%.1f GB/s)\n", g/m, e/m, s/m, 100*bw/t, 100*bw/t2, t2 }'
done
