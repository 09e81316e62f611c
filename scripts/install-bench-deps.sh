#!/usr/bin/env bash
# Installs the peers the side-by-side benchmark scripts run:
#  - from Debian packages: scikit-learn, SciPy, FAISS, SuiteSparse:GraphBLAS, Eigen,
#    matplotlib, hyperfine and the data packages (WordNet, linux-doc, Fashion-MNIST);
#  - from the Python package index, the current peers of benchmarks/report.sh (implicit,
#    sparse_dot_topn, faiss-cpu, scikit-learn, SciPy, NumPy, matplotlib, threadpoolctl)
#    as wheels into a virtual environment, every version pinned in
#    benchmarks/requirements-peers.txt: $MGPU_PEERS_VENV, default out/venv-peers (out/ is
#    git-ignored). Benchmark peers only, never dependencies of the library.
#
#   scripts/install-bench-deps.sh [--venv-only]
#
# Non-interactive; the Debian part needs root (or sudo) unless everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv_only=0
[ "${1:-}" = "--venv-only" ] && venv_only=1

if [ $venv_only = 0 ]; then
  bash scripts/install-deps.sh
  packages=(
    python3-sklearn python3-scipy python3-numpy python3-matplotlib python3-faiss python3-venv
    libgraphblas-dev libeigen3-dev hyperfine wordnet-base linux-doc dataset-fashion-mnist
  )
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

venv="${MGPU_PEERS_VENV:-out/venv-peers}"
requirements=benchmarks/requirements-peers.txt
stamp="$venv/.requirements-peers.txt"
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then exit 0; fi
echo "installing the pinned Python peers into $venv" >&2
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: -r "$requirements"
cp "$requirements" "$stamp"
