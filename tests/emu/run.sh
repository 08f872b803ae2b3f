#!/usr/bin/env bash
# Builds and runs one CPU emulation test of CUDA kernels (tests/emu/<name>.cpp: the kernels' own .cuh source
# under cuda_emu.h / emu_rt.h), with AddressSanitizer and UBSan, plus the plain-C oracles it compares against.
# No GPU or CUDA toolkit needed. Usage: tests/emu/run.sh <name> [out-dir]
#   names: convnext_mlp_emu, convnext_mlp_mma_emu, beam_search_emu, attention_decode_emu, decoder_ops_emu
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
name="${1:?usage: run.sh <name> [out-dir]}"
out="${2:-${TMPDIR:-/tmp}}/emu-$name"
mkdir -p "$out"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
case "$name" in
  beam_search_emu) csrc="host/beam.c host/status.c" ;;
  attention_decode_emu|decoder_ops_emu) csrc="host/ref/ref_ops.c" ;;
  *) csrc="" ;;
esac
objs=()
for c in $csrc; do
  o="$out/$(basename "${c%.c}").o"
  # the oracles as the project compiles them, minus OpenMP (serial) and the CPU-dispatch clones
  ${CC:-gcc} -std=gnu11 -O1 -g $san -DAC_NO_CLONES -I"$root/host" -I"$root/host/ref" -c "$root/$c" -o "$o"
  objs+=("$o")
done
${CXX:-g++} -std=c++17 -O1 -g $san -Wall -Wextra -Wno-unknown-pragmas -Wno-sign-compare -pthread -I"$root/host" \
    "$here/$name.cpp" "${objs[@]}" -o "$out/$name" -lm
exec "$out/$name"
