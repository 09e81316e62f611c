#!/usr/bin/env bash
# Installs, from Debian packages, the peers the side-by-side benchmark scripts run
# (scikit-learn, SciPy, FAISS, SuiteSparse:GraphBLAS, Eigen), matplotlib for the
# report's plots and hyperfine. Non-interactive; needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

packages=(
  python3-sklearn python3-scipy python3-numpy python3-matplotlib python3-faiss
  libgraphblas-dev libeigen3-dev hyperfine wordnet-base
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
