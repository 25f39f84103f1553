#!/usr/bin/env bash
# Train the shipped priors and the speech priors of the resynthesis table, all at once on one GPU.
#
#   bash benchmarks/train_priors.sh SPEECH_TRAIN_DIRS OUT_DIR [DEVICE] [SPEECH_EPOCHS] [TRAJECTORY_EPOCHS]
#
# SPEECH_TRAIN_DIRS: comma-separated folders of 16 kHz utterances, e.g. LibriSpeech train-clean-100 and CMU
# ARCTIC (keep the evaluation speakers out). OUT_DIR gets the exported (optimizer-free) priors
# srnn-trajectory.pt, rvae-speech.pt, rvae-noncausal-speech.pt, srnn-speech.pt, vrnn-speech.pt,
# dkf-speech.pt, vae-speech.pt and train.log. Training checkpoints go to $CKPT_DIR (default OUT_DIR/train):
# run the script again to --resume them. TIME_LIMIT (seconds, default none) stops every training run then;
# its checkpoint keeps the last finished epoch.
set -euo pipefail
data=$1 out=$2 device=${3:-cuda} epochs=${4:-400} trajectory_epochs=${5:-150}
ckpt=${CKPT_DIR:-$out/train}
mkdir -p "$out" "$ckpt"
run() { timeout "${TIME_LIMIT:-0}" python -m ppl_models train-prior --device "$device" --no-progress -v --resume "$@"; }

run --kind trajectory --model srnn --data synthetic --size 8192 --batch-size 256 --epochs "$trajectory_epochs" \
    --scheduled-sampling 0.5 --out "$ckpt/srnn-trajectory.pt" > "$ckpt/srnn-trajectory.log" 2>&1 &
for model in vae dkf vrnn srnn rvae rvae-noncausal; do
  run --kind speech --model "$model" --data "$data" --epochs "$epochs" --patience 40 \
      --out "$ckpt/$model-speech.pt" > "$ckpt/$model-speech.log" 2>&1 &
done
wait || true  # a run stopped by TIME_LIMIT still leaves its last checkpoint
for name in srnn-trajectory vae-speech dkf-speech vrnn-speech srnn-speech rvae-speech rvae-noncausal-speech; do
  python -m ppl_models export-prior "$ckpt/$name.pt" --out "$out/$name.pt"
done
for log in "$ckpt"/*.log; do echo "== $log"; grep -v "^\s*$" "$log" | tail -n 3; done > "$out/train.log"
cat "$out/train.log"
