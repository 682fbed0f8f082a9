#!/usr/bin/env bash
# Fetch (here, where PyPI is reachable) the wheels a bare GPU machine lacks for benchmarks/gpu.sh:
# its image has JAX, Flax, optax, orbax, PyTorch and numpy, but not these. They go to .whl/
# (git-ignored), for Python 3.12 on x86-64 Linux.
#   benchmarks/gpu_wheels.sh [PYTHON_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-3.12}
packages=(
  pydantic==2.14.3 pydantic-core==2.50.4 annotated-types typing-inspection typing-extensions
  grain==0.2.18 array-record portpicker
  keras==3.15.1 namex optree
  tensorboardX==2.6.5
)
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
           manylinux2014_x86_64 manylinux1_x86_64 manylinux_2_24_x86_64 manylinux_2_31_x86_64; do
  platforms+=(--platform "$tag")
done
for package in "${packages[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$version" \
    --implementation cp "${platforms[@]}" -d .whl "$package"
done
ls .whl
