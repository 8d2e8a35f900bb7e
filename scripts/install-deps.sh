#!/usr/bin/env bash
# install-deps.sh — every Debian 12 package mimo needs to build, test and
# run, installed with apt as root. Idempotent: does nothing when all are in.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  openmpi-bin libopenmpi-dev
  libopenblas-openmp-dev
  libdnnl-dev
  libhdf5-openmpi-dev hdf5-tools
  libcmocka-dev libyaml-dev zlib1g-dev
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev
  python3 python3-h5py python3-numpy python3-onnx
  graphviz gnuplot-nox
  dataset-fashion-mnist python3-vega-datasets
  slurm-wlm munge
  iproute2
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: missing packages: ${missing[*]}; run me as root" >&2
    exit 1
  fi
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A pthread OpenBLAS installed later would take over libopenblas.so.0;
# pin the OpenMP build, which obeys OMP_NUM_THREADS.
if [ "$(id -u)" -eq 0 ]; then
  for alt in libopenblas.so.0-x86_64-linux-gnu libblas.so.3-x86_64-linux-gnu; do
    path=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-openmp | head -n1 || true)
    [ -n "$path" ] && update-alternatives --set "$alt" "$path" >/dev/null 2>&1 || true
  done
fi
echo "install-deps.sh: all dependencies present"
