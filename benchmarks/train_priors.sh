#!/usr/bin/env bash
# Train the speech priors of the resynthesis table (rvae-speech is the shipped one), all at once on one GPU.
#
#   bash benchmarks/train_priors.sh SPEECH_TRAIN_DIRS OUT_DIR [DEVICE] [EPOCHS]
#
# SPEECH_TRAIN_DIRS: comma-separated folders of 16 kHz utterances, e.g. LibriSpeech train-clean-100 and CMU
# ARCTIC (keep the evaluation speakers out). OUT_DIR gets the exported (optimizer-free) priors
# rvae-speech.pt, rvae-noncausal-speech.pt, srnn-speech.pt, vrnn-speech.pt,
# dkf-speech.pt, vae-speech.pt and train.log. Training checkpoints go to $CKPT_DIR (default OUT_DIR/train):
# run the script again to --resume them. TIME_LIMIT (seconds, default none) stops every training run then;
# its checkpoint keeps the last finished epoch.
set -euo pipefail
data=$1 out=$2 device=${3:-cuda} epochs=${4:-400}
ckpt=${CKPT_DIR:-$out/train}
mkdir -p "$out" "$ckpt"
run() { timeout "${TIME_LIMIT:-0}" python -m ppl_models train-prior --device "$device" --no-progress -v --resume "$@"; }

for model in vae dkf vrnn srnn rvae rvae-noncausal; do
  run --kind speech --model "$model" --data "$data" --epochs "$epochs" --patience 60 \
      --out "$ckpt/$model-speech.pt" > "$ckpt/$model-speech.log" 2>&1 &
done
wait || true  # a run stopped by TIME_LIMIT still leaves its last checkpoint
for name in vae-speech dkf-speech vrnn-speech srnn-speech rvae-speech rvae-noncausal-speech; do
  python -m ppl_models export-prior "$ckpt/$name.pt" --out "$out/$name.pt"
done
for log in "$ckpt"/*.log; do echo "== $log"; grep -v "^\s*$" "$log" | tail -n 3; done > "$out/train.log"
cat "$out/train.log"
