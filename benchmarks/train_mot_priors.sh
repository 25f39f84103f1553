#!/usr/bin/env bash
# Train the two cross-validation SRNN trajectory priors of the MixDVAE tracking table on real motion: the
# ground-truth tracks of MOT15 train, in two folds of sequences. Each prior is scored only on the other fold.
#
#   bash benchmarks/train_mot_priors.sh MOT15_TRAIN_GT_DIR OUT_DIR [TRAIN-PRIOR FLAGS, e.g. --velocity]
#
# OUT_DIR gets srnn-fold-a.pt (trained on fold A, use it on fold B), srnn-fold-b.pt and train.log. MOT15
# annotations are CC BY-NC-SA 3.0, so these priors stay benchmark artefacts and are not shipped.
set -euo pipefail
gt=$1 out=$2
mkdir -p "$out"
fold_a="ADL-Rundle-6 ETH-Bahnhof ETH-Sunnyday KITTI-13 PETS09-S2L1 TUD-Campus"
fold_b="ADL-Rundle-8 ETH-Pedcross2 KITTI-17 TUD-Stadtmitte Venice-2"
for fold in a b; do
  seqs=$([ $fold = a ] && echo $fold_a || echo $fold_b)
  data=$(for s in $seqs; do printf '%s/%s,' "$gt" "$s"; done)
  OMP_NUM_THREADS=1 python -m ppl_models train-prior --kind trajectory --model srnn --data "${data%,}" \
      --segment-hop 5 --batch-size 64 --epochs 150 --patience 30 --scheduled-sampling 0.5 --no-progress "${@:3}" \
      --out "$out/srnn-fold-$fold-train.pt" > "$out/fold-$fold.log" 2>&1 &
done
wait
for fold in a b; do
  python -m ppl_models export-prior "$out/srnn-fold-$fold-train.pt" --out "$out/srnn-fold-$fold.pt"
  tail -n 2 "$out/fold-$fold.log"
done | tee "$out/train.log"
