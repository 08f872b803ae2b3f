#!/usr/bin/env bash
# Builds and runs the CPU emulation of the fused ConvNeXt MLP kernel (see convnext_mlp_emu.cpp), with
# AddressSanitizer. No GPU or CUDA toolkit needed; ~20 s on 2 cores. Usage: tests/emu/run.sh [build-dir]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-${TMPDIR:-/tmp}}/convnext_mlp_emu"
${CXX:-g++} -std=c++17 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -Wall -Wextra \
    -Wno-unknown-pragmas -pthread "$here/convnext_mlp_emu.cpp" -o "$out"
exec "$out"
