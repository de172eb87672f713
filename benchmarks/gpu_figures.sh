#!/usr/bin/env bash
# The figures only a GPU gives, in one run of at most 16 minutes (each step's own limit):
#   train_speed_gpu.json    paper bf16 training step, T=36 at 224x400, without/with activation
#                           checkpointing: clips/s and peak allocated memory
#   model_speed_gpu.json    paper bf16 video Swin / forward / training step, T=36
#   infer_speed_paper_gpu.json, infer_speed_tiny_gpu.json
#                           `vois infer` end to end vs the bare forward, and the live stream
#   cli_gpu_metrics.json    the CLI on CUDA: synth (tiny) -> extract -> preprocess -> train
#                           (small, bf16, 1 epoch) -> eval; proves the engine and inference
#                           run on a GPU, the score of a 1-epoch model means nothing
# A failed or timed-out step does not stop the next one.
#
#     bash benchmarks/gpu_figures.sh [OUT_DIR]    # default benchmarks/results
set -u
out=$(realpath -m "${1:-benchmarks/results}")
mkdir -p "$out"
work=$(mktemp -d)
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."

step() {  # step SECONDS NAME COMMAND...
  local limit=$1 name=$2
  shift 2
  echo "== $name ($(date -u +%T))"
  timeout "$limit" "$@" || echo "== $name FAILED (exit $?)"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, torchvision.__version__)"
step 180 train_speed python3 benchmarks/train_speed.py --device cuda --preset paper \
  --frames 36 --out "$out/train_speed_gpu.json"
step 150 model_speed python3 benchmarks/model_speed.py --presets paper --frames 36 \
  --device cuda --bf16 --checkpointing --out "$out/model_speed_gpu.json"
step 150 infer_speed_paper python3 benchmarks/infer_speed.py --device cuda --preset paper \
  --frames 96 --repeats 5 --no-rss --out "$out/infer_speed_paper_gpu.json"
step 90 infer_speed_tiny python3 benchmarks/infer_speed.py --device cuda --preset tiny \
  --frames 96 --repeats 5 --no-rss --out "$out/infer_speed_tiny_gpu.json"

vois="python3 -m vois_cli"
step 60 cli_synth $vois synth "$work/root" --preset tiny --workers 4
step 60 cli_extract $vois extract "$work/root" --out "$work/frames"
step 60 cli_preprocess $vois preprocess "$work/frames" --ann "$work/root/annotations/train.json" \
  --out "$work/train"
step 120 cli_train $vois train --data "$work/train" --out "$work/run" --preset small --epochs 1 \
  --device cuda --set train.clips_per_video=2
step 90 cli_eval $vois eval --data "$work/root" --split test --checkpoint "$work/run/last.pt" \
  --out "$out/cli_gpu_metrics.json"
rm -rf "$work"
