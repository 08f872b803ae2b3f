#!/usr/bin/env bash
# Side-by-side CPU front-end benchmark: audiocap vs the upstream PyTorch code, same clips, same thread count.
# usage: bench/run_frontend.sh [N_CLIPS=20] [THREADS=nproc] [PYTHON=refenv/bin/python]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
threads=${2:-$(nproc)}
py=${3:-refenv/bin/python}
cmake --build build --target bench_frontend -j >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), $(date -u +%F), commit $(git rev-parse --short HEAD)"
build/bench/bench_frontend "$dir" "$n" "$threads"
"$py" bench/frontend_ref.py "$dir" "$n" "$threads"
