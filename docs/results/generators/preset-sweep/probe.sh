#!/bin/bash
# Per-iteration probes (issue #15): stage-1 G1 of `--preset cpu` on the real Market-1501 for the
# sweep base's 2,243 iterations (its 10 minutes), seed 0 unless named, each changing one thing;
# scored like the sweep on the first 2,000 posegan pairs. The two other seeds give the
# seed-to-seed spread the sweep lacked; gaussian keeps the base's batches exactly, and so do
# elu, xavier and elu-xavier (PG2's released code: ELU and TF slim's Glorot-uniform init).
# The last four ran on a checkout of 073c8fe with NAME.patch applied, through a
# `reidaug` that imports that checkout: srcpose (G1 also sees the condition's 18 heatmaps) and
# up1 (1x1 convs after the nearest upsampling, as PG2's released code) need their patch to
# re-run; bn and bn-seed1 ran with probe-bn.patch (batch norm between every generator conv and
# its ReLU), and the committed `--norm batch` builds the same network, parameter for parameter.
# Resumable: a run whose NAME.eval.json exists is skipped.
set -u
R=${REIDAUG_DATA:-../shared/data/market1501}
while read -r name global args; do
  [ -f "$name.eval.json" ] && continue
  rm -rf "out-$name"
  reidaug --seed "$global" train --dataset market1501 --root "$R" --preset cpu --stage 1 --iters1 2243 \
      $args --out "out-$name" > "$name.train.log" 2>&1 || { echo "train failed: $name"; continue; }
  run=$(ls -d out-"$name"/*/ | head -1)
  reidaug evaluate --run "$run" --protocol posegan --metrics ssim,mssim --limit 2000 \
      --json "$name.eval.json" > "$name.eval.log" 2>&1 || echo "evaluate failed: $name"
done <<'L'
probe-seed1 1
probe-seed2 2
probe-gaussian 0 --heatmap gaussian
probe-noflip 0 --no-flip
probe-elu 0 --act elu
probe-xavier 0 --init xavier
probe-elu-xavier 0 --act elu --init xavier
probe-srcpose 0
probe-up1 0
probe-bn 0 --norm batch
probe-bn-seed1 1 --norm batch
L
