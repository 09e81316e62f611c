#!/usr/bin/env bash
# Installs, from Debian packages, whatever mgpu's build, tests, examples and their
# default data need and is missing. Non-interactive; needs root (or sudo).
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  catch2 libbenchmark-dev libsimdjson-dev libutf8proc-dev libpcre2-dev libfmt-dev libcli11-dev libopenblas-dev
  zlib1g-dev python3 linux-doc dataset-fashion-mnist
  clang libomp-dev libclang-rt-14-dev
  libopenmpi-dev openmpi-bin
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
