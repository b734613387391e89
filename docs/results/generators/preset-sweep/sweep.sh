#!/bin/bash
# The sweep behind `--preset cpu` (issue #15): stage-1 G1 on the real Market-1501, 10 minutes
# each on a 2-core CPU, one run at a time, seed 0; each run changes one thing from the preset
# (the last one combines the two best), then is scored on the first 2,000 posegan pairs.
# Resumable: a run whose NAME.eval.json exists is skipped.
set -u
R=${REIDAUG_DATA:-../shared/data/market1501}
while read -r name args; do
  [ -f "$name.eval.json" ] && continue
  rm -rf "out-$name"
  reidaug train --dataset market1501 --root "$R" --preset cpu --stage 1 --minutes 10 $args \
      --out "out-$name" > "$name.train.log" 2>&1 || { echo "train failed: $name"; continue; }
  run=$(ls -d out-"$name"/*/ | head -1)
  reidaug evaluate --run "$run" --protocol posegan --metrics ssim,mssim --limit 2000 \
      --json "$name.eval.json" > "$name.eval.log" 2>&1 || echo "evaluate failed: $name"
done <<'L'
base
lr5e-4 --lr 5e-4
lr1e-3 --lr 1e-3
bs8 --batch-size 8
bs32 --batch-size 32
w8 --width 8
bs8-lr5e-4 --batch-size 8 --lr 5e-4
L
